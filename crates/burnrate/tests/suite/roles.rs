use burnrate_core::Role;
use burnrate_testkit::TestApp;
use reqwest::Method;

use crate::create_key;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_can_read_but_every_change_is_refused() {
    let app = TestApp::spawn().await;
    let (scope, owner) = app.create_org("Org", "owner@example.com").await;
    app.add_member(scope, "viewer@example.com", Role::Viewer).await;
    let viewer = app.login("viewer@example.com").await;
    assert_eq!(viewer.get("/").await.status, 200);
    assert_eq!(viewer.get("/members").await.status, 200);
    let owner_id = owner.to_string();
    for (path, fields) in [
        ("/members/invite".to_owned(), vec![("email", "x@example.com"), ("role", "viewer")]),
        (format!("/members/{owner_id}/role"), vec![("role", "viewer")]),
        (format!("/members/{owner_id}/remove"), vec![]),
        ("/api-keys".to_owned(), vec![("name", "k"), ("scope", "read")]),
    ] {
        let r = viewer.post_form(&path, &fields).await;
        assert_eq!(r.status, 403, "POST {path} as a viewer");
    }
    assert_eq!(viewer.get("/api-keys").await.status, 403);
    assert_eq!(viewer.get("/audit").await.status, 403);
    let mut t = app.store.tenant(scope).await.unwrap();
    assert_eq!(t.member_role(owner).await.unwrap(), Some(Role::Owner), "nothing changed");
    assert!(t.api_keys().await.unwrap().is_empty());
    t.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_cannot_make_owners_and_the_last_owner_stays() {
    let app = TestApp::spawn().await;
    let (scope, owner) = app.create_org("Org", "owner@example.com").await;
    let admin = app.add_member(scope, "admin@example.com", Role::Admin).await;
    let member = app.add_member(scope, "member@example.com", Role::Member).await;
    let admin_client = app.login("admin@example.com").await;
    let r = admin_client.post_form(&format!("/members/{member}/role"), &[("role", "owner")]).await;
    assert_eq!(r.status, 403);
    let r = admin_client.post_form(&format!("/members/{owner}/remove"), &[]).await;
    assert_eq!(r.status, 403, "an admin cannot remove an owner");
    let r = admin_client.post_form(&format!("/members/{member}/role"), &[("role", "viewer")]).await;
    assert_eq!(r.status, 303);

    let owner_client = app.login("owner@example.com").await;
    let r = owner_client.post_form(&format!("/members/{owner}/role"), &[("role", "admin")]).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("needs at least one owner"));
    let r = owner_client.post_form(&format!("/members/{admin}/remove"), &[]).await;
    assert_eq!(r.status, 303);
    // The removed admin's session ends with the membership.
    assert_eq!(admin_client.get("/").await.status, 303);

    let mut t = app.store.tenant(scope).await.unwrap();
    assert_eq!(t.member_role(owner).await.unwrap(), Some(Role::Owner));
    assert_eq!(t.member_role(member).await.unwrap(), Some(Role::Viewer));
    assert_eq!(t.member_role(admin).await.unwrap(), None);
    let actions: Vec<String> = t.audit_entries(50).await.unwrap().into_iter().map(|e| e.action).collect();
    t.commit().await.unwrap();
    assert!(
        actions.contains(&"member_role_changed".into()) && actions.contains(&"member_removed".into()),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organizations_ids_get_404_on_every_route() {
    let app = TestApp::spawn().await;
    let (a, a_owner) = app.create_org("Org A", "a@example.com").await;
    let a_member = app.add_member(a, "a.member@example.com", Role::Member).await;
    let a_client = app.login("a@example.com").await;
    let a_key = create_key(&a_client, "a-key", "read").await;
    a_client.post_form("/members/invite", &[("email", "a.invitee@example.com"), ("role", "member")]).await;
    let mut t = app.store.tenant(a).await.unwrap();
    let a_invitation = t.open_invitations(&app.vault).await.unwrap()[0].id;
    let a_key_id = t.api_keys().await.unwrap()[0].id;
    let a_session = t.user_sessions(a_owner).await.unwrap()[0].handle;
    t.commit().await.unwrap();

    app.create_org("Org B", "b@example.com").await;
    let b = app.login("b@example.com").await;
    let b_key = create_key(&b, "b-key", "admin").await;
    for (path, fields) in [
        (format!("/members/{a_member}/role"), vec![("role", "viewer")]),
        (format!("/members/{a_member}/remove"), vec![]),
        (format!("/members/{a_owner}/remove"), vec![]),
        (format!("/members/invitations/{a_invitation}/revoke"), vec![]),
        (format!("/api-keys/{a_key_id}/revoke"), vec![]),
        (format!("/sessions/{a_session}/end"), vec![]),
    ] {
        let r = b.post_form(&path, &fields).await;
        assert_eq!(r.status, 404, "POST {path} from org B");
    }
    for (method, path, body) in [
        (Method::PATCH, format!("/api/v1/members/{a_member}"), Some(serde_json::json!({"role": "viewer"}))),
        (Method::DELETE, format!("/api/v1/members/{a_member}"), None),
        (Method::DELETE, format!("/api/v1/api-keys/{a_key_id}"), None),
    ] {
        let r = b.api(method.clone(), &path, &b_key, body).await;
        assert_eq!(r.status, 404, "{method} {path} from org B");
        assert_eq!(r.json()["error"]["code"], "not_found");
    }
    // B's listings show nothing of A.
    let members = b.api(Method::GET, "/api/v1/members", &b_key, None).await;
    assert!(!members.text.contains("a@example.com") && !members.text.contains(&a_member.to_string()));
    // A key's organization part cannot be swapped: A's secret under B's org id is unknown there.
    let b_org_hex = b_key.split('_').nth(1).unwrap();
    let forged = format!("brk_{b_org_hex}_{}", &a_key[a_key.len() - 43..]);
    assert_eq!(b.api(Method::GET, "/api/v1/org", &forged, None).await.status, 401);

    // A is untouched.
    let mut t = app.store.tenant(a).await.unwrap();
    assert_eq!(t.member_role(a_member).await.unwrap(), Some(Role::Member));
    assert!(t.api_keys().await.unwrap()[0].revoked_at.is_none());
    assert_eq!(t.open_invitations(&app.vault).await.unwrap().len(), 1);
    t.commit().await.unwrap();
    assert_eq!(a_client.get("/").await.status, 200, "A's session was not ended");
    assert_eq!(a_client.api(Method::GET, "/api/v1/org", &a_key, None).await.status, 200);
}

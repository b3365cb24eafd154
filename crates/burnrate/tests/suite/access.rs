//! Access follows membership (S22), where a secret goes is part of the secret (S23), and four eyes
//! that stay open: each tried from the side that would break it — a removed owner with a psql
//! prompt, a demoted admin, an admin who wants a stored key, an admin who demotes the others.

use std::time::{Duration, Instant};

use burnrate_core::Role;
use burnrate_sim::SimProvider;
use burnrate_testkit::{TestApp, TestClient};
use reqwest::Method;
use serde_json::json;

use crate::wire::{connect, create_credential};

/// An organization with its owner `a@acme.test` and a second admin `b@acme.test`, each logged in
/// with an admin API key. New SQL credentials apply at once (so that the tests can make them);
/// everything else keeps its approval.
struct TwoAdmins {
    scope: burnrate_store::OrgScope,
    a: TestClient,
    a_key: String,
    b: TestClient,
    b_key: String,
    b_id: burnrate_core::UserId,
}

async fn two_admins(app: &TestApp, approval_actions: &[&str]) -> TwoAdmins {
    let (scope, _) = app.create_org("Acme", "a@acme.test").await;
    let b_id = app.add_member(scope, "b@acme.test", Role::Admin).await;
    let mut tx = app.store.tenant(scope).await.unwrap();
    tx.set_approval_actions(&approval_actions.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>()).await.unwrap();
    tx.commit().await.unwrap();
    let (a, b) = (app.login("a@acme.test").await, app.login("b@acme.test").await);
    let (a_key, b_key) = (crate::create_key(&a, "a", "admin").await, crate::create_key(&b, "b", "admin").await);
    TwoAdmins { scope, a, a_key, b, b_key, b_id }
}

/// Waits up to three seconds for `client`'s connection to be closed by the server; returns how
/// long it took.
async fn closed_within(client: &tokio_postgres::Client) -> Duration {
    let since = Instant::now();
    while !client.is_closed() && since.elapsed() < Duration::from_secs(3) {
        // A query on a closed connection fails and marks the client closed.
        let _ = client.simple_query("SELECT 1").await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(client.is_closed(), "the session is still open after {:?}", since.elapsed());
    since.elapsed()
}

async fn audit_actions(app: &TestApp, scope: burnrate_store::OrgScope) -> Vec<(String, serde_json::Value)> {
    let mut tx = app.store.tenant(scope).await.unwrap();
    let entries = tx.audit_entries(200).await.unwrap();
    tx.commit().await.unwrap();
    entries.into_iter().map(|e| (e.action, serde_json::from_str(&e.details).unwrap_or_default())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_admin_loses_psql_api_keys_and_pending_requests_at_once() {
    let app = TestApp::spawn().await;
    let x = two_admins(&app, &["budget_raise"]).await;
    let cred = create_credential(&x.b, &x.b_key, "b's psql").await;
    let psql = connect(&app.pg_addr.to_string(), &cred).await;
    psql.query_one("SELECT count(*) FROM audit_log", &[]).await.expect("an admin's credential reads the audit log");
    // B asks for a raise, which waits for A.
    let budget = crate::approvals::budget(&x.b, &x.b_key, "10").await;
    let r =
        x.b.api(Method::PATCH, &format!("/api/v1/budgets/{budget}"), &x.b_key, Some(json!({ "amount": "99" }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let request = r.json()["approval_id"].as_str().unwrap().to_owned();

    // A removes B through the members page.
    let r = x.a.post_form(&format!("/members/{}/remove", x.b_id), &[]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let took = closed_within(&psql).await;
    assert!(took < Duration::from_secs(1), "B's psql session closed only after {took:?}");

    // Nothing of B's works any more: a new psql login, the API key, the web session.
    let refused = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user={} password={} dbname=burnrate",
            app.pg_addr.port(),
            cred.user,
            cred.password
        ),
        tokio_postgres::NoTls,
    )
    .await;
    let error = refused.err().expect("a removed member's credential does not log in");
    let said = error.as_db_error().map(|e| e.message().to_owned()).unwrap_or_default();
    assert!(said.contains("password authentication failed"), "{error:?}");
    assert_eq!(x.b.api(Method::GET, "/api/v1/org", &x.b_key, None).await.status, 401);
    assert_eq!(x.b.get("/").await.status, 303, "B's web session ended");

    // B's request was withdrawn, so nobody can approve it now.
    let shown = x.a.api(Method::GET, &format!("/api/v1/approvals/{request}"), &x.a_key, None).await.json();
    assert_eq!(shown["state"], "withdrawn", "{shown}");
    let r = x.a.api(Method::POST, &format!("/api/v1/approvals/{request}/approve"), &x.a_key, None).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let budgets = x.a.api(Method::GET, "/api/v1/budgets", &x.a_key, None).await.json();
    assert_eq!(budgets["budgets"][0]["amount"], "10");

    // The credentials are revoked for good, and the log says what went with the member.
    let creds = x.a.api(Method::GET, "/api/v1/sql-credentials", &x.a_key, None).await.json();
    assert!(creds["sql_credentials"][0]["revoked_at"].is_string(), "{creds}");
    let log = audit_actions(&app, x.scope).await;
    let (_, removed) = log.iter().find(|(a, _)| a == "member_removed").expect("member_removed audited");
    assert_eq!((removed["api_keys_revoked"].as_u64(), removed["sql_credentials_revoked"].as_u64()), (Some(1), Some(1)));
    assert_eq!(removed["requests_withdrawn"], json!([request]));
    assert!(log.iter().any(|(a, d)| a == "approval_withdrawn" && d["reason"].as_str().unwrap().contains("left")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_admins_psql_session_closes_and_reconnects_without_the_audit_log() {
    let app = TestApp::spawn().await;
    let x = two_admins(&app, &[]).await;
    let cred = create_credential(&x.b, &x.b_key, "b's psql").await;
    let before = connect(&app.pg_addr.to_string(), &cred).await;
    before.query_one("SELECT count(*) FROM audit_log", &[]).await.expect("an admin reads the audit log");

    let r =
        x.a.api(Method::PATCH, &format!("/api/v1/members/{}", x.b_id), &x.a_key, Some(json!({ "role": "member" })))
            .await;
    assert_eq!(r.status, 200, "a demotion applies at once: {}", r.text);
    let took = closed_within(&before).await;
    assert!(took < Duration::from_secs(1), "closed only after {took:?}");

    let after = connect(&app.pg_addr.to_string(), &cred).await;
    after.query_one("SELECT count(*) FROM costs", &[]).await.expect("a member still reads spend");
    let error = after.query_one("SELECT count(*) FROM audit_log", &[]).await.unwrap_err();
    assert!(
        error.as_db_error().is_some_and(|e| e.message().contains("audit_log")),
        "the audit log is out of a member's reach: {error:?}"
    );
    // The API key is capped the same way.
    assert_eq!(x.b.api(Method::GET, "/api/v1/audit", &x.b_key, None).await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_url_changes_only_with_the_secret_and_a_second_admins_approval() {
    let app = TestApp::spawn().await;
    let key = "sk-admin-SOURCEKEY7777777777777777abcd";
    let sim = SimProvider::openai(key).await;
    // Connected while A was the only admin.
    let (scope, _) = app.create_org("Acme", "a@acme.test").await;
    let a = app.login("a@acme.test").await;
    let a_key = crate::create_key(&a, "a", "admin").await;
    let r = a
        .api(
            Method::POST,
            "/api/v1/sources",
            &a_key,
            Some(json!({ "kind": "openai", "name": "OpenAI", "secret": key, "base_url": sim.base_url() })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let source = r.json()["id"].as_str().unwrap().to_owned();
    app.add_member(scope, "b@acme.test", Role::Admin).await;
    let b = app.login("b@acme.test").await;
    let b_key = crate::create_key(&b, "b", "admin").await;

    // An admin's server, where the stored key would go.
    let (theirs, mut received) = crate::notify::receiver().await;
    let path = format!("/api/v1/sources/{source}");
    let r = a.api(Method::PATCH, &path, &a_key, Some(json!({ "base_url": theirs }))).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("needs the credential entered again"), "{}", r.text);
    let form = a
        .post_form(
            &format!("/sources/{source}/settings"),
            &[("base_url", &theirs), ("backfill_days", "90"), ("interval_minutes", "60")],
        )
        .await;
    assert_eq!(form.status, 422, "the page refuses it too");

    // With the secret, it waits for B.
    let r = a.api(Method::PATCH, &path, &a_key, Some(json!({ "base_url": theirs, "secret": "sk-admin-mine" }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let request = r.json()["approval_id"].as_str().unwrap().to_owned();
    let stored = |app: &TestApp| {
        let store = app.store.clone();
        let source = source.clone();
        async move {
            let mut tx = store.tenant(scope).await.unwrap();
            let s = tx.source(source.parse().unwrap()).await.unwrap().unwrap();
            tx.commit().await.unwrap();
            serde_json::from_str::<serde_json::Value>(&s.config).unwrap()["base_url"].as_str().map(str::to_owned)
        }
    };
    assert_eq!(stored(&app).await, Some(sim.base_url()), "unchanged until approved");
    // Testing the source sends the key where it always went.
    assert_eq!(a.api(Method::POST, &format!("{path}/test"), &a_key, None).await.status, 200);
    assert!(received.try_recv().is_err(), "nothing reached the other server");

    let approved = b.api(Method::POST, &format!("/api/v1/approvals/{request}/approve"), &b_key, None).await;
    assert_eq!((approved.status, approved.json()["state"].as_str()), (200, Some("approved")), "{}", approved.text);
    assert_eq!(stored(&app).await, Some(theirs.clone()));
    let log = audit_actions(&app, scope).await;
    let (_, rotated) = log.iter().find(|(a, _)| a == "source_credential_rotated").expect("audited when applied");
    assert_eq!(
        (rotated["change"]["before"]["base_url"].as_str(), rotated["change"]["after"]["base_url"].as_str()),
        (Some(sim.base_url().as_str()), Some(theirs.as_str())),
        "{rotated}"
    );
    assert!(!rotated.to_string().contains("sk-admin-mine"), "no secret in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_sources_settings_keep_its_database_configuration() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "a@acme.test").await;
    let config = r#"{"host":"db.acme.test","port":5432,"database":"crm","user":"reader","tls":"require"}"#;
    let mut tx = app.store.tenant(scope).await.unwrap();
    let source = tx
        .create_source(
            &app.vault,
            &burnrate_store::NewSource { kind: "postgres", name: "crm", config, secret: "s3cret-password" },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let a = app.login("a@acme.test").await;
    let key = crate::create_key(&a, "a", "admin").await;
    let r =
        a.api(Method::PATCH, &format!("/api/v1/sources/{source}"), &key, Some(json!({ "interval_minutes": 30 }))).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("database source has no sync settings"), "{}", r.text);
    let mut tx = app.store.tenant(scope).await.unwrap();
    assert_eq!(tx.source(source).await.unwrap().unwrap().config, config, "its configuration is untouched");
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demoting_the_other_admins_does_not_open_the_sole_admin_shortcut() {
    let app = TestApp::spawn().await;
    let x = two_admins(&app, &["budget_raise", "member_promote"]).await;
    let budget = crate::approvals::budget(&x.a, &x.a_key, "10").await;

    // A demotes B, now the only admin, and raises the budget: it still waits.
    let member = |role: &str| Some(json!({ "role": role }));
    let r = x.a.api(Method::PATCH, &format!("/api/v1/members/{}", x.b_id), &x.a_key, member("member")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r =
        x.a.api(Method::PATCH, &format!("/api/v1/budgets/{budget}"), &x.a_key, Some(json!({ "amount": "5000" }))).await;
    assert_eq!(r.status, 202, "the raise waits although A is the only admin now: {}", r.text);
    let raise = r.json()["approval_id"].as_str().unwrap().to_owned();
    // Restoring B waits too, so A cannot bring in an approver of their choosing.
    let r = x.a.api(Method::PATCH, &format!("/api/v1/members/{}", x.b_id), &x.a_key, member("admin")).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let budgets = x.a.api(Method::GET, "/api/v1/budgets", &x.a_key, None).await.json();
    assert_eq!(budgets["budgets"][0]["amount"], "10", "nothing applied");
    let page = x.a.get("/approvals").await.text;
    assert!(!page.contains("id=\"sole-admin\""), "the page does not say changes apply at once");
    let log = audit_actions(&app, x.scope).await;
    assert!(!log.iter().any(|(a, _)| a == "budget_updated"), "{log:?}");

    // The shortcut opens again once the window has passed.
    crate::execute_sql(&app, "UPDATE organizations SET four_eyes_until = NULL").await;
    let r =
        x.a.api(Method::PATCH, &format!("/api/v1/budgets/{budget}"), &x.a_key, Some(json!({ "amount": "6000" }))).await;
    assert_eq!((r.status, r.json()["amount"].as_str()), (200, Some("6000")), "{}", r.text);
    let _ = raise;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_wait_for_a_second_admin_and_a_demoted_requesters_requests_are_withdrawn() {
    let app = TestApp::spawn().await;
    let x = two_admins(&app, &["member_promote", "budget_raise"]).await;
    let c = app.add_member(x.scope, "c@acme.test", Role::Member).await;
    let r = x.a.api(Method::PATCH, &format!("/api/v1/members/{c}"), &x.a_key, Some(json!({ "role": "admin" }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let promotion = r.json()["approval_id"].as_str().unwrap().to_owned();
    let members = x.a.api(Method::GET, "/api/v1/members", &x.a_key, None).await.json();
    let role_of = |members: &serde_json::Value, id: &str| {
        members["members"].as_array().unwrap().iter().find(|m| m["user_id"] == id).unwrap()["role"].clone()
    };
    assert_eq!(role_of(&members, &c.to_string()), "member", "not yet");
    let r = x.b.api(Method::POST, &format!("/api/v1/approvals/{promotion}/approve"), &x.b_key, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let members = x.a.api(Method::GET, "/api/v1/members", &x.a_key, None).await.json();
    assert_eq!(role_of(&members, &c.to_string()), "admin");

    // B asks for something, then is demoted: the request can never be approved.
    let budget = crate::approvals::budget(&x.b, &x.b_key, "10").await;
    let r =
        x.b.api(Method::PATCH, &format!("/api/v1/budgets/{budget}"), &x.b_key, Some(json!({ "amount": "99" }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let request = r.json()["approval_id"].as_str().unwrap().to_owned();
    let r =
        x.a.api(Method::PATCH, &format!("/api/v1/members/{}", x.b_id), &x.a_key, Some(json!({ "role": "viewer" })))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = x.a.api(Method::POST, &format!("/api/v1/approvals/{request}/approve"), &x.a_key, None).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let shown = x.a.api(Method::GET, &format!("/api/v1/approvals/{request}"), &x.a_key, None).await.json();
    assert_eq!(shown["state"], "withdrawn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_co_owner_applies_at_once() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "a@acme.test").await;
    let other = app.add_member(scope, "o@acme.test", Role::Owner).await;
    app.add_member(scope, "b@acme.test", Role::Admin).await;
    let a = app.login("a@acme.test").await;
    let r = a.post_form(&format!("/members/{other}/remove"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let page = a.get("/members").await.text;
    assert!(!page.contains(&other.to_string()), "gone at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_webhook_url_anywhere() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "a@acme.test").await;
    app.add_member(scope, "v@acme.test", Role::Viewer).await;
    let a = app.login("a@acme.test").await;
    let a_key = crate::create_key(&a, "a", "admin").await;
    let (url, mut events) = crate::notify::receiver().await;
    let secret_url = format!("{url}/hook-token-4242");
    let r = a.api(Method::POST, "/api/v1/webhooks", &a_key, Some(json!({ "url": secret_url }))).await;
    assert_eq!(r.status, 201, "{}", r.text);

    let viewer = app.login("v@acme.test").await;
    let page = viewer.get("/webhooks").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("127.0.0.1") && !page.text.contains("hook-token-4242"), "{}", page.text);
    let v_key = crate::create_key(&a, "for the viewer", "read").await;
    assert_eq!(viewer.api(Method::GET, "/api/v1/webhooks", &v_key, None).await.status, 403);
    assert!(a.get("/webhooks").await.text.contains("hook-token-4242"), "admins see it");

    // A second destination, asked for once there are two admins: the event other destinations get
    // names its host only.
    app.add_member(scope, "b@acme.test", Role::Admin).await;
    let r =
        a.api(Method::POST, "/api/v1/webhooks", &a_key, Some(json!({ "url": format!("{url}/second-token-77") }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
    assert!(event.body.contains("approval.requested"), "{}", event.body);
    assert!(event.body.contains("127.0.0.1") && !event.body.contains("second-token-77"), "{}", event.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_configuration_that_does_not_read_is_an_error_never_defaults() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "a@acme.test").await;
    let mut tx = app.store.tenant(scope).await.unwrap();
    let new = burnrate_store::NewSource { kind: "openai", name: "prod", config: "{not json", secret: "sk-admin-X" };
    let source = tx.create_source(&app.vault, &new).await.unwrap();
    tx.commit().await.unwrap();
    let a = app.login("a@acme.test").await;
    let page = a.get("/sources").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Its stored settings no longer read"), "shown as such: {}", page.text);
    assert!(!page.text.contains("name=\"interval_minutes\""), "no settings form of made-up values");
    let key = crate::create_key(&a, "a", "admin").await;
    let r =
        a.api(Method::PATCH, &format!("/api/v1/sources/{source}"), &key, Some(json!({ "interval_minutes": 30 }))).await;
    assert_eq!(r.status, 500, "the settings service refuses it too: {}", r.text);
    let mut tx = app.store.tenant(scope).await.unwrap();
    assert_eq!(tx.source(source).await.unwrap().unwrap().config, "{not json", "and changes nothing");
    tx.commit().await.unwrap();
}

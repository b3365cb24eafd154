use burnrate_core::Role;
use burnrate_testkit::{AppOptions, TestApp};
use burnrate_web::Quota;
use reqwest::Method;

use crate::create_key;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_key_reads_is_refused_writes_and_stops_when_revoked() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "owner@example.com").await;
    let owner = app.login("owner@example.com").await;
    let key = create_key(&owner, "reporting", "read").await;
    assert!(key.starts_with("brk_"));
    let page = owner.get("/api-keys").await;
    assert!(!page.text.contains(&key), "a key is shown once");
    assert!(page.text.contains("reporting"));

    let r = owner.api(Method::GET, "/api/v1/members", &key, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["members"][0]["email"], "owner@example.com");
    assert_eq!(owner.api(Method::GET, "/api/v1/org", &key, None).await.json()["name"], "Org");

    let r = owner
        .api(Method::POST, "/api/v1/api-keys", &key, Some(serde_json::json!({"name": "x", "scope": "read"})))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "forbidden");
    let r = owner
        .api(
            Method::POST,
            "/api/v1/members",
            &key,
            Some(serde_json::json!({"email": "x@example.com", "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, 403);

    let mut t = app.store.tenant(scope).await.unwrap();
    let stored = t.api_keys().await.unwrap();
    t.commit().await.unwrap();
    assert!(stored[0].last_used_at.is_some(), "last use is recorded");
    let r = owner.post_form(&format!("/api-keys/{}/revoke", stored[0].id), &[]).await;
    assert_eq!(r.status, 303);
    let r = owner.api(Method::GET, "/api/v1/members", &key, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_key_manages_members_and_keys_through_the_api() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "owner@example.com").await;
    let viewer = app.add_member(scope, "v@example.com", Role::Viewer).await;
    let owner = app.login("owner@example.com").await;
    let key = create_key(&owner, "automation", "admin").await;

    let r = owner
        .api(Method::PATCH, &format!("/api/v1/members/{viewer}"), &key, Some(serde_json::json!({"role": "member"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = owner
        .api(Method::POST, "/api/v1/api-keys", &key, Some(serde_json::json!({"name": "ci", "scope": "read"})))
        .await;
    assert_eq!(r.status, 201);
    let new_key = r.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(owner.api(Method::GET, "/api/v1/org", &new_key, None).await.status, 200);
    let r = owner
        .api(
            Method::POST,
            "/api/v1/members",
            &key,
            Some(serde_json::json!({"email": "invitee@example.com", "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.smtp.wait_for("invitee@example.com", "Invitation").await;

    // Bad input answers in the API's error format and changes nothing.
    let r = owner
        .api(Method::PATCH, &format!("/api/v1/members/{viewer}"), &key, Some(serde_json::json!({"role": "emperor"})))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["code"], "validation_failed");
    assert_eq!(owner.api(Method::GET, "/api/v1/nothing-here", &key, None).await.json()["error"]["code"], "not_found");

    let mut t = app.store.tenant(scope).await.unwrap();
    assert_eq!(t.member_role(viewer).await.unwrap(), Some(Role::Member));
    let audit: Vec<(String, String)> =
        t.audit_entries(50).await.unwrap().into_iter().map(|e| (e.action, e.actor_type)).collect();
    t.commit().await.unwrap();
    assert!(audit.contains(&("member_role_changed".into(), "api_key".into())), "{audit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_rate_limited_per_key_with_retry_after() {
    let app =
        TestApp::spawn_with(AppOptions { api_per_key: Some(Quota::per_minute(60, 3)), ..Default::default() }).await;
    app.create_org("Org", "owner@example.com").await;
    let owner = app.login("owner@example.com").await;
    let key = create_key(&owner, "k", "read").await;
    for _ in 0..3 {
        assert_eq!(owner.api(Method::GET, "/api/v1/org", &key, None).await.status, 200);
    }
    let r = owner.api(Method::GET, "/api/v1/org", &key, None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], "rate_limited");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
}

/// Every endpoint that changes something, with real ids of the organization's own things.
/// Every endpoint that changes something, as the OpenAPI document names it, with a body it
/// would accept from a key allowed to write.
pub(crate) fn writes() -> Vec<(Method, &'static str, Option<serde_json::Value>)> {
    use serde_json::json;
    vec![
        (Method::PATCH, "/org", Some(json!({ "reporting_time_zone": "Asia/Tokyo" }))),
        (Method::POST, "/members", Some(json!({ "email": "x@example.com", "role": "viewer" }))),
        (Method::PATCH, "/members/{user_id}", Some(json!({ "role": "admin" }))),
        (Method::DELETE, "/members/{user_id}", None),
        (Method::DELETE, "/invitations/{id}", None),
        (Method::POST, "/api-keys", Some(json!({ "name": "more", "scope": "admin" }))),
        (Method::DELETE, "/api-keys/{id}", None),
        (Method::POST, "/ingest-keys", Some(json!({ "name": "more" }))),
        (Method::DELETE, "/ingest-keys/{id}", None),
        (Method::POST, "/sql-credentials", Some(json!({ "name": "bi" }))),
        (Method::DELETE, "/sql-credentials/{id}", None),
        (Method::POST, "/budgets", Some(json!({ "name": "B", "amount": "1", "currency": "USD", "period": "month" }))),
        (Method::PATCH, "/budgets/{id}", Some(json!({ "amount": "1" }))),
        (Method::DELETE, "/budgets/{id}", None),
        (
            Method::POST,
            "/prices/overrides",
            Some(
                json!({ "provider": "openai", "model": "gpt-4o", "effective_from": "2026-01-01", "discount_percent": "5" }),
            ),
        ),
        (Method::DELETE, "/prices/overrides/{id}", None),
        (Method::POST, "/prices/reprice", Some(json!({ "from": "2026-01-01", "to": "2026-01-31", "dry_run": false }))),
        (Method::POST, "/webhooks", Some(json!({ "url": "https://hooks.example.com/x" }))),
        (Method::DELETE, "/webhooks/{id}", None),
        (Method::POST, "/webhooks/{id}/test", None),
        (Method::POST, "/webhooks/{id}/deliveries/{delivery}/redeliver", None),
        (Method::POST, "/webhooks/{id}/resume", None),
        (Method::POST, "/approvals/{id}/approve", None),
        (Method::POST, "/approvals/{id}/reject", None),
        (Method::POST, "/sources", Some(json!({ "kind": "openai", "name": "x", "secret": "sk-admin-x" }))),
        (Method::PATCH, "/sources/{id}", Some(json!({ "interval_minutes": 120 }))),
        (Method::DELETE, "/sources/{id}", None),
        (Method::POST, "/sources/{id}/sync", None),
        (Method::POST, "/sources/{id}/test", None),
        (Method::POST, "/sources/{id}/pause", None),
        (Method::POST, "/sources/{id}/resume", None),
        (Method::POST, "/sources/{id}/rotate", Some(json!({ "secret": "sk-admin-ROTATE00000000000000" }))),
        (Method::POST, "/support-grants/{id}/consent", None),
        (Method::POST, "/support-grants/{id}/decline", None),
        (Method::POST, "/support-grants/{id}/revoke", None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_key_is_refused_on_every_endpoint_that_writes_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "owner@example.com").await;
    let member = app.add_member(scope, "member@example.com", burnrate_core::Role::Member).await;
    let owner = app.login("owner@example.com").await;
    let admin = create_key(&owner, "admin", "admin").await;
    let read = create_key(&owner, "read", "read").await;
    let (url, _received) = crate::notify::receiver().await;
    let budget = serde_json::json!({ "name": "Research", "amount": "100", "currency": "USD", "period": "month" });
    let budget = owner.api(Method::POST, "/api/v1/budgets", &admin, Some(budget)).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let webhook =
        owner.api(Method::POST, "/api/v1/webhooks", &admin, Some(serde_json::json!({ "url": url }))).await.json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let mut t = app.store.tenant(scope).await.unwrap();
    let new = burnrate_store::NewSource {
        kind: "openai",
        name: "prod",
        config: &serde_json::to_string(&burnrate_sync::SourceConfig::plain(burnrate_sync::SourceKind::OpenAi).unwrap())
            .unwrap(),
        secret: "sk-admin-READONLY0000000000000000",
    };
    let source = t.create_source(&app.vault, &new).await.unwrap().to_string();
    t.commit().await.unwrap();
    let keys = owner.api(Method::GET, "/api/v1/api-keys", &admin, None).await.json();
    let admin_key = keys["api_keys"].as_array().unwrap().iter().find(|k| k["name"] == "admin").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sql =
        owner.api(Method::POST, "/api/v1/sql-credentials", &admin, Some(serde_json::json!({ "name": "bi" }))).await;
    let sql = sql.json()["id"].as_str().unwrap().to_owned();
    // Each path's ids name a real thing of the organization where there is one to name.
    let fill = |template: &str| {
        let id = match template.split('/').nth(1).unwrap() {
            "api-keys" => admin_key.clone(),
            "budgets" => budget.clone(),
            "webhooks" => webhook.clone(),
            "sources" => source.clone(),
            "sql-credentials" => sql.clone(),
            _ => uuid::Uuid::now_v7().to_string(),
        };
        let path =
            template.replace("{user_id}", &member.to_string()).replace("{delivery}", &webhook).replace("{id}", &id);
        format!("/api/v1{path}")
    };

    // The list covers every operation of the document that is not a read (`POST /sql` runs a
    // read-only query).
    let doc = owner.get("/api/v1/openapi.json").await.json();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys().filter(|m| *m != "get") {
            let listed = writes().iter().any(|(m, p, _)| m.as_str().eq_ignore_ascii_case(method) && p == path);
            assert!(listed || (method == "post" && path == "/sql"), "{method} {path} is not tested with a read key");
        }
    }

    let mut tx = app.store.tenant(scope).await.unwrap();
    let audit_before = tx.audit_entries(1000).await.unwrap().len();
    tx.commit().await.unwrap();
    for (method, template, body) in writes() {
        let path = fill(template);
        let r = owner.api(method.clone(), &path, &read, body).await;
        assert_eq!(r.status, 403, "{method} {path} with a read key: {}", r.text);
        assert_eq!(r.json()["error"]["code"], "forbidden", "{method} {path}");
    }
    let mut tx = app.store.tenant(scope).await.unwrap();
    assert_eq!(tx.audit_entries(1000).await.unwrap().len(), audit_before, "nothing was done");
    assert_eq!(tx.budgets().await.unwrap().len(), 1);
    assert_eq!(tx.webhooks().await.unwrap().len(), 1);
    assert_eq!(tx.sources().await.unwrap().len(), 1);
    assert!(!tx.sources().await.unwrap()[0].paused);
    assert_eq!(tx.sql_credentials().await.unwrap().iter().filter(|c| c.revoked_at.is_none()).count(), 1);
    assert_eq!(tx.reporting_tz().await.unwrap(), "UTC");
    tx.commit().await.unwrap();
}

/// Reads do not queue behind a write in progress: on SQLite a write holds the database's one
/// write lock until it commits, and a read that asked for that lock too would wait for it (and
/// after the busy timeout fail) instead of reading the last committed state beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_reads_and_pages_are_answered_while_a_write_is_in_progress() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "owner@example.com").await;
    let owner = app.login("owner@example.com").await;
    let key = create_key(&owner, "reporting", "read").await;
    // The key's first use records it (a write of its own); from then on a call only reads.
    assert_eq!(owner.api(Method::GET, "/api/v1/org", &key, None).await.status, 200);

    let mut write = app.store.tenant(scope).await.unwrap();
    write.set_reporting_tz("Europe/Berlin").await.unwrap();
    let r = owner.api(Method::GET, "/api/v1/org", &key, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["reporting_time_zone"], "UTC", "the committed state, not the write in progress");
    let page = owner.get("/").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(owner.get("/budgets").await.status, 200);
    write.commit().await.unwrap();

    let r = owner.api(Method::GET, "/api/v1/org", &key, None).await;
    assert_eq!(r.json()["reporting_time_zone"], "Europe/Berlin");
}

//! The approval queue (S17): sensitive changes wait for a second admin, who applies them once;
//! nobody approves their own; expired requests stay unapplied; a sole admin's changes apply at
//! once and say so in the audit log.

use burnrate_core::Role;
use burnrate_testkit::{TestApp, TestClient};
use reqwest::Method;
use serde_json::json;

struct Admins {
    a: TestClient,
    a_key: String,
    b_key: String,
    c_key: String,
    c: TestClient,
    scope: burnrate_store::OrgScope,
}

async fn three_admins(app: &TestApp) -> Admins {
    let (scope, _) = app.create_org("Acme", "a@acme.test").await;
    app.add_member(scope, "b@acme.test", Role::Admin).await;
    app.add_member(scope, "c@acme.test", Role::Admin).await;
    let (a, b, c) = (app.login("a@acme.test").await, app.login("b@acme.test").await, app.login("c@acme.test").await);
    let (a_key, b_key, c_key) = (
        crate::create_key(&a, "a", "admin").await,
        crate::create_key(&b, "b", "admin").await,
        crate::create_key(&c, "c", "admin").await,
    );
    Admins { a, a_key, b_key, c_key, c, scope }
}

/// A monthly USD budget `Research` of `amount`, set through the API; its id.
pub(crate) async fn budget(c: &TestClient, key: &str, amount: &str) -> String {
    let body = json!({ "name": "Research", "amount": amount, "currency": "USD", "period": "month" });
    let r = c.api(Method::POST, "/api/v1/budgets", key, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_budget_waits_for_another_admin_and_is_applied_exactly_once() {
    let app = TestApp::spawn().await;
    let x = three_admins(&app).await;
    let id = budget(&x.a, &x.a_key, "1000").await;

    // Raising waits; lowering does not.
    let r = x.a.api(Method::PATCH, &format!("/api/v1/budgets/{id}"), &x.a_key, Some(json!({ "amount": "2500" }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let request = r.json()["approval_id"].as_str().unwrap().to_owned();
    assert!(r.json()["url"].as_str().unwrap().ends_with(&format!("/api/v1/approvals/{request}")));
    let shown = x.a.api(Method::GET, "/api/v1/budgets", &x.a_key, None).await.json();
    assert_eq!(shown["budgets"][0]["amount"], "1000", "nothing changes before approval");
    let lowered =
        x.a.api(Method::PATCH, &format!("/api/v1/budgets/{id}"), &x.a_key, Some(json!({ "amount": "900" }))).await;
    assert_eq!((lowered.status, lowered.json()["amount"].as_str()), (200, Some("900")));

    // The other admins were asked by mail.
    for to in ["b@acme.test", "c@acme.test"] {
        let mail = app.smtp.wait_for(to, "A change waits for your approval").await;
        assert!(mail.body().contains("Change budget Research to 2500 USD") && mail.body().contains("/approvals"));
    }

    // The requester cannot approve it, by API or by the page.
    let own = x.a.api(Method::POST, &format!("/api/v1/approvals/{request}/approve"), &x.a_key, None).await;
    assert_eq!(own.status, 403, "{}", own.text);
    let own_page = x.a.post_form(&format!("/approvals/{request}/approve"), &[("comment", "mine")]).await;
    assert_eq!(own_page.status, 403);

    // Two admins approve at the same moment: one applies it, the other is told it is decided.
    let path = format!("/api/v1/approvals/{request}/approve");
    let b = app.client();
    let (rb, rc) = tokio::join!(
        b.api(Method::POST, &path, &x.b_key, Some(json!({ "comment": "fine" }))),
        x.c.api(Method::POST, &path, &x.c_key, None)
    );
    let mut statuses = [rb.status, rc.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", rb.text, rc.text);
    let shown = x.a.api(Method::GET, "/api/v1/budgets", &x.a_key, None).await.json();
    assert_eq!(shown["budgets"][0]["amount"], "2500");
    let mut tx = app.store.tenant(x.scope).await.unwrap();
    let entries = tx.audit_entries(100).await.unwrap();
    tx.commit().await.unwrap();
    let applied: Vec<_> =
        entries.iter().filter(|e| e.action == "budget_updated" && e.details.contains(&request)).collect();
    assert_eq!(
        applied.len(),
        1,
        "applied exactly once: {:?}",
        entries.iter().map(|e| (&e.action, &e.details)).collect::<Vec<_>>()
    );
    assert_eq!(entries.iter().filter(|e| e.action == "approval_approved").count(), 1);
    let state = x.a.api(Method::GET, &format!("/api/v1/approvals/{request}"), &x.a_key, None).await.json();
    assert_eq!(state["state"], "approved");
    assert!(state["outcome"].as_str().unwrap().starts_with("applied"));

    // One admin cannot switch four eyes off alone: sending fewer changes for approval waits too.
    let r = x.a.api(Method::PATCH, "/api/v1/org", &x.a_key, Some(json!({ "approval_actions": [] }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let policy = r.json()["approval_id"].as_str().unwrap().to_owned();
    let org = x.a.api(Method::GET, "/api/v1/org", &x.a_key, None).await.json();
    assert_eq!(org["approval_actions"].as_array().unwrap().len(), 6, "unchanged until approved");
    assert_eq!(x.c.api(Method::POST, &format!("/api/v1/approvals/{policy}/approve"), &x.c_key, None).await.status, 200);
    let org = x.a.api(Method::GET, "/api/v1/org", &x.a_key, None).await.json();
    assert_eq!(org["approval_actions"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_webhook_waits_and_rejected_or_expired_requests_change_nothing() {
    let app = TestApp::spawn().await;
    let x = three_admins(&app).await;
    let (url, _received) = crate::notify::receiver().await;
    // A destination added while the policy asked for no approvals hears of requests later.
    let (existing_url, mut existing) = crate::notify::receiver().await;
    let mut tx = app.store.tenant(x.scope).await.unwrap();
    tx.set_approval_actions(&[]).await.unwrap();
    tx.commit().await.unwrap();
    let r = x.a.api(Method::POST, "/api/v1/webhooks", &x.a_key, Some(json!({ "url": existing_url }))).await;
    assert_eq!(r.status, 201, "no approval asked for under an empty policy: {}", r.text);
    let r = x
        .a
        .api(Method::PATCH, "/api/v1/org", &x.a_key, Some(json!({ "approval_actions": ["webhook_create", "nope"] })))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r =
        x.a.api(Method::PATCH, "/api/v1/org", &x.a_key, Some(json!({ "approval_actions": ["webhook_create"] }))).await;
    assert_eq!(r.json()["approval_actions"], json!(["webhook_create"]));

    let r = x.a.api(Method::POST, "/api/v1/webhooks", &x.a_key, Some(json!({ "url": url }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), existing.recv()).await.unwrap().unwrap();
    let event: serde_json::Value = serde_json::from_str(&heard.body).unwrap();
    assert_eq!(event["type"], "approval.requested");
    assert_eq!(event["data"]["action"], "webhook_create");
    assert!(!heard.body.contains("whsec_"), "no secret in the event: {}", heard.body);
    assert!(r.json()["secret"].as_str().unwrap().starts_with("whsec_"), "shown once, now");
    let request = r.json()["approval_id"].as_str().unwrap().to_owned();

    // The queue shows what would change, without the secret; another admin rejects it.
    let page = x.c.get("/approvals").await.text;
    assert!(page.contains(&format!("Add the webhook destination {url}")) && !page.contains("whsec_"), "{page}");
    assert!(page.contains(&format!("/approvals/{request}/approve")));
    let r = x.c.post_form(&format!("/approvals/{request}/reject"), &[("comment", "not our receiver")]).await;
    assert!(r.text.contains("Rejected."), "{}", r.text);
    let hooks = x.a.api(Method::GET, "/api/v1/webhooks", &x.a_key, None).await.json();
    assert_eq!(hooks["webhooks"].as_array().unwrap().len(), 1, "a rejected destination is not added");
    let again = x.c.api(Method::POST, &format!("/api/v1/approvals/{request}/approve"), &x.c_key, None).await;
    assert_eq!(again.status, 409, "decided once: {}", again.text);

    // An expired request cannot be approved.
    let mut tx = app.store.tenant(x.scope).await.unwrap();
    let members = tx.members(&app.vault).await.unwrap();
    let a = members.iter().find(|m| m.email.as_str() == "a@acme.test").unwrap().user_id;
    let change =
        json!({ "action": "webhook_create", "url": url, "description": "", "slack": false, "secret": "whsec_x" });
    let old = tx
        .create_approval_request(
            &app.vault,
            "webhook_create",
            &json!({ "text": "old" }),
            change.to_string().as_bytes(),
            a,
            chrono::Utc::now() - chrono::Duration::minutes(1),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let r = x.c.api(Method::POST, &format!("/api/v1/approvals/{old}/approve"), &x.c_key, None).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("expired"), "{}", r.text);
    let listed = x.c.api(Method::GET, "/api/v1/approvals", &x.b_key, None).await.json();
    let states: Vec<&str> =
        listed["approvals"].as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["expired", "rejected"]);
    let hooks = x.a.api(Method::GET, "/api/v1/webhooks", &x.a_key, None).await.json();
    assert_eq!(hooks["webhooks"].as_array().unwrap().len(), 1, "only the destination added without approval");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sole_admins_change_applies_at_once_and_the_log_says_so() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Solo", "solo@solo.test").await;
    let c = app.login("solo@solo.test").await;
    let key = crate::create_key(&c, "k", "admin").await;
    let id = budget(&c, &key, "100").await;
    let r = c
        .api(
            Method::PATCH,
            &format!("/api/v1/budgets/{id}"),
            &key,
            Some(json!({ "amount": "500", "thresholds": [90] })),
        )
        .await;
    assert_eq!((r.status, r.json()["amount"].as_str()), (200, Some("500")), "{}", r.text);
    let mut tx = app.store.tenant(scope).await.unwrap();
    let entry = tx.audit_entries(10).await.unwrap().into_iter().find(|e| e.action == "budget_updated").unwrap();
    tx.commit().await.unwrap();
    assert!(entry.details.contains("applied without a second approver (sole admin)"), "{}", entry.details);
    assert!(c.get("/approvals").await.text.contains("single admin"), "the page asks for a second admin");
    let bad = c.api(Method::PATCH, &format!("/api/v1/budgets/{id}"), &key, Some(json!({ "amount": "lots" }))).await;
    assert_eq!(bad.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sql_credential_logs_in_only_once_another_admin_approves_it() {
    let app = TestApp::spawn().await;
    let x = three_admins(&app).await;
    let r = x.a.api(Method::POST, "/api/v1/sql-credentials", &x.a_key, Some(json!({ "name": "bi" }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let cred = crate::wire::Credential {
        user: r.json()["user"].as_str().unwrap().to_owned(),
        password: r.json()["password"].as_str().unwrap().to_owned(),
        url: String::new(),
    };
    let request = r.json()["approval_id"].as_str().unwrap().to_owned();
    let (host, port) = (app.pg_addr.ip().to_string(), app.pg_addr.port());
    let config = format!("host={host} port={port} user={} password={} dbname=burnrate", cred.user, cred.password);
    assert!(tokio_postgres::connect(&config, tokio_postgres::NoTls).await.is_err(), "no login before approval");
    let page = x.c.get("/approvals").await.text;
    assert!(
        page.contains(&format!("Create the SQL credential bi (user {})", cred.user)) && !page.contains(&cred.password)
    );
    let r = x.c.api(Method::POST, &format!("/api/v1/approvals/{request}/approve"), &x.c_key, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let client = crate::wire::connect(&app.pg_addr.to_string(), &cred).await;
    let one: i64 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_and_replaced_source_credentials_wait_for_another_admin() {
    let app = TestApp::spawn().await;
    let x = three_admins(&app).await;
    let sim = burnrate_sim::SimProvider::openai("sk-admin-APPROVED00000000000000000").await;
    let body = json!({ "kind": "openai", "name": "prod", "secret": "sk-admin-APPROVED00000000000000000", "base_url": sim.base_url() });
    let r = x.a.api(Method::POST, "/api/v1/sources", &x.a_key, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let request = r.json()["approval_id"].as_str().unwrap().to_owned();
    let listed = x.a.api(Method::GET, "/api/v1/sources", &x.a_key, None).await.json();
    assert!(listed["sources"].as_array().unwrap().is_empty(), "no source before approval");
    let page = x.c.get("/approvals").await.text;
    assert!(
        page.contains("Connect the openai source prod") && !page.contains("APPROVED"),
        "the key is not shown: {page}"
    );
    assert_eq!(
        x.c.api(Method::POST, &format!("/api/v1/approvals/{request}/approve"), &x.c_key, None).await.status,
        200
    );
    let listed = x.a.api(Method::GET, "/api/v1/sources", &x.a_key, None).await.json();
    assert_eq!(listed["sources"][0]["name"], "prod");
    assert_eq!(listed["sources"][0]["secret_last4"], "0000");
    let source = listed["sources"][0]["id"].as_str().unwrap().to_owned();

    // Replacing the key waits too; the page says so.
    let r =
        x.a.post_form(&format!("/sources/{source}/rotate"), &[("secret", "sk-admin-REPLACED99999999999999999")]).await;
    assert_eq!(r.status, 303);
    assert!(x.a.get("/sources?done=queued").await.text.contains("Sent for approval"));
    let listed = x.a.api(Method::GET, "/api/v1/approvals", &x.a_key, None).await.json();
    let rotate = listed["approvals"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        x.a.api(Method::GET, "/api/v1/sources", &x.a_key, None).await.json()["sources"][0]["secret_last4"],
        "0000"
    );
    let b = app.client();
    assert_eq!(b.api(Method::POST, &format!("/api/v1/approvals/{rotate}/approve"), &x.b_key, None).await.status, 200);
    assert_eq!(
        x.a.api(Method::GET, "/api/v1/sources", &x.a_key, None).await.json()["sources"][0]["secret_last4"],
        "9999"
    );
    let mut tx = app.store.tenant(x.scope).await.unwrap();
    let entries = tx.audit_entries(100).await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        entries.iter().all(|e| !e.details.contains("APPROVED") && !e.details.contains("REPLACED")),
        "no key in the log"
    );
    assert_eq!(entries.iter().filter(|e| e.action == "source_credential_rotated").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_of_the_organizations_own_is_set_and_removed_only_with_another_admin() {
    let app = TestApp::spawn().await;
    let x = three_admins(&app).await;
    let approve = async |request: &str| {
        let path = format!("/api/v1/approvals/{request}/approve");
        assert_eq!(x.c.api(Method::POST, &path, &x.c_key, None).await.status, 200);
    };
    let listed =
        async || x.a.api(Method::GET, "/api/v1/prices/overrides", &x.a_key, None).await.json()["overrides"].clone();
    let own = json!({ "provider": "anthropic", "model": "claude-sonnet-4-5", "effective_from": "2026-11-15",
                      "discount_percent": "20" });
    let r = x.a.api(Method::POST, "/api/v1/prices/overrides", &x.a_key, Some(own)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(listed().await, json!([]), "nothing priced otherwise before approval");
    approve(r.json()["approval_id"].as_str().unwrap()).await;
    let id = listed().await[0]["id"].as_str().unwrap().to_owned();

    // Removing a negotiated price changes what usage costs as much as setting one: it waits too.
    let r = x.a.api(Method::DELETE, &format!("/api/v1/prices/overrides/{id}"), &x.a_key, None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let request = r.json()["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(listed().await.as_array().unwrap().len(), 1, "still in force until approved");
    let shown = x.c.api(Method::GET, &format!("/api/v1/approvals/{request}"), &x.c_key, None).await.json();
    let text = shown.to_string();
    assert!(
        text.contains("Remove the organization's own price of anthropic/claude-sonnet-4-5 from 2026-11-15"),
        "{text}"
    );
    let own_approval = x.a.api(Method::POST, &format!("/api/v1/approvals/{request}/approve"), &x.a_key, None).await;
    assert_eq!(own_approval.status, 403, "nobody approves their own");
    approve(&request).await;
    assert_eq!(listed().await, json!([]));
    let mut tx = app.store.tenant(x.scope).await.unwrap();
    let entries = tx.audit_entries(100).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(entries.iter().filter(|e| e.action == "price_override_removed").count(), 1);
    // Gone: another removal of it is not found.
    let again = x.a.api(Method::DELETE, &format!("/api/v1/prices/overrides/{id}"), &x.a_key, None).await;
    assert_eq!(again.status, 404, "{}", again.text);
}

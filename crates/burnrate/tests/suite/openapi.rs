//! The public API is described by `/api/v1/openapi.json` (S12), and schemathesis, generating
//! requests from that document against a running instance with a valid key, finds no server
//! error and no answer that breaks the document.

use burnrate_testkit::{AppOptions, TestApp};
use reqwest::Method;
use serde_json::json;

/// A resolver that knows no name: nothing the fuzzer types can make a lookup leave the machine.
#[derive(Debug)]
struct NoNames;

impl burnrate_net::Lookup for NoNames {
    fn lookup(&self, _: &str) -> futures::future::BoxFuture<'static, std::io::Result<Vec<std::net::IpAddr>>> {
        Box::pin(async { Err(std::io::Error::other("no name resolves in this test")) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_endpoint_and_schemathesis_finds_no_5xx_or_schema_violation() {
    let python = std::env::var("BURNRATE_TEST_PYTHON").expect("BURNRATE_TEST_PYTHON (scripts/test sets it)");
    let unlimited = burnrate_web::Quota::per_minute(1_000_000, 100_000);
    let app = TestApp::spawn_with(AppOptions {
        api_per_key: Some(unlimited),
        api_per_ip: Some(unlimited),
        exports_per_org: Some(unlimited),
        lookup: Some(std::sync::Arc::new(NoNames)),
        ..Default::default()
    })
    .await;
    app.create_org("Acme", "owner@acme.test").await;
    let c = app.login("owner@acme.test").await;
    let key = crate::create_key(&c, "fuzzer", "admin").await;
    // Approval off: every change applies at once, so the fuzzer meets the appliers too.
    let r = c.api(Method::PATCH, "/api/v1/org", &key, Some(json!({ "approval_actions": [] }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Something to list on each page.
    let budget = json!({ "name": "Research", "amount": "100", "currency": "USD", "period": "month" });
    assert_eq!(c.api(Method::POST, "/api/v1/budgets", &key, Some(budget)).await.status, 201);
    assert_eq!(c.api(Method::POST, "/api/v1/sql-credentials", &key, Some(json!({ "name": "bi" }))).await.status, 201);

    // The document names every endpoint, each with the API key as its security.
    let doc = c.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    let paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    for path in [
        "/org",
        "/members",
        "/members/{user_id}",
        "/api-keys",
        "/api-keys/{id}",
        "/invitations",
        "/invitations/{id}",
        "/sql",
        "/spend",
        "/notices",
        "/sql-credentials",
        "/sql-credentials/{id}",
        "/audit",
        "/approvals",
        "/approvals/{id}",
        "/approvals/{id}/approve",
        "/approvals/{id}/reject",
        "/budgets",
        "/budgets/{id}",
        "/webhooks",
        "/webhooks/{id}",
        "/webhooks/{id}/test",
        "/webhooks/{id}/deliveries",
        "/webhooks/{id}/deliveries/{delivery}/redeliver",
        "/webhooks/{id}/resume",
        "/sources",
        "/sources/{id}",
        "/sources/{id}/sync",
        "/sources/{id}/test",
        "/sources/{id}/pause",
        "/sources/{id}/resume",
        "/sources/{id}/rotate",
        "/support-grants",
        "/support-grants/{id}/consent",
        "/support-grants/{id}/decline",
        "/support-grants/{id}/revoke",
    ] {
        assert!(paths.contains(&path), "{path} is not documented: {paths:?}");
    }
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    assert_eq!(doc["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");

    // schemathesis keeps a cache of what it found in its working directory: not in the checkout.
    let workdir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(&python)
        .current_dir(workdir.path())
        .args(["-m", "schemathesis.cli", "run", &c.url("/api/v1/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance,content_type_conformance"])
        .args(["--max-examples", "30", "--workers", "2", "--seed", "20261201", "--no-color"])
        .args(["--suppress-health-check", "all", "--request-timeout", "30"])
        .output()
        .await
        .expect("run schemathesis");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found problems:\n{report}");
    let operations: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "every one of {operations} operations was tested:\n{report}"
    );
    assert!(!report.contains("Unresolvable references"), "{report}");
}

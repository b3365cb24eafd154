//! No tenant can starve the instance: how many queries run at once, per organization and for
//! the instance, whatever path they come by.

use burnrate_testkit::{AppOptions, TestApp};
use reqwest::Method;

/// A query that streams rows as they are read and does no work while nobody reads: held open,
/// it holds its slot and nothing else.
const HELD: &str = "SELECT * FROM generate_series(1, 1000000000000)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_at_its_query_limit_is_told_busy_on_every_path_while_another_answers() {
    let opts = AppOptions { query_concurrency: Some((3, 2)), ..Default::default() };
    let app = TestApp::spawn_with(opts).await;
    let (acme, _) = app.create_org("Acme", "owner@acme.test").await;
    app.create_org("Globex", "owner@globex.test").await;
    let a = app.login("owner@acme.test").await;
    let a_key = crate::create_key(&a, "sql", "admin").await;
    let g = app.login("owner@globex.test").await;
    let g_key = crate::create_key(&g, "sql", "admin").await;
    let a_cred = crate::wire::create_credential(&a, &a_key, "psql").await;
    let sql = |sql: &str| Some(serde_json::json!({ "sql": sql }));

    // Acme's two slots taken by queries left open.
    let held = [app.engine.query(acme, HELD).await.unwrap(), app.engine.query(acme, HELD).await.unwrap()];

    // Its third waits for a slot, then is refused as busy: 429 with Retry-After in the API …
    let started = std::time::Instant::now();
    let r = a.api(Method::POST, "/api/v1/sql", &a_key, sql("SELECT 1 AS one")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(started.elapsed() >= burnrate_engine::Concurrency::default().wait, "it waited for a slot first");
    assert_eq!(r.headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"), "{:?}", r.headers);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("busy: your organization already runs 2 queries at once"), "{message}");
    // … SQLSTATE 53300 over the wire.
    let out = tokio::process::Command::new("psql")
        .arg(&a_cred.url)
        .args(["-X", "-A", "-t", "-v", "VERBOSITY=verbose", "-c", "SELECT 2"])
        .output()
        .await
        .expect("psql is installed");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("53300") && said.contains("busy"), "{said}");

    // Another organization's query answers meanwhile: the instance has a slot left.
    let r = g.api(Method::POST, "/api/v1/sql", &g_key, sql("SELECT 40 + 2 AS n")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["rows"][0][0], "42");

    // A query that ends gives its slot back.
    drop(held);
    let r = a.api(Method::POST, "/api/v1/sql", &a_key, sql("SELECT 3 AS three")).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

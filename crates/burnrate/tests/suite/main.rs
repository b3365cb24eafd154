//! burnrate's behavioural suite. The same tests run against SQLite (default) and PostgreSQL
//! (`BURNRATE_TEST_BACKEND=postgres`, as `scripts/test` does): each test starts the real
//! application on random ports over its own throw-away database, with a real SMTP sink.

mod access;
mod accounts;
mod alerts;
mod api;
mod approvals;
mod audit;
mod browser;
mod budgets;
mod cli;
mod clients;
mod demo;
mod explore;
mod exports;
mod federated;
mod figures;
mod governance;
mod ingest;
mod metrics;
mod multi;
mod notify;
mod openapi;
mod replays;
mod reports;
mod roles;
mod routes;
mod security;
mod sources;
mod sql;
mod storage;
mod support;
mod sync;
mod wire;

use burnrate_testkit::{TestApp, TestClient};

/// The one-time API key shown on the API keys page after creating one.
pub fn shown_api_key(html: &str) -> String {
    let start = html.find(r#"id="new-api-key" class="secret">"#).expect("the page shows the new key")
        + r#"id="new-api-key" class="secret">"#.len();
    html[start..].split('<').next().expect("key text").to_owned()
}

/// Creates an API key through the UI as `client` (an admin) and returns it.
pub async fn create_key(client: &TestClient, name: &str, scope: &str) -> String {
    let r = client.post_form("/api-keys", &[("name", name), ("scope", scope)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    shown_api_key(&r.text)
}

/// Runs one statement on `app`'s database as the application does (to stage a state, such as an
/// old timestamp, that only time would bring about).
pub async fn execute_sql(app: &TestApp, sql: &'static str) {
    if app.db.app_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&app.db.app_url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::PgPool::connect(&app.db.app_url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
}

pub async fn org_count(app: &TestApp) -> usize {
    let mut tx = app.store.instance().await.unwrap();
    let n = tx.list_org_ids().await.unwrap().len();
    tx.commit().await.unwrap();
    n
}

/// Runs the `burnrate` binary against `app`'s database with extra environment and stdin.
pub async fn burnrate(
    app: &TestApp,
    args: &[&str],
    extra_env: &[(&str, &str)],
    stdin: Option<&str>,
) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_burnrate"));
    cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in app.cli_env() {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run burnrate");
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt;
        child.stdin.take().unwrap().write_all(input.as_bytes()).await.unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().await.expect("burnrate output")
}

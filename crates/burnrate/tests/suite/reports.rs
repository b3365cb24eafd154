//! Error reports without secrets (S19): `burnrate serve` with `BURNRATE_SENTRY_DSN` reports a
//! failing sync to Sentry — here a loopback receiver standing in for it — and neither the event
//! nor the log lines carry the key, cookie or email that were in play.

use std::process::Stdio;
use std::time::Duration;

use burnrate_testkit::{TestApp, TestClient};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROVIDER_KEY: &str = "sk-admin-REPORTLEAK0123456789abcdef";
const PROVIDER_COOKIE: &str = "sess=cookie0123456789LEAK";
const PROVIDER_EMAIL: &str = "billing-owner@acme.test";

/// A provider that refuses every request with an OpenAI-style error whose message echoes what it
/// was sent (the key), a session cookie and the account's email — the worst a provider might do.
async fn echoing_provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 16 * 1024];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let key = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("authorization: Bearer ").or_else(|| l.strip_prefix("Authorization: Bearer "))
                })
                .unwrap_or("none")
                .trim()
                .to_owned();
            let body = serde_json::json!({ "error": {
                "message": format!("Incorrect API key provided: {key}. Cookie: {PROVIDER_COOKIE}; account {PROVIDER_EMAIL}"),
                "type": "invalid_request_error", "param": null, "code": "invalid_api_key" } })
            .to_string();
            let answer = format!(
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    url
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_syncs_error_report_and_logs_carry_no_key_cookie_or_email() {
    let app = TestApp::spawn().await;
    app.create_org("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    let api_key = crate::create_key(&owner, "automation", "admin").await;
    let session_cookie = owner.cookie("__Host-burnrate_session").expect("a session");
    let provider = echoing_provider().await;
    let (sentry_url, mut envelopes) = crate::notify::receiver().await;
    let sentry_host = sentry_url.trim_start_matches("http://").split('/').next().unwrap().to_owned();

    let (port, pg_port) = (free_port(), free_port());
    let data = tempfile::tempdir().unwrap();
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_burnrate"));
    serve.arg("serve").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in app.cli_env() {
        serve.env(k, v);
    }
    let mut serve = serve
        .env("BURNRATE_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("BURNRATE_PG_ADDR", format!("127.0.0.1:{pg_port}"))
        .env("BURNRATE_METRICS_ADDR", "127.0.0.1:0")
        .env("BURNRATE_OTLP_ADDR", "127.0.0.1:0")
        .env("BURNRATE_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("BURNRATE_DATA_DIR", data.path())
        .env("BURNRATE_EGRESS_ALLOW", "127.0.0.1/32")
        .env("BURNRATE_EGRESS_SHARED", "127.0.0.1/32")
        .env("BURNRATE_SENTRY_DSN", format!("http://0123456789abcdef@{sentry_host}/42"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start burnrate serve");
    let c = TestClient::new(&format!("http://127.0.0.1:{port}"));
    let mut up = false;
    for _ in 0..600 {
        if c.raw().get(c.url("/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "burnrate serve did not come up");

    // The request that connects the source (and so starts its first sync) carries the API key, a
    // browser's session cookie and an email.
    let body = serde_json::json!({ "kind": "openai", "name": "prod", "secret": PROVIDER_KEY, "base_url": provider });
    let r = c
        .raw()
        .request(Method::POST, c.url("/api/v1/sources?contact=owner@acme.test"))
        .bearer_auth(&api_key)
        .header("cookie", format!("__Host-burnrate_session={session_cookie}"))
        .header("user-agent", "reporter-test (owner@acme.test)")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // The sync fails; its report arrives as a Sentry envelope.
    let mut report = String::new();
    while !report.contains("sync failed") {
        let got = tokio::time::timeout(Duration::from_secs(30), envelopes.recv()).await;
        let envelope = got.expect("an error report within 30 s").expect("the receiver is running");
        assert_eq!(envelope.headers.get("content-type").map(String::as_str), Some("application/x-sentry-envelope"));
        assert!(envelope.headers.get("x-sentry-auth").is_some_and(|a| a.contains("sentry_key=0123456789abcdef")));
        report.push_str(&envelope.body);
    }
    assert!(report.contains("the credential was refused (401"), "the report says what failed: {report}");
    assert!(report.contains("Cookie: [redacted]"), "and shows what was removed: {report}");

    let _ = serve.start_kill();
    let out = serve.wait_with_output().await.unwrap();
    let logs = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(logs.contains("sync failed"), "{logs}");
    for secret in [
        PROVIDER_KEY,
        &PROVIDER_KEY[9..],
        PROVIDER_COOKIE,
        "cookie0123456789LEAK",
        PROVIDER_EMAIL,
        &api_key,
        &session_cookie,
        "owner@acme.test",
    ] {
        assert!(!report.contains(secret), "the error report holds {secret}: {report}");
        assert!(!logs.contains(secret), "the log holds {secret}: {logs}");
    }
}

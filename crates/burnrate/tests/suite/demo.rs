use std::process::Stdio;
use std::time::Duration;

use burnrate_testkit::TestClient;
use reqwest::Method;

struct Demo {
    child: tokio::process::Child,
    url: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The line the demo prints last, once demo.json is final and every listener is open.
const READY: &str = "Press Ctrl-C to stop.";

async fn start_demo(dir: &std::path::Path) -> (Demo, serde_json::Value) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pg_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_burnrate"))
        .args(["demo", "--data-dir", dir.to_str().unwrap()])
        .env_clear()
        .env("BURNRATE_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("BURNRATE_PG_ADDR", format!("127.0.0.1:{pg_port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the demo");
    // Both pipes are drained for the demo's whole life, so its logging never blocks on them.
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ready_tx = Some(ready_tx);
    let out = std::sync::Arc::clone(&said);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line == READY {
                ready_tx.take().map(|tx| tx.send(()));
            }
            out.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    let err = std::sync::Arc::clone(&said);
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            err.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    // A debug build on a busy two-core machine: allow for a slow start.
    if tokio::time::timeout(Duration::from_secs(60), ready).await.is_ok_and(|r| r.is_ok()) {
        let text = std::fs::read_to_string(dir.join("demo.json")).expect("demo.json is written");
        let url = format!("http://127.0.0.1:{port}");
        return (Demo { child, url }, serde_json::from_str(&text).expect("demo.json is JSON"));
    }
    let _ = child.kill().await;
    panic!("the demo did not say it was ready within 60 s; it said:\n{}", said.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_login_page_and_its_printed_credentials_work() {
    let dir = tempfile::tempdir().unwrap();
    let (demo, creds) = start_demo(dir.path()).await;
    assert_eq!(creds["url"], demo.url.as_str());
    // The printed connection string works in psql, and sees the synced spend.
    let pg = creds["postgres_url"].as_str().expect("demo.json holds the Postgres connection string");
    let out = tokio::process::Command::new("psql")
        .args([pg, "-X", "-A", "-t", "-c", "SELECT count(DISTINCT provider_name) FROM costs"])
        .output()
        .await
        .expect("psql is installed");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6", "{}", String::from_utf8_lossy(&out.stderr));
    let c = TestClient::new(&demo.url);
    let page = c.get("/login").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Log in"));
    let r = c
        .post_form(
            "/login",
            &[("email", creds["email"].as_str().unwrap()), ("password", creds["password"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert!(c.get("/").await.text.contains("Demo Org"));
    let key = creds["api_key"].as_str().unwrap();
    assert_eq!(c.api(Method::GET, "/api/v1/org", key, None).await.json()["name"], "Demo Org");
    assert!(std::fs::metadata(dir.path().join("master.key")).is_ok(), "the throw-away key is kept in the data dir");
    let orgs = std::fs::read_dir(dir.path().join("lake")).expect("the lake is in the data dir").count();
    assert_eq!(orgs, 1, "one organization's lake");

    // Spend from every simulated provider is there before the UI is announced.
    let home = c.get("/").await;
    assert!(home.text.contains("id=\"month-to-date\""), "month-to-date spend is shown");
    assert!(home.text.contains("OpenAI") && home.text.contains("Anthropic"), "both providers' spend by day");
    let sources = c.get("/sources").await;
    assert_eq!(sources.text.matches(">ok<").count(), 6, "every simulated provider synced: {}", sources.text);
    for cloud in ["AWS Bedrock (simulated)", "Azure OpenAI (simulated)", "Google Vertex AI (simulated)"] {
        assert!(sources.text.contains(cloud), "the clouds beside the APIs: {cloud}");
    }
    assert!(sources.text.contains("credits left"), "OpenRouter's balance is shown");
    // Budgets are set, and the one sized below its spend has alerted by the time it is looked at.
    let budgets = c.api(Method::GET, "/api/v1/budgets", key, None).await.json();
    let names: Vec<&str> = budgets["budgets"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["All AI spend", "GPT-4o family"]);
    let mut alerted = false;
    for _ in 0..100 {
        if !c.get("/budgets").await.text.contains("No alerts yet.") {
            alerted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(alerted, "the demo's over-spent budget alerts");
    if let Some(browser) = burnrate_testkit::Browser::start().await {
        let b = &browser.client;
        b.goto(&format!("{}/login", demo.url)).await.unwrap();
        b.find(fantoccini::Locator::Css("input[name=email]"))
            .await
            .unwrap()
            .send_keys(creds["email"].as_str().unwrap())
            .await
            .unwrap();
        b.find(fantoccini::Locator::Css("input[name=password]"))
            .await
            .unwrap()
            .send_keys(creds["password"].as_str().unwrap())
            .await
            .unwrap();
        b.find(fantoccini::Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
        b.wait().at_most(Duration::from_secs(10)).for_element(fantoccini::Locator::Id("month-to-date")).await.unwrap();
        crate::browser::screenshot(b, "demo-overview").await;
        b.goto(&format!("{}/sources", demo.url)).await.unwrap();
        crate::browser::screenshot(b, "demo-sources").await;
        browser.close().await;
    }
    // Gone for good before the second run opens the same data directory.
    let mut demo = demo;
    demo.child.kill().await.unwrap();
    drop(demo);

    // A second run reuses what is there: same credentials, still working.
    let (demo, again) = start_demo(dir.path()).await;
    assert_eq!(again["password"], creds["password"]);
    assert_eq!(again["api_key"], creds["api_key"]);
    let user = |c: &serde_json::Value| c["postgres_url"].as_str().unwrap().split('@').next().unwrap().to_owned();
    assert_eq!(user(&again), user(&creds), "the same SQL credential on the next run");
    let c = TestClient::new(&demo.url);
    let r = c
        .post_form(
            "/login",
            &[("email", again["email"].as_str().unwrap()), ("password", again["password"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_answer() {
    let app = burnrate_testkit::TestApp::spawn().await;
    let c = app.client();
    let h = c.get("/healthz").await;
    assert_eq!((h.status, h.text.as_str()), (200, "ok"));
    let r = c.get("/readyz").await;
    assert_eq!((r.status, r.text.as_str()), (200, "ready"));
    c.post_form("/login", &[("email", "nobody@example.com"), ("password", "not a real password")]).await;
    let m = c.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    assert!(m.text.contains("burnrate_login_failures_total 1"), "{}", m.text);
    assert!(m.text.contains("burnrate_http_responses_total{class=\"2xx\"}"));
    assert_eq!(c.get("/no/such/page").await.status, 404);
}

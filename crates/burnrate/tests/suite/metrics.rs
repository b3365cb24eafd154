//! The operator's metrics: on their own listener only (S29), in the form Prometheus reads, and
//! moving with what the instance does — checked with Prometheus's own `promtool` and a real
//! Prometheus scraping the instance and running the shipped alert rules and dashboard queries.

use std::process::Stdio;
use std::time::Duration;

use burnrate_testkit::{AppOptions, TestApp};
use reqwest::Method;
use tokio::io::AsyncWriteExt;

/// The sum of the samples of `name` whose labels include every pair of `labels` (0 when none).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, sample) = l.rsplit_once(' ')?;
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            let matches =
                series_name == name && labels.iter().all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| sample.parse::<f64>().ok()).flatten()
        })
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let r = reqwest::get(&app.metrics_url).await.expect("the metrics listener answers");
    assert_eq!(r.status(), 200);
    let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    r.text().await.unwrap()
}

/// `promtool` from Debian's `prometheus` package, which `scripts/test` installs.
fn prometheus_tool(name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new("/usr/bin").join(name);
    assert!(path.exists(), "{}: Debian's prometheus package (scripts/test installs it)", path.display());
    path
}

fn ops_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_the_work_only_their_own_listener_serves_them_and_prometheus_reads_them() {
    let app = TestApp::spawn_with(AppOptions {
        login_per_ip: Some(burnrate_web::Quota::per_minute(1, 3)),
        ..Default::default()
    })
    .await;
    let c = app.client();
    let public = c.get("/metrics").await;
    assert_eq!(public.status, 404, "the public port serves no metrics: {}", public.text);
    let before = scrape(&app).await;
    assert_eq!(value(&before, "burnrate_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0, "{before}");

    // A sync that works and one whose key the provider refuses.
    let (scope, _) = app.create_org("Org", "owner@example.com").await;
    let sim = burnrate_sim::SimProvider::openai("sk-admin-METRICS000000000000000000").await;
    let today = chrono::Utc::now().date_naive();
    sim.set_lines(burnrate_sim::demo::openai_lines(today, 3));
    let config = serde_json::to_string(&burnrate_sync::SourceConfig {
        base_url: Some(sim.base_url()),
        ..burnrate_sync::SourceConfig::plain(burnrate_sync::SourceKind::OpenAi).unwrap()
    })
    .unwrap();
    let mut tx = app.store.tenant(scope).await.unwrap();
    let mut sources = Vec::new();
    for (name, secret) in
        [("prod", "sk-admin-METRICS000000000000000000"), ("stale", "sk-admin-REVOKED000000000000000000")]
    {
        let new = burnrate_store::NewSource { kind: "openai", name, config: &config, secret };
        sources.push(tx.create_source(&app.vault, &new).await.unwrap());
    }
    tx.commit().await.unwrap();
    let window = burnrate_core::SyncWindow::trailing_days(today + chrono::Duration::days(1), 3).unwrap().whole_months();
    app.syncer.sync(scope, sources[0], window).await.expect("the right key syncs");
    app.syncer.sync(scope, sources[1], window).await.expect_err("a refused key fails");

    // A webhook's test event, delivered; logins that fail, then one the limit refuses.
    let (url, _received) = crate::notify::receiver().await;
    let owner = app.login("owner@example.com").await;
    let key = crate::create_key(&owner, "ops", "admin").await;
    let r = owner.api(Method::POST, "/api/v1/webhooks", &key, Some(serde_json::json!({ "url": url }))).await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = owner.api(Method::POST, &format!("/api/v1/webhooks/{id}/test"), &key, None).await;
    assert_eq!(r.json()["delivered"], true, "{}", r.text);
    let mut refused = false;
    for _ in 0..5 {
        let r = c.post_form("/login", &[("email", "owner@example.com"), ("password", "not the password")]).await;
        refused |= r.status == 429;
    }
    assert!(refused, "a login beyond three a minute is over the limit");
    // A query of the organization's costs through the SQL API.
    let sql = serde_json::json!({ "sql": "SELECT count(*) FROM costs" });
    let r = owner.api(Method::POST, "/api/v1/sql", &key, Some(sql)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A wire connection, open while scraped.
    let wire = tokio::net::TcpStream::connect(app.pg_addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let after = scrape(&app).await;
    // Other tests of this process record too: counters are compared as having moved at least.
    let moved = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
    assert!(moved("burnrate_syncs_total", &[("provider", "openai"), ("outcome", "ok")]) >= 1.0, "{after}");
    assert!(moved("burnrate_syncs_total", &[("provider", "openai"), ("outcome", "failed")]) >= 1.0, "{after}");
    assert!(moved("burnrate_sync_duration_seconds_count", &[("provider", "openai")]) >= 2.0, "{after}");
    assert!(moved("burnrate_sync_rows_total", &[("provider", "openai"), ("table", "costs")]) >= 1.0, "{after}");
    assert!(moved("burnrate_lake_files_written_total", &[("table", "costs")]) >= 1.0, "{after}");
    // The lake as it is: this instance's database holds this test's organization alone.
    let live: Vec<burnrate_store::LakeFile> = {
        let mut tx = app.store.read_tenant(scope).await.unwrap();
        let files = tx.live_lake_files(burnrate_store::LakeTable::Costs).await.unwrap();
        tx.commit().await.unwrap();
        files
    };
    assert!(!live.is_empty());
    assert_eq!(value(&after, "burnrate_lake_files", &[("table", "costs")]), live.len() as f64, "{after}");
    let bytes: i64 = live.iter().map(|f| f.bytes).sum();
    assert_eq!(value(&after, "burnrate_lake_bytes", &[("table", "costs")]), bytes as f64, "{after}");
    assert!(moved("burnrate_webhook_deliveries_total", &[("outcome", "delivered")]) >= 1.0, "{after}");
    assert!(moved("burnrate_logins_total", &[("outcome", "failed")]) >= 2.0, "{after}");
    assert!(moved("burnrate_rate_limit_refusals_total", &[("limit", "login-ip")]) >= 1.0, "{after}");
    let login_route = [("route", "/login"), ("method", "POST"), ("status", "429")];
    assert!(moved("burnrate_http_request_duration_seconds_count", &login_route) >= 1.0, "{after}");
    assert!(value(&after, "burnrate_wire_connections", &[]) >= 1.0, "{after}");
    assert!(moved("burnrate_queries_total", &[("front_end", "sql")]) >= 1.0, "{after}");
    assert!(moved("burnrate_query_memory_high_water_bytes_count", &[("front_end", "sql")]) >= 1.0, "{after}");
    assert!(after.contains("burnrate_jobs_due{kind="), "the job queue is read at scrape time: {after}");
    // Paths no route serves are one series, not one each.
    c.get("/no/such/page/4242").await;
    let later = scrape(&app).await;
    assert!(!later.contains("4242"), "an unknown path is not a label");
    assert!(later.contains("route=\"unmatched\""), "{later}");
    // No secret or address of a tenant's: keys, emails and webhook URLs are not labels.
    for secret in ["sk-admin-", "owner@example.com", url.as_str(), key.as_str()] {
        assert!(!later.contains(secret), "{secret} in the metrics");
    }
    drop(wire);

    // Prometheus's own linter accepts what is served.
    let mut check = tokio::process::Command::new(prometheus_tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(later.as_bytes()).await.unwrap();
    let out = check.wait_with_output().await.unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}");

    // A real Prometheus scrapes the instance, evaluates the shipped alert rules without error
    // and answers every query of the shipped Grafana dashboard; every series they name is one
    // burnrate serves.
    let rules = ops_file("prometheus-alerts.yml");
    let out = std::process::Command::new(prometheus_tool("promtool")).arg("check").arg("rules").arg(&rules).output();
    let out = out.unwrap();
    assert!(out.status.success(), "promtool check rules: {}", String::from_utf8_lossy(&out.stdout));

    let dir = tempfile::tempdir().unwrap();
    let target = app.metrics_url.trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{rules:?}]\n\
         scrape_configs:\n  - job_name: burnrate\n    static_configs:\n      - targets: [{target:?}]\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _prometheus = tokio::process::Command::new(prometheus_tool("prometheus"))
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start prometheus");
    let http = reqwest::Client::new();
    let api = |path: &str, query: &[(&str, &str)]| {
        let request = http.get(format!("http://127.0.0.1:{port}/api/v1/{path}")).query(query);
        async move {
            let answer = request.send().await.ok()?;
            answer.json::<serde_json::Value>().await.ok()
        }
    };
    // Up, scraped, and the rules evaluated at least once.
    let mut seen = serde_json::Value::Null;
    for _ in 0..300 {
        let up = api("query", &[("query", "up{job=\"burnrate\"}")]).await;
        let rules = api("rules", &[]).await;
        let evaluated = rules.as_ref().is_some_and(|r| {
            r["data"]["groups"][0]["rules"]
                .as_array()
                .is_some_and(|rules| rules.len() == 5 && rules.iter().all(|r| r["health"] == "ok"))
        });
        if up.as_ref().is_some_and(|u| u["data"]["result"][0]["value"][1] == "1") && evaluated {
            seen = rules.unwrap();
            break;
        }
        seen = serde_json::json!({ "up": up, "rules": rules });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen["status"] == "success", "Prometheus did not scrape burnrate and evaluate the rules: {seen}");

    // Every dashboard query parses and runs; every series named anywhere is one burnrate serves.
    let served = scrape(&app).await;
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ops_file("grafana-dashboard.json")).unwrap()).unwrap();
    let mut expressions: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_owned()))
        .collect();
    assert!(expressions.len() >= 12, "{expressions:?}");
    let rules_text = std::fs::read_to_string(&rules).unwrap();
    expressions.extend(rules_text.lines().filter_map(|l| l.trim().strip_prefix("expr: ").map(str::to_owned)));
    for expr in &expressions {
        let query = expr.replace("$instance", ".*");
        let answer = api("query", &[("query", &query)]).await.expect("an answer");
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
        for name in
            query.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("burnrate_"))
        {
            let family =
                ["_bucket", "_count", "_sum"].iter().fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
            assert!(
                served.contains(&format!("# TYPE {family} ")),
                "{expr} names {name}, which burnrate does not serve"
            );
        }
    }
}

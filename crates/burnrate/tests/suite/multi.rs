//! Two `burnrate serve` processes over one database, one Redis and one lake, as the
//! multi-instance deployment runs them behind a load balancer: what one instance does, the other
//! sees; limits are counted once for both; a sync runs on one of them, once; so does each
//! webhook delivery; and a sync whose instance is killed is finished by the other.

use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use burnrate_sim::{CostLine, SimProvider};
use burnrate_sources::OpenAi;
use burnrate_testkit::{GOOD_PASSWORD, TestApp, TestClient};
use chrono::Utc;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::json;

const KEY: &str = "sk-admin-MULTIINSTANCE000000000000abcd";
/// Failed or not, this many logins a minute from one address, across the instances.
const LOGINS_PER_MINUTE: usize = 6;

struct Instance {
    child: tokio::process::Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh lake in the S3-compatible store `scripts/test` starts (moto's server mode), which the
/// `AWS_*` variables it exports name, as they would name S3 itself.
fn s3_lake() -> String {
    let bucket = std::env::var("BURNRATE_TEST_S3_BUCKET")
        .expect("BURNRATE_TEST_S3_BUCKET: a bucket in an S3-compatible store and AWS_* to reach it (scripts/test)");
    format!("s3://{bucket}/lake-{}", uuid::Uuid::new_v4().simple())
}

/// `burnrate serve` on the test's database, with its own data directory and ports, the shared
/// lake (`file://…` or `s3://…`) and `settings` (Redis, a sync lease). Returns once it answers
/// `/readyz`.
async fn serve(app: &TestApp, lake: &str, settings: &[(&str, &str)]) -> Instance {
    let (port, pg_port) = (free_port(), free_port());
    let data = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_burnrate"))
        .arg("serve")
        .env_clear()
        .envs(app.cli_env())
        .env("BURNRATE_DATA_DIR", data.path())
        .env("BURNRATE_LAKE_URL", lake)
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")))
        .envs(settings.iter().copied())
        .env("BURNRATE_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("BURNRATE_PG_ADDR", format!("127.0.0.1:{pg_port}"))
        .env("BURNRATE_METRICS_ADDR", "127.0.0.1:0")
        .env("BURNRATE_OTLP_ADDR", "127.0.0.1:0")
        .env("BURNRATE_PUBLIC_URL", &url)
        .env("BURNRATE_EGRESS_ALLOW", "127.0.0.1/32")
        .env("BURNRATE_EGRESS_SHARED", "127.0.0.1/32")
        .env("BURNRATE_LOGIN_RATE_PER_IP", LOGINS_PER_MINUTE.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start burnrate serve");
    let probe = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..300 {
        if probe.get(format!("{url}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Instance { child, url, _data: data };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("burnrate serve at {url} was not ready within 30 s");
}

/// A browser logged in on `instance` as `email`.
async fn log_in(instance: &Instance, email: &str) -> TestClient {
    let client = TestClient::new(&instance.url);
    let r = client.post_form("/login", &[("email", email), ("password", GOOD_PASSWORD)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    client
}

/// Connects the simulated OpenAI through `client`'s source form (which starts its first sync).
async fn connect(client: &TestClient, sim: &SimProvider) {
    let form = [("kind", "openai"), ("name", "OpenAI"), ("secret", KEY), ("base_url", &sim.base_url())];
    let r = client.post_form("/sources", &form).await;
    assert_eq!(r.status, 303, "{}", r.text);
}

/// Polls `client`'s sources page (every 100 ms, up to `tries` times) until it shows `text`.
async fn sources_show(client: &TestClient, text: &str, tries: usize) -> bool {
    for _ in 0..tries {
        if client.get("/sources").await.text.contains(text) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn lines() -> Vec<CostLine> {
    let today = Utc::now().date_naive();
    (1..=20)
        .map(|back| CostLine {
            day: today - chrono::Duration::days(back),
            group: Some("proj_shared".into()),
            item: "gpt-4o, input".into(),
            model: Some("gpt-4o".into()),
            amount: Decimal::from_str(&format!("{back}.000000007")).unwrap(),
            account: None,
            quantity: None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_share_sessions_limits_and_the_lake_and_sync_and_deliver_once() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Shared Co", "owner@shared.example").await;
    // A Redis database of this test's own, so other tests' counts are not in it.
    let server = std::env::var("BURNRATE_TEST_REDIS_URL")
        .expect("BURNRATE_TEST_REDIS_URL: a Redis server for shared limits (scripts/test starts one)");
    let redis = format!("{}/7", server.trim_end_matches('/'));
    let mut conn = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHDB").query_async(&mut conn).await.unwrap();
    let lake = s3_lake();
    let shared = [("BURNRATE_REDIS_URL", redis.as_str())];
    let (a, b) = (serve(&app, &lake, &shared).await, serve(&app, &lake, &shared).await);

    // A session made on one instance is a session on the other.
    let on_a = log_in(&a, "owner@shared.example").await;
    let on_b = TestClient::new(&b.url);
    on_b.set_cookie("__Host-burnrate_session", &on_a.cookie("__Host-burnrate_session").unwrap());
    let home = on_b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.text.contains("Shared Co"), "B knows A's session");

    // Login attempts from one address count once across both: alternating between them, the
    // limit is reached as if there were one instance (per instance, twice as many would pass).
    let mut passed = 1; // the owner's login above
    let mut last = (0, 0);
    for n in 0..(2 * LOGINS_PER_MINUTE) {
        let c = TestClient::new(if n % 2 == 0 { &a.url } else { &b.url });
        let status =
            c.post_form("/login", &[("email", "nobody@shared.example"), ("password", "wrong wrong")]).await.status;
        if status != 429 {
            passed += 1;
        }
        if n % 2 == 0 { last.0 = status } else { last.1 = status }
    }
    assert_eq!(passed, LOGINS_PER_MINUTE, "the limit, counted in Redis for both instances");
    assert_eq!(last, (429, 429), "both instances refuse once it is reached");

    // A webhook and a yearly budget the sync will pass twice (50 % and 100 %): each alert is
    // delivered by one instance, once, though both run delivery workers.
    let key = crate::create_key(&on_a, "multi", "admin").await;
    let (hook, mut received) = crate::notify::receiver().await;
    let r = on_a.api(Method::POST, "/api/v1/webhooks", &key, Some(json!({ "url": hook }))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let budget = json!({ "name": "Year", "amount": "100", "currency": "USD", "period": "year",
                         "thresholds": [50, 100], "forecast_alert": false });
    let r = on_b.api(Method::POST, "/api/v1/budgets", &key, Some(budget)).await;
    assert_eq!(r.status, 201, "{}", r.text);

    // A source connected on A is synced once, by one of them, into the shared lake; B shows it.
    let sim = SimProvider::openai(KEY).await;
    sim.set_lines(lines());
    connect(&on_a, &sim).await;
    assert!(sources_show(&on_b, ">ok<", 200).await, "the first sync finished: {}", on_b.get("/sources").await.text);
    let costs_pulls = |sim: &SimProvider| {
        sim.requests().iter().filter(|r| r.path_and_query.starts_with("/v1/organization/costs")).count()
    };
    let pulled = costs_pulls(&sim);
    // One pull of the same window from the same data, in this process, takes this many pages:
    // had both instances run the sync, the simulator would have served twice as many.
    let mut tx = app.store.tenant(scope).await.unwrap();
    let source = tx.sources().await.unwrap().pop().expect("the source");
    tx.commit().await.unwrap();
    let window = burnrate_sync::SourceConfig::read(&source.name, &source.kind, &source.config)
        .unwrap()
        .next_window(source.last_success_at.is_some(), Utc::now().date_naive());
    let reference = SimProvider::openai(KEY).await;
    reference.set_lines(lines());
    let openai = OpenAi { base_url: reference.base_url().parse().unwrap(), admin_key: KEY.to_owned().into() };
    openai.pull_costs(&crate::sync::http(), window).await.unwrap();
    assert!(pulled > 0);
    assert_eq!(pulled, costs_pulls(&reference), "one sync's pages, not two");
    // The shared lake holds the spend once.
    let lake = burnrate_lake::Lake::from_url(&lake).unwrap();
    let stored: Decimal = lake.read_costs(&app.store, scope).await.unwrap().iter().map(|r| r.billed_cost).sum();
    assert_eq!(stored, lines().iter().map(|l| l.amount).sum::<Decimal>());

    let mut ids = Vec::new();
    while ids.len() < 2 {
        let got = tokio::time::timeout(Duration::from_secs(20), received.recv()).await.expect("two alerts").unwrap();
        ids.push(got.headers["webhook-id"].clone());
    }
    // Anything sent twice would arrive within the same moments.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while let Ok(got) = received.try_recv() {
        ids.push(got.headers["webhook-id"].clone());
    }
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (2, 2), "one delivery per alert across both instances: {ids:?}");
}

/// The instance running a sync is killed (SIGKILL) while it waits out a provider's rate limit;
/// the other instance takes the sync over once its lease has run out and finishes it, and the
/// lake holds the spend once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_sync_is_finished_by_the_other_after_its_lease() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Relay Co", "owner@relay.example").await;
    // A directory both see, as on a shared file system.
    let lake = tempfile::tempdir().unwrap();
    let lake_url = format!("file://{}", lake.path().display());
    let lease = [("BURNRATE_SYNC_LEASE", "3s")];
    let (mut a, b) = (serve(&app, &lake_url, &lease).await, serve(&app, &lake_url, &lease).await);
    let (on_a, on_b) = (log_in(&a, "owner@relay.example").await, log_in(&b, "owner@relay.example").await);

    // The first page comes at once; the second is refused with a minute's Retry-After, which A
    // waits out inside the sync, renewing its lease.
    let sim = SimProvider::openai(KEY).await;
    sim.set_lines(lines());
    sim.push_fault(burnrate_sim::Fault::Pass);
    sim.push_fault(burnrate_sim::Fault::RateLimited { retry_after_secs: 60 });
    connect(&on_a, &sim).await;
    let mut waiting = false;
    for _ in 0..200 {
        if sim.requests().len() >= 2 && on_b.get("/sources").await.text.contains("syncing — ") {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(waiting, "A is mid-sync: {} requests", sim.requests().len());
    // Two leases on, A still holds it: a running sync is renewed, not taken over.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(sim.requests().len(), 2, "nobody else pulled while A was alive");

    a.child.kill().await.unwrap();
    let killed = std::time::Instant::now();
    assert!(sources_show(&on_b, ">ok<", 300).await, "B finished the sync: {}", on_b.get("/sources").await.text);
    // A renewed its lease at most a third of a lease before it died, so B's first pull comes at
    // least two thirds of a lease later; and within a lease and a half of B's looking.
    let first_pull = sim.requests().iter().map(|r| r.at).find(|at| *at > killed).expect("B pulled the window itself");
    let waited = first_pull - killed;
    assert!(
        (Duration::from_millis(1500)..Duration::from_secs(8)).contains(&waited),
        "taken over after the lease ran out, and soon after: {waited:?}"
    );
    let lake = burnrate_lake::Lake::from_url(&lake_url).unwrap();
    let stored: Decimal = lake.read_costs(&app.store, scope).await.unwrap().iter().map(|r| r.billed_cost).sum();
    assert_eq!(stored, lines().iter().map(|l| l.amount).sum::<Decimal>(), "the spend once");
}

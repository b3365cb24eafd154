//! Connecting providers through the UI and the API.

use std::str::FromStr;
use std::time::Duration;

use burnrate_core::Role;
use burnrate_sim::{CostLine, SimProvider};
use burnrate_testkit::{BackendKind, TestApp};
use chrono::{Datelike, Utc};
use reqwest::Method;
use rust_decimal::Decimal;

use crate::create_key;

const KEY: &str = "sk-admin-SOURCEKEY7777777777777777abcd";

/// Ten days of spend ending yesterday, in two projects.
fn recent_lines() -> Vec<CostLine> {
    let today = Utc::now().date_naive();
    (1..=10)
        .flat_map(|back| {
            ["proj_a", "proj_b"].into_iter().map(move |p| CostLine {
                day: today - chrono::Duration::days(back),
                group: Some(p.into()),
                item: "gpt-4o, input".into(),
                model: Some("gpt-4o".into()),
                amount: Decimal::from_str(&format!("{back}.125000001")).unwrap(),
                account: None,
                quantity: None,
            })
        })
        .collect()
}

async fn wait_for_sync(app: &TestApp, scope: burnrate_store::OrgScope) -> burnrate_store::SourceRecord {
    for _ in 0..100 {
        let mut tx = app.store.tenant(scope).await.unwrap();
        let sources = tx.sources().await.unwrap();
        tx.commit().await.unwrap();
        if let Some(s) = sources.into_iter().find(|s| s.last_attempt_at.is_some()) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the first sync did not finish within 10 s");
}

/// On SQLite, the database file (its log folded in) holds none of `secrets`: they are sealed.
async fn assert_sealed_at_rest(app: &TestApp, secrets: &[&str]) {
    if app.db.kind != BackendKind::Sqlite {
        return;
    }
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&app.db.app_url).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await.unwrap();
    let bytes = std::fs::read(app.db.sqlite_path.as_ref().unwrap()).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} is sealed at rest");
    }
}

/// Each `(field, value, message)`: the new source with that field set to that value is refused
/// with 422 and a message naming the field.
async fn assert_refused(
    c: &burnrate_testkit::TestClient,
    key: &str,
    body: &serde_json::Value,
    cases: &[(&str, &str, &str)],
) {
    for (field, bad, says) in cases {
        let mut wrong = body.clone();
        wrong[*field] = serde_json::json!(bad);
        let refused = c.api(Method::POST, "/api/v1/sources", key, Some(wrong)).await;
        assert_eq!(refused.status, 422, "{field}={bad}: {}", refused.text);
        assert!(refused.text.contains(says), "{}", refused.text);
    }
}

/// Asks for a sync of `source` through the API, as an admin would, and waits until it ran.
async fn sync_now(
    app: &TestApp,
    c: &burnrate_testkit::TestClient,
    key: &str,
    scope: burnrate_store::OrgScope,
    source: &burnrate_store::SourceRecord,
) {
    let r = c.api(Method::POST, &format!("/api/v1/sources/{}/sync", source.id), key, None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    for _ in 0..100 {
        let mut tx = app.store.tenant(scope).await.unwrap();
        let now = tx.source(source.id).await.unwrap().unwrap().last_attempt_at;
        tx.commit().await.unwrap();
        if now != source.last_attempt_at {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the sync did not run within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_a_source_seals_its_key_syncs_and_shows_spend() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let sim = SimProvider::openai(KEY).await;
    let lines = recent_lines();
    sim.set_lines(lines.clone());
    let c = app.login("o@example.com").await;
    assert!(c.get("/sources").await.text.contains("No providers connected yet"));
    let r = c
        .post_form(
            "/sources",
            &[("kind", "openai"), ("name", "OpenAI prod"), ("secret", KEY), ("base_url", &sim.base_url())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let source = wait_for_sync(&app, scope).await;
    assert_eq!(source.last_error, None);
    assert_eq!(source.secret_hint, "abcd");

    let page = c.get("/sources").await;
    assert!(page.text.contains("••••abcd") && page.text.contains(">ok<"), "{}", page.text);
    let yesterday = (Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    assert!(page.text.contains(&format!("costs through {yesterday}")), "freshness per table is shown");
    // The 3 days each sync re-pulls may still change: the days before them are final.
    let last_final = (Utc::now().date_naive() - chrono::Duration::days(4)).to_string();
    assert!(page.text.contains(&format!("final through {last_final}")), "days not yet final are marked");
    let home = c.get("/").await;
    let this_month: Decimal = lines
        .iter()
        .filter(|l| l.day.month() == Utc::now().month() && l.day.year() == Utc::now().year())
        .map(|l| l.amount)
        .sum();
    if this_month > Decimal::ZERO {
        assert!(
            home.text.contains(&format!("{} USD", this_month.round_dp(2))),
            "month to date {this_month} on the overview"
        );
    } else {
        // On the first of a month the fixture (up to yesterday) has nothing in this month.
        assert!(home.text.contains("No spend yet"), "an empty month says so");
    }
    assert!(home.text.contains(&yesterday) && home.text.contains("OpenAI"), "spend by day and provider");
    // The chart: one segment per day and provider, each naming its amount.
    let chart = &home.text[home.text.find("<svg id=\"spend-chart\"").expect("a chart")..];
    let chart = &chart[..chart.find("</svg>").unwrap()];
    for back in 1..=10 {
        let day = Utc::now().date_naive() - chrono::Duration::days(back);
        let want: Decimal = lines.iter().filter(|l| l.day == day).map(|l| l.amount).sum();
        assert!(chart.contains(&format!("<title>{day} · OpenAI: {} USD</title>", want.round_dp(2))), "{day}: {chart}");
    }
    assert_eq!(chart.matches("<rect").count(), 10, "no bar for days without spend");
    // Each number leads to the explorer view that produced it.
    let days_view = home.text.split("href=\"").find(|s| s.contains("Explore these days")).unwrap();
    let days_view = days_view[..days_view.find('"').unwrap()].replace("&#38;", "&");
    let explored = c.get(&days_view).await;
    assert!(explored.text.contains(&format!("<td>{yesterday}</td><td>OpenAI</td>")), "{}", explored.text);
    if this_month > Decimal::ZERO {
        let month_view = format!("/explore?group=provider&#38;from={}", Utc::now().date_naive().with_day(1).unwrap());
        assert!(home.text.contains(&month_view), "the month to date leads to its view: {}", home.text);
        let top = &home.text[home.text.find("id=\"top-models\"").expect("top models are listed")..];
        assert!(
            top.contains(&format!(">gpt-4o</a></td><td class=\"num amount\">{} USD</td>", this_month.round_dp(2))),
            "{top}"
        );
    }

    let key = create_key(&c, "k", "read").await;
    let listed = c.api(Method::GET, "/api/v1/sources", &key, None).await;
    assert_eq!(listed.json()["sources"][0]["secret_last4"], "abcd");
    assert_eq!(listed.json()["sources"][0]["costs_through"], yesterday.as_str());
    assert_eq!(listed.json()["sources"][0]["final_through"], last_final.as_str());
    assert!(listed.json()["sources"][0]["usage_through"].is_null(), "no usage fixture: nothing synced, and it says so");
    // The same spend through the API, exact to the last digit.
    let spend = c.api(Method::GET, "/api/v1/spend", &key, None).await.json();
    let mtd: Decimal = spend["month_to_date"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["currency"] == "USD")
        .map(|m| m["amount"].as_str().unwrap().parse::<Decimal>().unwrap())
        .sum();
    assert_eq!(mtd, this_month, "month to date by API: {spend}");
    let last_30: Decimal =
        lines.iter().filter(|l| l.day > Utc::now().date_naive() - chrono::Duration::days(30)).map(|l| l.amount).sum();
    let by_day: Decimal = spend["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["amount"].as_str().unwrap().parse::<Decimal>().unwrap())
        .sum();
    assert_eq!(by_day, last_30, "30 days by day and provider: {spend}");
    assert_eq!(spend["days"][0]["day"], yesterday.as_str(), "newest first");
    // The same days of the previous month, for comparison (the fixture reaches back ten days).
    let today = Utc::now().date_naive();
    let month_start = today.with_day(1).unwrap();
    let previous_start = month_start - chrono::Months::new(1);
    let previous_until = (previous_start + (today - month_start) + chrono::Duration::days(1)).min(month_start);
    let before: Decimal =
        lines.iter().filter(|l| l.day >= previous_start && l.day < previous_until).map(|l| l.amount).sum();
    let previous: Decimal = spend["previous_month_to_date"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["amount"].as_str().unwrap().parse::<Decimal>().unwrap())
        .sum();
    assert_eq!(previous, before, "{spend}");
    for text in [&page.text, &home.text, &listed.text] {
        assert!(!text.contains(&KEY[..20]), "the key never comes back out");
    }
    let mut t = app.store.tenant(scope).await.unwrap();
    let audit = t.audit_entries(20).await.unwrap();
    t.commit().await.unwrap();
    let created = audit.iter().find(|e| e.action == "source_created").expect("audited");
    assert!(!created.details.contains("SOURCEKEY"));
    assert_sealed_at_rest(&app, &["SOURCEKEY"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_says_what_to_fix_without_showing_the_key() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let sim = SimProvider::openai("sk-admin-the-right-one").await;
    let c = app.login("o@example.com").await;
    c.post_form(
        "/sources",
        &[("kind", "openai"), ("name", "Wrong key"), ("secret", KEY), ("base_url", &sim.base_url())],
    )
    .await;
    let source = wait_for_sync(&app, scope).await;
    let error = source.last_error.expect("the failure is recorded");
    assert!(error.starts_with("OpenAI GET /v1/organization/costs for "), "{error}");
    assert!(error.contains("the credential was refused (401"), "{error}");
    let page = c.get("/sources").await;
    assert!(page.text.contains("failing: OpenAI"));
    assert!(!page.text.contains("SOURCEKEY"));
    let tested = c.post_form(&format!("/sources/{}/test", source.id), &[]).await;
    assert!(tested.text.contains("Connection to Wrong key failed"), "{}", tested.text);
    // Every page says the numbers may be incomplete, until a sync succeeds again.
    for path in ["/", "/budgets", "/sql"] {
        let page = c.get(path).await;
        assert!(page.text.contains("Syncing Wrong key failed"), "{path}: {}", page.text);
    }
    let r = c.post_form(&format!("/sources/{}/rotate", source.id), &[("secret", "sk-admin-the-right-one")]).await;
    assert_eq!(r.status, 303);
    app.syncer
        .sync(
            scope,
            source.id,
            burnrate_core::SyncWindow::trailing_days(Utc::now().date_naive(), 1).unwrap().whole_months(),
        )
        .await
        .unwrap();
    assert!(!c.get("/").await.text.contains("failing-sources"), "the banner goes once the sync works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_plain_http_base_urls_are_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let c = app.login("o@example.com").await;
    for (url, reason) in [
        ("https://169.254.169.254/latest", "169.254.169.254 is not a public address"),
        ("https://[::ffff:10.0.0.1]/", "is not a public address"),
        ("http://api.openai.com", "is not allowed: use https"),
        ("https://user:pw@api.openai.com", "user name or password"),
    ] {
        let r = c.post_form("/sources", &[("kind", "openai"), ("name", "x"), ("secret", KEY), ("base_url", url)]).await;
        assert_eq!(r.status, 422, "{url}");
        assert!(r.text.contains(reason), "{url}: expected {reason:?}");
    }
    let mut t = app.store.tenant(scope).await.unwrap();
    assert!(t.sources().await.unwrap().is_empty(), "nothing was stored");
    t.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_manage_sources_and_other_orgs_get_404() {
    let app = TestApp::spawn().await;
    let (a, _) = app.create_org("A", "a@example.com").await;
    app.add_member(a, "viewer@example.com", Role::Viewer).await;
    let sim = SimProvider::openai(KEY).await;
    let a_client = app.login("a@example.com").await;
    a_client
        .post_form("/sources", &[("kind", "openai"), ("name", "A's"), ("secret", KEY), ("base_url", &sim.base_url())])
        .await;
    let source = wait_for_sync(&app, a).await;

    let viewer = app.login("viewer@example.com").await;
    assert_eq!(viewer.post_form("/sources", &[("kind", "openai"), ("name", "v"), ("secret", KEY)]).await.status, 403);
    assert_eq!(viewer.post_form(&format!("/sources/{}/pause", source.id), &[]).await.status, 403);

    app.create_org("B", "b@example.com").await;
    let b = app.login("b@example.com").await;
    for action in ["pause", "resume", "sync", "test", "delete"] {
        let fields: &[(&str, &str)] = if action == "delete" { &[("keep_data", "no")] } else { &[] };
        assert_eq!(
            b.post_form(&format!("/sources/{}/{action}", source.id), fields).await.status,
            404,
            "{action} from org B"
        );
    }
    assert_eq!(
        b.post_form(&format!("/sources/{}/rotate", source.id), &[("secret", "sk-admin-stolen")]).await.status,
        404
    );
    let b_key = create_key(&b, "b", "admin").await;
    assert_eq!(b.api(Method::DELETE, &format!("/api/v1/sources/{}", source.id), &b_key, None).await.status, 404);
    assert_eq!(b.api(Method::POST, &format!("/api/v1/sources/{}/sync", source.id), &b_key, None).await.status, 404);
    assert_eq!(
        b.api(Method::GET, "/api/v1/sources", &b_key, None).await.json()["sources"].as_array().unwrap().len(),
        0
    );

    // A's source is untouched, and A's admin can remove it with its data.
    let mut t = app.store.tenant(a).await.unwrap();
    assert!(!t.source(source.id).await.unwrap().unwrap().paused);
    t.commit().await.unwrap();
    let a_key = create_key(&a_client, "a", "admin").await;
    let r = a_client.api(Method::DELETE, &format!("/api/v1/sources/{}?keep_data=false", source.id), &a_key, None).await;
    assert_eq!(r.status, 204);
    assert!(app.lake.read_costs(&app.store, a).await.unwrap().is_empty());
}

/// Everything logged in this test process, at every level.
pub(crate) fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::new(std::sync::Mutex::new(Vec::new())));
        struct Sink(&'static std::sync::Mutex<Vec<u8>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(buffer))
            .try_init();
        buffer
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_reaches_the_logs_during_syncs_and_failures() {
    let logs = captured_logs();
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let good = SimProvider::openai(KEY).await;
    good.set_lines(recent_lines());
    good.push_fault(burnrate_sim::Fault::RateLimited { retry_after_secs: 1 });
    let refusing = SimProvider::anthropic("sk-ant-admin01-other").await;
    let c = app.login("o@example.com").await;
    c.post_form("/sources", &[("kind", "openai"), ("name", "good"), ("secret", KEY), ("base_url", &good.base_url())])
        .await;
    c.post_form(
        "/sources",
        &[("kind", "anthropic"), ("name", "refused"), ("secret", KEY), ("base_url", &refusing.base_url())],
    )
    .await;
    // A sync records its attempt before it logs how it ended: wait for both, not just the first.
    let logged = || String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for _ in 0..100 {
        let mut t = app.store.tenant(scope).await.unwrap();
        let done = t.sources().await.unwrap().iter().filter(|s| s.last_attempt_at.is_some()).count();
        t.commit().await.unwrap();
        let text = logged();
        if done == 2 && text.contains("sync done") && text.contains("sync failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = logged();
    assert!(text.contains("sync done") && text.contains("sync failed"), "the capture saw both syncs");
    assert!(text.contains("retrying"), "and the throttled retry");
    assert!(!text.contains("SOURCEKEY") && !text.contains(&KEY[..16]), "no credential in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_settings_are_validated_saved_and_audited() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let sim = SimProvider::openai(KEY).await;
    let c = app.login("o@example.com").await;
    c.post_form("/sources", &[("kind", "openai"), ("name", "OpenAI"), ("secret", KEY), ("base_url", &sim.base_url())])
        .await;
    let source = wait_for_sync(&app, scope).await;
    let path = format!("/sources/{}/settings", source.id);

    for (days, minutes, url, reason) in [
        ("0", "60", sim.base_url(), "Backfill: between 1 and 730 days."),
        ("90", "5", sim.base_url(), "Sync interval: between 15 and 1440 minutes."),
        ("ninety", "60", sim.base_url(), "Backfill: a whole number."),
        ("90", "60", "https://10.1.2.3/".to_owned(), "is not a public address"),
    ] {
        let r = c.post_form(&path, &[("base_url", &url), ("backfill_days", days), ("interval_minutes", minutes)]).await;
        assert_eq!(r.status, 422, "{days} {minutes} {url}");
        assert!(r.text.contains(reason), "expected {reason:?}");
    }
    let r = c
        .post_form(&path, &[("base_url", &sim.base_url()), ("backfill_days", "30"), ("interval_minutes", "120")])
        .await;
    assert_eq!(r.status, 303);
    let mut t = app.store.tenant(scope).await.unwrap();
    let config: serde_json::Value = serde_json::from_str(&t.source(source.id).await.unwrap().unwrap().config).unwrap();
    let audit = t.audit_entries(10).await.unwrap();
    t.commit().await.unwrap();
    assert_eq!((config["backfill_days"].as_u64(), config["interval_minutes"].as_u64()), (Some(30), Some(120)));
    let entry = audit.iter().find(|e| e.action == "source_settings_changed").expect("audited");
    let details: serde_json::Value = serde_json::from_str(&entry.details).unwrap();
    assert_eq!(
        (details["before"]["backfill_days"].as_u64(), details["after"]["backfill_days"].as_u64()),
        (Some(90), Some(30))
    );

    // A new key is checked like the first one.
    let r = c.post_form(&format!("/sources/{}/rotate", source.id), &[("secret", "sk-admin-with\u{7}bell")]).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("New key: paste the key as the provider shows it."));
    let read = create_key(&c, "r", "read").await;
    let body = Some(serde_json::json!({ "interval_minutes": 30 }));
    assert_eq!(c.api(Method::PATCH, &format!("/api/v1/sources/{}", source.id), &read, body.clone()).await.status, 403);
    let admin = create_key(&c, "a", "admin").await;
    assert_eq!(c.api(Method::PATCH, &format!("/api/v1/sources/{}", source.id), &admin, body.clone()).await.status, 204);

    app.create_org("B", "b@example.com").await;
    let b = app.login("b@example.com").await;
    let r = b.post_form(&path, &[("base_url", ""), ("backfill_days", "1"), ("interval_minutes", "15")]).await;
    assert_eq!(r.status, 404, "another organization's source");
    let b_key = create_key(&b, "b", "admin").await;
    assert_eq!(b.api(Method::PATCH, &format!("/api/v1/sources/{}", source.id), &b_key, body).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_backfill_shows_its_progress_while_it_runs() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let sim = SimProvider::anthropic(KEY).await;
    sim.set_lines(burnrate_sim::demo::anthropic_lines(Utc::now().date_naive(), 90));
    // The first page comes at once; the second is throttled for two seconds.
    sim.push_fault(burnrate_sim::Fault::Pass);
    sim.push_fault(burnrate_sim::Fault::RateLimited { retry_after_secs: 2 });
    let c = app.login("o@example.com").await;
    c.post_form(
        "/sources",
        &[("kind", "anthropic"), ("name", "Claude"), ("secret", KEY), ("base_url", &sim.base_url())],
    )
    .await;
    let mut seen = None;
    for _ in 0..40 {
        let page = c.get("/sources").await;
        if let Some(at) = page.text.find("syncing — ") {
            seen = Some(page.text[at..].split('<').next().unwrap().to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.expect("progress is shown while the backfill runs");
    assert!(seen.starts_with("syncing — costs: 1 page, through "), "{seen}");
    assert!(seen.contains(" days)"), "days done of the total: {seen}");
    let source = wait_for_sync(&app, scope).await;
    assert_eq!(source.last_error, None);
    assert_eq!(source.progress, None, "cleared when the sync ends");
}

/// AWS Bedrock through Cost Explorer: connected by API with an IAM access key, synced into the
/// lake exactly — Amazon's own models and a marketplace model, never the EC2 line beside them —
/// with the secret sealed and nowhere in pages, answers or logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_source_syncs_bedrock_spend_exactly_and_keeps_its_secret() {
    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let sim = SimProvider::aws(KEY_ID, SECRET).await;
    let today = Utc::now().date_naive();
    let mut lines = Vec::new();
    for back in 1..=12i64 {
        for (service, usage, cents) in [
            ("Amazon Bedrock", "USE1-Nova-Lite-input-tokens", 3_517),
            ("Claude 3.5 Sonnet (Amazon Bedrock Edition)", "USE1-MP:USE1_InputTokenCount-Units", 43_920),
            ("Amazon Elastic Compute Cloud - Compute", "USE1-BoxUsage:m5.large", 921_600),
        ] {
            lines.push(CostLine {
                day: today - chrono::Duration::days(back),
                group: Some(service.into()),
                item: usage.into(),
                model: None,
                amount: Decimal::new(cents * back + 7, 7),
                account: None,
                quantity: None,
            });
        }
    }
    sim.set_lines(lines.clone());
    let c = app.login("o@example.com").await;
    let key = create_key(&c, "k", "admin").await;
    let body = serde_json::json!({ "kind": "aws", "name": "AWS payer", "access_key_id": KEY_ID, "secret": SECRET, "base_url": sim.base_url() });
    let r = c.api(Method::POST, "/api/v1/sources", &key, Some(body.clone())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let source = wait_for_sync(&app, scope).await;
    assert_eq!(source.last_error, None);
    let mut bad = body.clone();
    bad["access_key_id"] = serde_json::json!("not-a-key");
    bad["name"] = serde_json::json!("other");
    let refused = c.api(Method::POST, "/api/v1/sources", &key, Some(bad)).await;
    assert_eq!(refused.status, 422);
    assert!(refused.text.contains("Access key ID"), "{}", refused.text);
    let mut bad_role = body.clone();
    bad_role["name"] = serde_json::json!("other");
    bad_role["role_arn"] = serde_json::json!("arn:aws:iam::42:role/x");
    let refused = c.api(Method::POST, "/api/v1/sources", &key, Some(bad_role)).await;
    assert_eq!(refused.status, 422);
    assert!(refused.text.contains("Role ARN"), "{}", refused.text);

    let sql = "SELECT charge_day, service_name, sku_id, model, sum(billed_cost) AS cost FROM costs \
               GROUP BY charge_day, service_name, sku_id, model ORDER BY charge_day, service_name";
    let result = c.api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": sql }))).await.json();
    let rows = result["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 24, "two Bedrock services a day for 12 days, no EC2: {result}");
    for row in rows {
        let day: chrono::NaiveDate = row[0].as_str().unwrap().parse().unwrap();
        let service = row[1].as_str().unwrap();
        let want: Decimal =
            lines.iter().filter(|l| l.day == day && l.group.as_deref() == Some(service)).map(|l| l.amount).sum();
        assert_eq!(row[4].as_str().unwrap().parse::<Decimal>().unwrap(), want, "{row:?}");
        assert_eq!(
            row[3].as_str(),
            if service.contains("Edition") { Some("Claude 3.5 Sonnet") } else { None },
            "{row:?}"
        );
    }
    // AWS revises past days: a re-pull brings the new value and replaces the old.
    let restated = today - chrono::Duration::days(3);
    sim.restate(restated, Decimal::from(2));
    sync_now(&app, &c, &key, scope, &source).await;
    let day_sql = format!("SELECT sum(billed_cost) FROM costs WHERE charge_day = DATE '{restated}'");
    let day = c.api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": day_sql }))).await.json();
    let want: Decimal = lines
        .iter()
        .filter(|l| l.day == restated && l.group.as_deref().is_some_and(|g| g.contains("Bedrock")))
        .map(|l| l.amount * Decimal::from(2))
        .sum();
    assert_eq!(day["rows"][0][0].as_str().unwrap().parse::<Decimal>().unwrap(), want, "{day}");

    // An AWS key is replaced as a pair: a secret alone is refused, the pair is kept.
    let rotate = format!("/api/v1/sources/{}/rotate", source.id);
    let alone = c.api(Method::POST, &rotate, &key, Some(serde_json::json!({ "secret": "another/secret/key" }))).await;
    assert_eq!(alone.status, 422, "{}", alone.text);
    assert!(alone.text.contains("Access key ID"), "{}", alone.text);
    let pair = serde_json::json!({ "secret": SECRET, "access_key_id": KEY_ID });
    assert_eq!(c.api(Method::POST, &rotate, &key, Some(pair)).await.status, 204);

    let listed = c.api(Method::GET, "/api/v1/sources", &key, None).await;
    assert_eq!(listed.json()["sources"][0]["config"]["access_key_id"], KEY_ID);
    assert_eq!(listed.json()["sources"][0]["config"]["interval_minutes"], 360);
    // The last sync's lines and requests, and what AWS charges for them ($0.01 a request).
    let summary = listed.json()["sources"][0]["last_sync_summary"].as_str().unwrap().to_owned();
    let requests: u32 = summary.split("from ").nth(1).and_then(|r| r.split(' ').next()?.parse().ok()).unwrap();
    assert!(summary.starts_with("24 cost lines for ") && requests >= 7, "{summary}");
    assert!(summary.ends_with(&format!("${}", Decimal::new(i64::from(requests), 2))), "{summary}");
    let page = c.get("/sources").await;
    for text in [&page.text, &listed.text] {
        assert!(!text.contains(&SECRET[..20]), "the secret never comes back out");
    }
    assert_sealed_at_rest(&app, &["SECRETKEY"]).await;
}

/// OpenRouter reports the last 30 completed days only. A sync of whole months keeps the older
/// days it stored earlier, takes the recent ones anew (a restatement included), reads the
/// credits left, and tells an admin who pasted an inference key what to paste instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openrouter_source_keeps_days_older_than_its_30_day_window_and_shows_the_credits_left() {
    use burnrate_sim::openrouter::{DEFAULT_CREDITS, INFERENCE_KEY};
    const MANAGEMENT_KEY: &str = "sk-or-v1-MANAGEMENTKEY00000000000000000000000000000000000000000000";
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let sim = SimProvider::openrouter(MANAGEMENT_KEY).await;
    let today = Utc::now().date_naive();
    let mut lines = Vec::new();
    for back in 1..=70i64 {
        for (workspace, model, provider, nanos) in [
            (Some("ws-a"), "anthropic/claude-sonnet-4", "Anthropic", 12_842_130_001i64),
            (None, "openai/gpt-4.1-mini", "OpenAI", 907_620_003),
        ] {
            lines.push(CostLine {
                day: today - chrono::Duration::days(back),
                group: workspace.map(str::to_owned),
                item: provider.into(),
                model: Some(model.into()),
                amount: Decimal::new(nanos + back * 1_000_003, 9),
                account: None,
                quantity: None,
            });
        }
    }
    sim.set_lines(lines.clone());
    let c = app.login("o@example.com").await;
    let key = create_key(&c, "k", "admin").await;

    // An inference key connects, and its sync says which key OpenRouter wants.
    let body = serde_json::json!({ "kind": "openrouter", "name": "OpenRouter", "secret": INFERENCE_KEY, "base_url": sim.base_url() });
    let r = c.api(Method::POST, "/api/v1/sources", &key, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let source = wait_for_sync(&app, scope).await;
    let error = source.last_error.clone().unwrap();
    assert!(error.contains("management key") && !error.contains(&INFERENCE_KEY[10..]), "{error}");
    let rotate = format!("/api/v1/sources/{}/rotate", source.id);
    let r = c.api(Method::POST, &rotate, &key, Some(serde_json::json!({ "secret": MANAGEMENT_KEY }))).await;
    assert_eq!(r.status, 204, "{}", r.text);

    // An earlier sync stored a day now beyond the 30 (and a recent day OpenRouter now reports
    // differently); both months around the window's start are synced whole.
    let window = burnrate_core::SyncWindow::new(today - chrono::Duration::days(60), today + chrono::Duration::days(1))
        .unwrap()
        .whole_months();
    let kept_day = window.start() + chrono::Duration::days(3);
    let recent_day = today - chrono::Duration::days(2);
    let at = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let earlier = [
        burnrate_sim::fixture::usd_cost(at(kept_day), 24, Decimal::new(7_123_456_789, 9), "OpenRouter", "old/model"),
        burnrate_sim::fixture::usd_cost(at(recent_day), 24, Decimal::new(999, 0), "OpenRouter", "stale/model"),
    ];
    app.lake.replace(&app.store, scope, source.id, window, &earlier).await.unwrap();
    let first = burnrate_sources::OpenRouter::reaches_back(today);
    let totals = || async {
        let sql = "SELECT charge_day, model, sub_account_id, sum(billed_cost) FROM costs \
                   GROUP BY charge_day, model, sub_account_id ORDER BY charge_day, model";
        let result = c.api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": sql }))).await.json();
        let mut got = std::collections::BTreeMap::new();
        for row in result["rows"].as_array().unwrap() {
            let day: chrono::NaiveDate = row[0].as_str().unwrap().parse().unwrap();
            let cost: Decimal = row[3].as_str().unwrap().parse().unwrap();
            got.insert((day, row[1].as_str().unwrap().to_owned(), row[2].as_str().map(str::to_owned)), cost);
        }
        got
    };
    for restate in [false, true] {
        if restate {
            sim.restate(recent_day, Decimal::TWO);
            for l in lines.iter_mut().filter(|l| l.day == recent_day) {
                l.amount *= Decimal::TWO;
            }
        }
        app.syncer.sync(scope, source.id, window).await.unwrap();
        // The window starts 57 days or more before the 30 OpenRouter reports.
        let mut want = std::collections::BTreeMap::new();
        want.insert((kept_day, "old/model".to_owned(), Some("proj".to_owned())), Decimal::new(7_123_456_789, 9));
        for l in lines.iter().filter(|l| l.day >= first && window.contains(at(l.day))) {
            let workspace = l.group.clone().unwrap_or_else(|| "00000000-0000-4000-8000-000000000000".into());
            *want.entry((l.day, l.model.clone().unwrap(), Some(workspace))).or_default() += l.amount;
        }
        assert_eq!(totals().await, want, "older days kept, the last 30 as OpenRouter reports them now");
    }

    // The credits left, on the API and the page; the key nowhere.
    let listed = c.api(Method::GET, "/api/v1/sources", &key, None).await;
    let spent: Decimal = lines.iter().map(|l| l.amount).sum();
    let remaining: Decimal = listed.json()["sources"][0]["credits_remaining"].as_str().unwrap().parse().unwrap();
    assert_eq!(remaining, DEFAULT_CREDITS - spent, "{}", listed.text);
    assert_eq!(listed.json()["sources"][0]["last_error"], serde_json::Value::Null);
    let page = c.get("/sources").await;
    assert!(page.text.contains("credits left"), "{}", page.text);
    for text in [&page.text, &listed.text] {
        assert!(!text.contains(&MANAGEMENT_KEY[10..30]), "the key never comes back out");
    }
    assert_sealed_at_rest(&app, &["MANAGEMENTKEY"]).await;
}

/// Azure AI Services costs through Cost Management: an app registration's secret is sealed, the
/// costs by day × meter × subscription equal the fixture exactly over many pages, a restated day
/// is replaced, and a hostile scope or a wrong secret is refused with what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_source_syncs_ai_services_costs_exactly_and_keeps_its_client_secret() {
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const CLIENT: &str = "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b";
    const SECRET: &str = "Qx8Q~AZURECLIENTSECRETvalue0123456789abc";
    const SCOPE: &str = "subscriptions/00000000-0000-0000-0000-000000000001";
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let sim = SimProvider::azure(TENANT, CLIENT, SECRET, SCOPE).await;
    let today = Utc::now().date_naive();
    let aoai = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/contoso-aoai";
    let vm = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/web1";
    let mut lines = Vec::new();
    for back in 1..=12i64 {
        for (resource, meter, nanos) in [
            (aoai, "gpt-4o-0806-Inp-glbl 1K Tokens", 12_482_310_000i64),
            (aoai, "gpt-4o-0806-Outp-glbl 1K Tokens", 19_800_000_001),
            (vm, "D2s v5", 2_304_000_000),
        ] {
            lines.push(CostLine {
                day: today - chrono::Duration::days(back),
                group: Some(resource.into()),
                item: meter.into(),
                model: None,
                amount: Decimal::new(nanos + back * 1_000_003, 9),
                account: None,
                quantity: None,
            });
        }
    }
    sim.set_lines(lines.clone());
    let c = app.login("o@example.com").await;
    let key = create_key(&c, "k", "admin").await;
    let body = serde_json::json!({ "kind": "azure", "name": "Azure AI", "tenant_id": TENANT, "client_id": CLIENT, "scope": SCOPE, "secret": SECRET, "base_url": sim.base_url() });
    assert_refused(
        &c,
        &key,
        &body,
        &[
            ("scope", "subscriptions/00000000-0000-0000-0000-000000000001/../../x", "Scope"),
            ("scope", "subscriptions/x?api-version=1#", "Scope"),
            ("tenant_id", "not a tenant", "Tenant ID"),
            ("client_id", "1234", "Client ID"),
        ],
    )
    .await;
    let r = c.api(Method::POST, "/api/v1/sources", &key, Some(body.clone())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let source = wait_for_sync(&app, scope).await;
    assert_eq!(source.last_error, None);
    let pages = sim.requests().iter().filter(|r| r.path_and_query.contains("$skiptoken")).count();
    assert!(pages >= 2, "nextLink followed: {pages}");

    let totals = || async {
        let sql = "SELECT charge_day, sku_id, sub_account_id, sum(billed_cost), sum(effective_cost) FROM costs \
                   GROUP BY charge_day, sku_id, sub_account_id ORDER BY charge_day, sku_id";
        let result = c.api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": sql }))).await.json();
        let mut got = std::collections::BTreeMap::new();
        for row in result["rows"].as_array().unwrap() {
            let day: chrono::NaiveDate = row[0].as_str().unwrap().parse().unwrap();
            let billed: Decimal = row[3].as_str().unwrap().parse().unwrap();
            assert_eq!(row[4], row[3], "amortized equals actual here");
            got.insert((day, row[1].as_str().unwrap().to_owned(), row[2].as_str().unwrap().to_owned()), billed);
        }
        got
    };
    let want = |lines: &[CostLine]| {
        let mut want = std::collections::BTreeMap::new();
        for l in lines.iter().filter(|l| l.group.as_deref() == Some(aoai)) {
            let sub = "00000000-0000-0000-0000-000000000001".to_owned();
            *want.entry((l.day, l.item.clone(), sub)).or_default() += l.amount;
        }
        want
    };
    assert_eq!(totals().await, want(&lines), "every AI meter's day exactly, no virtual machine");

    // Azure revises a recent day: the re-pull replaces it.
    let restated = today - chrono::Duration::days(4);
    sim.restate(restated, Decimal::from(3));
    for l in lines.iter_mut().filter(|l| l.day == restated) {
        l.amount *= Decimal::from(3);
    }
    sync_now(&app, &c, &key, scope, &source).await;
    assert_eq!(totals().await, want(&lines), "the restated day has its new value, once");

    // A secret rotated to a wrong one: the next sync fails saying what to check.
    let rotate = format!("/api/v1/sources/{}/rotate", source.id);
    let wrong = serde_json::json!({ "secret": "Qx8Q~WRONGWRONGWRONGWRONGWRONG00000000000" });
    assert_eq!(c.api(Method::POST, &rotate, &key, Some(wrong)).await.status, 204);
    let mut tx = app.store.tenant(scope).await.unwrap();
    let rotated = tx.source(source.id).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    let window = burnrate_core::SyncWindow::trailing_days(today, 1).unwrap().whole_months();
    let err = app.syncer.sync(scope, rotated.id, window).await;
    let text = err.unwrap_err().to_string();
    assert!(text.contains("AADSTS7000215") && text.contains("Cost Management Reader"), "{text}");
    assert!(!text.contains("WRONGWRONG"), "{text}");

    let listed = c.api(Method::GET, "/api/v1/sources", &key, None).await;
    assert_eq!(listed.json()["sources"][0]["config"]["scope"], SCOPE);
    assert_eq!(listed.json()["sources"][0]["config"]["repull_days"], 35);
    let page = c.get("/sources").await;
    for text in [&page.text, &listed.text] {
        assert!(!text.contains("AZURECLIENTSECRET") && !text.contains("WRONGWRONG"), "the secret never comes back out");
    }
    assert_sealed_at_rest(&app, &["AZURECLIENTSECRET", "WRONGWRONG"]).await;
}

/// Vertex AI and Gemini API spend from the Cloud Billing export in BigQuery: a service account's
/// JSON key is sealed, costs and credits by day × SKU × project equal the fixture exactly over
/// polled jobs and pages, a restated day is replaced, and a missing BigQuery permission says which
/// roles to grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_cloud_source_syncs_vertex_ai_costs_and_credits_exactly_and_keeps_its_key() {
    use burnrate_sim::gcp::{credits_of, sku_id_of};
    const TABLE: &str = "acme-billing.billing_export.gcp_billing_export_v1_01ABCD_23EF45_6789AB";
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let sim = SimProvider::gcp("acme-billing", TABLE).await;
    sim.set_gcp_slow_polls(1);
    let today = Utc::now().date_naive();
    let mut lines = Vec::new();
    for back in 1..=10i64 {
        for (project, service, sku, nanos) in [
            ("acme-prod", "Vertex AI", "Gemini 2.5 Flash Input Text Tokens", 18_421_600_000i64),
            ("acme-research", "Gemini API", "Gemini 2.5 Pro Input Tokens", 2_500_000_011),
            ("acme-prod", "Compute Engine", "N2 Instance Core running in Americas", 9_100_000_000),
        ] {
            lines.push(CostLine {
                day: today - chrono::Duration::days(back),
                group: Some(project.into()),
                item: sku.into(),
                model: Some(service.into()),
                amount: Decimal::new(nanos + back * 1_000_003, 9),
                account: None,
                quantity: None,
            });
        }
    }
    sim.set_lines(lines.clone());
    let key_json = sim.gcp_key();
    let private_key: serde_json::Value = serde_json::from_str(&key_json).unwrap();
    let key_material = private_key["private_key"].as_str().unwrap()[40..100].to_owned();
    let c = app.login("o@example.com").await;
    let key = create_key(&c, "k", "admin").await;
    let body = serde_json::json!({ "kind": "gcp", "name": "Google AI", "secret": key_json, "billing_table": TABLE, "location": "US", "base_url": sim.base_url() });
    assert_refused(
        &c,
        &key,
        &body,
        &[
            ("billing_table", "acme-billing.billing_export.t` WHERE 1=1 --", "Billing table"),
            ("secret", "{\"type\": \"authorized_user\"}", "Service account key"),
            ("project_id", "Not A Project", "Project ID"),
        ],
    )
    .await;
    let r = c.api(Method::POST, "/api/v1/sources", &key, Some(body.clone())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let source = wait_for_sync(&app, scope).await;
    assert_eq!(source.last_error, None);

    let totals = || async {
        let sql = "SELECT charge_day, sku_id, sub_account_id, charge_category, sum(billed_cost) FROM costs \
                   GROUP BY charge_day, sku_id, sub_account_id, charge_category ORDER BY charge_day, sku_id";
        let result = c.api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": sql }))).await.json();
        let mut got = std::collections::BTreeMap::new();
        for row in result["rows"].as_array().unwrap() {
            let day: chrono::NaiveDate = row[0].as_str().unwrap().parse().unwrap();
            let cost: Decimal = row[4].as_str().unwrap().parse().unwrap();
            let key = (day, row[1].as_str().unwrap().to_owned(), row[2].as_str().unwrap().to_owned());
            got.insert((key, row[3].as_str().unwrap().to_owned()), cost);
        }
        got
    };
    let want = |lines: &[CostLine]| {
        let mut want = std::collections::BTreeMap::new();
        for l in lines.iter().filter(|l| l.model.as_deref() != Some("Compute Engine")) {
            let key = (l.day, sku_id_of(&l.item), l.group.clone().unwrap());
            *want.entry((key.clone(), "Usage".to_owned())).or_default() += l.amount;
            if !credits_of(l).is_zero() {
                *want.entry((key, "Credit".to_owned())).or_default() += credits_of(l);
            }
        }
        want
    };
    assert_eq!(totals().await, want(&lines), "costs and credits of the AI services exactly, no Compute Engine");
    // Resource labels are the lines' tags, a JSON object in SQL.
    let sql = "SELECT tags, sum(billed_cost) FROM costs WHERE charge_category = 'Usage' GROUP BY tags ORDER BY tags";
    let by_tags = c.api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": sql }))).await.json();
    let mut want_tags: std::collections::BTreeMap<Option<String>, Decimal> = Default::default();
    for l in lines.iter().filter(|l| l.model.as_deref() != Some("Compute Engine")) {
        let labels: std::collections::BTreeMap<&str, &str> = burnrate_sim::gcp::labels_of(l).into_iter().collect();
        let tags = (!labels.is_empty()).then(|| serde_json::to_string(&labels).unwrap());
        *want_tags.entry(tags).or_default() += l.amount;
    }
    let got_tags: std::collections::BTreeMap<Option<String>, Decimal> = by_tags["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().map(str::to_owned), r[1].as_str().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(got_tags, want_tags, "{by_tags}");

    // Google's export updates a recent day: the re-pull replaces it.
    let restated = today - chrono::Duration::days(2);
    sim.restate(restated, Decimal::from(2));
    for l in lines.iter_mut().filter(|l| l.day == restated) {
        l.amount *= Decimal::from(2);
    }
    let window = burnrate_core::SyncWindow::trailing_days(today + chrono::Duration::days(1), 8).unwrap().whole_months();
    app.syncer.sync(scope, source.id, window).await.unwrap();
    assert_eq!(totals().await, want(&lines), "the restated day has its new value, once");

    // Queries run in a project the account may not use: the status names the roles to grant.
    let mut config: serde_json::Value = serde_json::from_str(&source.config).unwrap();
    config["project_id"] = serde_json::json!("acme-other");
    let mut tx = app.store.tenant(scope).await.unwrap();
    tx.set_source_config(source.id, &config.to_string()).await.unwrap();
    tx.commit().await.unwrap();
    let err = app.syncer.sync(scope, source.id, window).await.unwrap_err().to_string();
    assert!(err.contains("accessDenied") && err.contains("roles/bigquery.jobUser"), "{err}");
    let listed = c.api(Method::GET, "/api/v1/sources", &key, None).await;
    assert!(listed.text.contains("roles/bigquery.jobUser"), "the source's status says so: {}", listed.text);
    assert_eq!(listed.json()["sources"][0]["config"]["service_account"], burnrate_sim::gcp::CLIENT_EMAIL);

    let page = c.get("/sources").await;
    for text in [&page.text, &listed.text] {
        assert!(!text.contains(&key_material) && !text.contains("PRIVATE KEY"), "the key never comes back out");
    }
    assert_sealed_at_rest(&app, &[&key_material, "PRIVATE KEY"]).await;
}

/// The four cloud and router connectors log their retries and outcomes, and never a secret: not
/// the AWS secret key, the Azure client secret or its tokens, the Google private key or its
/// tokens, nor an OpenRouter key — through throttling, a wrong secret and a wrong kind of key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cloud_credential_or_token_reaches_the_logs() {
    const AWS_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const CLIENT: &str = "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b";
    const AZURE_SECRET: &str = "Qx8Q~AZURECLIENTSECRETvalue0123456789abc";
    const SCOPE: &str = "subscriptions/00000000-0000-0000-0000-000000000001";
    const TABLE: &str = "acme-billing.billing_export.gcp_billing_export_v1_01ABCD_23EF45_6789AB";
    let logs = captured_logs();
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let today = Utc::now().date_naive();
    let line = |group: &str, item: &str, model: Option<&str>| CostLine {
        day: today - chrono::Duration::days(1),
        group: Some(group.into()),
        item: item.into(),
        model: model.map(str::to_owned),
        amount: Decimal::new(1_234_567, 6),
        account: None,
        quantity: None,
    };
    let aws = SimProvider::aws(AWS_ID, "a/different/secret/than/the/one/given").await;
    let azure = SimProvider::azure(TENANT, CLIENT, AZURE_SECRET, SCOPE).await;
    azure.set_lines(vec![line(
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
        "gpt-4o-0806-Inp-glbl 1K Tokens",
        None,
    )]);
    azure.push_fault(burnrate_sim::Fault::Pass);
    azure.push_fault(burnrate_sim::Fault::RateLimited { retry_after_secs: 1 });
    let gcp = SimProvider::gcp("acme-billing", TABLE).await;
    gcp.set_lines(vec![line("acme-prod", "Gemini 2.5 Flash Input Text Tokens", Some("Vertex AI"))]);
    let openrouter = SimProvider::openrouter("sk-or-v1-MANAGEMENTKEY000000000000000000000000000000").await;
    let gcp_key = gcp.gcp_key();
    let private_key: serde_json::Value = serde_json::from_str(&gcp_key).unwrap();
    let key_material = private_key["private_key"].as_str().unwrap()[40..100].to_owned();
    let c = app.login("o@example.com").await;
    let key = create_key(&c, "k", "admin").await;
    for body in [
        serde_json::json!({ "kind": "aws", "name": "aws", "access_key_id": AWS_ID, "secret": AWS_SECRET, "base_url": aws.base_url() }),
        serde_json::json!({ "kind": "azure", "name": "azure", "tenant_id": TENANT, "client_id": CLIENT, "scope": SCOPE, "secret": AZURE_SECRET, "base_url": azure.base_url() }),
        serde_json::json!({ "kind": "gcp", "name": "gcp", "secret": gcp_key, "billing_table": TABLE, "base_url": gcp.base_url() }),
        serde_json::json!({ "kind": "openrouter", "name": "openrouter", "secret": burnrate_sim::openrouter::INFERENCE_KEY, "base_url": openrouter.base_url() }),
    ] {
        let r = c.api(Method::POST, "/api/v1/sources", &key, Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let mut sources = Vec::new();
    for _ in 0..100 {
        let mut t = app.store.tenant(scope).await.unwrap();
        sources = t.sources().await.unwrap();
        t.commit().await.unwrap();
        if sources.iter().all(|s| s.last_attempt_at.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed: Vec<&str> = sources.iter().filter(|s| s.last_error.is_some()).map(|s| s.name.as_str()).collect();
    assert_eq!(failed, ["aws", "openrouter"], "a wrong AWS secret and an inference key fail; the others sync");
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("sync done") && text.contains("sync failed") && text.contains("retrying"), "{text}");
    for secret in [
        &AWS_SECRET[20..],
        &AZURE_SECRET[5..],
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9",
        &key_material,
        "ya29.",
        &burnrate_sim::openrouter::INFERENCE_KEY[10..],
        "MANAGEMENTKEY",
    ] {
        assert!(!text.contains(secret), "{secret:?} reached the logs");
    }
}

//! Provider → connector → lake → reader, on both database backends.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use burnrate_core::SyncWindow;
use burnrate_lake::CostRow;
use burnrate_net::{ClientOptions, EgressGuard, HttpClient};
use burnrate_sim::{CostLine, SimProvider};
use burnrate_sources::{Anthropic, OpenAi};
use burnrate_testkit::TestApp;
use chrono::NaiveDate;
use rust_decimal::Decimal;

const KEY: &str = "sk-admin-SUITEKEY000000000000000000";

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub fn http() -> HttpClient {
    HttpClient::new(
        EgressGuard::new(&["127.0.0.1/32"]).unwrap(),
        ClientOptions { base_backoff: Duration::from_millis(10), ..Default::default() },
    )
}

/// 45 days from 2026-01-01 over two projects and two models.
fn fixture() -> Vec<CostLine> {
    let mut lines = Vec::new();
    for day in 0..45 {
        for (p, project) in ["proj_a", "proj_b"].iter().enumerate() {
            for (m, (item, model)) in [("gpt-4o, input", "gpt-4o"), ("o3, output", "o3")].iter().enumerate() {
                let amount = Decimal::from_str(&format!(
                    "{}.{:09}",
                    1 + (day + p + m) % 5,
                    (day * 104_729 + p * 7 + m * 13) % 1_000_000_000
                ))
                .unwrap();
                lines.push(CostLine {
                    day: d("2026-01-01") + chrono::Duration::days(day as i64),
                    group: Some((*project).into()),
                    item: (*item).into(),
                    model: Some((*model).into()),
                    amount,
                    account: None,
                    quantity: None,
                });
            }
        }
    }
    lines
}

type Key = (NaiveDate, String, Option<String>, Option<String>);

/// An organization and an OpenAI connection to a simulator serving [`fixture`], with the id the
/// lake files of that source are written under.
async fn openai_org(app: &TestApp) -> (burnrate_store::OrgScope, SimProvider, OpenAi, burnrate_core::SourceId) {
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let sim = SimProvider::openai(KEY).await;
    sim.set_lines(fixture());
    let source = OpenAi { base_url: sim.base_url().parse().unwrap(), admin_key: KEY.to_owned().into() };
    (scope, sim, source, burnrate_core::SourceId::generate())
}

fn lake_totals(rows: &[CostRow]) -> BTreeMap<Key, Decimal> {
    let mut t = BTreeMap::new();
    for r in rows {
        *t.entry((r.charge_day, r.provider_name.clone(), r.sub_account_id.clone(), r.model.clone())).or_default() +=
            r.billed_cost;
    }
    t
}

fn fixture_totals(provider: &str, lines: &[CostLine]) -> BTreeMap<Key, Decimal> {
    let mut t = BTreeMap::new();
    for l in lines {
        *t.entry((l.day, provider.to_owned(), l.group.clone(), l.model.clone())).or_default() += l.amount;
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_totals_by_day_provider_project_and_model_equal_both_fixtures_exactly() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let lake = &app.lake;
    let window = SyncWindow::new(d("2026-01-01"), d("2026-02-15")).unwrap().whole_months();
    let lines = fixture();

    let openai = SimProvider::openai(KEY).await;
    openai.set_lines(lines.clone());
    let pull = OpenAi { base_url: openai.base_url().parse().unwrap(), admin_key: KEY.to_owned().into() }
        .pull_costs(&http(), window)
        .await
        .unwrap();
    let openai_source = burnrate_core::SourceId::generate();
    let done = lake.replace(&app.store, scope, openai_source, window, &pull.records).await.unwrap();
    assert_eq!((done.files, done.rows), (2, 45 * 4), "one file per month");

    let anthropic = SimProvider::anthropic(KEY).await;
    anthropic.set_lines(lines.clone());
    let pull = Anthropic { base_url: anthropic.base_url().parse().unwrap(), admin_key: KEY.to_owned().into() }
        .pull_costs(&http(), window)
        .await
        .unwrap();
    lake.replace(&app.store, scope, burnrate_core::SourceId::generate(), window, &pull.records).await.unwrap();

    let rows = lake.read_costs(&app.store, scope).await.unwrap();
    let mut expected = fixture_totals("OpenAI", &lines);
    expected.extend(fixture_totals("Anthropic", &lines));
    assert_eq!(lake_totals(&rows), expected);
    let grand: Decimal = rows.iter().map(|r| r.billed_cost).sum();
    assert_eq!(grand, lines.iter().map(|l| l.amount).sum::<Decimal>() * Decimal::TWO);

    // Another organization sees none of it.
    let (other, _) = app.create_org("Other", "x@example.com").await;
    assert!(lake.read_costs(&app.store, other).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restated_day_is_counted_once_with_its_new_value() {
    let app = TestApp::spawn().await;
    let (scope, sim, source, id) = openai_org(&app).await;
    let lake = &app.lake;
    let backfill = SyncWindow::new(d("2026-01-01"), d("2026-02-15")).unwrap().whole_months();
    let pull = source.pull_costs(&http(), backfill).await.unwrap();
    lake.replace(&app.store, scope, id, backfill, &pull.records).await.unwrap();

    // The provider revises 2026-02-10; the next sync re-pulls the trailing days.
    sim.restate(d("2026-02-10"), Decimal::TWO);
    let trailing = SyncWindow::trailing_days(d("2026-02-15"), 3).unwrap().whole_months();
    let pull = source.pull_costs(&http(), trailing).await.unwrap();
    let done = lake.replace(&app.store, scope, id, trailing, &pull.records).await.unwrap();
    assert_eq!(done.superseded, 1, "only February's file is replaced");

    let rows = lake.read_costs(&app.store, scope).await.unwrap();
    let mut lines = fixture();
    for l in lines.iter_mut().filter(|l| l.day == d("2026-02-10")) {
        l.amount *= Decimal::TWO;
    }
    assert_eq!(
        lake_totals(&rows),
        fixture_totals("OpenAI", &lines),
        "January intact, February once, with the new value"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_between_writing_files_and_committing_leaves_the_previous_data_visible() {
    let app = TestApp::spawn().await;
    let (scope, sim, source, id) = openai_org(&app).await;
    let lake = &app.lake;
    let window = SyncWindow::new(d("2026-01-01"), d("2026-03-01")).unwrap();
    let pull = source.pull_costs(&http(), window).await.unwrap();
    lake.replace(&app.store, scope, id, window, &pull.records).await.unwrap();
    let before = lake_totals(&lake.read_costs(&app.store, scope).await.unwrap());

    // The next run writes its files, then dies before the manifest commit.
    sim.restate(d("2026-01-05"), Decimal::TWO);
    let pull = source.pull_costs(&http(), window).await.unwrap();
    let written = lake.write_costs(&app.store, scope, id, window, &pull.records).await.unwrap();
    assert_eq!(written.len(), 2);
    assert!(!walk(app.lake_path()).is_empty());
    assert_eq!(
        lake_totals(&lake.read_costs(&app.store, scope).await.unwrap()),
        before,
        "uncommitted files are not data"
    );

    // The run after completes, and the data is the new version, counted once.
    let done = lake.replace(&app.store, scope, id, window, &pull.records).await.unwrap();
    assert_eq!(done.superseded, 2);
    let after = lake_totals(&lake.read_costs(&app.store, scope).await.unwrap());
    let jan5 = |t: &BTreeMap<Key, Decimal>| -> Decimal {
        t.iter().filter(|(k, _)| k.0 == d("2026-01-05")).map(|(_, v)| *v).sum()
    };
    assert_eq!(jan5(&after), jan5(&before) * Decimal::TWO);
    assert_eq!(after.len(), before.len());

    // Garbage collection: the superseded files and the dead run's pending files leave the disk;
    // the live data stays exactly as it was.
    let files = |dir: &std::path::Path| walk(dir).len();
    let before_gc = files(app.lake_path());
    let collected =
        lake.collect_garbage(&app.store, scope, chrono::Duration::zero(), chrono::Duration::zero()).await.unwrap();
    assert_eq!(collected, 4, "two superseded, two orphaned by the killed run");
    assert_eq!(files(app.lake_path()), before_gc - 8, "each with its roll-up");
    assert_eq!(lake_totals(&lake.read_costs(&app.store, scope).await.unwrap()), after);
    assert_eq!(
        lake.collect_garbage(&app.store, scope, chrono::Duration::zero(), chrono::Duration::zero()).await.unwrap(),
        0
    );

    // Windows that are not whole months are refused rather than dropping the rest of a month.
    let partial = SyncWindow::new(d("2026-01-03"), d("2026-01-06")).unwrap();
    assert!(
        lake.write_costs(&app.store, scope, id, partial, &[])
            .await
            .unwrap_err()
            .to_string()
            .contains("must cover whole months")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sync_each_source_exactly_once_per_schedule_tick() {
    use burnrate_sync::{SourceConfig, Syncer, run_pass};
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let today = chrono::Utc::now().date_naive();
    let openai = SimProvider::openai(KEY).await;
    openai.set_lines(burnrate_sim::demo::openai_lines(today, 20));
    let anthropic = SimProvider::anthropic(KEY).await;
    anthropic.set_lines(burnrate_sim::demo::anthropic_lines(today, 20));
    openai.set_usage(usage_lines(today));
    anthropic.set_usage(usage_lines(today));
    let mut t = app.store.tenant(scope).await.unwrap();
    let mut ids = Vec::new();
    for (kind, sim) in [("openai", &openai), ("anthropic", &anthropic)] {
        let plain = burnrate_sync::SourceKind::parse(kind).and_then(SourceConfig::plain).unwrap();
        let config = SourceConfig { base_url: Some(sim.base_url()), ..plain }.to_json();
        let new = burnrate_store::NewSource { kind, name: kind, config: &config, secret: KEY };
        ids.push(t.create_source(&app.vault, &new).await.unwrap());
    }
    t.commit().await.unwrap();

    // Two instances: their own pools and workers, one database and one lake.
    let instance = || async {
        Syncer::new(
            burnrate_store::Store::connect(&app.db.app_url).await.unwrap(),
            std::sync::Arc::new(burnrate_store::Vault::new(
                burnrate_crypto::MasterKeyRing::parse(&app.master_keys).unwrap(),
            )),
            app.lake.clone(),
            http(),
        )
    };
    let (a, b) = (instance().await, instance().await);
    let anthropic_pages = |w: SyncWindow| (w.days() + 30) / 31;
    // Usage: pages of 31 days up to yesterday, then one page of hours for yesterday and today.
    let usage_pages = |w: SyncWindow| {
        let (daily, hourly) = w.split_at(today - chrono::Duration::days(1));
        daily.map_or(0, anthropic_pages) + i64::from(hourly.is_some())
    };
    // Requests to one report's endpoint (a sync calls both the cost and the usage report).
    let calls = |sim: &SimProvider, path: &str| {
        sim.requests().iter().filter(|r| r.path_and_query.starts_with(path)).count() as i64
    };
    let (openai_costs, anthropic_costs) = ("/v1/organization/costs", "/v1/organizations/cost_report");
    let (openai_usage, anthropic_usage) =
        ("/v1/organization/usage/completions", "/v1/organizations/usage_report/messages");
    let source = |id| {
        let store = app.store.clone();
        async move {
            let mut t = store.tenant(scope).await.unwrap();
            let s = t.source(id).await.unwrap().unwrap();
            t.commit().await.unwrap();
            s
        }
    };
    let next_window = |source: &burnrate_store::SourceRecord, today| {
        SourceConfig::read(&source.name, &source.kind, &source.config)
            .unwrap()
            .next_window(source.last_success_at.is_some(), today)
    };
    let first_window = next_window(&source(ids[1]).await, today);

    let now = chrono::Utc::now();
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(run_pass(&a, "instance-a", now), run_pass(&b, "instance-b", now));
        ra.unwrap();
        rb.unwrap();
    }
    assert_eq!(calls(&openai, openai_costs), 1, "one sync of one cost page");
    assert_eq!(calls(&openai, openai_usage), usage_pages(first_window), "usage pages hold 31 days too");
    assert_eq!(calls(&anthropic, anthropic_costs), anthropic_pages(first_window), "one sync, every page once");
    assert_eq!(calls(&anthropic, anthropic_usage), usage_pages(first_window));

    // The next tick syncs each source once more: the trailing re-pull.
    let second_window = next_window(&source(ids[1]).await, today);
    assert!(
        second_window.days() < first_window.days() || first_window.days() <= 62,
        "after the backfill only the trailing days are re-pulled"
    );
    let later = now + chrono::Duration::minutes(60);
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(run_pass(&a, "instance-a", later), run_pass(&b, "instance-b", later));
        ra.unwrap();
        rb.unwrap();
    }
    assert_eq!(calls(&openai, openai_costs), 2);
    assert_eq!(calls(&anthropic, anthropic_costs), anthropic_pages(first_window) + anthropic_pages(second_window));
    assert_eq!(calls(&anthropic, anthropic_usage), usage_pages(first_window) + usage_pages(second_window));

    let rows = app.lake.read_costs(&app.store, scope).await.unwrap();
    let expected: Decimal = burnrate_sim::demo::openai_lines(today, 20)
        .iter()
        .chain(&burnrate_sim::demo::anthropic_lines(today, 20))
        .map(|l| l.amount)
        .sum();
    assert_eq!(rows.iter().map(|r| r.billed_cost).sum::<Decimal>(), expected, "every cost line once");
    let usage = app.lake.read_usage(&app.store, scope).await.unwrap();
    let output: i64 = usage.iter().map(|u| u.output_tokens).sum();
    let fixture_output: i64 = usage_lines(today).iter().map(|l| l.output).sum::<i64>() * 2;
    assert_eq!(output, fixture_output, "usage from both providers, once");
}

fn usage_lines(today: NaiveDate) -> Vec<burnrate_sim::UsageLine> {
    (0..20)
        .map(|back| burnrate_sim::UsageLine {
            endpoint: String::new(),
            units: 0,
            day: today - chrono::Duration::days(back),
            group: Some("proj_a".into()),
            api_key: Some("key_1".into()),
            model: "gpt-4o".into(),
            uncached: 10_000 + back,
            cached: 2_000,
            cache_write: 300,
            output: 4_000 + back * 3,
            requests: 50,
            web_searches: 1,
        })
        .collect()
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_on_a_later_page_fails_the_sync_and_changes_nothing() {
    use burnrate_sync::{SourceConfig, Syncer};
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let today = chrono::Utc::now().date_naive();
    let sim = SimProvider::anthropic(KEY).await;
    sim.set_lines(burnrate_sim::demo::anthropic_lines(today, 90));
    let config = serde_json::to_string(&SourceConfig {
        base_url: Some(sim.base_url()),
        ..SourceConfig::plain(burnrate_sync::SourceKind::Anthropic).unwrap()
    })
    .unwrap();
    let mut t = app.store.tenant(scope).await.unwrap();
    let id = t
        .create_source(
            &app.vault,
            &burnrate_store::NewSource { kind: "anthropic", name: "a", config: &config, secret: KEY },
        )
        .await
        .unwrap();
    t.commit().await.unwrap();
    let syncer = Syncer::new(app.store.clone(), std::sync::Arc::clone(&app.vault), app.lake.clone(), http());
    let window =
        SyncWindow::new(today - chrono::Duration::days(89), today + chrono::Duration::days(1)).unwrap().whole_months();
    syncer.sync(scope, id, window).await.unwrap();
    let before = lake_totals(&app.lake.read_costs(&app.store, scope).await.unwrap());

    // The provider revises everything, but its third page comes back truncated.
    sim.restate(today - chrono::Duration::days(1), Decimal::TWO);
    sim.push_fault(burnrate_sim::Fault::Pass);
    sim.push_fault(burnrate_sim::Fault::Pass);
    sim.push_fault(burnrate_sim::Fault::MalformedJson);
    let err = syncer.sync(scope, id, window).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "Anthropic GET /v1/organizations/cost_report for {window}: the response is not the documented JSON"
        )),
        "{err}"
    );
    assert_eq!(
        lake_totals(&app.lake.read_costs(&app.store, scope).await.unwrap()),
        before,
        "no partial data is visible"
    );
    let mut t = app.store.tenant(scope).await.unwrap();
    let source = t.source(id).await.unwrap().unwrap();
    t.commit().await.unwrap();
    assert_eq!(source.last_error.as_deref(), Some(err.as_str()), "the source says why");
}

/// A source's settings row as someone with the database in hand could leave it: not JSON.
async fn corrupt_settings(app: &TestApp, id: burnrate_core::SourceId) {
    let sql = "UPDATE sources SET config = '{\"backfill_days\": 90, \"base_url\"' WHERE id = $1";
    match app.db.kind {
        burnrate_testkit::BackendKind::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&app.db.app_url).await.unwrap();
            sqlx::query(sql).bind(id.as_uuid()).execute(&mut conn).await.unwrap();
        }
        burnrate_testkit::BackendKind::Postgres => {
            let mut su = app.db.superuser().await;
            sqlx::query(sql).bind(id.as_uuid()).execute(&mut su).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_whose_settings_no_longer_read_fails_naming_it_and_nothing_is_pulled() {
    use burnrate_sync::SourceConfig;
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let sim = SimProvider::openai(KEY).await;
    sim.set_lines(fixture());
    let config = serde_json::to_string(&SourceConfig {
        base_url: Some(sim.base_url()),
        ..SourceConfig::plain(burnrate_sync::SourceKind::OpenAi).unwrap()
    })
    .unwrap();
    let mut t = app.store.tenant(scope).await.unwrap();
    let id = t
        .create_source(
            &app.vault,
            &burnrate_store::NewSource { kind: "openai", name: "prod", config: &config, secret: KEY },
        )
        .await
        .unwrap();
    t.commit().await.unwrap();
    corrupt_settings(&app, id).await;

    // The schedule's pass and a person's "sync now" both refuse it.
    burnrate_sync::run_pass(&app.syncer, "test", chrono::Utc::now()).await.unwrap();
    let mut t = app.store.tenant(scope).await.unwrap();
    let source = t.source(id).await.unwrap().unwrap();
    t.commit().await.unwrap();
    let error = burnrate_sync::enqueue_next(&app.syncer, scope, &source, chrono::Utc::now()).await.unwrap_err();
    let said = error.to_string();
    assert!(said.starts_with("source \"prod\": its stored settings are unreadable ("), "{said}");

    let mut t = app.store.tenant(scope).await.unwrap();
    let source = t.source(id).await.unwrap().unwrap();
    let files = t.live_lake_files(burnrate_store::LakeTable::Costs).await.unwrap();
    t.commit().await.unwrap();
    assert_eq!(source.last_error.as_deref(), Some(said.as_str()), "the source says why, naming itself");
    assert!(source.last_success_at.is_none());
    assert!(files.is_empty(), "no backfill was written: {files:?}");
    assert_eq!(sim.requests().len(), 0, "the provider was never called");

    // People see it as unreadable, never as defaults, beside the organization's other sources
    // — and it can still be removed.
    let c = app.login("o@example.com").await;
    let key = crate::create_key(&c, "k", "read").await;
    let listed = c.api(reqwest::Method::GET, "/api/v1/sources", &key, None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let row = &listed.json()["sources"][0];
    assert!(row["config"].is_null(), "no settings made up: {row}");
    assert!(row["last_error"].as_str().unwrap().contains("its stored settings are unreadable"), "{row}");
    let page = c.get("/sources").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Its stored settings no longer read"), "{}", page.text);
    assert!(!page.text.contains("name=\"backfill_days\""), "no settings form on made-up values");
    let form = [("keep_data", "no")];
    let removed = c.post_form(&format!("/sources/{id}/delete"), &form).await;
    assert!(removed.status == 303 || removed.status == 200, "{}", removed.text);
    let mut t = app.store.tenant(scope).await.unwrap();
    assert!(t.source(id).await.unwrap().is_none(), "removed");
    t.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_usage_is_priced_as_genai_prices_prices_it_and_an_unknown_model_stays_unpriced() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let today = chrono::Utc::now().date_naive();
    let mut lines = usage_lines(today);
    for (i, line) in lines.iter_mut().enumerate() {
        line.model = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-from-the-future"][i % 3].into();
        line.cache_write = 40_000 + i as i64;
    }
    // Yesterday and today come by the hour, a row each; earlier days a row a day.
    let hourly_from = today - chrono::Duration::days(1);
    let expected_rows: usize = lines.iter().map(|l| if l.day >= hourly_from { 24 } else { 1 }).sum();
    sync_anthropic_usage(&app, scope, lines, today - chrono::Duration::days(24)..today + chrono::Duration::days(1))
        .await;

    let spill = tempfile::tempdir().unwrap();
    let engine = crate::sql::engine(&app, spill.path(), 64 << 20);
    let sql = "SELECT model, CAST(bucket_start AS VARCHAR), CAST(input_uncached_tokens + input_cached_tokens + input_cache_write_tokens AS VARCHAR), \
               CAST(input_cached_tokens AS VARCHAR), CAST(input_cache_write_tokens AS VARCHAR), CAST(input_cache_write_1h_tokens AS VARCHAR), \
               CAST(output_tokens AS VARCHAR), x_extra, CAST(computed_cost AS VARCHAR), price_ref FROM usage ORDER BY bucket_start, model";
    let (_, out) = engine.collect(scope, sql).await.unwrap();
    // Each column's values as text, NULL as "NULL".
    let column = |i: usize| -> Vec<String> {
        out.iter()
            .flat_map(|b| {
                let a = b.column(i);
                (0..a.len())
                    .map(|r| {
                        if a.is_null(r) {
                            "NULL".to_owned()
                        } else {
                            datafusion::arrow::util::display::array_value_to_string(a, r).unwrap()
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (models, starts, costs, refs) = (column(0), column(1), column(8), column(9));
    assert_eq!(models.len(), expected_rows, "every synced bucket");

    // The oracle: genai-prices' calc_price of each class alone, times its tokens.
    let cases: Vec<serde_json::Value> = (0..models.len())
        .map(|i| {
            let n = |c: usize| column(c)[i].parse::<u64>().unwrap();
            let extra: serde_json::Value = serde_json::from_str(&column(7)[i]).unwrap();
            serde_json::json!({
                "provider": "anthropic", "model": models[i], "context": {}, "mode": "row",
                "at": starts[i].replace(' ', "T").trim_end_matches('Z').to_owned() + "+00:00",
                "usage": { "input_tokens": n(2), "cache_read_tokens": n(3), "cache_write_tokens": n(4),
                           "cache_write_1h_tokens": n(5), "output_tokens": n(6),
                           "web_searches": extra["web_search_requests"].as_u64().unwrap_or(0) },
            })
        })
        .collect();
    let python = std::env::var("BURNRATE_TEST_PYTHON").expect("BURNRATE_TEST_PYTHON (scripts/test sets it)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../prices/oracle/calc_price.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&serde_json::to_vec(&cases).unwrap()).unwrap();
    let answers: Vec<serde_json::Value> = serde_json::from_slice(&child.wait_with_output().unwrap().stdout).unwrap();
    use datafusion::arrow::array::Array;
    let mut priced = 0;
    for (i, answer) in answers.iter().enumerate() {
        if models[i] == "claude-from-the-future" {
            assert!(answer["error"].as_str().unwrap().contains("Unable to find model"), "{answer}");
            assert_eq!((costs[i].as_str(), refs[i].as_str()), ("NULL", "NULL"), "unpriced, never zero");
            continue;
        }
        let theirs = Decimal::from_str(answer["cost"].as_str().unwrap()).unwrap();
        assert_eq!(Decimal::from_str(&costs[i]).unwrap(), theirs, "{}: {}", models[i], cases[i]);
        assert!(refs[i].starts_with("genai-prices 0.2.3 anthropic/claude-"), "{}", refs[i]);
        priced += 1;
    }
    assert!(priced >= 13, "{priced} priced rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_catalogue_shows_its_difference_then_prices_the_next_sync_and_is_in_every_audit_log() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "o@acme.test").await;
    app.create_org("Globex", "o@globex.test").await;
    let dir = tempfile::tempdir().unwrap();
    // The shipped catalogue with a negotiated input rate for one model, and a model of its own.
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../prices/catalogue/genai-prices.json")).unwrap();
    let mut catalogue: serde_json::Value = serde_json::from_str(&shipped).unwrap();
    catalogue["version"] = "0.2.3-negotiated".into();
    for provider in catalogue["providers"].as_array_mut().unwrap() {
        let id = provider["id"].as_str().unwrap().to_owned();
        let models = provider["models"].as_array_mut().unwrap();
        if id == "anthropic" {
            let sonnet = models.iter_mut().find(|m| m["id"] == "claude-sonnet-4-5").unwrap();
            for entry in sonnet["prices"].as_array_mut().unwrap() {
                entry["prices"]["input_mtok"] = "2.5".into();
            }
        }
        if id == "openai" {
            models.push(serde_json::json!({ "id": "gpt-burnrate-test", "match": { "equals": "gpt-burnrate-test" },
                                            "prices": [{ "prices": { "input_mtok": "1", "output_mtok": "2" } }] }));
        }
    }
    let file = dir.path().join("catalogue.json");
    std::fs::write(&file, serde_json::to_vec(&catalogue).unwrap()).unwrap();
    let path = file.to_str().unwrap();
    let run = async |args: &[&str]| {
        let out = crate::burnrate(&app, args, &[], None).await;
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let audit_of = async |email: &str| app.login(email).await.get("/audit").await.text;

    // A dry run first: the difference, and nothing changes.
    let (code, out, err) = run(&["prices", "import", path]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("genai-prices 0.2.3-negotiated")
            && out.contains("against the current genai-prices 0.2.3: 2 models changed"),
        "{out}"
    );
    assert!(
        out.contains("+ openai/gpt-burnrate-test (new)")
            && out.contains("~ anthropic/claude-sonnet-4-5 (rates changed)"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing changed"), "{out}");
    assert!(!audit_of("o@acme.test").await.contains("price_catalogue_imported"));
    let (_, shown, _) = run(&["prices", "show"]).await;
    assert!(shown.starts_with("genai-prices 0.2.3 (shipped with burnrate)"), "{shown}");

    // A catalogue that does not check out is refused, naming why, and nothing changes.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, shipped.replacen("\"input_mtok\":\"3\"", "\"input_mtok\":\"-3\"", 1)).unwrap();
    let (code, _, err) = run(&["prices", "import", bad.to_str().unwrap(), "--apply"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bad.json") && err.contains("\"-3\" is not a non-negative decimal"), "{err}");

    // Applied: in both organizations' logs, and the next sync prices with it.
    let (code, out, err) = run(&["prices", "import", path, "--apply"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("applied") && out.contains("recorded in the audit log of 2 organizations"), "{out}");
    for email in ["o@acme.test", "o@globex.test"] {
        let audit = audit_of(email).await;
        assert!(audit.contains("price_catalogue_imported") && audit.contains("burnrate prices import"), "{email}");
    }
    let (_, shown, _) = run(&["prices", "show"]).await;
    assert!(shown.starts_with("genai-prices 0.2.3-negotiated (imported "), "{shown}");
    let (_, again, _) = run(&["prices", "import", path, "--apply"]).await;
    assert!(again.contains("0 models changed") && again.contains("nothing to apply"), "{again}");

    let today = chrono::Utc::now().date_naive();
    // A day before yesterday: one daily bucket.
    let usage = vec![million_input_tokens(today - chrono::Duration::days(2))];
    sync_anthropic_usage(&app, scope, usage, today - chrono::Duration::days(3)..today + chrono::Duration::days(1))
        .await;
    let usage = app.lake.read_usage(&app.store, scope).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(
        usage[0].computed_cost.map(|d| d.normalize().to_string()).as_deref(),
        Some("2.5"),
        "1 MTok at the negotiated $2.50"
    );
    assert_eq!(
        usage[0].price_ref.as_deref(),
        Some("genai-prices 0.2.3-negotiated anthropic/claude-sonnet-4-5, base tier")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizations_own_price_prices_its_days_and_a_reprice_shows_the_difference_before_applying_it() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "o@acme.test").await;
    let (other, _) = app.create_org("Globex", "o@globex.test").await;
    let c = app.login("o@acme.test").await;
    let key = crate::create_key(&c, "k", "admin").await;
    let today = chrono::Utc::now().date_naive();
    let (before, from) = (today - chrono::Duration::days(6), today - chrono::Duration::days(5));

    // Refused, each naming what is wrong.
    for (body, says) in [
        (
            serde_json::json!({ "provider": "anthropics", "model": "m", "effective_from": from, "discount_percent": "10" }),
            "is not a provider of the catalogue",
        ),
        (
            serde_json::json!({ "provider": "anthropic", "model": "m", "effective_from": from }),
            "give either discount_percent or rates",
        ),
        (
            serde_json::json!({ "provider": "anthropic", "model": "m", "effective_from": from, "discount_percent": "0" }),
            "more than 0, at most 100",
        ),
        (
            serde_json::json!({ "provider": "anthropic", "model": "m", "effective_from": from, "rates": { "seats": "1" } }),
            "is not a price key (input_mtok",
        ),
        (
            serde_json::json!({ "provider": "anthropic", "model": "m", "effective_from": from, "rates": { "input_mtok": "-1" } }),
            "is not a non-negative decimal",
        ),
        (
            serde_json::json!({ "provider": "anthropic", "model": "m", "effective_from": from, "effective_to": before, "discount_percent": "5" }),
            "before effective_from",
        ),
        (
            serde_json::json!({ "provider": "anthropic", "model": "m", "effective_from": "the 15th", "discount_percent": "5" }),
            "is not a day (YYYY-MM-DD)",
        ),
    ] {
        let r = c.api(Method::POST, "/api/v1/prices/overrides", &key, Some(body.clone())).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert!(r.text.contains(says), "{body}: {}", r.text);
    }
    // A negotiated input rate ($2 instead of the catalogue's $3 a million) from `from` on.
    let own = serde_json::json!({ "provider": "anthropic", "model": "claude-sonnet-4-5", "effective_from": from,
                                  "rates": { "input_mtok": "2.00" }, "note": "contract 2026-11" });
    let r = c.api(Method::POST, "/api/v1/prices/overrides", &key, Some(own)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["rates"], serde_json::json!({ "input_mtok": "2" }), "{}", r.text);
    let listed = c.api(Method::GET, "/api/v1/prices/overrides", &key, None).await.json();
    assert_eq!(listed["overrides"].as_array().unwrap().len(), 1);

    // One million uncached input tokens on each of the two days, in both organizations.
    let line = million_input_tokens;
    let mut priced = Vec::new();
    for org in [scope, other] {
        sync_anthropic_usage(&app, org, vec![line(before), line(from)], before..today + chrono::Duration::days(1))
            .await;
        let mut usage = app.lake.read_usage(&app.store, org).await.unwrap();
        usage.sort_by_key(|u| u.charge_day);
        priced.push(
            usage.iter().map(|u| (u.charge_day, u.computed_cost.unwrap().normalize().to_string())).collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        priced[0],
        [(before, "3".to_owned()), (from, "2".to_owned())],
        "the day before at the catalogue, then the override"
    );
    assert_eq!(
        priced[1],
        [(before, "3".to_owned()), (from, "3".to_owned())],
        "another organization's prices are its own"
    );
    let audit = c.get("/audit").await.text;
    assert!(audit.contains("price_override_created"), "in the audit log");

    // The contract changes: $1.50 from the same day. Synced usage keeps its prices until
    // repriced; a dry run shows the difference first and changes nothing.
    let id = listed["overrides"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/prices/overrides/{id}"), &key, None).await.status, 204);
    let own = serde_json::json!({ "provider": "anthropic", "model": "claude-sonnet-4-5", "effective_from": from,
                                  "rates": { "input_mtok": "1.50" } });
    assert_eq!(c.api(Method::POST, "/api/v1/prices/overrides", &key, Some(own)).await.status, 201);
    let costs = async || {
        let mut usage = app.lake.read_usage(&app.store, scope).await.unwrap();
        usage.sort_by_key(|u| u.charge_day);
        usage.iter().map(|u| u.computed_cost.unwrap().normalize().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(costs().await, ["3", "2"], "not repriced silently");
    let ask = |dry_run: bool| serde_json::json!({ "from": before, "to": today, "dry_run": dry_run });
    let dry = c.api(Method::POST, "/api/v1/prices/reprice", &key, Some(ask(true))).await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    let dry = dry.json();
    assert_eq!(
        (dry["rows"].as_u64(), dry["changed"].as_u64(), dry["applied"].as_bool()),
        (Some(2), Some(1), Some(false)),
        "{dry}"
    );
    assert_eq!(
        (dry["before"].as_str(), dry["after"].as_str(), dry["difference"].as_str()),
        (Some("5"), Some("4.5"), Some("-0.5")),
        "{dry}"
    );
    assert_eq!(
        dry["models"],
        serde_json::json!([{ "provider": "Anthropic", "model": "claude-sonnet-4-5", "before": "5", "after": "4.5", "difference": "-0.5" }])
    );
    assert_eq!(costs().await, ["3", "2"], "a dry run writes nothing");
    assert!(!c.get("/audit").await.text.contains("usage_repriced"));
    // Applied: the new prices, audited; asked again, nothing is left to change.
    let done = c.api(Method::POST, "/api/v1/prices/reprice", &key, Some(ask(false))).await.json();
    assert_eq!((done["changed"].as_u64(), done["applied"].as_bool()), (Some(1), Some(true)), "{done}");
    assert_eq!(costs().await, ["3", "1.5"]);
    assert!(c.get("/audit").await.text.contains("usage_repriced"));
    let again = c.api(Method::POST, "/api/v1/prices/reprice", &key, Some(ask(true))).await.json();
    assert_eq!(again["changed"], 0, "{again}");
    // The page: the catalogue in use and the organization's own prices; the form says what is wrong.
    let page = c.get("/prices").await.text;
    assert!(page.contains("genai-prices 0.2.3</strong>, shipped with burnrate"), "{page}");
    assert!(page.contains("anthropic/claude-sonnet-4-5") && page.contains("input $1.5 / MTok"), "{page}");
    let both = [
        ("provider", "openai"),
        ("model", "gpt-4o"),
        ("effective_from", "2026-01-01"),
        ("discount_percent", "5"),
        ("input_mtok", "1"),
    ];
    let refused = c.post_form("/prices/overrides", &both).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("give either discount_percent or rates (not both)"), "{}", refused.text);
    let backwards = serde_json::json!({ "from": today, "to": before });
    let r = c.api(Method::POST, "/api/v1/prices/reprice", &key, Some(backwards)).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("to: before from"), "{}", r.text);
}

/// Connects a simulated Anthropic organization answering `usage` (and no costs) as `scope`'s
/// source and syncs the whole months around `days` through a syncer of its own.
async fn sync_anthropic_usage(
    app: &TestApp,
    scope: burnrate_store::OrgScope,
    usage: Vec<burnrate_sim::UsageLine>,
    days: std::ops::Range<NaiveDate>,
) {
    sync_anthropic(app, scope, usage, Vec::new(), days).await;
}

/// As [`sync_anthropic_usage`], the provider billing `costs` too.
pub(crate) async fn sync_anthropic(
    app: &TestApp,
    scope: burnrate_store::OrgScope,
    usage: Vec<burnrate_sim::UsageLine>,
    costs: Vec<CostLine>,
    days: std::ops::Range<NaiveDate>,
) {
    let anthropic = SimProvider::anthropic(KEY).await;
    anthropic.set_usage(usage);
    anthropic.set_lines(costs);
    let mut t = app.store.tenant(scope).await.unwrap();
    let plain = burnrate_sync::SourceKind::parse("anthropic").and_then(burnrate_sync::SourceConfig::plain).unwrap();
    let config = burnrate_sync::SourceConfig { base_url: Some(anthropic.base_url()), ..plain }.to_json();
    let new = burnrate_store::NewSource { kind: "anthropic", name: "Anthropic", config: &config, secret: KEY };
    let id = t.create_source(&app.vault, &new).await.unwrap();
    t.commit().await.unwrap();
    let syncer = burnrate_sync::Syncer::new(app.store.clone(), app.vault.clone(), app.lake.clone(), http());
    let window = SyncWindow::new(days.start, days.end).unwrap().whole_months();
    syncer.sync(scope, id, window).await.unwrap();
}

/// A day's usage of one million uncached input tokens of claude-sonnet-4-5, nothing else.
pub(crate) fn million_input_tokens(day: NaiveDate) -> burnrate_sim::UsageLine {
    burnrate_sim::UsageLine {
        day,
        model: "claude-sonnet-4-5".into(),
        uncached: 1_000_000,
        cached: 0,
        cache_write: 0,
        output: 0,
        web_searches: 0,
        ..usage_lines(day).remove(0)
    }
}

/// A day's bill of `model` in the workspace [`million_input_tokens`] uses, `amount` dollars.
pub(crate) fn bill(day: NaiveDate, model: &str, amount: &str) -> CostLine {
    CostLine {
        day,
        group: Some("proj_a".into()),
        item: format!("{model} usage - Input Tokens"),
        model: Some(model.into()),
        amount: amount.parse().unwrap(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_sets_each_days_bill_against_its_priced_usage_and_lists_unpriced_models() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "o@acme.test").await;
    let c = app.login("o@acme.test").await;
    let key = crate::create_key(&c, "k", "admin").await;
    let today = chrono::Utc::now().date_naive();
    let day = |back: i64| today - chrono::Duration::days(back);
    let bill = |back: i64, model: &str, amount: &str| bill(day(back), model, amount);
    // A million input tokens of claude-sonnet-4-5 cost $3 at the catalogue's rate.
    let usage = vec![
        million_input_tokens(day(4)),
        million_input_tokens(day(3)),
        burnrate_sim::UsageLine { model: "claude-from-the-future".into(), ..million_input_tokens(day(2)) },
    ];
    let costs = vec![
        bill(4, "claude-sonnet-4-5", "3.00"),
        // Billed at another rate than the catalogue's.
        bill(3, "claude-sonnet-4-5", "3.60"),
        bill(2, "claude-from-the-future", "5"),
        // Billed, with no usage reported.
        bill(1, "claude-sonnet-4-5", "1.25"),
    ];
    sync_anthropic(&app, scope, usage, costs, day(5)..today + chrono::Duration::days(1)).await;

    let r = c.api(Method::GET, "/api/v1/reconciliation", &key, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!(body["to"], serde_json::json!(day(1)), "the last complete day by default");
    let rows: Vec<(String, String, String, String)> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |f: &str| r[f].as_str().unwrap_or("null").to_owned();
            (text("model"), text("billed_cost"), text("computed_cost"), text("gap_kind"))
        })
        .collect();
    let row = |m: &str, b: &str, c: &str, k: &str| (m.to_owned(), b.to_owned(), c.to_owned(), k.to_owned());
    assert_eq!(
        rows,
        [
            row("claude-sonnet-4-5", "3", "3", "none"),
            row("claude-sonnet-4-5", "3.6", "3", "price"),
            row("claude-from-the-future", "5", "null", "unpriced"),
            row("claude-sonnet-4-5", "1.25", "null", "quantity"),
        ],
        "{body}"
    );
    assert_eq!(body["rows"][1]["difference"], "0.6");
    assert_eq!(body["rows"][1]["coverage"], "0.8333");
    assert_eq!(
        body["unpriced_models"],
        serde_json::json!([{ "provider": "Anthropic", "model": "claude-from-the-future" }])
    );
    // A window of its own, and one that is not.
    let one =
        c.api(Method::GET, &format!("/api/v1/reconciliation?from={}&to={}", day(3), day(3)), &key, None).await.json();
    assert_eq!(one["rows"].as_array().unwrap().len(), 1, "{one}");
    // The organization's own tolerance: within 20 %, the bill at another rate is no gap.
    let tolerant = serde_json::json!({ "reconciliation_tolerance_percent": 20 });
    let r = c.api(Method::PATCH, "/api/v1/org", &key, Some(tolerant)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["reconciliation_tolerance_percent"], "20");
    let again = c.api(Method::GET, "/api/v1/reconciliation", &key, None).await.json();
    assert_eq!(again["rows"][1]["gap_kind"], "none", "{again}");
    // SQL's `reconciliation` is the same table, at the same tolerance.
    let (_, out) =
        app.engine.collect(scope, "SELECT model, gap_kind FROM reconciliation ORDER BY day, model").await.unwrap();
    let sql: Vec<(String, String)> = out
        .iter()
        .flat_map(|b| {
            use datafusion::arrow::array::AsArray;
            let (m, k) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
            (0..b.num_rows()).map(|i| (m.value(i).to_owned(), k.value(i).to_owned())).collect::<Vec<_>>()
        })
        .collect();
    let api: Vec<(String, String)> = again["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["model"].as_str().unwrap().to_owned(), r["gap_kind"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(sql, api);
    let r = c
        .api(Method::PATCH, "/api/v1/org", &key, Some(serde_json::json!({ "reconciliation_tolerance_percent": "150" })))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("is not a percentage from 0 to 100"), "{}", r.text);
    let r = c.api(Method::GET, "/api/v1/reconciliation?from=yesterday", &key, None).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("from: \\\"yesterday\\\" is not a day"), "{}", r.text);
    // The page says the same, and another organization's page has nothing to reconcile.
    let page = c.get("/reconciliation?from=yesterday").await;
    assert_eq!(page.status, 422, "{}", page.text);
    assert!(page.text.contains("id=\"reconciliation-error\"") && page.text.contains("is not a day"), "{}", page.text);
    app.create_org("Globex", "o@globex.test").await;
    let other = app.login("o@globex.test").await.get("/reconciliation").await;
    assert_eq!(other.status, 200);
    assert!(other.text.contains("Nothing to reconcile in these days"), "{}", other.text);
    assert!(!other.text.contains("claude-sonnet-4-5"), "only its own organization's rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todays_spend_is_estimated_from_priced_usage_until_its_cost_report_arrives_then_billed() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let (scope, owner) = app.create_org("Acme", "o@acme.test").await;
    let c = app.login("o@acme.test").await;
    let key = crate::create_key(&c, "k", "admin").await;
    let today = chrono::Utc::now().date_naive();
    let day = |back: i64| today - chrono::Duration::days(back);
    let bill = |back: i64, amount: &str| bill(day(back), "claude-sonnet-4-5", amount);
    let budget = serde_json::json!({ "name": "Claude", "amount": "0.01", "currency": "USD", "period": "month",
        "thresholds": [100], "forecast_alert": false, "email_members": [owner.to_string()] });
    let r = c.api(Method::POST, "/api/v1/budgets", &key, Some(budget)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // A million input tokens a day, $3 at the catalogue's rate; the cost report has reached the
    // day before yesterday only.
    let anthropic = SimProvider::anthropic(KEY).await;
    anthropic.set_usage((0..3).map(|back| million_input_tokens(day(back))).collect());
    anthropic.set_lines(vec![bill(2, "3")]);
    let mut t = app.store.tenant(scope).await.unwrap();
    let plain = burnrate_sync::SourceKind::parse("anthropic").and_then(burnrate_sync::SourceConfig::plain).unwrap();
    let config = burnrate_sync::SourceConfig { base_url: Some(anthropic.base_url()), ..plain }.to_json();
    let new = burnrate_store::NewSource { kind: "anthropic", name: "Anthropic", config: &config, secret: KEY };
    let id = t.create_source(&app.vault, &new).await.unwrap();
    t.commit().await.unwrap();
    let syncer = burnrate_sync::Syncer::new(app.store.clone(), app.vault.clone(), app.lake.clone(), http());
    let window = SyncWindow::new(day(3), today + chrono::Duration::days(1)).unwrap().whole_months();
    syncer.sync(scope, id, window).await.unwrap();

    use chrono::Datelike;
    // Yesterday and today are pulled by the hour: today's million tokens in 24 hourly rows.
    let asked: Vec<String> = anthropic.requests().into_iter().map(|r| r.path_and_query).collect();
    let hourly = asked.iter().filter(|p| p.contains("usage_report") && p.contains("bucket_width=1h")).count();
    assert_eq!(hourly, 1, "{asked:#?}");
    let sql = format!(
        "SELECT count(*), sum(input_uncached_tokens) FROM usage WHERE charge_day = DATE '{today}' \
         AND date_part('epoch', bucket_end) - date_part('epoch', bucket_start) = 3600"
    );
    let (_, out) = app.engine.collect(scope, &sql).await.unwrap();
    let ints = |c: usize| {
        use datafusion::arrow::array::AsArray;
        let column = datafusion::arrow::compute::cast(out[0].column(c), &datafusion::arrow::datatypes::DataType::Int64);
        column.unwrap().as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(0)
    };
    assert_eq!((ints(0), ints(1)), (24, 1_000_000));
    // (day, amount, estimated) of the overview's days.
    let days = |summary: &serde_json::Value| -> Vec<(String, Decimal, bool)> {
        let mut rows: Vec<(String, Decimal, bool)> = summary["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let amount = d["amount"].as_str().unwrap().parse().unwrap();
                (d["day"].as_str().unwrap().to_owned(), amount, d["estimated"] == true)
            })
            .collect();
        rows.sort();
        rows
    };
    let shown = |d: i64, amount: &str, estimated: bool| (day(d).to_string(), amount.parse().unwrap(), estimated);
    let summary = c.api(Method::GET, "/api/v1/spend", &key, None).await.json();
    assert_eq!(
        days(&summary),
        [shown(2, "3", false), shown(1, "3", true), shown(0, "3", true)],
        "yesterday and today from usage at its computed cost: {summary}"
    );
    let month_start = today.with_day(1).unwrap();
    let estimated_this_month = (0..2).filter(|back| day(*back) >= month_start).count();
    if estimated_this_month > 0 {
        let expected = Decimal::from(3 * estimated_this_month as i64);
        let part = &summary["month_to_date_estimated"][0]["amount"];
        assert_eq!(part.as_str().unwrap().parse::<Decimal>().unwrap(), expected, "{summary}");
    }
    let page = c.get("/").await.text;
    let row = format!("<tr class=\"estimated\"><td>{today}</td><td>Anthropic</td>");
    assert!(page.contains(&row), "today's row is labelled estimated:\n{page}");
    assert!(page.contains(">estimated</span>"), "{page}");
    // A budget alert on spend known only from usage says so.
    let fired = app.notifier.evaluate(scope, chrono::Utc::now(), 0).await.unwrap();
    assert_eq!(fired.len(), 1);
    let mail = app.smtp.wait_for("o@acme.test", "Claude: 100 % of budget reached").await;
    assert!(mail.body().contains("is estimated from usage the provider has not billed yet"), "{}", mail.body());

    // The cost report arrives for yesterday and today: billed, at what the provider bills.
    anthropic.set_lines(vec![bill(2, "3"), bill(1, "3.10"), bill(0, "1.25")]);
    syncer.sync(scope, id, window).await.unwrap();
    let summary = c.api(Method::GET, "/api/v1/spend", &key, None).await.json();
    assert_eq!(days(&summary), [shown(2, "3", false), shown(1, "3.1", false), shown(0, "1.25", false)], "{summary}");
    assert_eq!(summary["month_to_date_estimated"], serde_json::json!([]));
    assert!(!c.get("/").await.text.contains("<tr class=\"estimated\">"));
}

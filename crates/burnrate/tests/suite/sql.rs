//! SQL over an organization's lake: isolation, the locked surface, spilling.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use burnrate_core::{CostRecord, SyncWindow};
use burnrate_engine::{Engine, EngineConfig, EngineError};
use burnrate_store::OrgScope;
use burnrate_testkit::TestApp;
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, Decimal128Array, Int64Array, StringArray};
use datafusion::arrow::record_batch::RecordBatch;
use rust_decimal::Decimal;

fn jan(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, day).unwrap()
}

fn cost(day: NaiveDate, provider: &str, sku: String, amount: Decimal) -> CostRecord {
    let start = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
    CostRecord { sku_id: Some(sku), ..burnrate_sim::fixture::usd_cost(start, 24, amount, provider, "m") }
}

/// `n` cost rows in January, each its own SKU, with amounts of nine decimals.
pub(crate) fn costs(provider: &str, n: usize) -> Vec<CostRecord> {
    (0..n)
        .map(|i| {
            let amount = Decimal::from_str(&format!("{}.{:09}", i % 97, (i * 7_919) % 1_000_000_000)).unwrap();
            cost(jan(1 + (i % 31) as u32), provider, format!("sku-{i:07}"), amount)
        })
        .collect()
}

pub(crate) async fn load(app: &TestApp, scope: OrgScope, records: &[CostRecord]) {
    let window = SyncWindow::new(jan(1), NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()).unwrap();
    app.lake.replace(&app.store, scope, burnrate_core::SourceId::generate(), window, records).await.unwrap();
}

pub(crate) fn engine(app: &TestApp, spill: &Path, memory_limit: usize) -> Engine {
    let mut config = EngineConfig::new(spill.to_owned());
    config.memory_limit = memory_limit;
    // These tests run two of one organization's queries at once (each spilling on its own).
    config.concurrency.per_org = 2;
    Engine::new(config, app.store.clone(), app.lake.clone()).unwrap()
}

fn strings(batches: &[RecordBatch], col: usize) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column(col).as_any().downcast_ref::<StringArray>().unwrap();
            (0..a.len()).map(|i| a.value(i).to_owned()).collect::<Vec<_>>()
        })
        .collect()
}

fn decimals(batches: &[RecordBatch], col: usize) -> Vec<Decimal> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column(col).as_any().downcast_ref::<Decimal128Array>().unwrap();
            let scale = a.scale() as u32;
            (0..a.len()).map(|i| Decimal::from_i128_with_scale(a.value(i), scale)).collect::<Vec<_>>()
        })
        .collect()
}

fn spill_dirs(root: &Path) -> Vec<String> {
    std::fs::read_dir(root).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

/// Waits (up to 2 s: a cancelled query's tasks wind down on the runtime) until only the
/// directory that is not the engine's is left.
async fn assert_spill_dirs_gone(root: &Path, when: &str) {
    for _ in 0..40 {
        if spill_dirs(root) == ["not-ours"] {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{when}: spill directories left behind: {:?}", spill_dirs(root));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_organization_sees_only_its_own_rows_and_money_stays_exact() {
    let app = TestApp::spawn().await;
    let (a, _) = app.create_org("A", "a@example.com").await;
    let (b, _) = app.create_org("B", "b@example.com").await;
    let (rows_a, rows_b) = (costs("OpenAI", 300), costs("Anthropic", 200));
    load(&app, a, &rows_a).await;
    load(&app, b, &rows_b).await;
    let spill = tempfile::tempdir().unwrap();
    let engine = engine(&app, spill.path(), 64 << 20);

    let sql = "SELECT provider_name, count(*) AS n, sum(billed_cost) AS total FROM costs GROUP BY provider_name";
    let (_, out) = engine.collect(b, sql).await.unwrap();
    assert_eq!(strings(&out, 0), ["Anthropic"], "B sees only B's provider");
    let n = out[0].column(1).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
    assert_eq!(n, 200);
    let expected: Decimal = rows_b.iter().map(|r| r.billed_cost.amount()).sum();
    assert_eq!(decimals(&out, 2), [expected], "sums are exact decimals");

    let (_, out) = engine.collect(a, "SELECT count(*) FROM costs").await.unwrap();
    assert_eq!(out[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 300);
    let (_, out) = engine.collect(a, "SELECT count(*) FROM usage").await.unwrap();
    assert_eq!(out[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 0, "empty, not missing");

    // The catalog lists this session's tables only.
    let (_, out) = engine
        .collect(b, "SELECT table_catalog, table_schema, table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name")
        .await
        .unwrap();
    assert_eq!(
        strings(&out, 2),
        ["attributed_costs", "budgets", "costs", "reconciliation", "requests", "sources", "usage"]
    );
    assert!(strings(&out, 0).iter().all(|c| c == "burnrate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escapes_from_the_organization_are_refused_with_a_clear_error() {
    let app = TestApp::spawn().await;
    let (a, _) = app.create_org("A", "a@example.com").await;
    let (b, _) = app.create_org("B", "b@example.com").await;
    load(&app, a, &costs("OpenAI", 10)).await;
    let spill = tempfile::tempdir().unwrap();
    let engine = engine(&app, spill.path(), 64 << 20);
    let mut tx = app.store.tenant(a).await.unwrap();
    let a_file = tx.live_lake_files(burnrate_store::LakeTable::Costs).await.unwrap().remove(0).path;
    tx.commit().await.unwrap();

    for (sql, what) in [
        ("CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc/'", "CREATE statements"),
        ("CREATE TABLE t AS SELECT 1", "CREATE statements"),
        ("COPY costs TO '/tmp/out.parquet'", "COPY statements"),
        ("INSERT INTO costs SELECT * FROM costs", "INSERT statements"),
        ("SET datafusion.runtime.temp_directory = '/tmp'", "SET datafusion.runtime.temp_directory"),
        ("SET datafusion.runtime.memory_limit = '100G'", "SET datafusion.runtime.memory_limit"),
    ] {
        let err = engine.collect(b, sql).await.unwrap_err();
        assert!(matches!(err, EngineError::Refused(_)), "{sql}: {err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("not allowed: ") && text.contains(what) && text.ends_with("burnrate SQL is read-only"),
            "{sql}: {text}"
        );
    }
    for sql in [
        "SELECT * FROM '/etc/passwd'".to_owned(),
        format!("SELECT * FROM 'lake://files/{a_file}'"),
        format!("SELECT * FROM '{}'", app.lake_path().join(&a_file).display()),
        "SELECT * FROM datafusion.public.costs".to_owned(),
        "SELECT * FROM information_schema.tables WHERE table_catalog = 'datafusion'".to_owned(),
        // A member's session has no audit log (admins' and SQL credentials' have).
        "SELECT * FROM audit_log".to_owned(),
    ] {
        match engine.collect(b, &sql).await {
            Err(EngineError::Plan(text)) => {
                assert!(text.contains("not found") || text.contains("No table named"), "{sql}: {text}")
            }
            Ok((_, out)) => assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 0, "{sql} returned rows"),
            Err(e) => panic!("{sql}: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_by_and_order_by_over_ten_times_the_memory_limit_spill_and_clean_up() {
    let app = TestApp::spawn().await;
    let (org, _) = app.create_org("A", "a@example.com").await;
    let rows = costs("OpenAI", 200_000);
    load(&app, org, &rows).await;
    let spill = tempfile::tempdir().unwrap();
    // A directory a killed process left behind is swept when the engine starts.
    std::fs::create_dir(spill.path().join("datafusion-left-by-a-crash")).unwrap();
    std::fs::create_dir(spill.path().join("not-ours")).unwrap();
    // 200,000 rows of 19 columns are about 45 MB in memory; the pool is 4 MiB.
    let engine = engine(&app, spill.path(), 4 << 20);
    assert_eq!(spill_dirs(spill.path()), ["not-ours"], "only spill directories are swept");

    // GROUP BY with a group per row over most columns: the aggregate cannot fit and spills.
    let sql = "SELECT sku_id, sum(billed_cost) AS total, sum(effective_cost), sum(list_cost), max(service_name), \
               max(source_id), min(charge_period_start), count(*) FROM costs GROUP BY sku_id";
    let (_, out) = engine.collect(org, sql).await.unwrap();
    let got: BTreeMap<String, Decimal> = strings(&out, 0).into_iter().zip(decimals(&out, 1)).collect();
    let want: BTreeMap<String, Decimal> =
        rows.iter().map(|r| (r.sku_id.clone().unwrap(), r.billed_cost.amount())).collect();
    assert_eq!(got, want);

    // ORDER BY over every row, read while it runs: its spill directory exists, and a second
    // query running at the same time has another.
    let sql = "SELECT sku_id AS s, billed_cost AS b, * FROM costs ORDER BY billed_cost DESC, sku_id";
    let first = engine.query(org, sql).await.unwrap();
    let second = engine.query(org, sql).await.unwrap();
    let during = spill_dirs(spill.path()).into_iter().filter(|d| d.starts_with("datafusion-")).count();
    assert_eq!(during, 2, "each running query has its own spill directory");
    let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(first.stream).await.unwrap();
    let got: Vec<Decimal> = decimals(&batches, 1);
    let mut want: Vec<(Decimal, String)> =
        rows.iter().map(|r| (r.billed_cost.amount(), r.sku_id.clone().unwrap())).collect();
    want.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    assert_eq!(got, want.iter().map(|w| w.0).collect::<Vec<_>>());
    assert_eq!(strings(&batches, 0), want.into_iter().map(|w| w.1).collect::<Vec<_>>());
    // The second client goes away half-way: its directory goes with it.
    drop(second);
    assert_spill_dirs_gone(spill.path(), "after a finished and an abandoned query").await;

    // A query that fails mid-way leaves nothing behind either.
    let err = engine.collect(org, "SELECT CAST(sku_id AS INT) FROM costs ORDER BY 1").await.unwrap_err();
    assert!(matches!(err, EngineError::Execution(_)), "{err:?}");
    assert_spill_dirs_gone(spill.path(), "after a failed query").await;
}

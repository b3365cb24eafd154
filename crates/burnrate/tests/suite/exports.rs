//! FOCUS 1.2 exports of costs: what a finance team loads into its own tools.

use std::collections::BTreeMap;
use std::str::FromStr;

use arrow_array::{Array, Decimal128Array, StringArray};
use burnrate_core::CostRecord;
use burnrate_sim::fixture::usd_cost;
use burnrate_testkit::{AppOptions, TestApp};
use chrono::{NaiveDate, TimeZone, Utc};
use reqwest::Method;
use rust_decimal::Decimal;

use crate::create_key;

/// The columns an export has, in order: FOCUS 1.2 names, then burnrate's own with `x_`.
const COLUMNS: [&str; 45] = [
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "BillingCurrency",
    "BillingAccountId",
    "BillingAccountName",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "InvoiceId",
    "ServiceName",
    "ServiceCategory",
    "ServiceSubcategory",
    "SubAccountId",
    "SubAccountName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "SkuId",
    "ChargeCategory",
    "ChargeClass",
    "ChargeFrequency",
    "ChargeDescription",
    "PricingCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountCategory",
    "CommitmentDiscountType",
    "CommitmentDiscountStatus",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
    "Tags",
    "x_Model",
    "x_ApiKeyId",
    "x_SourceId",
    "x_ListCostEstimated",
];

/// Reads a Python script's standard output, the script given on its standard input.
fn python(script: &str, arg: &std::path::Path) -> String {
    let python = std::env::var("BURNRATE_TEST_PYTHON").expect("BURNRATE_TEST_PYTHON (scripts/test sets it)");
    let out = std::process::Command::new(python).args(["-c", script]).arg(arg).output().expect("Python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_focus_export_of_a_month_reads_back_in_parquet_csv_and_pandas_with_the_same_total() {
    let quota = burnrate_web::Quota::per_minute(1, 5);
    let app = TestApp::spawn_with(AppOptions { exports_per_org: Some(quota), ..Default::default() }).await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let mut tx = app.store.tenant(scope).await.unwrap();
    let new = burnrate_store::NewSource {
        kind: "openai",
        name: "OpenAI prod",
        config: "{\"backfill_days\":90,\"repull_days\":3,\"interval_minutes\":60}",
        secret: "sk-admin-x",
    };
    let source = tx.create_source(&app.vault, &new).await.unwrap();
    tx.commit().await.unwrap();

    // Hourly costs from 30 December to 2 February with nine-decimal amounts, some tagged: a
    // month's export must take January whole and nothing of its neighbours.
    let start = Utc.with_ymd_and_hms(2025, 12, 30, 0, 0, 0).unwrap();
    let mut records: Vec<CostRecord> = Vec::new();
    for hour in 0..(35 * 24) {
        let at = start + chrono::Duration::hours(hour);
        let amount = Decimal::from_str(&format!("0.{:09}", (hour * 7_919 + 13) % 1_000_000_000)).unwrap();
        let mut record = usd_cost(at, 1, amount, "OpenAI", if hour % 2 == 0 { "gpt-4o" } else { "o3-mini" });
        if hour % 3 == 0 {
            record.tags = [("team".to_owned(), "search, \"core\"".to_owned())].into();
        }
        records.push(record);
    }
    let window = burnrate_core::SyncWindow::new(
        NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
    )
    .unwrap();
    app.lake.replace(&app.store, scope, source, window, &records).await.unwrap();
    let january: Vec<&CostRecord> = records
        .iter()
        .filter(|r| r.charge_period_start >= Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
        .filter(|r| r.charge_period_start < Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap())
        .collect();
    let total: Decimal = january.iter().map(|r| r.billed_cost.amount()).sum();

    let c = app.login("o@example.com").await;
    let key = create_key(&c, "k", "read").await;
    let http = reqwest::Client::new();
    let get = |query: &str| http.get(format!("{}/api/v1/exports?{query}", app.url)).bearer_auth(&key).send();

    // Parquet, read with the parquet crate.
    let reply = get("dataset=focus&format=parquet&from=2026-01-01&to=2026-02-01").await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/vnd.apache.parquet");
    assert!(
        reply.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("burnrate-focus-2026-01-01_2026-02-01.parquet")
    );
    let file = reply.bytes().await.unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file.clone()).unwrap();
    let names: Vec<String> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, COLUMNS, "the documented columns, in order");
    let (mut rows, mut sum, mut tagged) = (0, Decimal::ZERO, 0);
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        let billed = batch.column_by_name("BilledCost").unwrap().as_any().downcast_ref::<Decimal128Array>().unwrap();
        let account =
            batch.column_by_name("BillingAccountName").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        let tags = batch.column_by_name("Tags").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..batch.num_rows() {
            sum += Decimal::from_i128_with_scale(billed.value(i), billed.scale() as u32);
            assert_eq!(account.value(i), "OpenAI prod");
            if !tags.is_null(i) {
                assert_eq!(tags.value(i), r#"{"team":"search, \"core\""}"#);
                tagged += 1;
            }
        }
        rows += batch.num_rows();
    }
    assert_eq!((rows, sum), (january.len(), total), "every January line once, and its exact total");
    assert_eq!(tagged, january.iter().filter(|r| !r.tags.is_empty()).count());

    // The same file, read by pandas through pyarrow.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("january.parquet");
    std::fs::write(&path, &file).unwrap();
    let read = python(
        "import os, sys, pandas\n\
         df = pandas.read_parquet(sys.argv[1], engine='pyarrow')\n\
         print(','.join(df.columns))\n\
         print(len(df))\n\
         print(sum(df['BilledCost']))\n\
         print(df['ChargePeriodStart'].min().isoformat(), df['ChargePeriodStart'].max().isoformat())\n\
         # pyarrow's threads can abort the interpreter's shutdown (`terminate called without an\n\
         # active exception`, now and then): the answer is written, so leave without it.\n\
         sys.stdout.flush()\n\
         os._exit(0)",
        &path,
    );
    let lines: Vec<&str> = read.lines().collect();
    assert_eq!(lines[0], COLUMNS.join(","));
    assert_eq!(lines[1], january.len().to_string());
    assert_eq!(Decimal::from_str(lines[2]).unwrap(), total, "pandas sums the decimals exactly");
    assert_eq!(lines[3], "2026-01-01T00:00:00+00:00 2026-01-31T23:00:00+00:00");

    // CSV: the same rows and total, its text cells guarded for spreadsheets.
    let csv = get("dataset=focus&format=csv&from=2026-01-01&to=2026-02-01").await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let path = dir.path().join("january.csv");
    std::fs::write(&path, csv.bytes().await.unwrap()).unwrap();
    let read = python(
        "import sys, csv, decimal\n\
         rows = list(csv.DictReader(open(sys.argv[1], newline='')))\n\
         print(len(rows))\n\
         print(sum(decimal.Decimal(r['BilledCost']) for r in rows))\n\
         print(sorted({r['Tags'] for r in rows}))",
        &path,
    );
    let lines: Vec<&str> = read.lines().collect();
    assert_eq!(lines[0], january.len().to_string());
    assert_eq!(Decimal::from_str(lines[1]).unwrap(), total);
    assert_eq!(lines[2], r#"['', '{"team":"search, \\"core\\""}']"#);

    // Bad requests say what is wrong; exports are audited and limited per organization.
    for (query, says) in [
        ("dataset=usage", "dataset"),
        ("dataset=focus&format=xlsx", "format"),
        ("dataset=focus&from=2026-02-01&to=2026-01-01", "to"),
        ("dataset=focus&from=January", "from"),
    ] {
        let r = c.api(Method::GET, &format!("/api/v1/exports?{query}"), &key, None).await;
        assert_eq!(r.status, 422, "{query}: {}", r.text);
        assert!(r.json()["error"]["message"].as_str().unwrap().starts_with(says), "{}", r.text);
    }
    let mut tx = app.store.tenant(scope).await.unwrap();
    let audit = tx.audit_entries(50).await.unwrap();
    tx.commit().await.unwrap();
    let exports: Vec<_> = audit.iter().filter(|e| e.action == "costs_exported").collect();
    assert_eq!(exports.len(), 2, "one entry per export");
    let details: serde_json::Value = serde_json::from_str(&exports[0].details).unwrap();
    assert_eq!(details["from"], "2026-01-01");
    let mut codes = BTreeMap::new();
    for _ in 0..5 {
        let r = c.api(Method::GET, "/api/v1/exports?dataset=focus&format=csv", &key, None).await;
        *codes.entry(r.status).or_insert(0) += 1;
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
        }
    }
    assert!(codes.get(&429).is_some_and(|n| *n >= 1), "the organization's export quota: {codes:?}");
}

//! The client matrix: drivers other than psql and tokio-postgres, each run as its own program
//! against the wire endpoint — psycopg 3 and pgJDBC from Debian's packages — printing what they
//! saw for the test to check.

use std::path::PathBuf;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::wire::{create_credential, org_with_costs, since_day, sum_by_provider};

fn client_program(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(name)
}

/// Runs `program` with `args` and returns its standard output; fails the test with its
/// standard error if it fails.
async fn run(program: &str, args: &[&str], installed_by: &str) -> String {
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/test installs {installed_by})"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} failed:\n{stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The expected (sum, count, first day) of a provider's rows.
fn totals(records: &[burnrate_core::CostRecord], provider: &str) -> (Decimal, usize, NaiveDate) {
    let rows: Vec<_> = records.iter().filter(|r| r.provider_name == provider).collect();
    let sum = rows.iter().map(|r| r.billed_cost.amount()).sum();
    let first = rows.iter().map(|r| r.charge_period_start.date_naive()).min().expect("rows");
    (sum, rows.len(), first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_runs_simple_server_bound_and_prepared_binary_queries_exactly() {
    let app = burnrate_testkit::TestApp::spawn().await;
    let (a, key, rows) = org_with_costs(&app, "Acme", 40).await;
    let cred = create_credential(&a, &key, "psycopg").await;
    let script = client_program("psycopg_client.py");
    // Debian's interpreter, which Debian's python3-psycopg is installed for.
    let out = run("/usr/bin/python3", &[script.to_str().unwrap(), &cred.url], "python3-psycopg").await;
    let seen: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));

    assert_eq!(seen["ssl"], true, "connected over TLS");
    assert_eq!(seen["server_version"], burnrate_engine::SERVER_VERSION);
    let simple: Vec<String> = seen["simple"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}|{}", r[0].as_str().unwrap(), r[1].as_str().unwrap()))
        .collect();
    assert_eq!(simple, sum_by_provider(&rows), "exact sums over the simple protocol");
    let day = NaiveDate::from_ymd_opt(2026, 1, 20).unwrap();
    let (n_since, last) = since_day(&rows, day, Decimal::new(5, 1));
    assert_eq!(seen["since"][0], n_since);
    assert_eq!(seen["since"][1], last.to_string());
    let (sum, n, first) = totals(&rows, "OpenAI");
    let runs = seen["binary"].as_array().unwrap();
    assert_eq!(runs.len(), 7);
    for run in runs {
        // Decimal's text keeps the lake's nine decimals; compare as numbers.
        assert_eq!(run[0].as_str().unwrap().parse::<Decimal>().unwrap(), sum, "numeric in binary: {run}");
        assert_eq!(run[1], n);
        assert_eq!(run[2], first.to_string());
        assert_eq!(run[3], format!("{first}T00:00:00+00:00"));
    }
    assert_eq!(seen["copy"][0], "42501", "{}", seen["copy"]);
    assert!(seen["copy"][1].as_str().unwrap().contains("read-only"), "{}", seen["copy"]);
    assert_eq!(seen["after_error"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgjdbc_answers_dbeaver_and_metabase_metadata_and_switches_to_binary_exactly() {
    let app = burnrate_testkit::TestApp::spawn().await;
    let (a, key, rows) = org_with_costs(&app, "Acme", 40).await;
    let cred = create_credential(&a, &key, "jdbc").await;
    let url = format!("jdbc:postgresql://{}/burnrate?sslmode=require", app.pg_addr);
    let program = client_program("PgJdbcClient.java");
    let out = run(
        "java",
        &[
            "-Duser.timezone=UTC",
            "-cp",
            "/usr/share/java/postgresql.jar",
            program.to_str().unwrap(),
            &url,
            &cred.user,
            &cred.password,
        ],
        "default-jre-headless and libpostgresql-jdbc-java",
    )
    .await;
    let seen: std::collections::HashMap<&str, &str> = out.lines().filter_map(|l| l.split_once('\t')).collect();
    let get = |k: &str| *seen.get(k).unwrap_or_else(|| panic!("{k} missing from:\n{out}"));

    assert_eq!(get("product"), "PostgreSQL 16");
    assert_eq!(get("catalogs"), "burnrate");
    assert!(get("schemas").split(';').any(|s| s == "public"), "{}", get("schemas"));
    assert_eq!(
        get("tables"),
        "public,audit_log,TABLE;public,budgets,TABLE;public,costs,TABLE;public,requests,TABLE;public,sources,TABLE;public,usage,TABLE;public,attributed_costs,VIEW;public,reconciliation,VIEW"
    );
    let columns: Vec<&str> = get("columns").split(';').collect();
    assert!(columns.contains(&"billed_cost,numeric"), "{columns:?}");
    assert!(columns.contains(&"charge_period_start,timestamptz"), "{columns:?}");
    assert_eq!(get("primary_keys"), "");
    assert_eq!(get("imported_keys"), "");
    assert_eq!(get("type_info"), "true", "getTypeInfo lists numeric");
    let (sum, n, first) = totals(&rows, "OpenAI");
    for i in 0..7 {
        // pgJDBC prepares on the server from the fifth run and then reads results in binary.
        let run = get(&format!("run{i}"));
        let fields: Vec<&str> = run.split(',').collect();
        assert_eq!(fields[0].parse::<Decimal>().unwrap(), sum, "run {i}: {run}");
        assert_eq!(fields[1], n.to_string(), "run {i}: {run}");
        assert_eq!(fields[2], first.to_string(), "run {i}: {run}");
        assert_eq!(fields[3], format!("{first}T00:00:00Z"), "run {i}: {run}");
    }
    let day = NaiveDate::from_ymd_opt(2026, 1, 20).unwrap();
    assert_eq!(get("since"), since_day(&rows, day, Decimal::new(5, 1)).0.to_string());
    assert!(get("escape").starts_with("42P01 "), "{}", get("escape"));
}

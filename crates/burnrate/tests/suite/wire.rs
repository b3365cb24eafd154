//! The Postgres wire endpoint with real clients: psql over TLS and tokio-postgres, logging in
//! with credentials made through the API.

use std::time::{Duration, Instant};

use burnrate_testkit::{TestApp, TestClient};
use reqwest::Method;
use rust_decimal::Decimal;

use crate::sql::{costs, load};

/// A credential as the API hands it over.
pub struct Credential {
    pub user: String,
    pub password: String,
    pub url: String,
}

pub async fn create_credential(c: &TestClient, key: &str, name: &str) -> Credential {
    let r = c.api(Method::POST, "/api/v1/sql-credentials", key, Some(serde_json::json!({ "name": name }))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let j = r.json();
    let url = j["connection_string"].as_str().expect("a connection string").to_owned();
    assert!(url.ends_with("/burnrate?sslmode=require"), "{url}");
    Credential { user: j["user"].as_str().unwrap().into(), password: j["password"].as_str().unwrap().into(), url }
}

/// psql with `args`; returns (succeeded, stdout, stderr).
pub(crate) async fn psql(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new("psql")
        .arg(url)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .await
        .expect("psql is installed (scripts/test installs postgresql-client)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An organization with an admin API key and `n` OpenAI and `n / 2` Anthropic cost rows.
pub async fn org_with_costs(
    app: &TestApp,
    name: &str,
    n: usize,
) -> (TestClient, String, Vec<burnrate_core::CostRecord>) {
    let email = format!("owner@{}.test", name.to_lowercase());
    let (scope, _) = app.create_org(name, &email).await;
    let mut records = costs("OpenAI", n);
    records.extend(costs("Anthropic", n / 2));
    load(app, scope, &records).await;
    let c = app.login(&email).await;
    let key = crate::create_key(&c, "sql admin", "admin").await;
    (c, key, records)
}

/// How many of `records` are on or after `day` and cost more than `above`, and the last day of
/// them: what `count(*), max(charge_day) … WHERE charge_day >= $1 AND billed_cost > $2` answers.
pub fn since_day(
    records: &[burnrate_core::CostRecord],
    day: chrono::NaiveDate,
    above: Decimal,
) -> (usize, chrono::NaiveDate) {
    let days: Vec<chrono::NaiveDate> = records
        .iter()
        .filter(|r| r.charge_period_start.date_naive() >= day && r.billed_cost.amount() > above)
        .map(|r| r.charge_period_start.date_naive())
        .collect();
    (days.len(), days.into_iter().max().expect("some rows match"))
}

pub fn sum_by_provider(records: &[burnrate_core::CostRecord]) -> Vec<String> {
    let mut sums = std::collections::BTreeMap::<String, Decimal>::new();
    for r in records {
        *sums.entry(r.provider_name.clone()).or_default() += r.billed_cost.amount();
    }
    sums.into_iter().map(|(p, s)| format!("{p}|{s}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_over_tls_lists_describes_and_sums_only_its_own_organizations_costs() {
    let app = TestApp::spawn().await;
    let (a, a_key, a_rows) = org_with_costs(&app, "Acme", 120).await;
    let (b, b_key, b_rows) = org_with_costs(&app, "Globex", 30).await;
    let cred = create_credential(&a, &a_key, "psql").await;

    let (ok, out, err) = psql(&cred.url, &["-c", "\\conninfo"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("SSL connection"), "the session is encrypted: {out}");
    let (ok, out, err) = psql(&cred.url, &["-c", "\\dt"]).await;
    assert!(ok, "{err}");
    let tables: Vec<&str> = out.lines().map(|l| l.split('|').nth(1).unwrap_or("")).collect();
    assert_eq!(tables, ["audit_log", "budgets", "costs", "requests", "sources", "usage"], "{out}");
    let (ok, out, err) = psql(&cred.url, &["-c", "\\d costs"]).await;
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.starts_with("billed_cost|numeric|")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("charge_period_start|timestamp with time zone|")), "{out}");

    let sql = "SELECT provider_name, sum(billed_cost) FROM costs GROUP BY 1 ORDER BY 1";
    let (ok, out, err) = psql(&cred.url, &["-c", sql]).await;
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), sum_by_provider(&a_rows), "exact sums, to the last decimal");

    // Organization B's credential sees B's rows only, in every table.
    let b_cred = create_credential(&b, &b_key, "psql").await;
    let (ok, out, _) = psql(&b_cred.url, &["-c", sql]).await;
    assert!(ok);
    assert_eq!(out.lines().collect::<Vec<_>>(), sum_by_provider(&b_rows));
    let (_, out, _) = psql(&b_cred.url, &["-c", "SELECT count(*) FROM usage"]).await;
    assert_eq!(out.trim(), "0");

    // A wrong password, a user that does not exist, and another database are refused.
    let wrong = cred.url.replace(&cred.password, &"x".repeat(40));
    let (ok, _, err) = psql(&wrong, &["-c", "SELECT 1"]).await;
    assert!(!ok && err.contains("password authentication failed"), "{err}");
    let nobody = cred.url.replace(&cred.user, "brs_00000000000000000000000000000000");
    let (ok, _, err) = psql(&nobody, &["-c", "SELECT 1"]).await;
    assert!(
        !ok && err.contains("password authentication failed"),
        "an unknown user looks like a wrong password: {err}"
    );
    let (ok, _, err) = psql(&cred.url.replace("/burnrate?", "/postgres?"), &["-c", "SELECT 1"]).await;
    assert!(!ok && err.contains("database \"postgres\" does not exist"), "{err}");

    // Revoked: no more logins, and the list says so.
    let r = a.api(Method::DELETE, &format!("/api/v1/sql-credentials/{}", cred.user), &a_key, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let (ok, _, err) = psql(&cred.url, &["-c", "SELECT 1"]).await;
    assert!(!ok && err.contains("password authentication failed"), "{err}");
    let list = a.api(Method::GET, "/api/v1/sql-credentials", &a_key, None).await.json();
    let listed = &list["sql_credentials"][0];
    assert_eq!(listed["user"], cred.user.as_str());
    assert!(listed["revoked_at"].is_string() && listed["last_used_at"].is_string(), "{list}");
    // B cannot see or revoke A's credential.
    let r = b
        .api(Method::DELETE, &format!("/api/v1/sql-credentials/{}", b_cred.user.replace('b', "a")), &b_key, None)
        .await;
    assert_eq!(r.status, 404);
    let r = b.api(Method::DELETE, &format!("/api/v1/sql-credentials/{}", cred.user), &b_key, None).await;
    assert_eq!(r.status, 404, "another organization's credential is not found");
    let audit = a.get("/audit").await.text;
    assert!(audit.contains("sql_credential_created") && audit.contains("sql_credential_revoked"));
}

pub async fn connect(url_addr: &str, cred: &Credential) -> tokio_postgres::Client {
    let (host, port) = url_addr.rsplit_once(':').unwrap();
    let config = format!("host={host} port={port} user={} password={} dbname=burnrate", cred.user, cred.password);
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await.expect("log in");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_credential_closes_its_live_session_within_a_second() {
    let app = TestApp::spawn().await;
    let (a, key, _) = org_with_costs(&app, "Acme", 10).await;
    let cred = create_credential(&a, &key, "live").await;
    let client = connect(&app.pg_addr.to_string(), &cred).await;
    let row = client.query_one("SELECT count(*) FROM costs", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 15);

    let r = a.api(Method::DELETE, &format!("/api/v1/sql-credentials/{}", cred.user), &key, None).await;
    assert_eq!(r.status, 204);
    let revoked = Instant::now();
    while !client.is_closed() && revoked.elapsed() < Duration::from_secs(3) {
        // A query on a closed connection fails and marks the client closed.
        let _ = client.simple_query("SELECT 1").await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(client.is_closed(), "the session is still open after {:?}", revoked.elapsed());
    assert!(revoked.elapsed() < Duration::from_secs(1), "closed only after {:?}", revoked.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_postgres_runs_prepared_statements_with_parameters_and_sees_escapes_refused() {
    let app = TestApp::spawn().await;
    let (a, key, rows) = org_with_costs(&app, "Acme", 40).await;
    let cred = create_credential(&a, &key, "driver").await;
    let client = connect(&app.pg_addr.to_string(), &cred).await;

    // Result columns are named as PostgreSQL names them.
    let named = client
        .prepare(
            "SELECT count(*), sum(c.billed_cost), c.provider_name, max(sku_id)::text, \
             CASE WHEN count(*) > 1 THEN 'many' END, 1 + 1 FROM costs c GROUP BY c.provider_name",
        )
        .await
        .unwrap();
    let names: Vec<&str> = named.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["count", "sum", "provider_name", "max", "case", "?column?"]);
    // Logged in as the credential, which is who the session says it is.
    // Constant statements are answered from the session's memory after the first time; each
    // keeps its own answer.
    for _ in 0..3 {
        for (sql, want) in [("SELECT 1", "1"), ("SELECT 2 AS two", "2"), ("SELECT 'ok'::text", "ok")] {
            let got = client.simple_query(sql).await.unwrap();
            let row = got.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_owned()),
                _ => None,
            });
            assert_eq!(row.as_deref(), Some(want), "{sql}");
        }
    }
    for sql in ["SELECT current_user", "SELECT session_user"] {
        let who: String = client.query_one(sql, &[]).await.unwrap().get(0);
        assert_eq!(who, cred.user, "{sql}");
    }

    let by_provider = client.prepare("SELECT count(*) FROM costs WHERE provider_name = $1").await.unwrap();
    for _ in 0..6 {
        let n: i64 = client.query_one(&by_provider, &[&"OpenAI"]).await.unwrap().get(0);
        assert_eq!(n, 40);
    }
    let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 20).unwrap();
    let since = client
        .query_one(
            "SELECT count(*), max(charge_day) FROM costs WHERE charge_day >= $1 AND billed_cost > $2",
            &[&day, &Decimal::new(5, 1)],
        )
        .await;
    let (expected, last) = since_day(&rows, day, Decimal::new(5, 1));
    let since = since.expect("dates and decimals as parameters");
    assert_eq!(since.get::<_, i64>(0), expected as i64);
    assert_eq!(since.get::<_, chrono::NaiveDate>(1), last);
    // Results come back in binary: the lake's numeric(38, 9) sums arrive exact.
    let total: Decimal = client.query_one("SELECT sum(billed_cost) FROM costs", &[]).await.unwrap().get(0);
    assert_eq!(total, rows.iter().map(|r| r.billed_cost.amount()).sum::<Decimal>());
    let ts: chrono::DateTime<chrono::Utc> =
        client.query_one("SELECT min(charge_period_start) FROM costs", &[]).await.unwrap().get(0);
    assert_eq!(ts.to_rfc3339(), "2026-01-01T00:00:00+00:00");

    // Session statements clients send are answered; engine settings and escapes are refused.
    client.batch_execute("SET application_name = 'grafana'; BEGIN; COMMIT; DISCARD ALL").await.unwrap();
    let tz = client.simple_query("SHOW TimeZone").await.unwrap();
    assert!(matches!(&tz[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("UTC")));
    for (sql, says) in [
        ("SET datafusion.runtime.temp_directory = '/tmp'", "engine settings are the operator's"),
        ("CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'", "read-only"),
        ("COPY (SELECT 1) TO '/tmp/out.csv'", "read-only"),
        ("SELECT * FROM '/etc/passwd'", "not found"),
        ("SELECT * FROM datafusion.public.costs", "not found"),
        ("INSERT INTO costs SELECT * FROM costs", "read-only"),
    ] {
        let e = client.simple_query(sql).await.expect_err(sql);
        let message = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string());
        assert!(message.contains(says), "{sql}: {message}");
    }
    // The connection is still usable after refusals.
    let n: i64 = client.query_one("SELECT count(*) FROM costs", &[]).await.unwrap().get(0);
    assert_eq!(n, 60);
}

/// The query spill directories under `root`.
fn spill_dirs(root: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("datafusion-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sort_spilling_over_the_wire_cleans_up_when_the_client_disconnects() {
    // 180,000 rows of 19 columns are about 40 MB in memory; each query's pool is 4 MiB.
    let opts = burnrate_testkit::AppOptions { query_memory_limit: Some(4 << 20), ..Default::default() };
    let app = TestApp::spawn_with(opts).await;
    let (a, key, records) = org_with_costs(&app, "Acme", 120_000).await;
    let cred = create_credential(&a, &key, "spill").await;
    let sql = "SELECT * FROM costs ORDER BY billed_cost DESC, sku_id";

    // Read to the end: every row, in order, and the directory goes when the query ends.
    let client = connect(&app.pg_addr.to_string(), &cred).await;
    let rows = client.query(sql, &[]).await.unwrap();
    assert_eq!(rows.len(), records.len());
    let top = records.iter().map(|r| r.billed_cost.amount()).max().unwrap();
    assert_eq!(rows[0].get::<_, Decimal>("billed_cost"), top);
    for _ in 0..50 {
        if spill_dirs(app.spill_dir.path()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(spill_dirs(app.spill_dir.path()), Vec::<String>::new(), "after a finished query");

    // Read ten rows through a portal and hang up with the portal open: the sort has spilled by
    // then, and its directory goes with the connection.
    let (mut client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={} password={} dbname=burnrate",
            app.pg_addr.ip(),
            app.pg_addr.port(),
            cred.user,
            cred.password
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let running = tokio::spawn(connection);
    let tx = client.transaction().await.unwrap();
    let portal = tx.bind(sql, &[]).await.unwrap();
    let first = tx.query_portal(&portal, 10).await.unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].get::<_, Decimal>("billed_cost"), top);
    assert_eq!(spill_dirs(app.spill_dir.path()).len(), 1, "the running sort spills into a directory of its own");
    // Not dropped: dropping a transaction sends ROLLBACK, which would close the portal first.
    // The client just goes away.
    std::mem::forget(tx);
    drop(client);
    running.abort();
    let hung_up = Instant::now();
    while !spill_dirs(app.spill_dir.path()).is_empty() && hung_up.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(spill_dirs(app.spill_dir.path()), Vec::<String>::new(), "after the client hung up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_stops_the_running_statement_and_the_session_goes_on() {
    let app = TestApp::spawn().await;
    let (a, key, _) = org_with_costs(&app, "Acme", 10).await;
    let cred = create_credential(&a, &key, "cancel").await;
    let client = connect(&app.pg_addr.to_string(), &cred).await;
    let token = client.cancel_token();
    // Minutes of work, were it not cancelled.
    let long = "SELECT count(*) FROM generate_series(1, 50000000000) AS t(x) WHERE x % 7 = 3";
    let running = tokio::spawn(async move {
        let result = client.simple_query(long).await;
        (client, result)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let (client, result) = running.await.unwrap();
    let err = result.unwrap_err();
    let db = err.as_db_error().expect("an error from the server");
    assert_eq!(db.code().code(), "57014", "{db:?}");
    assert_eq!(db.message(), "canceling statement due to user request");
    assert!(asked.elapsed() < Duration::from_secs(3), "cancelled only after {:?}", asked.elapsed());
    let n: i64 = client.query_one("SELECT count(*) FROM costs", &[]).await.unwrap().get(0);
    assert_eq!(n, 15, "the session goes on after a cancel");
}

/// Logs in with `cred`; the server's refusal, if any.
async fn try_connect(app: &TestApp, cred: &Credential) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let config = format!(
        "host=127.0.0.1 port={} user={} password={} dbname=burnrate",
        app.pg_addr.port(),
        cred.user,
        cred.password
    );
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn too_many(refused: Result<tokio_postgres::Client, tokio_postgres::Error>, saying: &str) {
    let error = refused.expect_err("a connection over the limit is refused");
    let db = error.as_db_error().unwrap_or_else(|| panic!("refused by the server: {error:?}"));
    assert_eq!(db.code().code(), "53300", "{db:?}");
    assert!(db.message().contains(saying), "{}", db.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_organizations_or_the_instances_limit_are_refused_as_too_many() {
    let opts = burnrate_testkit::AppOptions { wire_connections: Some((3, 2)), ..Default::default() };
    let app = TestApp::spawn_with(opts).await;
    let (a, a_key, _) = org_with_costs(&app, "Acme", 10).await;
    let (b, b_key, _) = org_with_costs(&app, "Globex", 10).await;
    let a_cred = create_credential(&a, &a_key, "pool").await;
    let b_cred = create_credential(&b, &b_key, "pool").await;

    // The organization's two, then no more for it.
    let a1 = try_connect(&app, &a_cred).await.expect("first of Acme's");
    let a2 = try_connect(&app, &a_cred).await.expect("second of Acme's");
    too_many(try_connect(&app, &a_cred).await, "too many connections for this organization: it has its 2 open");
    // Another organization's fits under the instance's three; then the instance is full.
    let b1 = try_connect(&app, &b_cred).await.expect("Globex's first");
    too_many(try_connect(&app, &b_cred).await, "sorry, too many clients already");

    // At the limit, a cancel request (a connection of its own) still stops a statement.
    let token = a1.cancel_token();
    let long = "SELECT count(*) FROM generate_series(1, 50000000000) AS t(x) WHERE x % 7 = 3";
    let running = tokio::spawn(async move {
        let result = a1.simple_query(long).await.map(|_| ());
        (a1, result)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let (a1, result) = running.await.unwrap();
    let cancelled = result.unwrap_err();
    assert_eq!(cancelled.as_db_error().map(|e| e.code().code()), Some("57014"), "{cancelled:?}");

    // Each open connection still answers; when one closes, its place is taken.
    for client in [&a1, &a2, &b1] {
        let n: i64 = client.query_one("SELECT count(*) FROM costs", &[]).await.unwrap().get(0);
        assert_eq!(n, 15);
    }
    drop(a2);
    let started = Instant::now();
    let again = loop {
        match try_connect(&app, &a_cred).await {
            Ok(c) => break c,
            Err(e) if started.elapsed() < Duration::from_secs(5) => {
                assert_eq!(e.as_db_error().map(|e| e.code().code()), Some("53300"), "{e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("a closed connection's place is not taken within 5 s: {e:?}"),
        }
    };
    let n: i64 = again.query_one("SELECT count(*) FROM costs", &[]).await.unwrap().get(0);
    assert_eq!(n, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_spilling_past_its_organizations_share_fails_saying_so_and_leaves_nothing_behind() {
    let opts = burnrate_testkit::AppOptions {
        query_memory_limit: Some(4 << 20),
        spill_max_per_org: Some(1 << 20),
        ..Default::default()
    };
    let app = TestApp::spawn_with(opts).await;
    let (a, key, _) = org_with_costs(&app, "Acme", 60_000).await;
    let cred = create_credential(&a, &key, "spill").await;
    let client = connect(&app.pg_addr.to_string(), &cred).await;

    // Tens of megabytes to sort in a 4 MiB pool: more than the organization's 1 MiB of disk.
    let refused = client.query("SELECT * FROM costs ORDER BY billed_cost DESC, sku_id", &[]).await.unwrap_err();
    let message = refused.as_db_error().map(|e| e.message().to_owned()).unwrap_or_else(|| refused.to_string());
    assert!(
        message.contains(
            "the organization's queries running now have spilled their 1 MiB to disk (BURNRATE_SPILL_MAX_PER_ORG)"
        ),
        "{message}"
    );
    let started = Instant::now();
    while !spill_dirs(app.spill_dir.path()).is_empty() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(spill_dirs(app.spill_dir.path()), Vec::<String>::new(), "the failed query's files are gone");
    // What fits in memory still answers, on the same connection.
    let n: i64 = client.query_one("SELECT count(*) FROM costs", &[]).await.unwrap().get(0);
    assert_eq!(n, 90_000);
}

//! No tenant can starve the instance: how many queries run at once, per organization and for
//! the instance, whatever path they come by.

use burnrate_testkit::{AppOptions, TestApp};
use reqwest::Method;

/// A query that streams rows as they are read and does no work while nobody reads: held open,
/// it holds its slot and nothing else.
const HELD: &str = "SELECT * FROM generate_series(1, 1000000000000)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_at_its_query_limit_is_told_busy_on_every_path_while_another_answers() {
    let wait = std::time::Duration::from_secs(2);
    let opts = AppOptions { query_concurrency: Some((3, 2)), query_wait: Some(wait), ..Default::default() };
    let app = TestApp::spawn_with(opts).await;
    let (acme, _) = app.create_org("Acme", "owner@acme.test").await;
    app.create_org("Globex", "owner@globex.test").await;
    let a = app.login("owner@acme.test").await;
    let a_key = crate::create_key(&a, "sql", "admin").await;
    let g = app.login("owner@globex.test").await;
    let g_key = crate::create_key(&g, "sql", "admin").await;
    let a_cred = crate::wire::create_credential(&a, &a_key, "psql").await;
    let sql = |sql: &str| Some(serde_json::json!({ "sql": sql }));

    // Acme's two slots taken by queries left open.
    let held = [app.engine.query(acme, HELD).await.unwrap(), app.engine.query(acme, HELD).await.unwrap()];

    // Its third waits for a slot, then is refused as busy: 429 with Retry-After in the API …
    let started = std::time::Instant::now();
    let r = a.api(Method::POST, "/api/v1/sql", &a_key, sql("SELECT 1 AS one")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(started.elapsed() >= wait, "it waited for a slot first");
    assert_eq!(r.headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"), "{:?}", r.headers);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("busy: your organization already runs 2 queries at once"), "{message}");
    // … SQLSTATE 53300 over the wire.
    let out = tokio::process::Command::new("psql")
        .arg(&a_cred.url)
        .args(["-X", "-A", "-t", "-v", "VERBOSITY=verbose", "-c", "SELECT 2"])
        .output()
        .await
        .expect("psql is installed");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("53300") && said.contains("busy"), "{said}");

    // Another organization's query answers meanwhile: the instance has a slot left.
    let r = g.api(Method::POST, "/api/v1/sql", &g_key, sql("SELECT 40 + 2 AS n")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["rows"][0][0], "42");

    // A query that ends gives its slot back.
    drop(held);
    let r = a.api(Method::POST, "/api/v1/sql", &a_key, sql("SELECT 3 AS three")).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// This process's resident memory and its peak so far, in bytes (`/proc/self/status`).
pub(crate) fn resident() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts this process's peak resident memory afresh from what it holds now (Linux's
/// `clear_refs`), so that each query's peak is its own.
pub(crate) fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// Queries a viewer could send to take the instance down, each answered within the query's
/// memory limit — or refused, saying why — while the instance keeps answering everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_complete_within_the_limit_or_are_refused_and_the_instance_keeps_answering() {
    const LIMIT: usize = 256 << 20;
    let opts = AppOptions { query_memory_limit: Some(LIMIT), ..Default::default() };
    let app = TestApp::spawn_with(opts).await;
    let (scope, _) = app.create_org("Acme", "owner@acme.test").await;
    crate::sql::load(&app, scope, &crate::sql::costs("OpenAI", 3000)).await;
    let c = app.login("owner@acme.test").await;
    let key = crate::create_key(&c, "sql", "read").await;
    // Warm: the first query's plan and the lake's files are what any query costs.
    let r = c
        .api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": "SELECT count(*) FROM costs" })))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (baseline, _) = resident();

    // Everyone else's view of the instance, the whole time.
    let health = tokio::spawn({
        let url = format!("{}/healthz", app.url);
        async move {
            let http = reqwest::Client::new();
            let mut slowest = std::time::Duration::ZERO;
            loop {
                let started = std::time::Instant::now();
                let answer = tokio::time::timeout(std::time::Duration::from_secs(5), http.get(&url).send()).await;
                assert!(answer.is_ok_and(|r| r.is_ok_and(|r| r.status() == 200)), "/healthz stopped answering");
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                if slowest > std::time::Duration::from_secs(5) {
                    return slowest;
                }
            }
        }
    });

    let doubling = {
        // Each step doubles the last: 1 MB → 4 GB in twelve steps.
        let mut sql = String::from("WITH s0 AS (SELECT repeat('x', 1000000) AS v)");
        for i in 1..=12 {
            sql.push_str(&format!(", s{i} AS (SELECT v || v AS v FROM s{})", i - 1));
        }
        sql + " SELECT length(v) FROM s12"
    };
    let plus_chain = format!("SELECT {}", vec!["1"; 5000].join(" + "));
    let nested = format!("SELECT {}1{}", "(".repeat(2000), ")".repeat(2000));
    let hostile = [
        "SELECT cardinality(range(0, 200000000))".to_owned(),
        "SELECT cardinality(generate_series(1, 200000000))".to_owned(),
        "SELECT cardinality(range(TIMESTAMP '1970-01-01 00:00:00', TIMESTAMP '2200-01-01 00:00:00', INTERVAL '1 second'))".to_owned(),
        "SELECT length(repeat('x', 1000000000))".to_owned(),
        "SELECT length(lpad('', 1000000000, 'x'))".to_owned(),
        "SELECT length(rpad('x', 1000000000))".to_owned(),
        "SELECT cardinality(array_repeat(1, 200000000))".to_owned(),
        "SELECT length(replace(repeat('x', 10000), 'x', repeat('y', 100000)))".to_owned(),
        "SELECT length(regexp_replace(repeat('x', 10000), '', repeat('y', 100000), 'g'))".to_owned(),
        "SELECT length(concat(repeat('x', 100000000), repeat('x', 100000000), repeat('x', 100000000)))".to_owned(),
        "SELECT count(*) FROM unnest(range(0, 200000000))".to_owned(),
        "SELECT sum(length(repeat(service_name, 100000))) FROM costs".to_owned(),
        "SELECT length(string_agg(repeat('x', 100000), '')) FROM generate_series(1, 100000)".to_owned(),
        "SELECT cardinality(array_agg(x)) FROM generate_series(1, 100000000) AS t(x)".to_owned(),
        "SELECT count(*) FROM costs a CROSS JOIN costs b".to_owned(),
        doubling,
        plus_chain,
        nested,
    ];
    // What a refusal may say: the limit it met, in words.
    let clear = [
        "needs more memory than its limit allows",
        "not allowed",
        "ran longer than the statement timeout",
        "syntax error",
    ];
    let mut refused = 0;
    for sql in &hostile {
        reset_peak();
        let r = c.api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": sql }))).await;
        let shown: String = sql.chars().take(80).collect();
        match r.status {
            200 => {}
            422 => {
                let message = r.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
                assert!(clear.iter().any(|c| message.contains(c)), "{shown}: refused without saying why: {message}");
                refused += 1;
            }
            other => panic!("{shown}: answered {other}: {}", r.text),
        }
        let (_, peak) = resident();
        assert!(
            peak <= baseline + 2 * LIMIT as u64,
            "{shown}: the process peaked at {} MiB, over the idle {} MiB and twice the 256 MiB limit",
            peak >> 20,
            baseline >> 20
        );
    }
    assert!(refused >= 10, "the gigabyte builders are refused ({refused})");

    // A 100 MB literal: the API takes no body of even 100 kB; the wire endpoint reads it and
    // refuses it.
    // psql sends it (from a file), so that what this process holds is the server's alone.
    let over_the_body_limit = format!("SELECT length('{}')", "x".repeat(100_000));
    let r = c.api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": over_the_body_limit }))).await;
    assert_eq!(r.status, 413, "{}", r.text.chars().take(300).collect::<String>());
    let literal = format!("SELECT length('{}')", "x".repeat(100 << 20));
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), &literal).unwrap();
    drop(literal);
    let admin = crate::create_key(&c, "wire", "admin").await;
    let cred = crate::wire::create_credential(&c, &admin, "hostile").await;
    reset_peak();
    let (ok, _, stderr) = crate::wire::psql(&cred.url, &["-f", &script.path().display().to_string()]).await;
    assert!(!ok, "a 100 MB statement is refused");
    assert!(stderr.contains("not allowed: a statement of 104857617 bytes; at most 1048576 bytes"), "{stderr}");
    let (_, peak) = resident();
    assert!(peak <= baseline + 2 * LIMIT as u64, "the 100 MB literal took the process to {} MiB", peak >> 20);
    assert!(!health.is_finished(), "/healthz answered within 5 s the whole time");
    health.abort();

    // And the instance answers its ordinary questions afterwards, long ones up to the limit
    // of chained operators included.
    let at_limit = burnrate_engine::MAX_EXPRESSION_DEPTH;
    let alternatives = (0..at_limit / 2).map(|i| format!("service_name = 's{i}'")).collect::<Vec<_>>();
    for sql in [
        "SELECT count(*) FROM costs".to_owned(),
        format!("SELECT {}", vec!["1"; at_limit].join(" + ")),
        format!("SELECT count(*) FROM costs WHERE {}", alternatives.join(" OR ")),
    ] {
        let r = c.api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": sql }))).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
}

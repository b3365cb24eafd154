//! Database sources: a table in the organization's own PostgreSQL (a real server; scripts/test
//! starts it, and its pg_hba makes each test's role log in with a password) joined with the
//! organization's costs over the wire, read with pushdown, and its password kept out of sight.

use burnrate_testkit::TestApp;
use reqwest::Method;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::wire::{connect, create_credential, org_with_costs, sum_by_provider};

/// The group of the roles sources log in as; scripts/test's pg_hba asks its members for a
/// password (SCRAM).
const READERS: &str = "ext_readers";

/// A fresh database holding `teams`, readable by a role of its own (a member of [`READERS`])
/// with `password`; returns the database's name, the server's port and the role.
async fn customer_database(password: &str) -> (String, u16, String) {
    let su = std::env::var("BURNRATE_TEST_PG_URL")
        .expect("BURNRATE_TEST_PG_URL: a PostgreSQL superuser URL (scripts/test starts a server and sets it)");
    let port = url::Url::parse(&su).unwrap().port().unwrap_or(5432);
    let admin = superuser(&su).await;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (db, reader) = (format!("shop_{suffix}"), format!("ext_reader_{suffix}"));
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {READERS} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
             CREATE ROLE {reader} LOGIN PASSWORD '{password}' IN ROLE {READERS}"
        ))
        .await
        .unwrap();
    let mut url = url::Url::parse(&su).unwrap();
    url.set_path(&db);
    let shop = superuser(url.as_str()).await;
    shop.batch_execute(&format!(
        "CREATE TABLE teams (provider_name text PRIMARY KEY, team text NOT NULL, headcount int, budget numeric(12,2), since date);
         INSERT INTO teams VALUES ('OpenAI', 'Research', 12, 1500.25, '2025-03-01'),
                                  ('Anthropic', 'Support', 4, 99.99, '2025-07-15'),
                                  ('Mistral', 'Unused', NULL, NULL, NULL);
         GRANT SELECT ON teams TO {reader};"
    ))
    .await
    .unwrap();
    (db, port, reader)
}

async fn superuser(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("the test PostgreSQL");
    tokio::spawn(connection);
    client
}

/// Each provider's costs joined with the source's `teams` table, as `provider|sum` rows.
async fn spend_of_teams(client: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    let sql = format!(
        "SELECT c.provider_name, sum(c.billed_cost) FROM costs c JOIN {schema}.teams t \
         ON c.provider_name = t.provider_name GROUP BY c.provider_name ORDER BY 1"
    );
    rows(&client.simple_query(&sql).await.unwrap())
}

fn rows(messages: &[SimpleQueryMessage]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_owned()).collect::<Vec<_>>().join("|"))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs_join_a_table_of_the_organizations_own_postgres_and_its_password_stays_sealed() {
    let logs = crate::sources::captured_logs();
    let app = TestApp::spawn().await;
    let (a, a_key, records) = org_with_costs(&app, "Acme", 40).await;
    let password = format!("Pw-{}", uuid::Uuid::new_v4().simple());
    let (db, port, reader) = customer_database(&password).await;
    // From here on, only burnrate handles the password (the set-up above logs its own SQL).
    let logged_before = logs.lock().unwrap().len();

    let source = |name: &str, host: &str, secret: &str| {
        serde_json::json!({ "kind": "postgres", "name": name, "host": host, "port": port,
                            "database": db, "user": reader, "secret": secret })
    };
    let r = a.api(Method::POST, "/api/v1/sources", &a_key, Some(source("Shop DB", "127.0.0.1", &password))).await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Over the wire: the join sums each team's costs exactly (numeric in, numeric out).
    let cred = create_credential(&a, &a_key, "federated").await;
    let client = connect(&app.pg_addr.to_string(), &cred).await;
    assert_eq!(spend_of_teams(&client, "ext_shop_db").await, sum_by_provider(&records));
    let teams = client
        .simple_query("SELECT team, headcount, budget, since FROM ext_shop_db.teams ORDER BY team")
        .await
        .unwrap();
    assert_eq!(rows(&teams), ["Research|12|1500.25|2025-03-01", "Support|4|99.99|2025-07-15", "Unused|NULL|NULL|NULL"]);

    // Filters, projection and limit go to the remote server, values bound, not spliced.
    let filtered = "SELECT team FROM ext_shop_db.teams WHERE headcount > 5 AND team <> 'x''; DROP TABLE teams; --'";
    assert_eq!(rows(&client.simple_query(filtered).await.unwrap()), ["Research"]);
    let plan = rows(&client.simple_query(&format!("EXPLAIN {filtered}")).await.unwrap()).join("\n");
    assert!(
        plan.contains(
            r#"sql=SELECT "team"::text, "headcount"::int8 FROM "public"."teams" WHERE "headcount" > $1 AND "team" <> $2"#
        ),
        "{plan}"
    );
    let limited = rows(&client.simple_query("EXPLAIN SELECT team FROM ext_shop_db.teams LIMIT 2").await.unwrap());
    assert!(limited.join("\n").contains("LIMIT 2"), "{limited:?}");

    // The organization's own records: its sources (no secret, no settings), and, for a
    // credential (admins create them), its audit log.
    let sources = client.simple_query("SELECT name, kind, schema_name FROM sources ORDER BY name").await.unwrap();
    assert_eq!(rows(&sources), ["Shop DB|postgres|ext_shop_db"]);
    let audited = client
        .simple_query("SELECT action, target_type FROM audit_log WHERE action = 'source_created' ORDER BY seq")
        .await
        .unwrap();
    assert_eq!(rows(&audited), ["source_created|source"]);

    // Another organization has no such schema, and sees neither the source nor the entry.
    let (b, b_key, _) = org_with_costs(&app, "Globex", 4).await;
    let b_cred = create_credential(&b, &b_key, "other").await;
    let other = connect(&app.pg_addr.to_string(), &b_cred).await;
    let err = other.simple_query("SELECT * FROM ext_shop_db.teams").await.unwrap_err();
    let message = err.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(message.contains("ext_shop_db"), "{message}");
    assert_eq!(rows(&other.simple_query("SELECT name FROM sources").await.unwrap()), Vec::<String>::new());
    let theirs = other.simple_query("SELECT count(*) FROM audit_log WHERE action = 'source_created'").await.unwrap();
    assert_eq!(rows(&theirs), ["0"]);

    // A wrong password: refused with the server's words, which hold no password.
    let wrong = format!("Wrong-{}", uuid::Uuid::new_v4().simple());
    let r = a.api(Method::POST, "/api/v1/sources", &a_key, Some(source("Shop Stale", "127.0.0.1", &wrong))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let err = client.simple_query("SELECT * FROM ext_shop_stale.teams").await.unwrap_err();
    let message = err.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(message.contains("\"Shop Stale\"") && message.contains("password authentication failed"), "{message}");
    assert!(!message.contains(&wrong), "{message}");

    // The password appears in no log line (every level, the driver's included), listing or
    // audit entry.
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()[logged_before..]).into_owned();
    assert!(logged.contains("SQL client logged in"), "the logs were captured");
    let leaked: Vec<&str> = logged.lines().filter(|l| l.contains(&password) || l.contains(&wrong)).collect();
    assert!(leaked.is_empty(), "a password reached the logs: {leaked:#?}");
    // TLS required of a server that offers none (the test server): no connection, and why.
    let mut strict = source("Shop Strict", "127.0.0.1", &password);
    strict["tls"] = "require".into();
    let r = a.api(Method::POST, "/api/v1/sources", &a_key, Some(strict)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let err = client.simple_query("SELECT * FROM ext_shop_strict.teams").await.unwrap_err();
    let message = err.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(message.contains("\"Shop Strict\": cannot connect: TLS"), "{message}");

    let listing = a.api(Method::GET, "/api/v1/sources", &a_key, None).await;
    assert_eq!(listing.status, 200, "{}", listing.text);
    assert!(listing.text.contains("Shop DB"), "{}", listing.text);
    for page in [listing.text, a.get("/sources").await.text, a.get("/audit").await.text] {
        assert!(!page.contains(&password) && !page.contains(&wrong), "a password is shown: {page}");
    }

    // The same from the sources page's form, as an admin would.
    let port_text = port.to_string();
    let form = |name: &'static str, host: &'static str| {
        [
            ("kind", "postgres"),
            ("name", name),
            ("host", host),
            ("port", port_text.as_str()),
            ("database", db.as_str()),
            ("user", reader.as_str()),
            ("secret", password.as_str()),
        ]
    };
    let r = a.post_form("/sources/databases", &form("Shop Form", "127.0.0.1")).await;
    assert_eq!((r.status, r.location().as_deref()), (303, Some("/sources?done=database")), "{}", r.text);
    let page = a.get("/sources").await.text;
    assert!(page.contains("<code>ext_shop_form</code>"), "{page}");
    assert!(page.contains(&format!("127.0.0.1:{port}/{db} as {reader}")), "{page}");
    assert!(!page.contains(&password), "the sources page shows the password");
    let r = a.post_form("/sources/databases", &form("Elsewhere", "192.168.1.20")).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("is not a public address"), "{}", r.text);
    let form_rows = client.simple_query("SELECT count(*) FROM ext_shop_form.teams").await.unwrap();
    assert_eq!(rows(&form_rows), ["3"]);

    // Hosts: private addresses outside the operator's allow-list, and values that try to add
    // connection options, are refused when the source is saved.
    for (host, expect) in [("10.1.2.3", "not a public address"), ("127.0.0.1 sslmode=disable", "not a host name")] {
        let r = a.api(Method::POST, "/api/v1/sources", &a_key, Some(source("Bad", host, &password))).await;
        assert_eq!(r.status, 422, "{host}: {}", r.text);
        assert!(r.json()["error"]["message"].as_str().unwrap_or_default().contains(expect), "{host}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs_join_a_table_of_the_organizations_own_mariadb() {
    use sqlx::Connection;
    let logs = crate::sources::captured_logs();
    let app = TestApp::spawn().await;
    let (a, a_key, records) = org_with_costs(&app, "Acme", 30).await;
    let admin_url = std::env::var("BURNRATE_TEST_MYSQL_URL")
        .expect("BURNRATE_TEST_MYSQL_URL: a MariaDB root URL (scripts/test starts a server and sets it)");
    let port = url::Url::parse(&admin_url).unwrap().port().unwrap_or(3306);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (db, user, password) = (format!("shop_{}", &id[..12]), format!("reader_{}", &id[..8]), format!("Pw-{id}"));
    let mut admin = sqlx::MySqlConnection::connect(&admin_url).await.expect("the test MariaDB");
    for sql in [
        format!("CREATE DATABASE {db}"),
        // As a connection from loopback is matched: by `localhost` (before any anonymous user).
        format!("CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'"),
        format!("GRANT SELECT ON {db}.* TO '{user}'@'localhost'"),
        format!(
            "CREATE TABLE {db}.teams (provider_name VARCHAR(40) PRIMARY KEY, team VARCHAR(40) NOT NULL, \
             headcount INT, budget DECIMAL(12,2), since DATE, reviewed DATETIME)"
        ),
        format!(
            "INSERT INTO {db}.teams VALUES ('OpenAI', 'Research', 12, 1500.25, '2025-03-01', '2025-03-02 10:30:00'), \
             ('Anthropic', 'Support', 4, 99.99, '2025-07-15', NULL), ('Mistral', 'Unused', NULL, NULL, NULL, NULL)"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
    }
    // From here on, only burnrate handles the password (the set-up above logs its own SQL).
    let logged_before = logs.lock().unwrap().len();

    let source = |name: &str, secret: &str| {
        serde_json::json!({ "kind": "mysql", "name": name, "host": "127.0.0.1", "port": port,
                            "database": db, "user": user, "secret": secret })
    };
    let r = a.api(Method::POST, "/api/v1/sources", &a_key, Some(source("Shop Maria", &password))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let cred = create_credential(&a, &a_key, "federated").await;
    let client = connect(&app.pg_addr.to_string(), &cred).await;

    assert_eq!(spend_of_teams(&client, "ext_shop_maria").await, sum_by_provider(&records));
    let teams = client
        .simple_query("SELECT team, headcount, budget, since, reviewed FROM ext_shop_maria.teams ORDER BY team")
        .await
        .unwrap();
    assert_eq!(
        rows(&teams),
        [
            "Research|12|1500.25|2025-03-01|2025-03-02 10:30:00",
            "Support|4|99.99|2025-07-15|NULL",
            "Unused|NULL|NULL|NULL|NULL"
        ]
    );
    let filtered = "SELECT team FROM ext_shop_maria.teams WHERE headcount > 5 AND team <> 'x''; DROP TABLE teams; --'";
    assert_eq!(rows(&client.simple_query(filtered).await.unwrap()), ["Research"]);
    let plan = rows(&client.simple_query(&format!("EXPLAIN {filtered}")).await.unwrap()).join("\n");
    let pushed = format!(
        "sql=SELECT CAST(`team` AS CHAR), CAST(`headcount` AS SIGNED) FROM `{db}`.`teams` WHERE `headcount` > ? AND `team` <> ?"
    );
    assert!(plan.contains(&pushed), "{plan}");

    // A wrong password: MariaDB's refusal, which holds no password.
    let wrong = format!("Wrong-{id}");
    let r = a.api(Method::POST, "/api/v1/sources", &a_key, Some(source("Maria Stale", &wrong))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let err = client.simple_query("SELECT * FROM ext_maria_stale.teams").await.unwrap_err();
    let message = err.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(message.contains("\"Maria Stale\"") && message.contains("Access denied"), "{message}");
    assert!(!message.contains(&wrong) && !message.contains(&password), "{message}");
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()[logged_before..]).into_owned();
    assert!(logged.contains("SQL client logged in"), "the logs were captured");
    let leaked: Vec<&str> = logged.lines().filter(|l| l.contains(&password) || l.contains(&wrong)).collect();
    assert!(leaked.is_empty(), "a password reached the logs: {leaked:#?}");
}

/// How many of this process's file descriptors are sockets.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_queries_cancelled_or_timed_out_leave_no_socket_behind() {
    let opts = burnrate_testkit::AppOptions {
        statement_timeout: Some(std::time::Duration::from_millis(500)),
        ..Default::default()
    };
    let app = TestApp::spawn_with(opts).await;
    let (a, a_key, _) = org_with_costs(&app, "Acme", 4).await;
    let password = format!("Pw-{}", uuid::Uuid::new_v4().simple());
    let (db, port, reader) = customer_database(&password).await;
    // A view that keeps the database silent for a minute before its first row.
    let mut url = url::Url::parse(&std::env::var("BURNRATE_TEST_PG_URL").unwrap()).unwrap();
    url.set_path(&db);
    superuser(url.as_str())
        .await
        .batch_execute(&format!(
            "CREATE VIEW slow AS SELECT team, pg_sleep(60)::text AS slept FROM teams; GRANT SELECT ON slow TO {reader}"
        ))
        .await
        .unwrap();
    let source = serde_json::json!({ "kind": "postgres", "name": "Shop", "host": "127.0.0.1", "port": port,
                                     "database": db, "user": reader, "secret": password });
    let r = a.api(Method::POST, "/api/v1/sources", &a_key, Some(source)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let cred = create_credential(&a, &a_key, "federated").await;
    let client = connect(&app.pg_addr.to_string(), &cred).await;
    assert_eq!(rows(&client.simple_query("SELECT count(*) FROM ext_shop.teams").await.unwrap()), ["3"]);
    let before = open_sockets();

    // Fifty cancelled by the client (psql's Ctrl-C), fifty stopped by the statement timeout.
    for n in 0..100 {
        let token = client.cancel_token();
        let cancel = async {
            if n < 50 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                token.cancel_query(NoTls).await.unwrap();
            }
        };
        let (result, ()) = tokio::join!(client.simple_query("SELECT * FROM ext_shop.slow"), cancel);
        let error = result.expect_err("stopped before the database answers");
        let code = error.as_db_error().map(|e| e.code().code().to_owned());
        assert_eq!(code.as_deref(), Some("57014"), "{error:?}");
    }
    // Their connections to the database went with them: no socket is left open.
    let mut now = open_sockets();
    for _ in 0..50 {
        if now <= before + 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        now = open_sockets();
    }
    assert!(now <= before + 2, "{before} sockets open before the hundred queries, {now} after");
    // The session goes on.
    assert_eq!(rows(&client.simple_query("SELECT count(*) FROM ext_shop.teams").await.unwrap()), ["3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_federated_rows_on_a_joins_build_side_stay_within_the_query_limit() {
    const LIMIT: usize = 256 << 20;
    let opts = burnrate_testkit::AppOptions { query_memory_limit: Some(LIMIT), ..Default::default() };
    let app = TestApp::spawn_with(opts).await;
    let (a, a_key, _) = org_with_costs(&app, "Acme", 40).await;
    let password = format!("Pw-{}", uuid::Uuid::new_v4().simple());
    let (db, port, reader) = customer_database(&password).await;
    // A million rows of about 300 bytes: 300 MB read, more than the query may hold.
    let mut url = url::Url::parse(&std::env::var("BURNRATE_TEST_PG_URL").unwrap()).unwrap();
    url.set_path(&db);
    superuser(url.as_str())
        .await
        .batch_execute(&format!(
            "CREATE TABLE big AS SELECT n, CASE WHEN n % 2 = 0 THEN 'OpenAI' ELSE 'Other' END AS provider_name, \
                    repeat(md5(n::text), 9) AS note FROM generate_series(1, 1000000) AS n;
             GRANT SELECT ON big TO {reader}"
        ))
        .await
        .unwrap();
    let source = serde_json::json!({ "kind": "postgres", "name": "Shop", "host": "127.0.0.1", "port": port,
                                     "database": db, "user": reader, "secret": password });
    let r = a.api(Method::POST, "/api/v1/sources", &a_key, Some(source)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let cred = create_credential(&a, &a_key, "federated").await;
    let client = connect(&app.pg_addr.to_string(), &cred).await;
    assert_eq!(rows(&client.simple_query("SELECT count(*) FROM ext_shop.teams").await.unwrap()), ["3"]);
    let (baseline, _) = crate::governance::resident();
    crate::governance::reset_peak();

    // The remote rows build the hash table; the lake's few probe it.
    let sql =
        "SELECT count(*), max(length(b.note)) FROM ext_shop.big b JOIN costs c ON b.provider_name = c.provider_name";
    match client.simple_query(sql).await {
        Ok(answer) => assert_eq!(rows(&answer), ["20000000|288"], "half of the million rows meet each OpenAI line"),
        Err(e) => {
            let message = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string());
            assert!(message.contains("needs more memory than its limit allows"), "{message}");
        }
    }
    let (_, peak) = crate::governance::resident();
    assert!(
        peak <= baseline + 2 * LIMIT as u64,
        "the process peaked at {} MiB, over the idle {} MiB and twice the 256 MiB limit",
        peak >> 20,
        baseline >> 20
    );
    assert_eq!(rows(&client.simple_query("SELECT count(*) FROM ext_shop.teams").await.unwrap()), ["3"]);
}

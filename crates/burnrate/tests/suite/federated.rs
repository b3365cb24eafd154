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
            "DO $$ BEGIN CREATE ROLE {READERS} NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
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
                            "database": db, "user": reader, "secret": secret, "tls": "require" })
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
            r#"sql=SELECT "team"::text, "headcount"::int8 FROM "public"."teams" WHERE "headcount" > $1::int8 AND "team" <> $2::text"#
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
            ("tls", "require"),
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

/// A fresh MariaDB database holding `teams`, readable by a user of its own with `password`
/// (checked by MariaDB's ed25519 plugin if `ed25519`, else as `mysql_native_password`);
/// returns the database's name, the server's port and the user.
async fn customer_mariadb(password: &str, ed25519: bool) -> (String, u16, String) {
    use sqlx::Connection;
    let admin_url = std::env::var("BURNRATE_TEST_MYSQL_URL")
        .expect("BURNRATE_TEST_MYSQL_URL: a MariaDB root URL (scripts/test starts a server and sets it)");
    let port = url::Url::parse(&admin_url).unwrap().port().unwrap_or(3306);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (db, user) = (format!("shop_{}", &id[..12]), format!("reader_{}", &id[..8]));
    let mut admin = sqlx::MySqlConnection::connect(&admin_url).await.expect("the test MariaDB");
    for sql in [
        format!("CREATE DATABASE {db}"),
        // As a connection from loopback is matched: by `localhost` (before any anonymous user).
        if ed25519 {
            format!("CREATE USER '{user}'@'localhost' IDENTIFIED VIA ed25519 USING PASSWORD('{password}')")
        } else {
            format!("CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'")
        },
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
    (db, port, user)
}

/// The test certificate authority of the suite's PostgreSQL and MariaDB servers.
fn test_ca() -> String {
    std::fs::read_to_string(
        std::env::var("BURNRATE_TEST_DB_CA").expect(
            "BURNRATE_TEST_DB_CA: the test certificate authority of the database servers (scripts/test makes it)",
        ),
    )
    .unwrap()
}

/// Loopback by name: `localhost` may resolve to either address.
fn loopback_app() -> burnrate_testkit::AppOptions {
    burnrate_testkit::AppOptions {
        egress_allow: Some(vec!["127.0.0.1/32".into(), "::1/128".into()]),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs_join_a_table_of_the_organizations_own_mariadb() {
    let logs = crate::sources::captured_logs();
    let app = TestApp::spawn_with(loopback_app()).await;
    let (a, a_key, records) = org_with_costs(&app, "Acme", 30).await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let password = format!("Pw-{id}");
    let (db, port, user) = customer_mariadb(&password, false).await;
    let ca = test_ca();
    // From here on, only burnrate handles the password (the set-up above logs its own SQL).
    let logged_before = logs.lock().unwrap().len();

    // TLS verified for the name the server's certificate holds (verify-full, the default).
    let source = |name: &str, secret: &str| {
        serde_json::json!({ "kind": "mysql", "name": name, "host": "localhost", "port": port,
                            "database": db, "user": user, "secret": secret, "ca_pem": ca })
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

/// Connects a fresh customer database as the source "Shop" (`ext_shop`, TLS unverified), after
/// `setup` runs in it as the superuser; what `setup` makes, the source's role may read.
async fn shop(a: &burnrate_testkit::TestClient, key: &str, setup: &str) {
    let password = format!("Pw-{}", uuid::Uuid::new_v4().simple());
    let (db, port, reader) = customer_database(&password).await;
    let mut url = url::Url::parse(&std::env::var("BURNRATE_TEST_PG_URL").unwrap()).unwrap();
    url.set_path(&db);
    let admin = superuser(url.as_str()).await;
    admin.batch_execute(setup).await.unwrap();
    admin.batch_execute(&format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}")).await.unwrap();
    let source = serde_json::json!({ "kind": "postgres", "name": "Shop", "host": "127.0.0.1", "port": port,
                                     "database": db, "user": reader, "secret": password, "tls": "require" });
    let r = a.api(Method::POST, "/api/v1/sources", key, Some(source)).await;
    assert_eq!(r.status, 201, "{}", r.text);
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
    // A view that keeps the database silent for a minute before its first row.
    shop(&a, &a_key, "CREATE VIEW slow AS SELECT team, pg_sleep(60)::text AS slept FROM teams").await;
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
    // A million rows of about 300 bytes: 300 MB read, more than the query may hold.
    shop(
        &a,
        &a_key,
        "CREATE TABLE big AS SELECT n, CASE WHEN n % 2 = 0 THEN 'OpenAI' ELSE 'Other' END AS provider_name, \
                repeat(md5(n::text), 9) AS note FROM generate_series(1, 1000000) AS n",
    )
    .await;
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

/// A scripted PostgreSQL server on loopback for one connection: it refuses TLS, then asks for
/// the password as `auth` says (3: in clear text, 5: MD5), and reports every message type it
/// got after the startup message.
async fn scripted_server(auth: u32) -> (u16, tokio::sync::oneshot::Receiver<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut length = [0u8; 4];
        // SSLRequest (refused), then the startup message — unless the client hangs up first.
        loop {
            let mut body = Vec::new();
            let read = async {
                socket.read_exact(&mut length).await?;
                body.resize(u32::from_be_bytes(length) as usize - 4, 0);
                socket.read_exact(&mut body).await
            };
            if read.await.is_err() {
                let _ = tx.send(Vec::new());
                return;
            }
            if body[..4] == 80_877_103u32.to_be_bytes() {
                socket.write_all(b"N").await.unwrap();
                continue;
            }
            break;
        }
        let mut request = vec![b'R'];
        request.extend_from_slice(&(if auth == 5 { 12u32 } else { 8u32 }).to_be_bytes());
        request.extend_from_slice(&auth.to_be_bytes());
        if auth == 5 {
            request.extend_from_slice(b"salt");
        }
        socket.write_all(&request).await.unwrap();
        // What the client sends next, until it hangs up.
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while let Ok(1) = socket.read(&mut byte).await {
            seen.push(byte[0]);
        }
        let _ = tx.send(seen);
    });
    (port, rx)
}

/// TLS with a certificate of its own making for `localhost`.
fn self_signed_acceptor() -> tokio_rustls::TlsAcceptor {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// A PostgreSQL server that answers TLS with a certificate of its own making for `localhost`.
async fn self_signed_server() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = self_signed_acceptor();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 8];
            if socket.read_exact(&mut request).await.is_err() {
                continue;
            }
            let _ = socket.write_all(b"S").await;
            let _ = acceptor.accept(socket).await;
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_source_verifies_the_certificate_for_its_host_name_and_never_sends_the_password_in_clear() {
    // `localhost` is what the test server's certificate names (scripts/test makes it from its CA).
    let ca = test_ca();
    let app = TestApp::spawn_with(loopback_app()).await;
    let (a, a_key, _) = org_with_costs(&app, "Acme", 4).await;
    let password = format!("Pw-{}", uuid::Uuid::new_v4().simple());
    let (db, port, reader) = customer_database(&password).await;
    let cred = create_credential(&a, &a_key, "federated").await;
    let client = connect(&app.pg_addr.to_string(), &cred).await;
    let login = DatabaseLogin { kind: "postgres", database: &db, user: &reader, password: &password };
    let source = |name: &str, host: &str, port: u16, tls: Option<&str>, ca: Option<&str>| {
        login.source(name, host, port, tls, ca)
    };
    let add = async |body: serde_json::Value| add_source(&a, &a_key, body).await;
    let refusal = async |schema: &str| refusal_of(&client, schema).await;

    // verify-full is a new PostgreSQL source's mode: the certificate checked for the name.
    verify_full_holds_to_the_name(&a, &a_key, &client, &login, port, &ca).await;
    assert!(a.get("/sources").await.text.contains("TLS, certificate verified"));
    // A certificate the server made itself.
    let own = self_signed_server().await;
    add(source("Self Signed", "localhost", own, None, Some(&ca))).await;
    let said = refusal("ext_self_signed").await;
    assert!(said.contains("\"Self Signed\": cannot connect") && said.contains("invalid peer certificate"), "{said}");
    // A server without TLS: no connection, and no password sent.
    let (plain, seen) = scripted_server(3).await;
    add(source("Plain", "localhost", plain, None, Some(&ca))).await;
    let said = refusal("ext_plain").await;
    assert!(said.contains("\"Plain\": cannot connect") && said.contains("TLS"), "{said}");
    assert!(!seen.await.unwrap().contains(&b'p'), "no password message");

    // Even a source that takes plain text never answers a request for the password in clear
    // text or as MD5.
    for (auth, words) in [(3, "in clear text"), (5, "as an MD5 hash")] {
        let (scripted, seen) = scripted_server(auth).await;
        let name = format!("Asks {auth}");
        add(source(&name, "127.0.0.1", scripted, Some("prefer"), None)).await;
        let said = refusal(&format!("ext_asks_{auth}")).await;
        assert!(
            said.contains(&format!("the server asked for the password {words}; burnrate logs in by SCRAM only")),
            "{said}"
        );
        let seen = seen.await.unwrap();
        assert!(!seen.contains(&b'p') && !String::from_utf8_lossy(&seen).contains(&password), "{seen:?}");
    }

    // A CA must be PEM.
    let r = a
        .api(
            Method::POST,
            "/api/v1/sources",
            &a_key,
            Some(source("Bad CA", "localhost", port, None, Some("not a cert"))),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("CA certificate: expected one or more PEM certificates"), "{}", r.text);
}

/// What a scripted MySQL server does after its greeting.
#[derive(Clone, Copy)]
enum MySqlScript {
    /// Offers TLS and shows a certificate of its own making.
    SelfSigned,
    /// Offers no TLS and reads whatever comes.
    Plain,
    /// Offers no TLS, takes the login and asks it to switch to `mysql_clear_password`.
    ClearPassword,
}

/// A scripted MySQL server on loopback for one connection; reports every byte the client sent
/// it (outside TLS) until it hung up.
async fn scripted_mysql(script: MySqlScript) -> (u16, tokio::sync::oneshot::Receiver<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let packet = |seq: u8, body: &[u8]| {
        let mut p = (body.len() as u32).to_le_bytes()[..3].to_vec();
        p.push(seq);
        p.extend_from_slice(body);
        p
    };
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        // MariaDB 10.11's greeting: protocol 10, mysql_native_password, TLS offered or not.
        let ssl = if matches!(script, MySqlScript::SelfSigned) { 0x0800 } else { 0 };
        let caps: u32 = 0x0008 | 0x0200 | 0x8000 | 0x8_0000 | ssl;
        let mut greeting = vec![10];
        greeting.extend_from_slice(b"5.5.5-10.11.19-MariaDB\0");
        greeting.extend_from_slice(&7u32.to_le_bytes());
        greeting.extend_from_slice(b"abcdefgh\0");
        greeting.extend_from_slice(&(caps as u16).to_le_bytes());
        greeting.extend_from_slice(&[45, 2, 0]);
        greeting.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        greeting.push(21);
        greeting.extend_from_slice(&[0; 10]);
        greeting.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
        socket.write_all(&packet(0, &greeting)).await.unwrap();
        let mut seen = Vec::new();
        match script {
            MySqlScript::SelfSigned => {
                // The SSLRequest, then TLS.
                let mut request = [0u8; 36];
                if socket.read_exact(&mut request).await.is_ok() {
                    seen.extend_from_slice(&request);
                    let _ = self_signed_acceptor().accept(socket).await;
                }
                let _ = tx.send(seen);
                return;
            }
            MySqlScript::ClearPassword => {
                let mut header = [0u8; 4];
                if socket.read_exact(&mut header).await.is_ok() {
                    let mut login = vec![0u8; u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize];
                    socket.read_exact(&mut login).await.unwrap();
                    seen.extend_from_slice(&header);
                    seen.extend_from_slice(&login);
                    socket.write_all(&packet(header[3] + 1, b"\xFEmysql_clear_password\0")).await.unwrap();
                }
            }
            MySqlScript::Plain => {}
        }
        let mut byte = [0u8; 1];
        while let Ok(1) = socket.read(&mut byte).await {
            seen.push(byte[0]);
        }
        let _ = tx.send(seen);
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_source_verifies_the_certificate_for_its_host_name_and_never_sends_the_password_in_clear() {
    let ca = test_ca();
    let app = TestApp::spawn_with(loopback_app()).await;
    let (a, a_key, _) = org_with_costs(&app, "Acme", 4).await;
    let password = format!("Pw-{}", uuid::Uuid::new_v4().simple());
    let (db, port, user) = customer_mariadb(&password, false).await;
    let cred = create_credential(&a, &a_key, "federated").await;
    let client = connect(&app.pg_addr.to_string(), &cred).await;
    let login = DatabaseLogin { kind: "mysql", database: &db, user: &user, password: &password };
    let source = |name: &str, host: &str, port: u16, tls: Option<&str>, ca: Option<&str>| {
        login.source(name, host, port, tls, ca)
    };
    let add = async |body: serde_json::Value| add_source(&a, &a_key, body).await;
    let refusal = async |schema: &str| refusal_of(&client, schema).await;
    let never_sent = |seen: &[u8]| {
        assert!(!String::from_utf8_lossy(seen).contains(&password), "the password was sent: {seen:?}");
    };

    // verify-full is the default: the certificate checked for the name it holds.
    verify_full_holds_to_the_name(&a, &a_key, &client, &login, port, &ca).await;
    // Unverified TLS is an explicit choice, and still TLS.
    add(source("Unverified", "127.0.0.1", port, Some("require"), None)).await;
    assert_eq!(rows(&client.simple_query("SELECT count(*) FROM ext_unverified.teams").await.unwrap()), ["3"]);
    // An account of MariaDB's ed25519 plugin: the login signs the server's challenge.
    let (ed_db, _, ed_user) = customer_mariadb(&password, true).await;
    let mut ed = source("Signed", "localhost", port, None, Some(&ca));
    ed["database"] = ed_db.into();
    ed["user"] = ed_user.into();
    add(ed).await;
    assert_eq!(rows(&client.simple_query("SELECT count(*) FROM ext_signed.teams").await.unwrap()), ["3"]);

    // A certificate the server made itself: refused after the SSLRequest, nothing else sent.
    let (own, seen) = scripted_mysql(MySqlScript::SelfSigned).await;
    add(source("Self Signed", "localhost", own, None, Some(&ca))).await;
    let said = refusal("ext_self_signed").await;
    assert!(said.contains("\"Self Signed\": cannot connect") && said.contains("invalid peer certificate"), "{said}");
    assert_eq!(seen.await.unwrap().len(), 36, "the SSLRequest only");
    // A server without TLS: no login at all.
    let (plain, seen) = scripted_mysql(MySqlScript::Plain).await;
    add(source("Plain", "localhost", plain, None, Some(&ca))).await;
    let said = refusal("ext_plain").await;
    assert!(said.contains("\"Plain\": cannot connect") && said.contains("does not offer TLS"), "{said}");
    assert!(seen.await.unwrap().is_empty(), "nothing sent");

    // Even a source that takes plain text never answers a request for the password in clear.
    let (asks, seen) = scripted_mysql(MySqlScript::ClearPassword).await;
    add(source("Asks Clear", "127.0.0.1", asks, Some("prefer"), None)).await;
    let said = refusal("ext_asks_clear").await;
    assert!(
        said.contains(
            "the server asked for the password in clear text (mysql_clear_password); burnrate never sends it"
        ),
        "{said}"
    );
    let seen = seen.await.unwrap();
    assert!(!seen.is_empty(), "the login (its scramble) was read");
    never_sent(&seen);
}

/// Where and as whom a database source logs in.
struct DatabaseLogin<'a> {
    kind: &'a str,
    database: &'a str,
    user: &'a str,
    password: &'a str,
}

impl DatabaseLogin<'_> {
    /// The API's body of a new source `name` at `host:port`, in TLS mode `tls` (the default when
    /// `None`) with the certificate authority `ca`.
    fn source(&self, name: &str, host: &str, port: u16, tls: Option<&str>, ca: Option<&str>) -> serde_json::Value {
        let mut s = serde_json::json!({ "kind": self.kind, "name": name, "host": host, "port": port,
                                        "database": self.database, "user": self.user, "secret": self.password });
        if let Some(tls) = tls {
            s["tls"] = tls.into();
        }
        if let Some(ca) = ca {
            s["ca_pem"] = ca.into();
        }
        s
    }
}

/// Adds the source `body` as the organization's admin.
async fn add_source(a: &burnrate_testkit::TestClient, key: &str, body: serde_json::Value) {
    let r = a.api(Method::POST, "/api/v1/sources", key, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Why reading `schema.teams` over the wire fails.
async fn refusal_of(client: &tokio_postgres::Client, schema: &str) -> String {
    let err = client.simple_query(&format!("SELECT * FROM {schema}.teams")).await.unwrap_err();
    err.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| err.to_string())
}

/// What verify-full holds a server at `localhost:port` (its certificate from `ca`, for the name
/// localhost) to: a source by that name connects and says verify-full; by the address, or
/// without the private authority, it is refused naming why.
async fn verify_full_holds_to_the_name(
    a: &burnrate_testkit::TestClient,
    key: &str,
    client: &tokio_postgres::Client,
    login: &DatabaseLogin<'_>,
    port: u16,
    ca: &str,
) {
    add_source(a, key, login.source("Verified", "localhost", port, None, Some(ca))).await;
    assert_eq!(rows(&client.simple_query("SELECT count(*) FROM ext_verified.teams").await.unwrap()), ["3"]);
    let listed = a.api(Method::GET, "/api/v1/sources", key, None).await.json();
    let verified = listed["sources"].as_array().unwrap().iter().find(|s| s["name"] == "Verified").unwrap().clone();
    assert_eq!(verified["config"]["tls"], "verify-full", "{verified}");
    // The same server by its address: the certificate names localhost, not 127.0.0.1.
    add_source(a, key, login.source("By Address", "127.0.0.1", port, Some("verify-full"), Some(ca))).await;
    let said = refusal_of(client, "ext_by_address").await;
    assert!(
        said.contains("\"By Address\": cannot connect")
            && said.contains("certificate not valid for name \"127.0.0.1\""),
        "{said}"
    );
    // Without the private authority: not trusted.
    add_source(a, key, login.source("Unknown CA", "localhost", port, None, None)).await;
    let said = refusal_of(client, "ext_unknown_ca").await;
    assert!(said.contains("\"Unknown CA\": cannot connect") && said.contains("UnknownIssuer"), "{said}");
}

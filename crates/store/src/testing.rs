//! Throw-away databases for tests, on the backend `BURNRATE_TEST_BACKEND` names (`sqlite`, the
//! default, or `postgres` with `BURNRATE_TEST_PG_URL`, a superuser URL of a throw-away cluster).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    pub fn from_env() -> Self {
        match std::env::var("BURNRATE_TEST_BACKEND").as_deref() {
            Ok("postgres") => BackendKind::Postgres,
            Ok("sqlite") | Err(_) => BackendKind::Sqlite,
            Ok(other) => panic!("BURNRATE_TEST_BACKEND={other:?}: expected sqlite or postgres"),
        }
    }
}

/// A database for one test: the application's URL and, on PostgreSQL, the owner's. Empty: the
/// server migrates it at start, as `burnrate serve` does.
pub struct TestDb {
    pub kind: BackendKind,
    pub app_url: String,
    pub admin_url: Option<String>,
    /// The SQLite file, for tests that inspect it.
    pub sqlite_path: Option<std::path::PathBuf>,
    /// PostgreSQL: this test's database name.
    pub database: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match BackendKind::from_env() {
            BackendKind::Sqlite => {
                let path = dir.path().join("burnrate.db");
                TestDb {
                    kind: BackendKind::Sqlite,
                    app_url: format!("sqlite://{}", path.display()),
                    admin_url: None,
                    sqlite_path: Some(path),
                    database: None,
                    _dir: dir,
                }
            }
            BackendKind::Postgres => {
                let su = std::env::var("BURNRATE_TEST_PG_URL")
                    .expect("BURNRATE_TEST_BACKEND=postgres needs BURNRATE_TEST_PG_URL (a superuser URL of a throw-away cluster)");
                let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
                let (owner, app, db) = (format!("own_{id}"), format!("app_{id}"), format!("db_{id}"));
                let mut conn = PgConnection::connect(&su).await.expect("connect to the test cluster as superuser");
                for sql in [
                    format!("CREATE ROLE {owner} LOGIN"),
                    // Not an owner, not a superuser, no BYPASSRLS: row-level security applies.
                    format!("CREATE ROLE {app} LOGIN"),
                    format!("CREATE DATABASE {db} OWNER {owner}"),
                ] {
                    sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await.expect("create test roles and database");
                }
                conn.close().await.ok();
                let base = PgConnectOptions::from_str(&su).expect("superuser URL");
                let url_for = |user: &str| format!("postgres://{user}@{}:{}/{db}", base.get_host(), base.get_port());
                let admin_url = url_for(&owner);
                let app_url = url_for(&app);
                TestDb {
                    kind: BackendKind::Postgres,
                    app_url,
                    admin_url: Some(admin_url),
                    sqlite_path: None,
                    database: Some(db),
                    _dir: dir,
                }
            }
        }
    }

    /// The store on this database, migrated as `burnrate serve` migrates it.
    pub async fn open(&self) -> crate::Store {
        match self.kind {
            BackendKind::Sqlite => {
                let store = crate::Store::connect(&self.app_url).await.expect("open the SQLite test database");
                crate::migrate_sqlite(&store).await.expect("migrate the SQLite test database");
                store
            }
            BackendKind::Postgres => {
                let admin = self.admin_url.as_deref().expect("postgres backend");
                crate::migrate_postgres(admin, Some(&self.app_url))
                    .await
                    .expect("migrate the PostgreSQL test database");
                crate::Store::connect(&self.app_url).await.expect("connect to the PostgreSQL test database")
            }
        }
    }

    /// A superuser connection to this test's database (PostgreSQL only): for tests that act as
    /// someone with direct database access, e.g. to tamper with the audit log.
    pub async fn superuser(&self) -> PgConnection {
        let su = std::env::var("BURNRATE_TEST_PG_URL").expect("postgres backend");
        let opts = PgConnectOptions::from_str(&su)
            .expect("superuser URL")
            .database(self.database.as_deref().expect("postgres backend"));
        PgConnection::connect_with(&opts).await.expect("superuser connection")
    }
}

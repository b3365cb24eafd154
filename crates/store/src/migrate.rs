//! Schema migrations, one folder per backend.
//!
//! On PostgreSQL they run as the owner role and then grant the application role exactly what it
//! needs: all DML on ordinary tables, but only SELECT and INSERT on the audit log.

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

use crate::{Pool, Result, Store, StoreError};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const APP_TABLES: &[&str] = &[
    "organizations",
    "instance_keys",
    "org_keys",
    "users",
    "memberships",
    "sessions",
    "one_time_tokens",
    "invitations",
    "api_keys",
    "outbox",
    "lake_files",
    "sources",
    "jobs",
    "sql_credentials",
    "webhooks",
    "budgets",
    "alert_events",
    "deliveries",
    "delivery_attempts",
    "approval_requests",
    "operators",
    "operator_sessions",
    "login_challenges",
    "egress_grants",
    "price_overrides",
    "reconciliation_gaps",
    "ingest_keys",
    "ingested_spans",
];

/// Applies the SQLite migrations to `store` (which must be a SQLite store).
pub async fn migrate_sqlite(store: &Store) -> Result<()> {
    match &store.pool {
        Pool::Sqlite(p) => Ok(SQLITE.run(p).await?),
        Pool::Postgres(_) => Err(StoreError::Url("migrate_sqlite called on a PostgreSQL store".into())),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Applies the PostgreSQL migrations as the owner (`admin_url`) and grants the application role —
/// the user of `app_url` — its rights. The application role must not be the owner: the owner
/// could otherwise alter the policies that confine it.
pub async fn migrate_postgres(admin_url: &str, app_url: Option<&str>) -> Result<()> {
    let admin = Store::connect(admin_url).await?;
    let Pool::Postgres(pool) = &admin.pool else {
        return Err(StoreError::Url("BURNRATE_DATABASE_ADMIN_URL must be a postgres:// URL".into()));
    };
    POSTGRES.run(pool).await?;
    if let Some(app_url) = app_url {
        let app_user =
            PgConnectOptions::from_str(app_url).map_err(|e| StoreError::Url(e.to_string()))?.get_username().to_owned();
        let owner: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(pool).await?;
        if app_user == owner {
            return Err(StoreError::Url(format!(
                "BURNRATE_DATABASE_URL connects as {app_user:?}, the owner of the schema; use a separate non-owner role so that row-level security applies"
            )));
        }
        let role = quote_ident(&app_user);
        let mut tx = pool.begin().await?;
        sqlx::query(AssertSqlSafe(format!("GRANT USAGE ON SCHEMA public TO {role}"))).execute(&mut *tx).await?;
        for table in APP_TABLES {
            sqlx::query(AssertSqlSafe(format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role}")))
                .execute(&mut *tx)
                .await?;
        }
        // Support grants are the organization's record of who could see its data: kept, never deleted.
        sqlx::query(AssertSqlSafe(format!("GRANT SELECT, INSERT, UPDATE ON support_grants TO {role}")))
            .execute(&mut *tx)
            .await?;
        // Notices are published, never edited or withdrawn.
        sqlx::query(AssertSqlSafe(format!("GRANT SELECT, INSERT ON notices TO {role}"))).execute(&mut *tx).await?;
        // Imported price catalogues are a record of what priced what: added, never changed.
        sqlx::query(AssertSqlSafe(format!("GRANT SELECT, INSERT ON price_catalogues TO {role}")))
            .execute(&mut *tx)
            .await?;
        // Append-only (S16): no UPDATE, DELETE or TRUNCATE for the application.
        sqlx::query(AssertSqlSafe(format!("REVOKE ALL ON audit_log FROM {role}"))).execute(&mut *tx).await?;
        sqlx::query(AssertSqlSafe(format!("GRANT SELECT, INSERT ON audit_log TO {role}"))).execute(&mut *tx).await?;
        tx.commit().await?;
    }
    admin.close().await;
    Ok(())
}

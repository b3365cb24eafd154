//! `burnrate migrate`: the schema, applied by the owner role on PostgreSQL.

use anyhow::Context;
use secrecy::ExposeSecret;

use super::{Failure, config_error, open_store};
use crate::settings::Settings;

pub(super) async fn migrate(settings: &Settings) -> Result<(), Failure> {
    let url = settings.database_url();
    if url.starts_with("sqlite:") {
        open_store(settings).await?.close().await;
        println!("SQLite database migrated: {}", url.trim_start_matches("sqlite://"));
        return Ok(());
    }
    let Some(admin) = &settings.database_admin_url else {
        return Err(config_error(
            "BURNRATE_DATABASE_ADMIN_URL",
            "not set: migrating PostgreSQL needs the owner role's URL",
        ));
    };
    burnrate_store::migrate_postgres(admin.expose_secret(), Some(&url)).await.context("migrating PostgreSQL")?;
    println!("PostgreSQL migrated; the application role has been granted its rights.");
    Ok(())
}

//! `burnrate serve`: production.

use super::Failure;
use crate::server::{Tuning, bind, launch, wait_for_shutdown};
use crate::settings::Settings;

pub(super) async fn serve(settings: Settings) -> Result<(), Failure> {
    settings.check_plain_http()?;
    let running = launch(&settings, Tuning::default(), bind(&settings).await?).await?;
    match running.https {
        Some(addr) => {
            tracing::info!(https = %addr, http_redirect = %running.http, "burnrate is serving")
        }
        None => tracing::info!(http = %running.http, "burnrate is serving (plain HTTP)"),
    }
    tracing::info!(postgres = %running.pg.addr, "SQL clients connect here (database burnrate)");
    wait_for_shutdown().await;
    tracing::info!("shutting down");
    let store = running.store.clone();
    drop(running);
    store.close().await;
    Ok(())
}

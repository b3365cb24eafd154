//! `burnrate serve`: production.

use std::sync::Arc;

use burnrate_store::Vault;

use super::{Failure, master_keys, open_store};
use crate::server::{bind, build_state, start, wait_for_shutdown};
use crate::settings::Settings;

pub(super) async fn serve(settings: Settings) -> Result<(), Failure> {
    let ring = master_keys(&settings)?;
    settings.check_plain_http()?;
    let store = open_store(&settings).await?;
    let state = build_state(&settings, store.clone(), Arc::new(Vault::new(ring))).await?;
    let running = start(&settings, state, bind(&settings).await?).await?;
    match settings.https_addr {
        Some(addr) => {
            tracing::info!(https = %addr, http_redirect = %running.http, "burnrate is serving")
        }
        None => tracing::info!(http = %running.http, "burnrate is serving (plain HTTP)"),
    }
    tracing::info!(postgres = %running.pg.addr, "SQL clients connect here (database burnrate)");
    wait_for_shutdown().await;
    tracing::info!("shutting down");
    store.close().await;
    Ok(())
}

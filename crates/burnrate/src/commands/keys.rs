//! `burnrate keys rotate`: every data key re-wrapped under the active master key (S1).

use anyhow::Context;
use burnrate_store::Vault;

use super::{Failure, master_keys, open_admin_store};
use crate::settings::Settings;

pub(super) async fn rotate(settings: &Settings) -> Result<(), Failure> {
    let ring = master_keys(settings)?;
    let active = ring.active_kid().to_owned();
    let store = open_admin_store(settings).await?;
    let vault = Vault::new(ring);
    let n = vault.rewrap_all(&store).await.context("re-wrapping data keys")?;
    println!(
        "{n} data key(s) re-wrapped under master key {active}. Keys no longer listed first may now be removed from BURNRATE_MASTER_KEYS."
    );
    Ok(())
}

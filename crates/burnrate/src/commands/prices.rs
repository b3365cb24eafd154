//! `burnrate prices import FILE [--apply]` and `burnrate prices show`: the instance's price
//! catalogue. An import prints its difference first; applied, it is in every organization's
//! audit log, and every instance prices usage with it from its next sync.

use burnrate_app::prices::{MAX_CATALOGUE_BYTES, PriceCatalogues};

use super::{Failure, config_error, open_store};
use crate::cli::PricesCommand;
use crate::settings::Settings;

/// How many changes are listed one by one before the rest are counted.
const LISTED: usize = 50;

pub(super) async fn prices(settings: &Settings, command: PricesCommand) -> Result<(), Failure> {
    let catalogues = PriceCatalogues::new(open_store(settings).await?);
    match command {
        PricesCommand::Show => {
            let current = catalogues.current().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let c = &current.catalogue;
            let models: usize = c.providers().iter().map(|p| p.models.len()).sum();
            let origin = match current.imported_at {
                Some(at) => format!("imported {}", at.to_rfc3339()),
                None => "shipped with burnrate".to_owned(),
            };
            println!(
                "{} {} ({origin}): {} providers, {models} models, sha256 {}",
                c.source,
                c.version,
                c.providers().len(),
                c.checksum
            );
        }
        PricesCommand::Import { file, apply } => {
            let size =
                std::fs::metadata(&file).map_err(|e| config_error("FILE", format!("{}: {e}", file.display())))?.len();
            if size > MAX_CATALOGUE_BYTES as u64 {
                return Err(config_error(
                    "FILE",
                    format!("{}: more than {} MB", file.display(), MAX_CATALOGUE_BYTES >> 20),
                ));
            }
            let json = std::fs::read(&file).map_err(|e| config_error("FILE", format!("{}: {e}", file.display())))?;
            let import = catalogues.import(&json, apply, "burnrate prices import").await.map_err(|e| match e {
                burnrate_app::Error::Invalid { message, .. } => {
                    config_error("FILE", format!("{}: {message}", file.display()))
                }
                other => Failure::Other(anyhow::anyhow!("{other}")),
            })?;
            println!(
                "{} {} (sha256 {}) against the current {}: {} models changed",
                import.source,
                import.version,
                import.checksum,
                import.replacing,
                import.changes.len()
            );
            for change in import.changes.iter().take(LISTED) {
                println!("  {change}");
            }
            if import.changes.len() > LISTED {
                println!("  … and {} more", import.changes.len() - LISTED);
            }
            match import.applied_to {
                Some(orgs) => println!(
                    "applied: usage synced from now on is priced with it; recorded in the audit log of {orgs} organizations"
                ),
                None if apply => println!("nothing to apply: it is the current catalogue"),
                None => println!("dry run: nothing changed; run again with --apply to apply it"),
            }
        }
    }
    Ok(())
}

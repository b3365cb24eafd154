//! The instance's price catalogue: which one prices usage, and an operator's import of a newer
//! one — checked whole, its difference shown before it applies, and recorded in every
//! organization's audit log when it does (their computed costs change with it).

use std::sync::Arc;

use burnrate_core::OrgId;
use burnrate_prices::{Catalogue, Change};
use burnrate_store::{Actor, AuditAction, NewAuditEntry, OrgScope, Store};
use serde_json::json;

use crate::{Error, Result};

/// The largest catalogue taken: the shipped one is well under a megabyte.
pub const MAX_CATALOGUE_BYTES: usize = 32 << 20;

pub struct PriceCatalogues {
    store: Store,
}

/// The catalogue that prices usage, and where it came from.
pub struct Current {
    pub catalogue: Arc<Catalogue>,
    /// When an operator imported it; `None` for the one burnrate ships.
    pub imported_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What an import found, and whether it applied.
pub struct Import {
    pub source: String,
    pub version: String,
    pub checksum: String,
    /// The current catalogue's source and version.
    pub replacing: String,
    pub changes: Vec<Change>,
    /// The organizations whose audit log records it; `None` for a dry run or no change.
    pub applied_to: Option<usize>,
}

impl PriceCatalogues {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The newest imported catalogue, else the shipped one.
    pub async fn current(&self) -> Result<Current> {
        let mut tx = self.store.read_instance().await?;
        let stored = tx.newest_price_catalogue().await?;
        tx.commit().await?;
        match stored {
            Some(s) => {
                let catalogue = Catalogue::parse(s.body.as_bytes())
                    .map_err(|e| Error::internal(format!("the imported price catalogue {}: {e}", s.version)))?;
                Ok(Current { catalogue: Arc::new(catalogue), imported_at: Some(s.imported_at) })
            }
            None => Ok(Current {
                catalogue: Catalogue::shipped().map_err(|e| Error::internal(e.to_string()))?,
                imported_at: None,
            }),
        }
    }

    /// Reads `json` as a catalogue and compares it with the current one; with `apply`, makes it
    /// the instance's and records that in every organization's audit log, in one transaction.
    /// A catalogue identical to the current one changes nothing.
    pub async fn import(&self, json: &[u8], apply: bool, command: &str) -> Result<Import> {
        if json.len() > MAX_CATALOGUE_BYTES {
            return Err(Error::invalid("file", format!("more than {} MB", MAX_CATALOGUE_BYTES >> 20)));
        }
        let text = std::str::from_utf8(json).map_err(|_| Error::invalid("file", "not UTF-8 text"))?;
        let newer = Catalogue::parse(json).map_err(|e| Error::invalid("file", e.to_string()))?;
        let current = self.current().await?;
        let changes = current.catalogue.changes_to(&newer);
        let mut import = Import {
            source: newer.source.clone(),
            version: newer.version.clone(),
            checksum: newer.checksum.clone(),
            replacing: format!("{} {}", current.catalogue.source, current.catalogue.version),
            changes,
            applied_to: None,
        };
        if !apply || newer.checksum == current.catalogue.checksum {
            return Ok(import);
        }
        let mut tx = self.store.instance().await?;
        let stored = tx.record_price_catalogue(&newer.source, &newer.version, &newer.checksum, text).await?;
        let orgs: Vec<OrgId> = tx.list_org_ids().await?;
        let (added, removed, repriced) = import.changes.iter().fold((0, 0, 0), |(a, r, p), c| match c {
            Change::Added(_) => (a + 1, r, p),
            Change::Removed(_) => (a, r + 1, p),
            Change::Repriced(_) => (a, r, p + 1),
        });
        for org in &orgs {
            let mut t = tx.into_tenant(OrgScope::trusted(*org)).await?;
            t.audit(NewAuditEntry {
                actor: Actor::system(command),
                action: AuditAction::PriceCatalogueImported,
                target_type: Some("price_catalogue"),
                target_id: Some(stored.id.to_string()),
                details: json!({
                    "source": newer.source, "version": newer.version, "checksum": newer.checksum,
                    "replacing": import.replacing,
                    "models_added": added, "models_removed": removed, "models_repriced": repriced,
                }),
                ip: None,
                user_agent: None,
            })
            .await?;
            tx = t.into_instance();
        }
        tx.commit().await?;
        import.applied_to = Some(orgs.len());
        Ok(import)
    }
}

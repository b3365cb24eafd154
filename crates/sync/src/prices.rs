//! The instance's price catalogue as syncs price usage with it: the newest an operator imported
//! (`burnrate prices import FILE --apply`), else the one burnrate ships. Each sync asks which is
//! newest (one small read), so an import on any instance holds at every instance's next sync.

use std::sync::{Arc, Mutex};

use burnrate_prices::{Adjustment, Catalogue, Override, PriceBook};
use burnrate_store::{OrgScope, PriceOverrideRecord, Store};

use crate::SyncError;

#[derive(Clone, Default)]
pub struct Prices {
    /// The imported catalogue last loaded, by its checksum.
    loaded: Arc<Mutex<Option<(String, PriceBook)>>>,
}

impl Prices {
    /// The book `scope`'s usage is priced with: the instance's catalogue and the organization's
    /// own prices.
    pub async fn book_of(&self, store: &Store, scope: OrgScope) -> Result<PriceBook, SyncError> {
        let book = self.book(store).await?;
        let mut tx = store.read_tenant(scope).await?;
        let records = tx.price_overrides().await?;
        tx.commit().await?;
        let overrides = records.iter().map(read_override).collect::<Result<Vec<_>, _>>()?;
        Ok(book.with_overrides(overrides))
    }

    /// The book of the instance's current catalogue.
    pub async fn book(&self, store: &Store) -> Result<PriceBook, SyncError> {
        let mut tx = store.read_instance().await?;
        let Some(newest) = tx.newest_price_catalogue_checksum().await? else {
            tx.commit().await?;
            return Ok(PriceBook::shipped());
        };
        if let Some((checksum, book)) = self.loaded.lock().expect("prices lock").as_ref()
            && *checksum == newest
        {
            return Ok(book.clone());
        }
        let stored = tx.newest_price_catalogue().await?;
        tx.commit().await?;
        let Some(stored) = stored else { return Ok(PriceBook::shipped()) };
        // Checked whole when it was imported; a row that no longer reads stops the sync, naming it.
        let catalogue = Catalogue::parse(stored.body.as_bytes()).map_err(|e| {
            SyncError::Config(format!("the imported price catalogue {} {}: {e}", stored.source, stored.version))
        })?;
        let book = PriceBook::new(Arc::new(catalogue));
        *self.loaded.lock().expect("prices lock") = Some((stored.checksum, book.clone()));
        Ok(book)
    }
}

/// An override as stored, read for pricing; one that no longer reads stops the sync, naming it.
pub fn read_override(r: &PriceOverrideRecord) -> Result<Override, SyncError> {
    let bad = |what: &str| SyncError::Config(format!("price override {} ({}/{}): {what}", r.id, r.provider, r.model));
    let decimal = |s: &str| s.parse::<rust_decimal::Decimal>().map_err(|_| bad(&format!("{s:?} is not a decimal")));
    let adjustment = match (&r.discount_percent, &r.rates) {
        (Some(p), None) => Adjustment::Discount(decimal(p)?),
        (None, Some(json)) => {
            let rates: std::collections::BTreeMap<String, String> =
                serde_json::from_str(json).map_err(|_| bad("its rates do not read"))?;
            Adjustment::Rates(rates.into_iter().map(|(k, v)| Ok((k, decimal(&v)?))).collect::<Result<_, SyncError>>()?)
        }
        _ => return Err(bad("neither a discount nor rates")),
    };
    Ok(Override {
        id: r.id.to_string(),
        provider: r.provider.clone(),
        model: r.model.clone(),
        from: r.effective_from,
        through: r.effective_to,
        adjustment,
    })
}

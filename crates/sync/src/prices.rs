//! The instance's price catalogue as syncs price usage with it: the newest an operator imported
//! (`burnrate prices import FILE --apply`), else the one burnrate ships. Each sync asks which is
//! newest (one small read), so an import on any instance holds at every instance's next sync.

use std::sync::{Arc, Mutex};

use burnrate_prices::{Catalogue, PriceBook};
use burnrate_store::Store;

use crate::SyncError;

#[derive(Clone, Default)]
pub struct Prices {
    /// The imported catalogue last loaded, by its checksum.
    loaded: Arc<Mutex<Option<(String, PriceBook)>>>,
}

impl Prices {
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

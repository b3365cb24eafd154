//! Driving a provider: the connector of a source, made by its provider's registration from the
//! source's settings, with its credential opened for the length of one sync (S2).

use burnrate_sources::{Connector, SourceConfig, SourceKind};
use burnrate_store::{OrgScope, SourceRecord};

use crate::{SyncError, Syncer};

impl Syncer {
    /// The source's connector, with its key opened from the vault.
    pub(crate) async fn connector(
        &self,
        scope: OrgScope,
        source: &SourceRecord,
    ) -> Result<(Box<dyn Connector>, burnrate_net::HttpClient), SyncError> {
        let kind = SourceKind::parse(&source.kind).ok_or_else(|| SyncError::UnknownKind(source.kind.clone()))?;
        let config = SourceConfig::read(&source.name, &source.kind, &source.config)?;
        let provider = kind.provider();
        debug_assert_eq!(config.kind(), kind, "read by its kind");
        let base = config.base_url.as_deref().unwrap_or(provider.base_url);
        let base_url = url::Url::parse(base).map_err(|e| SyncError::Config(format!("base URL: {e}")))?;
        let mut tx = self.store.tenant(scope).await?;
        let secret = tx.open_source_secret(&self.vault, source.id).await?;
        // The organization's outbound calls reach the private networks granted to it (S30).
        let grants = tx.egress_grants().await?;
        tx.commit().await?;
        let http = self.http.granted(&grants).map_err(|e| SyncError::Config(format!("egress grants: {e}")))?;
        let key = secrecy::SecretString::from(secret.as_str().to_owned());
        drop(secret);
        Ok(((provider.connect)(&config, base_url, key).map_err(SyncError::Config)?, http))
    }
}

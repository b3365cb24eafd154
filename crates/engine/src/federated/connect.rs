//! A database source as the engine reaches it: its settings, its password opened from the vault at
//! the moment of connecting (S2), the address the egress guard approved (S14), and errors that name
//! the source, never the options.

use std::fmt;
use std::sync::Arc;

use super::dialect::Driver;
use super::scan::Failure;
use burnrate_core::DatabaseConfig;
use burnrate_net::EgressGuard;
use burnrate_store::{OrgScope, SourceRecord, Store, Vault};
use datafusion::common::{DataFusionError, Result};

/// A connection to a source, of its driver.
pub(super) enum Remote {
    Postgres(super::postgres::Connected),
    MySql(super::mysql::Connected),
}

/// What a session needs to reach one database source.
pub(crate) struct RemoteSource {
    pub(crate) name: String,
    pub(super) driver: Driver,
    pub(super) id: burnrate_core::SourceId,
    pub(super) config: DatabaseConfig,
    pub(super) scope: OrgScope,
    pub(super) store: Store,
    pub(super) vault: Arc<Vault>,
    pub(super) guard: EgressGuard,
}

impl fmt::Debug for RemoteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSource").field("name", &self.name).field("config", &self.config).finish()
    }
}

impl RemoteSource {
    pub(crate) fn new(
        source: &SourceRecord,
        scope: OrgScope,
        store: Store,
        vault: Arc<Vault>,
        guard: EgressGuard,
    ) -> std::result::Result<Self, String> {
        let config: DatabaseConfig = serde_json::from_str(&source.config)
            .map_err(|e| format!("database source {:?}: its settings do not read: {e}", source.name))?;
        let driver =
            Driver::of(&source.kind).ok_or_else(|| format!("database source {:?}: unknown kind", source.name))?;
        Ok(Self { name: source.name.clone(), driver, id: source.id, config, scope, store, vault, guard })
    }

    pub(super) fn error(&self, what: impl fmt::Display) -> DataFusionError {
        DataFusionError::Execution(format!("database source {:?}: {what}", self.name))
    }

    /// A connection of its own, to the address the egress guard approved.
    pub(super) async fn connect(&self) -> Result<Remote> {
        let addr = self.guard.resolve(&self.config.host, self.config.port).await.map_err(|e| self.error(e))?;
        let mut tx = self.store.read_tenant(self.scope).await.map_err(|e| self.error(e))?;
        let password = tx.open_source_secret(&self.vault, self.id).await.map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        let connecting = async {
            match self.driver {
                Driver::Postgres => super::postgres::connect(addr, &self.config, &password).await.map(Remote::Postgres),
                Driver::MySql => {
                    super::mysql::connect(addr, &self.config, &password).await.map(Remote::MySql).map_err(|e| e.words())
                }
            }
        };
        let connected = tokio::time::timeout(std::time::Duration::from_secs(10), connecting).await;
        drop(password);
        match connected {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.error(format!("cannot connect: {e}"))),
            Err(_) => Err(self.error(format!("{}:{} did not answer within 10 s", self.config.host, self.config.port))),
        }
    }

    /// The schema the source's tables are read from: the configured one in PostgreSQL; in
    /// MySQL a schema is the database.
    pub(super) fn remote_schema(&self) -> &str {
        match self.driver {
            Driver::Postgres => &self.config.schema,
            Driver::MySql => &self.config.database,
        }
    }
}

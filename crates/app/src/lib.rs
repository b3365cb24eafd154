//! burnrate's application layer: the rules, in one place.
//!
//! ```text
//!   web (pages, /api/v1) ─┐
//!   pgwire (SQL logins) ──┼──▶ app: one service per area, one policy ──▶ store, engine, sync, notify, lake
//!   command line, demo ───┘        every change audited here, once
//! ```
//!
//! Front ends extract a typed [`Actor`] and typed input, call one service and map [`Error`]; they
//! never decide who may do what, what waits for a second admin, or what is audited. Services take
//! the actor's [`burnrate_store::OrgScope`] as the only way to an organization's data, and write
//! the change and its audit entry in one transaction.
//!
//! What lives here: accounts (sign-up, verification, login with its second step, reset,
//! invitations accepted) and sessions, members and invitations, API keys, SQL credentials and how
//! their logins follow membership, the approval queue and its policy, sources (made, their
//! credentials and settings, listed, tested, synced on request), budgets and alerts, webhooks and
//! their deliveries, support access and notices ([`support::Support`], which the command line
//! builds on its own), the audit log's reading and export, exports' audit records, the console's
//! schema, and spend ([`spend`]: the overview's summary and the explorer's and FOCUS export's
//! statements). The web crate holds no SQL text.

pub mod accounts;
mod actor;
pub mod api_keys;
pub mod approvals;
pub mod attribution;
pub mod audit;
pub mod budgets;
pub mod console;
mod error;
pub mod exports;
pub mod ingest;
pub mod members;
pub mod organization;
pub mod policy;
pub mod prices;
pub mod reconciliation;
pub mod sessions;
pub mod sources;
pub mod spend;
pub mod sql_access;
pub mod support;
pub mod webhooks;

use std::sync::Arc;

use burnrate_notify::Mailer;
use burnrate_store::{Store, Vault};

pub use actor::{Actor, Via};
pub use approvals::{Change, Submitted};
pub use burnrate_store::{OrgScope, Quota, RateLimiter};
pub use error::{Error, Result};

/// The application: what every service needs, shared by every front end; cheap to clone.
#[derive(Clone)]
pub struct App {
    store: Store,
    vault: Arc<Vault>,
    mailer: Mailer,
    /// Outbound calls, and the egress guard that checks where they may go (S14).
    http: burnrate_net::HttpClient,
    /// Syncs sources (with the store, key ring and client above).
    syncer: burnrate_sync::Syncer,
    /// Budgets, alerts and webhook deliveries; absent in an instance without the SQL engine.
    notifier: Option<burnrate_notify::Notifier>,
    /// SQL over the organization's data; absent in an instance that serves no SQL.
    engine: Option<burnrate_engine::Engine>,
    /// The origin people reach, for links in mail and events.
    public_url: url::Url,
    hasher: burnrate_crypto::PasswordHasher,
    clock: Clock,
    /// Stores ingested requests in groups; started on first use.
    committer: ingest::CommitterCell,
}

/// What "now" is for the application's answers: the system's time, or a fixed moment (a test or a
/// replay pins it, so the same data gives the same figures on any day).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    #[default]
    System,
    Fixed(chrono::DateTime<chrono::Utc>),
}

impl Clock {
    pub fn now(self) -> chrono::DateTime<chrono::Utc> {
        match self {
            Clock::System => chrono::Utc::now(),
            Clock::Fixed(at) => at,
        }
    }
}

impl App {
    pub fn new(
        syncer: burnrate_sync::Syncer,
        mailer: Mailer,
        hasher: burnrate_crypto::PasswordHasher,
        public_url: url::Url,
    ) -> Self {
        Self {
            hasher,
            store: syncer.store.clone(),
            vault: Arc::clone(&syncer.vault),
            http: syncer.http.clone(),
            syncer,
            notifier: None,
            engine: None,
            mailer,
            public_url,
            clock: Clock::System,
            committer: ingest::CommitterCell::default(),
        }
    }

    /// The same application, its answers as of `clock`'s now.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same application, reading spend through `engine` (console, explorer, exports).
    pub fn with_engine(mut self, engine: burnrate_engine::Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// The same application, telling people through `notifier` (webhook tests and redelivery).
    pub fn with_notifier(mut self, notifier: burnrate_notify::Notifier) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Syncs sources, for the composition root's scheduler and the demo's first sync.
    pub fn syncer(&self) -> &burnrate_sync::Syncer {
        &self.syncer
    }

    /// The outbound client of `scope`: public addresses, what every organization reaches, and
    /// the private networks granted to it (S30).
    pub(crate) async fn http_of(&self, scope: OrgScope) -> Result<burnrate_net::HttpClient> {
        let mut tx = self.store.read_tenant(scope).await?;
        let grants = tx.egress_grants().await?;
        tx.commit().await?;
        self.reach(&grants)
    }

    /// The outbound client of an organization granted `grants`.
    pub(crate) fn reach(&self, grants: &[String]) -> Result<burnrate_net::HttpClient> {
        self.http.granted(grants).map_err(|e| Error::internal(format!("egress grants: {e}")))
    }

    /// Budgets, alerts and webhook deliveries, which read spend through the SQL engine.
    fn notifier(&self) -> Result<&burnrate_notify::Notifier> {
        self.notifier.as_ref().ok_or_else(|| Error::internal("this instance runs no SQL engine"))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// An admin's change to one of the organization's things (`target`: its type and id), made by
    /// `f` (false: there is no such thing) and audited as `action`, in one transaction.
    async fn admin_change(
        &self,
        actor: &Actor,
        target: (&'static str, String),
        action: burnrate_store::AuditAction,
        f: impl AsyncFnOnce(&mut burnrate_store::TenantTx) -> Result<bool>,
    ) -> Result<()> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        if !f(&mut tx).await? {
            return Err(Error::NotFound);
        }
        tx.audit(actor.entry(action, target.0, target.1, serde_json::json!({}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The instance's price catalogue and its imports.
    pub fn prices(&self) -> prices::PriceCatalogues {
        prices::PriceCatalogues::new(self.store.clone())
    }

    /// Support access and operators' notices.
    pub fn support(&self) -> support::Support {
        support::Support::new(self.store.clone(), Arc::clone(&self.vault), self.hasher.clone(), self.public_url.clone())
    }

    /// Tells the mail worker that mail was queued.
    pub fn wake_mailer(&self) {
        self.mailer.wake();
    }

    /// An absolute link to `path` on this instance.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.origin().ascii_serialization())
    }
}

/// A day as forms and the API write it (`YYYY-MM-DD`); refused naming `field`.
pub(crate) fn parse_day(field: &'static str, text: &str) -> Result<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| Error::invalid(field, format!("{field}: {text:?} is not a day (YYYY-MM-DD)")))
}

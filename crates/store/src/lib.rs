//! The relational store: SQLite by default, PostgreSQL for several instances.
//!
//! One API over two concrete backends. Each operation is written once as SQL both databases
//! accept (`$n` placeholders, `RETURNING`, `ON CONFLICT`) and compiled against each driver's own
//! types through the [`on!`] macro, so nothing goes through sqlx's type-poor `Any` driver; where
//! the dialects differ, the code matches on the backend explicitly. Each backend has its own
//! migrations.
//!
//! Tenancy: tenant rows are reached only through a [`TenantTx`], which exists only for an
//! [`OrgScope`]; on PostgreSQL the transaction also sets `app.org_id`, which the row-level security
//! policies of every tenant table check. Instance-wide rows (organizations, users, sessions, the
//! outbox) are reached through an [`InstanceTx`].
//!
//! Times are stored in UTC. Expiry is compared in Rust, not SQL: SQLite keeps times as text.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use burnrate_core::OrgId;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

mod accounts;
mod alerts;
mod api_keys;
mod approvals;
mod audit;
mod budgets;
mod egress;
mod ingest;
mod invitations;
mod jobs;
mod lake;
mod limits;
mod migrate;
mod outbox;
mod prices;
mod second_factor;
mod sources;
mod sql_credentials;
mod support;
#[cfg(feature = "testing")]
pub mod testing;
mod vault;
mod webhooks;

pub use accounts::{Member, Organization, SessionRecord, TokenPurpose, UserRecord};
pub use alerts::{AlertEvent, AlertKind, Delivery, DeliveryAttempt, DeliveryState};
pub use api_keys::{ApiKeyHolder, ApiKeyRecord};
pub use approvals::{ApprovalRequest, ApprovalState, DEFAULT_APPROVAL_ACTIONS};
pub use audit::{
    AUDIT_CSV_COLUMNS, Actor, ActorType, AuditAction, AuditBreak, AuditEntry, AuditFilter, AuditPage, AuditRecord,
    NewAuditEntry,
};
pub use budgets::{BudgetRecord, NewBudget};
pub use ingest::IngestKeyRecord;
pub use invitations::InvitationRecord;
pub use jobs::{EVALUATE_JOB, EvaluateJob, Job, QueuedJobs, SYNC_FAILED_JOB, SyncFailedJob, worker_name};
pub use lake::{Freshness, LakeFile, LakeTable};
pub use limits::{Quota, RateLimiter};
pub use outbox::{OutboxMessage, QueuedMail};
pub use prices::{NewPriceOverride, PriceOverrideRecord};
pub use second_factor::SecondFactor;
pub use sources::{NewSource, SourceRecord};
pub use sql_credentials::{SqlCredentialRecord, SqlLogin};
pub use support::{
    GrantStatus, Notice, OperatorRecord, OperatorSession, SUPPORT_REQUEST_LAPSES_AFTER, StoredCatalogue, SupportGrant,
};
pub use vault::Vault;
pub use webhooks::{NewWebhook, WebhookRecord};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Crypto(#[from] burnrate_crypto::CryptoError),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("invalid database URL: {0}")]
    Url(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// True for a violated unique constraint, in either database.
    pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// Rung after a commit that queued jobs, so this instance's workers start at once; other
    /// instances find them when they next poll.
    jobs_queued: Arc<tokio::sync::Notify>,
}

/// A transaction on either backend.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$c` bound to the transaction's connection of whichever backend it is on.
/// The body is compiled once per backend, with that backend's types.
macro_rules! on {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on;

impl Tx {
    async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    async fn set_local(&mut self, name: &'static str, value: &str) -> Result<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT set_config($1, $2, true)").bind(name).bind(value).execute(&mut **t).await?;
        }
        Ok(())
    }
}

/// What a transaction will do; see [`Store::read_instance`].
#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}

/// Proof that the holder may act inside one organization: obtained from a membership check, from
/// a credential that belongs to the organization, or by trusted instance code (CLI, jobs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrgScope {
    org_id: OrgId,
}

impl OrgScope {
    pub fn org_id(&self) -> OrgId {
        self.org_id
    }

    /// For instance-level code that has established the organization by other means: the CLI
    /// (run by the operator on the server), background jobs, and credential lookups whose token
    /// names its organization (a wrong org simply finds no matching credential).
    pub fn trusted(org_id: OrgId) -> Self {
        Self { org_id }
    }
}

/// A transaction over instance-wide tables.
pub struct InstanceTx {
    pub(crate) tx: Tx,
}

/// A transaction scoped to one organization. It is also an instance transaction (through
/// `Deref`), so an action that touches both kinds of table commits atomically — and, on SQLite,
/// never needs a second transaction that would wait on the first's write lock.
pub struct TenantTx {
    pub(crate) inner: InstanceTx,
    pub(crate) scope: OrgScope,
}

impl std::ops::Deref for TenantTx {
    type Target = InstanceTx;
    fn deref(&self) -> &InstanceTx {
        &self.inner
    }
}

impl std::ops::DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut InstanceTx {
        &mut self.inner
    }
}

impl InstanceTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await
    }

    /// Continues this transaction inside `scope`'s organization.
    pub async fn into_tenant(mut self, scope: OrgScope) -> Result<TenantTx> {
        self.tx.set_local("app.org_id", &scope.org_id.to_string()).await?;
        Ok(TenantTx { inner: self, scope })
    }

    /// Makes the user's own memberships visible to this transaction (PostgreSQL RLS).
    pub async fn act_as_user(&mut self, user: burnrate_core::UserId) -> Result<()> {
        self.tx.set_local("app.user_id", &user.to_string()).await
    }
}

impl TenantTx {
    pub fn scope(&self) -> OrgScope {
        self.scope
    }

    pub fn org_id(&self) -> OrgId {
        self.scope.org_id
    }

    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await
    }

    /// Leaves the organization's scope, keeping the transaction (to enter another with
    /// [`InstanceTx::into_tenant`], e.g. to record one event in each of a user's organizations).
    pub fn into_instance(self) -> InstanceTx {
        self.inner
    }
}

impl Store {
    /// Connects to `sqlite://…` or `postgres://…`. SQLite files are created when missing and run in
    /// WAL mode with foreign keys on.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Url(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
            Ok(Self { pool: Pool::Sqlite(pool), jobs_queued: Arc::default() })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Self { pool: Pool::Postgres(pool), jobs_queued: Arc::default() })
        } else {
            Err(StoreError::Url("expected a sqlite:// or postgres:// URL".into()))
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    async fn begin(&self, access: Access) -> Result<Tx> {
        Ok(match (&self.pool, access) {
            // IMMEDIATE takes the write lock up front, so two writers never deadlock upgrading.
            (Pool::Sqlite(p), Access::Write) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            // A deferred transaction that only reads takes no lock: in WAL mode it reads its
            // snapshot beside the writer instead of queueing behind it.
            (Pool::Sqlite(p), Access::Read) => Tx::Sqlite(p.begin_with("BEGIN DEFERRED").await?),
            (Pool::Postgres(p), Access::Write) => Tx::Postgres(p.begin().await?),
            // READ ONLY makes PostgreSQL refuse a write, so one slipped into a read shows up in
            // the suite instead of as a rare SQLITE_BUSY under load.
            (Pool::Postgres(p), Access::Read) => Tx::Postgres(p.begin_with("BEGIN READ ONLY").await?),
        })
    }

    pub async fn instance(&self) -> Result<InstanceTx> {
        Ok(InstanceTx { tx: self.begin(Access::Write).await? })
    }

    pub async fn tenant(&self, scope: OrgScope) -> Result<TenantTx> {
        self.instance().await?.into_tenant(scope).await
    }

    /// A transaction that only reads (requests that look things up: authentication, pages, API
    /// reads). On SQLite it does not wait for writers nor make them wait; a write in it fails.
    pub async fn read_instance(&self) -> Result<InstanceTx> {
        Ok(InstanceTx { tx: self.begin(Access::Read).await? })
    }

    /// [`Store::read_instance`] in `scope`'s organization.
    pub async fn read_tenant(&self, scope: OrgScope) -> Result<TenantTx> {
        self.read_instance().await?.into_tenant(scope).await
    }

    /// Tells this instance's workers that jobs were queued (call after the commit).
    pub fn jobs_queued(&self) {
        self.jobs_queued.notify_waiters();
    }

    /// Waits until [`Store::jobs_queued`] is rung or `poll` has passed, whichever comes first.
    pub async fn wait_for_jobs(&self, poll: Duration) {
        let _ = tokio::time::timeout(poll, self.jobs_queued.notified()).await;
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ())?,
            Pool::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ())?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

pub use migrate::{migrate_postgres, migrate_sqlite};

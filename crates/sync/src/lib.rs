//! Syncing one connected source into the lake.
//!
//! The credential is opened inside [`Syncer::sync`] right before the provider is called and
//! dropped when the pull returns (S2). A sync replaces whole months of the lake atomically, so it
//! can run twice, die half-way, or overlap a provider's restatement and the visible data is always
//! one consistent version. The outcome is recorded on the source; its error text names the
//! provider, endpoint and window, never a secret.
//!
//! One stage a file: `driver` (a source's connector, its key opened), `pipeline` (pages streamed
//! into the lake writer), `syncer` (one sync of one window), `jobs` (the queue any instance works)
//! and `scheduler` (each pass: queue the tick's syncs, work them, collect garbage).

mod driver;
mod jobs;
mod pipeline;
mod prices;
mod scheduler;
mod syncer;

pub use burnrate_sources::{SourceConfig, SourceKind};
pub use jobs::{SYNC_JOB, enqueue_next, enqueue_sync, work};
pub use prices::Prices;
pub use scheduler::{collect_garbage, enqueue_due, run_pass, spawn_scheduler};
pub use syncer::{SyncOutcome, Syncer};

use burnrate_sources::SourceError;
use burnrate_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Lake(#[from] burnrate_lake::LakeError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("source {0} is not of a kind this version can sync")]
    UnknownKind(String),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Settings(#[from] burnrate_sources::SettingsError),
}

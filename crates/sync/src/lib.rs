//! Syncing one connected source into the lake.
//!
//! The credential is opened inside [`Syncer::sync`] right before the provider is called and
//! dropped when the pull returns (S2). A sync replaces whole months of the lake atomically, so it
//! can run twice, die half-way, or overlap a provider's restatement and the visible data is always
//! one consistent version. The outcome is recorded on the source; its error text names the
//! provider, endpoint and window, never a secret.

use std::sync::Arc;

use burnrate_core::SyncWindow;
use burnrate_lake::Lake;
use burnrate_net::HttpClient;
use burnrate_sources::{AnthropicCosts, CostPull, OpenAiCosts, SourceError};
use burnrate_store::{OrgScope, SourceRecord, Store, StoreError, Vault};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The providers burnrate can connect to so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    OpenAi,
    Anthropic,
}

impl SourceKind {
    pub const ALL: [SourceKind; 2] = [SourceKind::OpenAi, SourceKind::Anthropic];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "openai" => Some(SourceKind::OpenAi),
            "anthropic" => Some(SourceKind::Anthropic),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::OpenAi => "openai",
            SourceKind::Anthropic => "anthropic",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SourceKind::OpenAi => "OpenAI",
            SourceKind::Anthropic => "Anthropic",
        }
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            SourceKind::OpenAi => "https://api.openai.com",
            SourceKind::Anthropic => "https://api.anthropic.com",
        }
    }
}

/// A source's non-secret settings, stored as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceConfig {
    /// A proxy or test server instead of the provider's own API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// How far back the first sync reaches (OpenAI and Anthropic: 90 days).
    pub backfill_days: u32,
    /// How many trailing days each sync re-pulls to catch restatements (3).
    pub repull_days: u32,
    pub interval_minutes: u32,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self { base_url: None, backfill_days: 90, repull_days: 3, interval_minutes: 60 }
    }
}

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
    #[error("the source's settings are unreadable: {0}")]
    Config(String),
}

#[derive(Debug, PartialEq, Eq)]
pub struct SyncOutcome {
    pub window: SyncWindow,
    pub pages: u32,
    pub rows: usize,
    pub rounded_values: u32,
}

#[derive(Clone)]
pub struct Syncer {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub lake: Lake,
    pub http: HttpClient,
}

impl Syncer {
    async fn pull(&self, scope: OrgScope, source: &SourceRecord, window: SyncWindow) -> Result<CostPull, SyncError> {
        let kind = SourceKind::parse(&source.kind).ok_or_else(|| SyncError::UnknownKind(source.kind.clone()))?;
        let config: SourceConfig =
            serde_json::from_str(&source.config).map_err(|e| SyncError::Config(e.to_string()))?;
        let base = config.base_url.as_deref().unwrap_or(kind.default_base_url());
        let base_url = url::Url::parse(base).map_err(|e| SyncError::Config(format!("base URL: {e}")))?;
        let mut tx = self.store.tenant(scope).await?;
        let secret = tx.open_source_secret(&self.vault, source.id).await?;
        tx.commit().await?;
        let admin_key = secrecy::SecretString::from(secret.as_str().to_owned());
        drop(secret);
        let pull = match kind {
            SourceKind::OpenAi => OpenAiCosts { base_url, admin_key }.pull(&self.http, window).await?,
            SourceKind::Anthropic => AnthropicCosts { base_url, admin_key }.pull(&self.http, window).await?,
        };
        Ok(pull)
    }

    /// The window the next sync of `source` covers: the whole backfill the first time, the
    /// trailing re-pull after — widened to whole months, the lake's unit of replacement.
    pub fn next_window(source: &SourceRecord, today: NaiveDate) -> SyncWindow {
        let config: SourceConfig = serde_json::from_str(&source.config).unwrap_or_default();
        let days =
            if source.last_success_at.is_some() { config.repull_days.max(1) } else { config.backfill_days.max(1) };
        // `today` is included: spend so far today is shown, and replaced by the next sync.
        SyncWindow::trailing_days(today + chrono::Duration::days(1), days + 1)
            .expect("a positive number of days")
            .whole_months()
    }

    /// Syncs `window` of the source into the lake and records the outcome on the source.
    pub async fn sync(&self, scope: OrgScope, source_id: Uuid, window: SyncWindow) -> Result<SyncOutcome, SyncError> {
        let mut tx = self.store.tenant(scope).await?;
        let source = tx.source(source_id).await?.ok_or(StoreError::NotFound("source"))?;
        tx.commit().await?;
        let result = async {
            let pull = self.pull(scope, &source, window).await?;
            let done = self.lake.replace_costs(&self.store, scope, source.id, window, &pull.records).await?;
            Ok::<_, SyncError>(SyncOutcome {
                window,
                pages: pull.pages,
                rows: done.rows,
                rounded_values: pull.rounded_values,
            })
        }
        .await;
        let mut tx = self.store.tenant(scope).await?;
        tx.record_source_attempt(source.id, result.as_ref().err().map(|e| e.to_string()).as_deref()).await?;
        tx.commit().await?;
        match &result {
            Ok(o) => {
                tracing::info!(source = %source.id, window = %o.window, rows = o.rows, pages = o.pages, "sync done")
            }
            Err(e) => tracing::warn!(source = %source.id, error = %e, "sync failed"),
        }
        result
    }

    /// A cheap authenticated call: yesterday's costs.
    pub async fn test_connection(
        &self,
        scope: OrgScope,
        source: &SourceRecord,
        today: NaiveDate,
    ) -> Result<usize, SyncError> {
        let window = SyncWindow::trailing_days(today, 1).expect("one day");
        Ok(self.pull(scope, source, window).await?.records.len())
    }
}

/// Syncs every active source when its interval has passed. One loop per process: on several
/// instances sharing PostgreSQL each would sync the same source (harmless — a sync replaces whole
/// months atomically — but wasteful); leased jobs that run each sync exactly once come next.
pub fn spawn_scheduler(syncer: Syncer, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            // Waits first: whoever starts the process decides about an immediate sync.
            tokio::time::sleep(every).await;
            if let Err(e) = run_due(&syncer).await {
                tracing::warn!(error = %e, "scheduler pass failed");
            }
        }
    })
}

/// One scheduler pass: returns how many syncs ran.
pub async fn run_due(syncer: &Syncer) -> Result<usize, SyncError> {
    let now = chrono::Utc::now();
    let mut tx = syncer.store.instance().await?;
    let orgs = tx.list_org_ids().await?;
    tx.commit().await?;
    let mut ran = 0;
    for org in orgs {
        let scope = OrgScope::trusted(org);
        let mut tx = syncer.store.tenant(scope).await?;
        let sources = tx.sources().await?;
        tx.commit().await?;
        for source in sources.into_iter().filter(|s| !s.paused) {
            let config: SourceConfig = serde_json::from_str(&source.config).unwrap_or_default();
            let due = source
                .last_attempt_at
                .is_none_or(|t| now - t >= chrono::Duration::minutes(i64::from(config.interval_minutes.max(1))));
            if due {
                let window = Syncer::next_window(&source, now.date_naive());
                // A failure is recorded on the source; the pass goes on with the others.
                let _ = syncer.sync(scope, source.id, window).await;
                ran += 1;
            }
        }
    }
    Ok(ran)
}

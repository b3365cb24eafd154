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
mod scheduler;
mod syncer;

pub use jobs::{SYNC_JOB, enqueue_next, enqueue_sync, work};
pub use scheduler::{collect_garbage, enqueue_due, run_pass, spawn_scheduler};
pub use syncer::{SyncOutcome, Syncer};

use burnrate_core::SyncWindow;
use burnrate_sources::SourceError;
use burnrate_store::{SourceRecord, StoreError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The providers burnrate can connect to so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    OpenAi,
    Anthropic,
    /// Amazon Bedrock, through AWS Cost Explorer.
    Aws,
    /// Azure OpenAI and AI Foundry, through Azure Cost Management.
    Azure,
    /// Vertex AI and the Gemini API, through the Cloud Billing export in BigQuery.
    Gcp,
    OpenRouter,
}

impl SourceKind {
    pub const ALL: [SourceKind; 6] = [
        SourceKind::OpenAi,
        SourceKind::Anthropic,
        SourceKind::Aws,
        SourceKind::Azure,
        SourceKind::Gcp,
        SourceKind::OpenRouter,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "openai" => Some(SourceKind::OpenAi),
            "anthropic" => Some(SourceKind::Anthropic),
            "aws" => Some(SourceKind::Aws),
            "azure" => Some(SourceKind::Azure),
            "gcp" => Some(SourceKind::Gcp),
            "openrouter" => Some(SourceKind::OpenRouter),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::OpenAi => "openai",
            SourceKind::Anthropic => "anthropic",
            SourceKind::Aws => "aws",
            SourceKind::Azure => "azure",
            SourceKind::Gcp => "gcp",
            SourceKind::OpenRouter => "openrouter",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SourceKind::OpenAi => "OpenAI",
            SourceKind::Anthropic => "Anthropic",
            SourceKind::Aws => "AWS Bedrock",
            SourceKind::Azure => "Azure AI",
            SourceKind::Gcp => "Google Cloud AI",
            SourceKind::OpenRouter => "OpenRouter",
        }
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            SourceKind::OpenAi => "https://api.openai.com",
            SourceKind::Anthropic => "https://api.anthropic.com",
            SourceKind::Aws => "https://ce.us-east-1.amazonaws.com",
            SourceKind::Azure => "https://management.azure.com",
            SourceKind::Gcp => burnrate_sources::gcp::BIGQUERY_URL,
            SourceKind::OpenRouter => "https://openrouter.ai",
        }
    }
}

/// A source's non-secret settings, stored as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceConfig {
    /// A proxy or test server instead of the provider's own API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// AWS: the access key id that goes with the sealed secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// AWS: a role to assume before reading Cost Explorer, and the external id its trust policy
    /// asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// AWS: a cost-allocation tag key whose values become the cost lines' tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_allocation_tag: Option<String>,
    /// Azure: the Entra ID tenant, the application (client) id that goes with the sealed client
    /// secret, and the scope read (`subscriptions/<id>`, a resource group, management group or
    /// billing account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Google Cloud: the billing export table (`project.dataset.gcp_billing_export_v1_…`), the
    /// project that runs the queries (the key's own when unset), the dataset's location, and the
    /// service account's email (read from the sealed key, for people to see which it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// How far back the first sync reaches (OpenAI and Anthropic: 90 days).
    pub backfill_days: u32,
    /// How many trailing days each sync re-pulls to catch restatements (3).
    pub repull_days: u32,
    pub interval_minutes: u32,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            access_key_id: None,
            role_arn: None,
            external_id: None,
            cost_allocation_tag: None,
            tenant_id: None,
            client_id: None,
            scope: None,
            billing_table: None,
            project_id: None,
            location: None,
            service_account: None,
            backfill_days: 90,
            repull_days: 3,
            interval_minutes: 60,
        }
    }
}

impl SourceConfig {
    /// The stored settings of `source`, or an error naming it: a row that no longer reads is
    /// never taken for the defaults (which would start a backfill nobody asked for).
    pub fn of(source: &SourceRecord) -> Result<Self, SyncError> {
        serde_json::from_str(&source.config)
            .map_err(|e| SyncError::Settings { name: source.name.clone(), reason: e.to_string() })
    }

    /// The window the next sync of `source` (whose settings these are) covers: the whole backfill
    /// the first time, the trailing re-pull after — widened to whole months, the lake's unit of
    /// replacement.
    pub fn next_window(&self, source: &SourceRecord, today: NaiveDate) -> SyncWindow {
        let days = if source.last_success_at.is_some() { self.repull_days.max(1) } else { self.backfill_days.max(1) };
        // `today` is included: spend so far today is shown, and replaced by the next sync.
        SyncWindow::trailing_days(today + chrono::Duration::days(1), days + 1)
            .expect("a positive number of days")
            .whole_months()
    }

    /// What a new source of `kind` starts with. AWS bills every Cost Explorer request and keeps
    /// adding costs for days, so it syncs every 6 hours and re-pulls 14 days. OpenRouter reports
    /// completed days only, as far back as 30 days: each sync takes the whole of them, 4 times a
    /// day (the credits balance is read with each). Azure finalises a month up to 72 hours after
    /// it ends and throttles hard: 35 days re-pulled every 6 hours. Google's export adds and
    /// updates rows for days after the usage, and each query is billed by the bytes it scans: 7
    /// days re-pulled every 6 hours.
    pub fn for_kind(kind: SourceKind) -> Self {
        match kind {
            SourceKind::Aws => Self { repull_days: 14, interval_minutes: 360, ..Self::default() },
            SourceKind::Azure => Self { repull_days: 35, interval_minutes: 360, ..Self::default() },
            SourceKind::Gcp => Self { repull_days: 7, interval_minutes: 360, ..Self::default() },
            SourceKind::OpenRouter => Self {
                backfill_days: burnrate_sources::openrouter::ACTIVITY_DAYS as u32,
                repull_days: burnrate_sources::openrouter::ACTIVITY_DAYS as u32,
                interval_minutes: 360,
                ..Self::default()
            },
            SourceKind::OpenAi | SourceKind::Anthropic => Self::default(),
        }
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
    #[error("{0}")]
    Config(String),
    #[error("source {name:?}: its stored settings are unreadable ({reason}); nothing was synced")]
    Settings { name: String, reason: String },
}

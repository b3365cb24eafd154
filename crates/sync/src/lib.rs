//! Syncing one connected source into the lake.
//!
//! The credential is opened inside [`Syncer::sync`] right before the provider is called and
//! dropped when the pull returns (S2). A sync replaces whole months of the lake atomically, so it
//! can run twice, die half-way, or overlap a provider's restatement and the visible data is always
//! one consistent version. The outcome is recorded on the source; its error text names the
//! provider, endpoint and window, never a secret.

use std::sync::Arc;
use std::time::Duration;

use burnrate_core::{CostRecord, SyncWindow, UsageRecord};
use burnrate_lake::{Lake, LakeRow, TableWriter};
use burnrate_net::HttpClient;
use burnrate_sources::aws::{AssumeRole, AwsCredentials};
use burnrate_sources::{
    Anthropic, BigQueryBilling, CostExplorer, CostManagement, OpenAi, OpenRouter, ProgressSink, PullStats,
    RecordSender, SourceError,
};
use burnrate_store::{LakeTable, OrgScope, SourceRecord, Store, StoreError, Vault};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

#[derive(Debug, PartialEq, Eq)]
pub struct SyncOutcome {
    pub window: SyncWindow,
    pub pages: u32,
    /// Cost rows written.
    pub rows: usize,
    pub usage_rows: usize,
    pub rounded_values: u32,
}

/// What AWS charges for one Cost Explorer API request, in dollars.
const COST_EXPLORER_REQUEST: rust_decimal::Decimal = rust_decimal::Decimal::from_parts(1, 0, 0, false, 2);

impl SyncOutcome {
    /// For people: "40 cost lines and 12 usage lines for 2026-11-01..2026-12-02, from 6
    /// requests" — and what the requests cost where the provider bills them.
    pub fn describe(&self, kind: Option<SourceKind>) -> String {
        let usage = if self.usage_rows > 0 { format!(" and {} usage lines", self.usage_rows) } else { String::new() };
        let requests = if self.pages == 1 { "1 request".to_owned() } else { format!("{} requests", self.pages) };
        let billed = match kind {
            Some(SourceKind::Aws) => {
                format!(
                    ", which AWS bills at $0.01 each: ${}",
                    COST_EXPLORER_REQUEST * rust_decimal::Decimal::from(self.pages)
                )
            }
            Some(SourceKind::Gcp) => ", billed by BigQuery by the bytes they scan".to_owned(),
            _ => String::new(),
        };
        format!("{} cost lines{usage} for {}, from {requests}{billed}", self.rows, self.window)
    }
}

#[derive(Clone)]
pub struct Syncer {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub lake: Lake,
    pub http: HttpClient,
    /// How long a claimed sync is held without being renewed: the running instance renews it a
    /// few times a lease, so when an instance stops (killed, crashed, cut off), another takes its
    /// sync over once this has passed.
    pub lease: Duration,
}

/// A connected provider, its key opened for the length of one sync.
enum Connector {
    OpenAi(OpenAi),
    Anthropic(Anthropic),
    Aws(CostExplorer),
    Azure(CostManagement),
    Gcp(BigQueryBilling),
    OpenRouter(OpenRouter),
}

impl Connector {
    /// The first day the provider still reports when today (UTC) is `today`; `None` when it
    /// reaches back as far as asked.
    fn reaches_back(&self, today: NaiveDate) -> Option<NaiveDate> {
        match self {
            Connector::OpenRouter(_) => Some(OpenRouter::reaches_back(today)),
            Connector::OpenAi(_)
            | Connector::Anthropic(_)
            | Connector::Aws(_)
            | Connector::Azure(_)
            | Connector::Gcp(_) => None,
        }
    }

    async fn stream_costs(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: RecordSender<CostRecord>,
    ) -> Result<PullStats, SourceError> {
        match self {
            Connector::OpenAi(api) => api.stream_costs(http, window, progress, &out).await,
            Connector::Anthropic(api) => api.stream_costs(http, window, progress, &out).await,
            Connector::Aws(api) => api.stream_costs(http, window, progress, &out).await,
            Connector::Azure(api) => api.stream_costs(http, window, progress, &out).await,
            Connector::Gcp(api) => api.stream_costs(http, window, progress, &out).await,
            Connector::OpenRouter(api) => api.stream_costs(http, window, progress, &out).await,
        }
    }

    async fn stream_usage(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: RecordSender<UsageRecord>,
    ) -> Result<PullStats, SourceError> {
        match self {
            Connector::OpenAi(api) => api.stream_usage(http, window, progress, &out).await,
            Connector::Anthropic(api) => api.stream_usage(http, window, progress, &out).await,
            // The clouds' billing data carries usage quantities on the cost lines.
            Connector::Aws(_) | Connector::Azure(_) | Connector::Gcp(_) => Ok(PullStats::default()),
            Connector::OpenRouter(api) => api.stream_usage(http, window, progress, &out).await,
        }
    }
}

/// Pages in flight between a connector and the lake writer: enough to keep both busy, few enough
/// that memory stays at a few pages.
const PAGES_IN_FLIGHT: usize = 2;

/// Runs a streamed pull into `writer`. The writer runs as its own task, so parsing the next page
/// and encoding the last one use both cores.
async fn stream_into<T: LakeRow, F>(
    writer: TableWriter<T>,
    pull: impl FnOnce(RecordSender<T>) -> F,
) -> Result<(TableWriter<T>, PullStats), SyncError>
where
    F: std::future::Future<Output = Result<PullStats, SourceError>>,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<T>>(PAGES_IN_FLIGHT);
    let write = tokio::spawn(async move {
        let mut writer = writer;
        while let Some(page) = rx.recv().await {
            writer.push(page).await?;
        }
        Ok::<_, burnrate_lake::LakeError>(writer)
    });
    let pulled = pull(tx).await;
    let written = write.await.map_err(|e| SyncError::Config(format!("the lake writer failed: {e}")))?;
    // When the writer fails the pull sees its pages refused; the writer's error is the cause.
    let writer = written?;
    Ok((writer, pulled?))
}

impl Syncer {
    /// The lease of a sync when none is configured (`BURNRATE_SYNC_LEASE`).
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

    pub fn new(store: Store, vault: Arc<Vault>, lake: Lake, http: HttpClient) -> Self {
        Self { store, vault, lake, http, lease: Self::DEFAULT_LEASE }
    }

    /// The source's connector, with its key opened from the vault.
    async fn connector(&self, scope: OrgScope, source: &SourceRecord) -> Result<Connector, SyncError> {
        let kind = SourceKind::parse(&source.kind).ok_or_else(|| SyncError::UnknownKind(source.kind.clone()))?;
        let config = SourceConfig::of(source)?;
        let base = config.base_url.as_deref().unwrap_or(kind.default_base_url());
        let base_url = url::Url::parse(base).map_err(|e| SyncError::Config(format!("base URL: {e}")))?;
        let mut tx = self.store.tenant(scope).await?;
        let secret = tx.open_source_secret(&self.vault, source.id).await?;
        tx.commit().await?;
        let admin_key = secrecy::SecretString::from(secret.as_str().to_owned());
        drop(secret);
        Ok(match kind {
            SourceKind::OpenAi => Connector::OpenAi(OpenAi { base_url, admin_key }),
            SourceKind::Anthropic => Connector::Anthropic(Anthropic { base_url, admin_key }),
            SourceKind::Aws => {
                let access_key_id = config
                    .access_key_id
                    .ok_or_else(|| SyncError::Config("an AWS source needs its access key id".into()))?;
                let credentials = AwsCredentials { access_key_id, secret_access_key: admin_key, session_token: None };
                let role = match config.role_arn {
                    Some(role_arn) => {
                        // A proxy or test server standing in for Cost Explorer stands in for STS too.
                        let sts = config.base_url.as_deref().unwrap_or(burnrate_sources::aws::STS_URL);
                        let sts_url = url::Url::parse(sts).map_err(|e| SyncError::Config(format!("STS URL: {e}")))?;
                        Some(AssumeRole { role_arn, external_id: config.external_id, sts_url })
                    }
                    None => None,
                };
                let cost_allocation_tag = config.cost_allocation_tag;
                Connector::Aws(CostExplorer { base_url, credentials, role, cost_allocation_tag })
            }
            SourceKind::Azure => {
                let missing = |what: &str| SyncError::Config(format!("an Azure source needs its {what}"));
                // A proxy or test server standing in for Cost Management stands in for Entra ID too.
                let login = config.base_url.as_deref().unwrap_or(burnrate_sources::azure::LOGIN_URL);
                let login_url = url::Url::parse(login).map_err(|e| SyncError::Config(format!("login URL: {e}")))?;
                Connector::Azure(CostManagement::new(
                    base_url,
                    login_url,
                    config.tenant_id.ok_or_else(|| missing("tenant id"))?,
                    config.client_id.ok_or_else(|| missing("client id"))?,
                    admin_key,
                    config.scope.ok_or_else(|| missing("scope"))?,
                ))
            }
            SourceKind::Gcp => Connector::Gcp(BigQueryBilling::new(
                base_url,
                admin_key,
                config.project_id,
                config
                    .billing_table
                    .ok_or_else(|| SyncError::Config("a Google Cloud source needs its billing table".into()))?,
                config.location,
            )),
            SourceKind::OpenRouter => Connector::OpenRouter(OpenRouter::new(base_url, admin_key)),
        })
    }

    /// Pulls costs and usage of `window` into the lake and makes both live. Nothing becomes
    /// visible unless both pulls succeed.
    async fn pull_into_lake(
        &self,
        scope: OrgScope,
        source: &SourceRecord,
        window: SyncWindow,
        progress: ProgressSink<'_>,
    ) -> Result<SyncOutcome, SyncError> {
        // One opening of the key for both reports; it is dropped when both are written.
        let api = self.connector(scope, source).await?;
        // A provider that no longer reports the start of the window: its older days are carried
        // over from the lake, and only what it still reports is asked for.
        let first = api.reaches_back(chrono::Utc::now().date_naive()).filter(|first| *first > window.start());
        let pulled = match first {
            Some(first) => SyncWindow::new(first, window.end()).ok(),
            None => Some(window),
        };
        let mut writer = self.lake.writer::<CostRecord>(&self.store, scope, source.id, window)?;
        let mut usage_writer = self.lake.writer::<UsageRecord>(&self.store, scope, source.id, window)?;
        if let Some(first) = first {
            writer.carry_over(first).await?;
            usage_writer.carry_over(first).await?;
        }
        let (mut costs, mut usage) = (PullStats::default(), PullStats::default());
        if let Some(pulled) = pulled {
            (writer, costs) = stream_into(writer, |out| api.stream_costs(&self.http, pulled, progress, out)).await?;
            (usage_writer, usage) =
                stream_into(usage_writer, |out| api.stream_usage(&self.http, pulled, progress, out)).await?;
        }
        let cost_files = writer.finish().await?;
        let usage_files = usage_writer.finish().await?;
        let credits = match &api {
            Connector::OpenRouter(api) => Some(api.credits(&self.http, window).await?),
            _ => None,
        };
        drop(api);
        self.lake.commit(&self.store, scope, LakeTable::Costs, source.id, window, &cost_files).await?;
        self.lake.commit(&self.store, scope, LakeTable::Usage, source.id, window, &usage_files).await?;
        if let Some(credits) = credits {
            let mut tx = self.store.tenant(scope).await?;
            tx.set_source_credits(source.id, &credits.remaining().normalize().to_string()).await?;
            tx.commit().await?;
        }
        Ok(SyncOutcome {
            window,
            pages: costs.pages + usage.pages,
            rows: costs.rows,
            usage_rows: usage.rows,
            rounded_values: costs.rounded_values,
        })
    }

    /// Syncs `window` of the source into the lake and records the outcome on the source.
    pub async fn sync(&self, scope: OrgScope, source_id: Uuid, window: SyncWindow) -> Result<SyncOutcome, SyncError> {
        let mut tx = self.store.tenant(scope).await?;
        let source = tx.source(source_id).await?.ok_or(StoreError::NotFound("source"))?;
        tx.commit().await?;
        // Progress goes to a slot; a small task writes the slot to the source every second, so a
        // long backfill shows how far it got without a database write per page.
        let latest: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let sink_slot = Arc::clone(&latest);
        let sink = move |p: burnrate_sources::Progress| {
            *sink_slot.lock().expect("progress slot") = Some(p.describe());
        };
        let writer = {
            let (store, latest, id) = (self.store.clone(), Arc::clone(&latest), source.id);
            tokio::spawn(async move {
                let mut written: Option<String> = None;
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    let now = latest.lock().expect("progress slot").clone();
                    if now != written {
                        if let Ok(mut tx) = store.tenant(scope).await {
                            let _ = tx.set_source_progress(id, now.as_deref()).await;
                            let _ = tx.commit().await;
                        }
                        written = now;
                    }
                }
            })
        };
        let result = self.pull_into_lake(scope, &source, window, &sink).await;
        writer.abort();
        let mut tx = self.store.tenant(scope).await?;
        let outcome = match &result {
            Ok(o) => Ok(o.describe(SourceKind::parse(&source.kind))),
            Err(e) => Err(e.to_string()),
        };
        tx.record_source_attempt(source.id, outcome.as_deref().map_err(String::as_str)).await?;
        tx.commit().await?;
        match &result {
            Ok(o) => {
                tracing::info!(source = %source.id, window = %o.window, rows = o.rows, pages = o.pages, "sync done")
            }
            Err(e) => tracing::warn!(source = %source.id, error = %e, "sync failed"),
        }
        result
    }

    /// A cheap authenticated call: yesterday's costs. Returns how many cost lines it had.
    pub async fn test_connection(
        &self,
        scope: OrgScope,
        source: &SourceRecord,
        today: NaiveDate,
    ) -> Result<usize, SyncError> {
        let window = SyncWindow::trailing_days(today, 1).expect("one day");
        let api = self.connector(scope, source).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(PAGES_IN_FLIGHT);
        let drain = async move { while rx.recv().await.is_some() {} };
        let (stats, ()) = tokio::join!(api.stream_costs(&self.http, window, &|_| {}, tx), drain);
        Ok(stats?.rows)
    }
}

/// The job kind of a sync.
pub const SYNC_JOB: &str = "sync";
const MAX_ATTEMPTS: i32 = 5;
/// Pending files (written by a sync not yet committed) are left this long before they count as
/// a dead sync's. Not the lease: a live backfill can run for longer than any lease, renewing it,
/// and its files must outlive that.
const PENDING_KEPT: chrono::Duration = chrono::Duration::hours(24);

#[derive(Serialize, Deserialize)]
struct SyncJob {
    source: Uuid,
    start: NaiveDate,
    end: NaiveDate,
}

/// Queues a sync of `window` now (`tick`: the schedule tick it belongs to; `None` for a sync a
/// person asked for, which always runs). Returns false when that tick's sync is already queued.
pub async fn enqueue_sync(
    store: &Store,
    scope: OrgScope,
    source: Uuid,
    window: SyncWindow,
    tick: Option<i64>,
    now_ms: i64,
) -> Result<bool, SyncError> {
    let payload = serde_json::to_string(&SyncJob { source, start: window.start(), end: window.end() })
        .map_err(|e| SyncError::Config(e.to_string()))?;
    let key = tick.map(|t| format!("sync:{source}:{t}"));
    let mut tx = store.instance().await?;
    let added =
        tx.enqueue_job(SYNC_JOB, Some(scope.org_id().as_uuid()), &payload, key.as_deref(), now_ms, now_ms).await?;
    tx.commit().await?;
    Ok(added)
}

/// Queues a sync of the source's next window now, outside the schedule: its first sync, or one
/// somebody asked for. A source whose stored settings no longer read is not synced; the failure
/// is recorded on it, as a failed sync would be.
pub async fn enqueue_next(
    syncer: &Syncer,
    scope: OrgScope,
    source: &SourceRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), SyncError> {
    match SourceConfig::of(source) {
        Ok(config) => {
            let window = config.next_window(source, now.date_naive());
            enqueue_sync(&syncer.store, scope, source.id, window, None, now.timestamp_millis()).await?;
            Ok(())
        }
        Err(e) => {
            record_unreadable(syncer, scope, source, &e).await?;
            Err(e)
        }
    }
}

/// Records on the source that its settings no longer read, as its last sync's outcome.
async fn record_unreadable(
    syncer: &Syncer,
    scope: OrgScope,
    source: &SourceRecord,
    error: &SyncError,
) -> Result<(), SyncError> {
    tracing::warn!(source = %source.id, error = %error, "source not synced");
    let mut tx = syncer.store.tenant(scope).await?;
    tx.record_source_attempt(source.id, Err(&error.to_string())).await?;
    tx.commit().await?;
    Ok(())
}

/// Queues this tick's sync of every active source. Any number of instances may call it: a
/// source's sync for a tick is one job, whoever queued it first.
pub async fn enqueue_due(syncer: &Syncer, now: chrono::DateTime<chrono::Utc>) -> Result<usize, SyncError> {
    let mut tx = syncer.store.instance().await?;
    let orgs = tx.list_org_ids().await?;
    tx.commit().await?;
    let mut queued = 0;
    for org in orgs {
        let scope = OrgScope::trusted(org);
        let mut tx = syncer.store.tenant(scope).await?;
        let sources = tx.sources().await?;
        tx.commit().await?;
        // Database sources are read at query time, not synced.
        for source in sources.into_iter().filter(|s| !s.paused && SourceKind::parse(&s.kind).is_some()) {
            let config = match SourceConfig::of(&source) {
                Ok(config) => config,
                Err(e) => {
                    record_unreadable(syncer, scope, &source, &e).await?;
                    continue;
                }
            };
            let interval_ms = i64::from(config.interval_minutes.max(1)) * 60_000;
            let tick = now.timestamp_millis() / interval_ms;
            let window = config.next_window(&source, now.date_naive());
            // Due now: the tick names the schedule slot, the job runs at once.
            let run_at = chrono::Utc::now().timestamp_millis();
            if enqueue_sync(&syncer.store, scope, source.id, window, Some(tick), run_at).await? {
                queued += 1;
            }
        }
    }
    Ok(queued)
}

/// Claims and runs due jobs until none is left; returns how many ran.
pub async fn work(syncer: &Syncer, worker: &str) -> Result<usize, SyncError> {
    let mut ran = 0;
    loop {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut tx = syncer.store.instance().await?;
        let lease_ms = syncer.lease.as_millis() as i64;
        let job = tx.claim_job(SYNC_JOB, worker, now_ms, lease_ms).await?;
        tx.commit().await?;
        let Some(job) = job else { return Ok(ran) };
        ran += 1;
        let result = run_renewing(syncer, &job, worker).await;
        // Read before the transaction below: SQLite allows one writer, and that one holds it.
        let news = match &result {
            Err(e) if job.attempts >= MAX_ATTEMPTS => sync_failed_news(syncer, &job, e).await?,
            _ => None,
        };
        let mut tx = syncer.store.instance().await?;
        match result {
            Ok(()) => {
                tx.complete_job(job.id).await?;
                // Budgets see the new data at once: their evaluation is queued with the sync's end.
                if let Some(org) = job.org_id {
                    tx.queue_evaluation(org, None, chrono::Utc::now().timestamp_millis()).await?;
                }
            }
            Err(e) => {
                // 1, 2, 4, 8 minutes, then the job is given up (the next tick queues a new one).
                let retry = chrono::Utc::now().timestamp_millis() + 60_000 * (1 << (job.attempts - 1).clamp(0, 10));
                tx.fail_job(job.id, &e.to_string(), retry, job.attempts >= MAX_ATTEMPTS).await?;
                if let Some((org, failed, last_success_ms)) = &news {
                    let now_ms = chrono::Utc::now().timestamp_millis();
                    tx.queue_sync_failed(*org, failed, *last_success_ms, now_ms).await?;
                }
            }
        }
        tx.commit().await?;
        syncer.store.jobs_queued();
    }
}

/// The news of a sync given up (for webhooks `source.sync_failed` and mail to admins): its
/// organization, what failed, and the source's last success, which keys the news to once per
/// failure streak.
async fn sync_failed_news(
    syncer: &Syncer,
    job: &burnrate_store::Job,
    error: &SyncError,
) -> Result<Option<(Uuid, burnrate_store::SyncFailedJob, Option<i64>)>, SyncError> {
    let (Some(org), Ok(spec)) = (job.org_id, serde_json::from_str::<SyncJob>(&job.payload)) else { return Ok(None) };
    let mut t = syncer.store.tenant(OrgScope::trusted(burnrate_core::OrgId::from_uuid(org))).await?;
    let last_success = t.source(spec.source).await?.and_then(|s| s.last_success_at);
    t.commit().await?;
    let failed = burnrate_store::SyncFailedJob { source: spec.source, error: error.to_string() };
    Ok(Some((org, failed, last_success.map(|t| t.timestamp_millis()))))
}

/// Runs a claimed job, renewing its lease three times a lease while it runs.
async fn run_renewing(syncer: &Syncer, job: &burnrate_store::Job, worker: &str) -> Result<(), SyncError> {
    let run = run_job(syncer, job);
    tokio::pin!(run);
    let mut renew = tokio::time::interval(syncer.lease / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renew.tick().await; // the first tick is now: the claim has just set the lease
    loop {
        tokio::select! {
            result = &mut run => return result,
            _ = renew.tick() => {
                let until = chrono::Utc::now().timestamp_millis() + syncer.lease.as_millis() as i64;
                match renew_lease(syncer, job.id, worker, until).await {
                    Ok(true) => {}
                    // Another instance took it over (this one was cut off for longer than a
                    // lease): both finish the same window, and the lake keeps one of the two.
                    Ok(false) => tracing::warn!(job = %job.id, "a running sync's lease was taken over"),
                    Err(e) => tracing::warn!(job = %job.id, error = %e, "could not renew a running sync's lease"),
                }
            }
        }
    }
}

async fn renew_lease(syncer: &Syncer, job: Uuid, worker: &str, until_ms: i64) -> Result<bool, SyncError> {
    let mut tx = syncer.store.instance().await?;
    let renewed = tx.renew_job(job, worker, until_ms).await?;
    tx.commit().await?;
    Ok(renewed)
}

async fn run_job(syncer: &Syncer, job: &burnrate_store::Job) -> Result<(), SyncError> {
    let org = job.org_id.ok_or_else(|| SyncError::Config("a sync job without an organization".into()))?;
    let spec: SyncJob = serde_json::from_str(&job.payload).map_err(|e| SyncError::Config(e.to_string()))?;
    let window = SyncWindow::new(spec.start, spec.end).map_err(|e| SyncError::Config(e.to_string()))?;
    syncer.sync(OrgScope::trusted(burnrate_core::OrgId::from_uuid(org)), spec.source, window).await.map(|_| ())
}

/// One scheduler pass: queue this tick's syncs, work the queue, then collect the lake's garbage.
pub async fn run_pass(syncer: &Syncer, worker: &str, now: chrono::DateTime<chrono::Utc>) -> Result<usize, SyncError> {
    enqueue_due(syncer, now).await?;
    let ran = work(syncer, worker).await?;
    collect_garbage(syncer).await?;
    Ok(ran)
}

/// Superseded files stay an hour for queries already reading them (statements time out long
/// before); pending files of a sync that died go after [`PENDING_KEPT`].
pub async fn collect_garbage(syncer: &Syncer) -> Result<usize, SyncError> {
    let mut tx = syncer.store.instance().await?;
    let orgs = tx.list_org_ids().await?;
    tx.commit().await?;
    let mut collected = 0;
    for org in orgs {
        let grace = chrono::Duration::hours(1);
        collected += syncer.lake.collect_garbage(&syncer.store, OrgScope::trusted(org), grace, PENDING_KEPT).await?;
    }
    // Finished jobs keep their unique key for a day, well past any tick they could collide with.
    let mut tx = syncer.store.instance().await?;
    tx.prune_jobs(chrono::Utc::now().timestamp_millis() - 86_400_000).await?;
    tx.commit().await?;
    Ok(collected)
}

/// The scheduler of one instance: a pass every `every`; between passes it looks for due syncs
/// twice a lease, so a sync whose instance stopped is taken over soon after its lease ends.
pub fn spawn_scheduler(syncer: Syncer, every: Duration) -> tokio::task::JoinHandle<()> {
    let worker = burnrate_store::worker_name("scheduler");
    let look = every.min(syncer.lease / 2);
    tokio::spawn(async move {
        // Waits first: whoever starts the process decides about an immediate sync.
        let mut next_pass = tokio::time::Instant::now() + every;
        loop {
            tokio::time::sleep(look.min(next_pass.saturating_duration_since(tokio::time::Instant::now()))).await;
            let result = if tokio::time::Instant::now() >= next_pass {
                next_pass = tokio::time::Instant::now() + every;
                run_pass(&syncer, &worker, chrono::Utc::now()).await
            } else {
                work(&syncer, &worker).await
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "scheduler pass failed");
            }
        }
    })
}

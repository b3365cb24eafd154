//! One sync of one source: pull costs and usage of a window into the lake, make both live at once,
//! and record the outcome on the source.

use burnrate_core::SourceId;
use std::sync::Arc;
use std::time::Duration;

use burnrate_core::{CostRecord, SyncWindow, UsageRecord};
use burnrate_lake::Lake;
use burnrate_net::HttpClient;
use burnrate_sources::{ProgressSink, PullStats};
use burnrate_store::{LakeTable, OrgScope, SourceRecord, Store, StoreError, Vault};
use chrono::NaiveDate;

use crate::pipeline::{PAGES_IN_FLIGHT, stream_into};
use crate::{Prices, SourceKind, SyncError};

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
pub(crate) const COST_EXPLORER_REQUEST: rust_decimal::Decimal = rust_decimal::Decimal::from_parts(1, 0, 0, false, 2);

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
    /// What usage is priced at as it is written (`usage.computed_cost`).
    pub prices: Prices,
}

impl Syncer {
    /// The lease of a sync when none is configured (`BURNRATE_SYNC_LEASE`).
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

    pub fn new(store: Store, vault: Arc<Vault>, lake: Lake, http: HttpClient) -> Self {
        Self { store, vault, lake, http, lease: Self::DEFAULT_LEASE, prices: Prices::default() }
    }

    /// Pulls costs and usage of `window` into the lake and makes both live. Nothing becomes
    /// visible unless both pulls succeed.
    pub(crate) async fn pull_into_lake(
        &self,
        scope: OrgScope,
        source: &SourceRecord,
        window: SyncWindow,
        progress: ProgressSink<'_>,
    ) -> Result<SyncOutcome, SyncError> {
        // One opening of the key for both reports; it is dropped when both are written.
        let (api, http) = self.connector(scope, source).await?;
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
            (writer, costs) = stream_into(writer, |_| {}, |out| api.stream_costs(&http, pulled, progress, out)).await?;
            let (prices, kind) = (self.prices.book_of(&self.store, scope).await?, source.kind.clone());
            let price = move |page: &mut [UsageRecord]| prices.price_all(&kind, page);
            (usage_writer, usage) =
                stream_into(usage_writer, price, |out| api.stream_usage(&http, pulled, progress, out)).await?;
        }
        let cost_files = writer.finish().await?;
        let usage_files = usage_writer.finish().await?;
        let credits = api.credits(&http, window).await?;
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
    pub async fn sync(
        &self,
        scope: OrgScope,
        source_id: SourceId,
        window: SyncWindow,
    ) -> Result<SyncOutcome, SyncError> {
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
        let started = std::time::Instant::now();
        let result = self.pull_into_lake(scope, &source, window, &sink).await;
        writer.abort();
        count_sync(&source.kind, &result, started.elapsed());
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
        let (api, http) = self.connector(scope, source).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(PAGES_IN_FLIGHT);
        let drain = async move { while rx.recv().await.is_some() {} };
        let (stats, ()) = tokio::join!(api.stream_costs(&http, window, &|_| {}, tx), drain);
        Ok(stats?.rows)
    }
}

/// A sync of a `kind` source in the operator's metrics: its outcome, how long it took and the
/// rows it wrote.
fn count_sync(kind: &str, result: &Result<SyncOutcome, SyncError>, took: std::time::Duration) {
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    let provider = kind.to_owned();
    metrics::counter!("burnrate_syncs_total", "provider" => provider.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!("burnrate_sync_duration_seconds", "provider" => provider.clone(), "outcome" => outcome)
        .record(took.as_secs_f64());
    if let Ok(o) = result {
        for (table, rows) in [("costs", o.rows), ("usage", o.usage_rows)] {
            metrics::counter!("burnrate_sync_rows_total", "provider" => provider.clone(), "table" => table)
                .increment(rows as u64);
        }
    }
}

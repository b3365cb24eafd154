//! The sync job queue: syncs asked for (a schedule tick, a person, a first connection) are jobs any
//! instance may claim; a claim is leased and renewed while it runs, and given up after five tries.

use burnrate_core::SourceId;
use burnrate_core::SyncWindow;
use burnrate_store::{OrgScope, SourceRecord, Store};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{SourceConfig, SyncError, Syncer};

/// The job kind of a sync.
pub const SYNC_JOB: &str = "sync";

pub(crate) const MAX_ATTEMPTS: i32 = 5;

#[derive(Serialize, Deserialize)]
pub(crate) struct SyncJob {
    pub(crate) source: SourceId,
    pub(crate) start: NaiveDate,
    pub(crate) end: NaiveDate,
}

/// Queues a sync of `window` now (`tick`: the schedule tick it belongs to; `None` for a sync a
/// person asked for, which always runs). Returns false when that tick's sync is already queued.
pub async fn enqueue_sync(
    store: &Store,
    scope: OrgScope,
    source: SourceId,
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
    match SourceConfig::read(&source.name, &source.kind, &source.config).map_err(SyncError::from) {
        Ok(config) => {
            let window = config.next_window(source.last_success_at.is_some(), now.date_naive());
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
pub(crate) async fn record_unreadable(
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
pub(crate) async fn sync_failed_news(
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
pub(crate) async fn run_renewing(syncer: &Syncer, job: &burnrate_store::Job, worker: &str) -> Result<(), SyncError> {
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

pub(crate) async fn renew_lease(syncer: &Syncer, job: Uuid, worker: &str, until_ms: i64) -> Result<bool, SyncError> {
    let mut tx = syncer.store.instance().await?;
    let renewed = tx.renew_job(job, worker, until_ms).await?;
    tx.commit().await?;
    Ok(renewed)
}

pub(crate) async fn run_job(syncer: &Syncer, job: &burnrate_store::Job) -> Result<(), SyncError> {
    let org = job.org_id.ok_or_else(|| SyncError::Config("a sync job without an organization".into()))?;
    let spec: SyncJob = serde_json::from_str(&job.payload).map_err(|e| SyncError::Config(e.to_string()))?;
    let window = SyncWindow::new(spec.start, spec.end).map_err(|e| SyncError::Config(e.to_string()))?;
    syncer.sync(OrgScope::trusted(burnrate_core::OrgId::from_uuid(org)), spec.source, window).await.map(|_| ())
}

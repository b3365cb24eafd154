//! The scheduler of one instance: each pass queues the tick's syncs of every active source, works
//! the queue and collects the lake's garbage.

use std::time::Duration;

use burnrate_store::OrgScope;

use crate::jobs::record_unreadable;
use crate::{SourceConfig, SourceKind, SyncError, Syncer, enqueue_sync, work};

/// Pending files (written by a sync not yet committed) are left this long before they count as
/// a dead sync's. Not the lease: a live backfill can run for longer than any lease, renewing it,
/// and its files must outlive that.
pub(crate) const PENDING_KEPT: chrono::Duration = chrono::Duration::hours(24);

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
            let config = match SourceConfig::read(&source.name, &source.kind, &source.config).map_err(SyncError::from) {
                Ok(config) => config,
                Err(e) => {
                    record_unreadable(syncer, scope, &source, &e).await?;
                    continue;
                }
            };
            let interval_ms = i64::from(config.interval_minutes.max(1)) * 60_000;
            let tick = now.timestamp_millis() / interval_ms;
            let window = config.next_window(source.last_success_at.is_some(), now.date_naive());
            // Due now: the tick names the schedule slot, the job runs at once.
            let run_at = chrono::Utc::now().timestamp_millis();
            if enqueue_sync(&syncer.store, scope, source.id, window, Some(tick), run_at).await? {
                queued += 1;
            }
        }
    }
    Ok(queued)
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

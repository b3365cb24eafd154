//! The job queue shared by every instance.

use uuid::Uuid;

use crate::{Backend, InstanceTx, Result, on};

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub org_id: Option<Uuid>,
    pub payload: String,
    pub attempts: i32,
}

/// The job kind of a budget evaluation of one organization. Its payload is an [`EvaluateJob`].
pub const EVALUATE_JOB: &str = "evaluate";

/// What an evaluation job carries.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct EvaluateJob {
    /// When the change that asked for this evaluation (a sync, the hour) was committed, in ms
    /// since the epoch: alerts measure their delay from it.
    pub committed_at_ms: i64,
}

/// The job kind that tells an organization a source stopped syncing. Its payload is a
/// [`SyncFailedJob`].
pub const SYNC_FAILED_JOB: &str = "sync_failed";

/// What a sync-failed job carries.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SyncFailedJob {
    pub source: burnrate_core::SourceId,
    /// The last attempt's error, as recorded on the source (names no secret).
    pub error: String,
}

/// Jobs of one kind waiting to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedJobs {
    pub kind: String,
    /// Due and not yet done (running ones included: their lease may have lapsed).
    pub due: i64,
    pub oldest_wait_ms: i64,
}

/// A name for a job worker of this process, unique across instances: a lease records who holds
/// a job, and renewing it checks that name.
pub fn worker_name(role: &str) -> String {
    format!("{role}-{}-{}", std::process::id(), Uuid::new_v4().simple())
}

impl InstanceTx {
    /// Queues the news that `source` of `org` stopped syncing: once per failure streak, the key
    /// naming the source's last success.
    pub async fn queue_sync_failed(
        &mut self,
        org: Uuid,
        failed: &SyncFailedJob,
        last_success_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<bool> {
        let payload = serde_json::to_string(failed)?;
        let key = format!("sync_failed:{}:{}", failed.source, last_success_ms.unwrap_or(0));
        self.enqueue_job(SYNC_FAILED_JOB, Some(org), &payload, Some(&key), now_ms, now_ms).await
    }

    /// Queues an evaluation of `org`'s budgets: after a sync (`key` `None`), or the hourly one
    /// (its key names the hour, so every instance queues it once). Call
    /// [`crate::Store::jobs_queued`] after the commit.
    pub async fn queue_evaluation(&mut self, org: Uuid, key: Option<&str>, now_ms: i64) -> Result<bool> {
        let payload = serde_json::to_string(&EvaluateJob { committed_at_ms: now_ms })?;
        self.enqueue_job(EVALUATE_JOB, Some(org), &payload, key, now_ms, now_ms).await
    }

    /// Adds a job; with a `unique_key` that exists already (pending, done or failed) nothing is
    /// added and `false` is returned.
    pub async fn enqueue_job(
        &mut self,
        kind: &str,
        org: Option<Uuid>,
        payload: &str,
        unique_key: Option<&str>,
        run_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let n = on!(&mut self.tx, c => sqlx::query("INSERT INTO jobs (id, kind, org_id, payload, unique_key, state, run_at_ms, created_at_ms) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) ON CONFLICT (unique_key) DO NOTHING")
            .bind(Uuid::now_v7()).bind(kind).bind(org).bind(payload).bind(unique_key).bind(run_at_ms).bind(now_ms).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Claims the next due job of `kind` for `worker` until `now_ms + lease_ms`. On PostgreSQL rows
    /// locked by another claimer are skipped, so two instances never claim the same job.
    pub async fn claim_job(&mut self, kind: &str, worker: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Job>> {
        self.claim(kind, worker, now_ms, lease_ms, None).await
    }

    /// Claims the longest-due job of `kind` whose organization is not already running
    /// `per_org` of them (on any instance): one tenant's backlog, or its receivers that never
    /// answer, hold at most that many workers while the others' jobs go on.
    pub async fn claim_job_fairly(
        &mut self,
        kind: &str,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        per_org: u32,
    ) -> Result<Option<Job>> {
        self.claim(kind, worker, now_ms, lease_ms, Some(per_org)).await
    }

    async fn claim(
        &mut self,
        kind: &str,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        per_org: Option<u32>,
    ) -> Result<Option<Job>> {
        // Organizations with their share running: jobs claimed and still within their lease.
        const BUSY_ORGS: &str = "AND (org_id IS NULL OR org_id NOT IN (SELECT org_id FROM jobs WHERE kind = $4 AND state = 'pending' AND org_id IS NOT NULL AND locked_until_ms >= $3 GROUP BY org_id HAVING count(*) >= $5))";
        let fair = if per_org.is_some() { BUSY_ORGS } else { "" };
        // On PostgreSQL claims run side by side, and one does not see what another has claimed
        // but not committed: fair claims of a kind take turns, or every worker would count the
        // same organization idle at once. (SQLite's write lock already makes them take turns.)
        if per_org.is_some() && self.tx.backend() == Backend::Postgres {
            on!(&mut self.tx, c => sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 17))")
                .bind(format!("claim:{kind}")).execute(c).await.map(|_| ()))?;
        }
        // SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), which serializes claims.
        let lock = if self.tx.backend() == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE jobs SET locked_by = $1, locked_until_ms = $2, attempts = attempts + 1 WHERE id = (SELECT id FROM jobs WHERE kind = $4 AND state = 'pending' AND run_at_ms <= $3 AND (locked_until_ms IS NULL OR locked_until_ms < $3) {fair} ORDER BY run_at_ms LIMIT 1 {lock}) RETURNING id, kind, org_id, payload, attempts"
        );
        let share = i64::from(per_org.unwrap_or(0));
        let job: Option<Job> = on!(&mut self.tx, c => {
            let q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(worker).bind(now_ms + lease_ms).bind(now_ms).bind(kind);
            if per_org.is_some() { q.bind(share).fetch_optional(c).await } else { q.fetch_optional(c).await }
        })?;
        Ok(job)
    }

    /// Extends `worker`'s lease of a running job to `until_ms`; false when the job is no longer
    /// that worker's (another took it over after the lease ran out, or it ended).
    pub async fn renew_job(&mut self, id: Uuid, worker: &str, until_ms: i64) -> Result<bool> {
        let n = on!(&mut self.tx, c => sqlx::query("UPDATE jobs SET locked_until_ms = $1 WHERE id = $2 AND locked_by = $3 AND state = 'pending'")
            .bind(until_ms).bind(id).bind(worker).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn complete_job(&mut self, id: Uuid) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("UPDATE jobs SET state = 'done', locked_by = NULL, locked_until_ms = NULL, last_error = NULL WHERE id = $1")
            .bind(id).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Records a failure: retried at `retry_at_ms`, or failed for good when `give_up`.
    pub async fn fail_job(&mut self, id: Uuid, error: &str, retry_at_ms: i64, give_up: bool) -> Result<()> {
        let state = if give_up { "failed" } else { "pending" };
        on!(&mut self.tx, c => sqlx::query("UPDATE jobs SET state = $1, run_at_ms = $2, locked_by = NULL, locked_until_ms = NULL, last_error = $3 WHERE id = $4")
            .bind(state).bind(retry_at_ms).bind(error).bind(id).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// When the next pending job of `kind` can be claimed (due, and its lease, if any, over), in
    /// ms since the epoch; `None` when none is queued.
    pub async fn next_job_due(&mut self, kind: &str) -> Result<Option<i64>> {
        let at: Option<i64> = on!(&mut self.tx, c => sqlx::query_scalar("SELECT MIN(CASE WHEN locked_until_ms IS NOT NULL AND locked_until_ms > run_at_ms THEN locked_until_ms ELSE run_at_ms END) FROM jobs WHERE kind = $1 AND state = 'pending'")
            .bind(kind).fetch_one(c).await)?;
        Ok(at)
    }

    /// The jobs of each kind due by `now_ms` and not yet done, and how long the one waiting
    /// longest has waited, in ms (what an operator watches for a queue backing up).
    pub async fn job_queue(&mut self, now_ms: i64) -> Result<Vec<QueuedJobs>> {
        let rows: Vec<(String, i64, Option<i64>)> = on!(&mut self.tx, c => sqlx::query_as("SELECT kind, COUNT(*), MIN(run_at_ms) FROM jobs WHERE state = 'pending' AND run_at_ms <= $1 GROUP BY kind ORDER BY kind")
            .bind(now_ms).fetch_all(c).await)?;
        Ok(rows
            .into_iter()
            .map(|(kind, due, oldest)| QueuedJobs {
                kind,
                due,
                oldest_wait_ms: oldest.map_or(0, |at| (now_ms - at).max(0)),
            })
            .collect())
    }

    /// Puts a claimed job back until `run_at_ms` without counting the claim as an attempt (the
    /// work was not tried: a rate limit said wait).
    pub async fn postpone_job(&mut self, id: Uuid, run_at_ms: i64) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("UPDATE jobs SET run_at_ms = $1, attempts = attempts - 1, locked_by = NULL, locked_until_ms = NULL WHERE id = $2")
            .bind(run_at_ms).bind(id).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Forgets finished jobs older than `before_ms` (their unique keys have served their tick).
    pub async fn prune_jobs(&mut self, before_ms: i64) -> Result<u64> {
        let n = on!(&mut self.tx, c => sqlx::query("DELETE FROM jobs WHERE state IN ('done', 'failed') AND run_at_ms < $1")
            .bind(before_ms).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }
}

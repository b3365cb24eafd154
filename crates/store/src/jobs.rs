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

impl InstanceTx {
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

    /// Claims the next due job for `worker` until `now_ms + lease_ms`. On PostgreSQL rows locked by
    /// another claimer are skipped, so two instances never claim the same job.
    pub async fn claim_job(&mut self, worker: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Job>> {
        const PG: &str = "UPDATE jobs SET locked_by = $1, locked_until_ms = $2, attempts = attempts + 1 WHERE id = (SELECT id FROM jobs WHERE state = 'pending' AND run_at_ms <= $3 AND (locked_until_ms IS NULL OR locked_until_ms < $3) ORDER BY run_at_ms LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, kind, org_id, payload, attempts";
        // SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), which serializes claims.
        const SQLITE: &str = "UPDATE jobs SET locked_by = $1, locked_until_ms = $2, attempts = attempts + 1 WHERE id = (SELECT id FROM jobs WHERE state = 'pending' AND run_at_ms <= $3 AND (locked_until_ms IS NULL OR locked_until_ms < $3) ORDER BY run_at_ms LIMIT 1) RETURNING id, kind, org_id, payload, attempts";
        let sql = if self.tx.backend() == Backend::Postgres { PG } else { SQLITE };
        let job: Option<Job> = on!(&mut self.tx, c => sqlx::query_as(sql).bind(worker).bind(now_ms + lease_ms).bind(now_ms).fetch_optional(c).await)?;
        Ok(job)
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

    /// Forgets finished jobs older than `before_ms` (their unique keys have served their tick).
    pub async fn prune_jobs(&mut self, before_ms: i64) -> Result<u64> {
        let n = on!(&mut self.tx, c => sqlx::query("DELETE FROM jobs WHERE state IN ('done', 'failed') AND run_at_ms < $1")
            .bind(before_ms).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }
}

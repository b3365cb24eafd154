//! The lake manifest: the one source of truth for which Parquet files are an organization's data.
//!
//! A query reads the live set taken at its start; a sync changes that set only by
//! [`TenantTx::commit_lake_files`], atomically. Files written by a sync that died before its commit
//! stay `pending` and are never read; garbage collection removes them with superseded files.

use burnrate_core::SourceId;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::accounts::now;
use crate::{Result, StoreError, TenantTx, on};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LakeTable {
    Costs,
    Usage,
    /// Requests applications reported over OTLP: files per day, appended (not per source).
    Requests,
}

impl LakeTable {
    pub fn as_str(self) -> &'static str {
        match self {
            LakeTable::Costs => "costs",
            LakeTable::Usage => "usage",
            LakeTable::Requests => "requests",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LakeFile {
    pub id: Uuid,
    #[sqlx(try_from = "Uuid")]
    pub source_id: SourceId,
    pub window_start: NaiveDate,
    pub window_end: NaiveDate,
    pub path: String,
    pub rows: i64,
    pub bytes: i64,
    pub created_at: DateTime<Utc>,
    /// The last day with data in the file.
    pub max_day: Option<NaiveDate>,
    /// Its roll-up (costs files written since roll-ups exist): the same lines summed by period and
    /// the dimensions dashboards group by.
    pub rollup_path: Option<String>,
}

impl TenantTx {
    /// Records a file about to be written; it is not part of the data until committed.
    pub async fn add_pending_lake_file(&mut self, table: LakeTable, file: &LakeFile) -> Result<()> {
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO lake_files (id, org_id, table_name, source_id, window_start, window_end, path, rows, bytes, state, created_at, max_day, rollup_path) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12)")
            .bind(file.id).bind(self.scope.org_id().as_uuid()).bind(table.as_str()).bind(file.source_id.as_uuid()).bind(file.window_start).bind(file.window_end)
            .bind(&file.path).bind(file.rows).bind(file.bytes).bind(now()).bind(file.max_day).bind(&file.rollup_path).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Records the final size of a pending file once it is written.
    pub async fn seal_pending_lake_file(
        &mut self,
        id: Uuid,
        rows: i64,
        bytes: i64,
        max_day: Option<NaiveDate>,
    ) -> Result<()> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE lake_files SET rows = $1, bytes = $2, max_day = $3 WHERE org_id = $4 AND id = $5 AND state = 'pending'")
            .bind(rows).bind(bytes).bind(max_day).bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        if n != 1 {
            return Err(StoreError::NotFound("pending lake file"));
        }
        Ok(())
    }

    /// Makes `files` (pending, of `source`) the live data of `[window_start, window_end)`: every
    /// live file of the same source and table overlapping the window is superseded, in this one
    /// transaction. Returns how many files were superseded.
    pub async fn commit_lake_files(
        &mut self,
        table: LakeTable,
        source: SourceId,
        window_start: NaiveDate,
        window_end: NaiveDate,
        files: &[Uuid],
    ) -> Result<u64> {
        let org = self.scope.org_id().as_uuid();
        let at = now();
        let superseded = on!(&mut self.inner.tx, c => sqlx::query("UPDATE lake_files SET state = 'superseded', superseded_at = $1 WHERE org_id = $2 AND table_name = $3 AND source_id = $4 AND state = 'live' AND window_start < $5 AND window_end > $6")
            .bind(at).bind(org).bind(table.as_str()).bind(source.as_uuid()).bind(window_end).bind(window_start).execute(c).await.map(|r| r.rows_affected()))?;
        for id in files {
            let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE lake_files SET state = 'live' WHERE org_id = $1 AND id = $2 AND state = 'pending'")
                .bind(org).bind(*id).execute(c).await.map(|r| r.rows_affected()))?;
            if n != 1 {
                return Err(StoreError::NotFound("pending lake file"));
            }
        }
        Ok(superseded)
    }

    /// The live files of a table: what a query started now reads.
    pub async fn live_lake_files(&mut self, table: LakeTable) -> Result<Vec<LakeFile>> {
        let rows: Vec<LakeFile> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT id, source_id, window_start, window_end, path, rows, bytes, created_at, max_day, rollup_path FROM lake_files WHERE org_id = $1 AND table_name = $2 AND state = 'live' ORDER BY window_start, path")
            .bind(self.scope.org_id().as_uuid()).bind(table.as_str()).fetch_all(c).await)?;
        Ok(rows)
    }

    /// The live files of each table, counted and summed: `(table, files, bytes)`.
    pub async fn live_lake_totals(&mut self) -> Result<Vec<(String, i64, i64)>> {
        let rows: Vec<(String, i64, i64)> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT table_name, COUNT(*), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM lake_files WHERE org_id = $1 AND state = 'live' GROUP BY table_name ORDER BY table_name")
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        Ok(rows)
    }
}

#[derive(sqlx::FromRow)]
struct CollectableRow {
    id: Uuid,
    path: String,
    rollup_path: Option<String>,
    state: String,
    created_at: DateTime<Utc>,
    superseded_at: Option<DateTime<Utc>>,
}

impl TenantTx {
    /// Files no query will read again, with their objects (the file and its roll-up): superseded before `superseded_before`, or still pending
    /// since before `pending_before` (their sync died). Times are compared here, not in SQL.
    pub async fn collectable_lake_files(
        &mut self,
        superseded_before: DateTime<Utc>,
        pending_before: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, Vec<String>)>> {
        let rows: Vec<CollectableRow> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT id, path, rollup_path, state, created_at, superseded_at FROM lake_files WHERE org_id = $1 AND state IN ('superseded', 'pending')")
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        Ok(rows
            .into_iter()
            .filter(|r| match r.state.as_str() {
                "superseded" => r.superseded_at.is_some_and(|t| t < superseded_before),
                _ => r.created_at < pending_before,
            })
            .map(|r| (r.id, std::iter::once(r.path).chain(r.rollup_path).collect()))
            .collect())
    }

    /// Drops a collected file from the manifest (after its object was deleted).
    pub async fn forget_lake_file(&mut self, id: Uuid) -> Result<()> {
        on!(&mut self.inner.tx, c => sqlx::query("DELETE FROM lake_files WHERE org_id = $1 AND id = $2 AND state <> 'live'")
            .bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|_| ()))?;
        Ok(())
    }
}

/// How far a source's live data reaches in each table (`None`: nothing synced yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    pub costs: Option<NaiveDate>,
    pub usage: Option<NaiveDate>,
}

impl TenantTx {
    /// The [`Freshness`] of every source of the organization that has live data, in one query.
    pub async fn lake_freshness(&mut self) -> Result<std::collections::HashMap<SourceId, Freshness>> {
        let rows: Vec<(Uuid, String, Option<NaiveDate>)> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT source_id, table_name, max_day FROM lake_files WHERE org_id = $1 AND state = 'live' AND table_name IN ('costs', 'usage')")
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        let mut out: std::collections::HashMap<SourceId, Freshness> = Default::default();
        for (source, table, day) in rows {
            let f = out.entry(SourceId::from_uuid(source)).or_default();
            let slot = if table == LakeTable::Costs.as_str() { &mut f.costs } else { &mut f.usage };
            *slot = (*slot).max(day);
        }
        Ok(out)
    }
}

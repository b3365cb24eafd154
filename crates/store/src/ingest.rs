//! Request ingestion's rows: ingest keys (S26: random, shown once, stored as SHA-256, write-only,
//! revocable) and the spans already stored, which make a retried export store each span once.

use burnrate_core::{IngestKeyId, SpanKey, UserId};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::accounts::now;
use crate::lake::{LakeFile, LakeTable};
use crate::{Result, StoreError, TenantTx, on};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct IngestKeyRecord {
    #[sqlx(try_from = "Uuid")]
    pub id: IngestKeyId,
    pub name: String,
    /// The first characters of the key, shown so a person can tell keys apart.
    pub prefix: String,
    #[sqlx(try_from = "Uuid")]
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const KEY_COLUMNS: &str = "id, name, prefix, created_by, created_at, last_used_at, revoked_at";

/// Span keys claimed per statement: four parameters each, well inside both databases' limits.
const CLAIMS_PER_STATEMENT: usize = 4000;

impl TenantTx {
    pub async fn create_ingest_key(
        &mut self,
        name: &str,
        prefix: &str,
        key_hash: &[u8],
        created_by: UserId,
    ) -> Result<IngestKeyId> {
        let id = IngestKeyId::generate();
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO ingest_keys (id, org_id, name, prefix, key_hash, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id.as_uuid()).bind(self.scope.org_id().as_uuid()).bind(name).bind(prefix).bind(key_hash)
            .bind(created_by.as_uuid()).bind(now()).execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    /// The organization's ingest keys, newest first, revoked ones too.
    pub async fn ingest_keys(&mut self) -> Result<Vec<IngestKeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM ingest_keys WHERE org_id = $1 ORDER BY created_at DESC");
        let rows = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        Ok(rows)
    }

    /// The key of this organization with this hash, revoked or not.
    pub async fn ingest_key_by_hash(&mut self, key_hash: &[u8]) -> Result<Option<IngestKeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM ingest_keys WHERE org_id = $1 AND key_hash = $2");
        let row = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).bind(key_hash).fetch_optional(c).await)?;
        Ok(row)
    }

    /// Revokes a live key of this organization; false if there is none with that id.
    pub async fn revoke_ingest_key(&mut self, id: IngestKeyId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE ingest_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(now()).bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn touch_ingest_key(&mut self, id: IngestKeyId) -> Result<()> {
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE ingest_keys SET last_used_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(now()).bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Records `spans` (each with the day of the file that will hold it) as stored, and returns
    /// those not stored before: the rest were sent again (an exporter's retry) and are dropped.
    /// Within this transaction, so the claim and the file that holds the spans commit together.
    pub async fn claim_spans(&mut self, spans: &[(SpanKey, NaiveDate)]) -> Result<Vec<SpanKey>> {
        let org = self.scope.org_id().as_uuid();
        let mut fresh = Vec::with_capacity(spans.len());
        for chunk in spans.chunks(CLAIMS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${}, ${}, ${})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4))
                .collect();
            let sql = format!(
                "INSERT INTO ingested_spans (org_id, trace_id, span_id, day) VALUES {} ON CONFLICT DO NOTHING RETURNING trace_id, span_id",
                values.join(", ")
            );
            let rows: Vec<(Vec<u8>, Vec<u8>)> = on!(&mut self.inner.tx, c => {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for (key, day) in chunk {
                    q = q.bind(org).bind(key.trace_id.as_slice()).bind(key.span_id.as_slice()).bind(*day);
                }
                q.fetch_all(c).await
            })?;
            for (trace_id, span_id) in rows {
                let corrupt = || StoreError::Corrupt("an ingested span's id has the wrong length".into());
                fresh.push(SpanKey {
                    trace_id: trace_id.try_into().map_err(|_| corrupt())?,
                    span_id: span_id.try_into().map_err(|_| corrupt())?,
                });
            }
        }
        Ok(fresh)
    }

    /// Makes pending `files` live beside the table's other live files: a table that grows by
    /// appending (requests) rather than by replacing a source's window.
    pub async fn commit_appended_lake_files(&mut self, files: &[Uuid]) -> Result<()> {
        for id in files {
            let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE lake_files SET state = 'live' WHERE org_id = $1 AND id = $2 AND state = 'pending'")
                .bind(self.scope.org_id().as_uuid()).bind(*id).execute(c).await.map(|r| r.rows_affected()))?;
            if n != 1 {
                return Err(StoreError::NotFound("pending lake file"));
            }
        }
        Ok(())
    }

    /// The live files of `table` for `day` (a table written a file per day and append).
    pub async fn live_lake_files_of_day(&mut self, table: LakeTable, day: NaiveDate) -> Result<Vec<LakeFile>> {
        let rows: Vec<LakeFile> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT id, source_id, window_start, window_end, path, rows, bytes, created_at, max_day, rollup_path FROM lake_files WHERE org_id = $1 AND table_name = $2 AND state = 'live' AND window_start = $3 ORDER BY path")
            .bind(self.scope.org_id().as_uuid()).bind(table.as_str()).bind(day).fetch_all(c).await)?;
        Ok(rows)
    }

    /// Makes pending `merged` live in place of exactly `files`, which must all still be live;
    /// [`StoreError::Conflict`] otherwise, and nothing changes.
    pub async fn replace_lake_files(&mut self, files: &[Uuid], merged: Uuid) -> Result<()> {
        let org = self.scope.org_id().as_uuid();
        for id in files {
            let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE lake_files SET state = 'superseded', superseded_at = $1 WHERE org_id = $2 AND id = $3 AND state = 'live'")
                .bind(now()).bind(org).bind(*id).execute(c).await.map(|r| r.rows_affected()))?;
            if n != 1 {
                return Err(StoreError::Conflict("a newer version of these lake files"));
            }
        }
        self.commit_appended_lake_files(&[merged]).await
    }

    /// The span attributes the organization promotes to tags of its requests.
    pub async fn request_tag_attributes(&mut self) -> Result<Vec<String>> {
        let text: String = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT request_tag_attributes FROM organizations WHERE id = $1")
            .bind(self.scope.org_id().as_uuid()).fetch_one(c).await)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("request_tag_attributes: {e}")))
    }

    /// Sets them; the caller has checked each is an attribute name that carries no content.
    pub async fn set_request_tag_attributes(&mut self, names: &[String]) -> Result<()> {
        let text = serde_json::to_string(names).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE organizations SET request_tag_attributes = $1 WHERE id = $2")
            .bind(text).bind(self.scope.org_id().as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Forgets the claims of spans of days before `day`; returns how many.
    pub async fn forget_claims_before(&mut self, day: NaiveDate) -> Result<u64> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("DELETE FROM ingested_spans WHERE org_id = $1 AND day < $2")
            .bind(self.scope.org_id().as_uuid()).bind(day).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }
}

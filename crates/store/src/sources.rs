//! Connected sources (providers). The credential is sealed with the organization's data key and
//! bound to this table, column and row (S1); it is opened only by [`TenantTx::open_source_secret`],
//! which the sync job and "test connection" call at the moment of use (S2).

use burnrate_core::SourceId;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::accounts::now;
use crate::{Result, StoreError, TenantTx, Vault, on};

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceRecord {
    #[sqlx(try_from = "Uuid")]
    pub id: SourceId,
    pub kind: String,
    pub name: String,
    /// Non-secret settings as JSON (base URL, backfill depth, interval).
    pub config: String,
    /// The last four characters of the credential.
    pub secret_hint: String,
    pub secret_set_at: DateTime<Utc>,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// A running sync's progress, in words.
    pub progress: Option<String>,
    /// A prepaid account's credits left (USD, decimal text) at the last sync, and when it was read.
    pub credits_remaining: Option<String>,
    pub credits_checked_at: Option<DateTime<Utc>>,
    /// What the last successful sync did, in words.
    pub last_sync_summary: Option<String>,
}

pub struct NewSource<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub config: &'a str,
    pub secret: &'a str,
}

fn hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

impl TenantTx {
    pub async fn create_source(&mut self, vault: &Vault, new: &NewSource<'_>) -> Result<SourceId> {
        let source = SourceId::generate();
        let id = source.as_uuid();
        let sealed = vault.seal_org(self, "sources", "secret", &id.to_string(), new.secret.as_bytes()).await?;
        let at = now();
        let res = on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO sources (id, org_id, kind, name, config, secret_sealed, secret_hint, secret_set_at, paused, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)")
            .bind(id).bind(self.scope.org_id().as_uuid()).bind(new.kind).bind(new.name).bind(new.config).bind(sealed).bind(hint(new.secret)).bind(at).bind(false)
            .execute(c).await.map(|_| ()));
        match res {
            Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::Conflict("a source with this name")),
            other => Ok(other.map(|_| source)?),
        }
    }

    pub async fn sources(&mut self) -> Result<Vec<SourceRecord>> {
        let sql = "SELECT id, kind, name, config, secret_hint, secret_set_at, paused, created_at, last_attempt_at, last_success_at, last_error, progress, credits_remaining, credits_checked_at, last_sync_summary FROM sources WHERE org_id = $1 ORDER BY name";
        let rows: Vec<SourceRecord> =
            on!(&mut self.inner.tx, c => sqlx::query_as(sql).bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        Ok(rows)
    }

    pub async fn source(&mut self, id: SourceId) -> Result<Option<SourceRecord>> {
        let id = id.as_uuid();
        let row: Option<SourceRecord> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT id, kind, name, config, secret_hint, secret_set_at, paused, created_at, last_attempt_at, last_success_at, last_error, progress, credits_remaining, credits_checked_at, last_sync_summary FROM sources WHERE org_id = $1 AND id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(id).fetch_optional(c).await)?;
        Ok(row)
    }

    /// Opens the credential for the call about to use it; the caller drops it right after.
    pub async fn open_source_secret(&mut self, vault: &Vault, id: SourceId) -> Result<Zeroizing<String>> {
        let id = id.as_uuid();
        let sealed: Option<Vec<u8>> = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT secret_sealed FROM sources WHERE org_id = $1 AND id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(id).fetch_optional(c).await)?;
        let plain = vault
            .open_org(self, "sources", "secret", &id.to_string(), sealed.ok_or(StoreError::NotFound("source"))?)
            .await?;
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| StoreError::Corrupt("source secret is not UTF-8".into()))
    }

    pub async fn rotate_source_secret(&mut self, vault: &Vault, id: SourceId, secret: &str) -> Result<bool> {
        let id = id.as_uuid();
        let sealed = vault.seal_org(self, "sources", "secret", &id.to_string(), secret.as_bytes()).await?;
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE sources SET secret_sealed = $1, secret_hint = $2, secret_set_at = $3, last_error = NULL WHERE org_id = $4 AND id = $5")
            .bind(sealed).bind(hint(secret)).bind(now()).bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn set_source_config(&mut self, id: SourceId, config: &str) -> Result<bool> {
        let id = id.as_uuid();
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE sources SET config = $1 WHERE org_id = $2 AND id = $3")
            .bind(config).bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn set_source_progress(&mut self, id: SourceId, progress: Option<&str>) -> Result<()> {
        let id = id.as_uuid();
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE sources SET progress = $1 WHERE org_id = $2 AND id = $3")
            .bind(progress).bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Records the credits left on a prepaid account, read by the sync just now.
    pub async fn set_source_credits(&mut self, id: SourceId, remaining: &str) -> Result<()> {
        let id = id.as_uuid();
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE sources SET credits_remaining = $1, credits_checked_at = $2 WHERE org_id = $3 AND id = $4")
            .bind(remaining).bind(now()).bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// The names of the sources whose last sync failed (paused ones aside): what the banner on
    /// every page names, since their numbers may be incomplete.
    pub async fn failing_source_names(&mut self) -> Result<Vec<String>> {
        let names: Vec<String> = on!(&mut self.inner.tx, c => sqlx::query_scalar(
            "SELECT name FROM sources WHERE org_id = $1 AND last_error IS NOT NULL AND paused = $2 ORDER BY name")
            .bind(self.scope.org_id().as_uuid()).bind(false).fetch_all(c).await)?;
        Ok(names)
    }

    pub async fn set_source_paused(&mut self, id: SourceId, paused: bool) -> Result<bool> {
        let id = id.as_uuid();
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE sources SET paused = $1 WHERE org_id = $2 AND id = $3")
            .bind(paused).bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Records the outcome of a sync: what it did, or why it failed. Both must already be free of
    /// secrets.
    pub async fn record_source_attempt(
        &mut self,
        id: SourceId,
        outcome: std::result::Result<&str, &str>,
    ) -> Result<()> {
        let id = id.as_uuid();
        let at = now();
        match outcome {
            Ok(summary) => {
                on!(&mut self.inner.tx, c => sqlx::query("UPDATE sources SET last_attempt_at = $1, last_success_at = $1, last_error = NULL, progress = NULL, last_sync_summary = $2 WHERE org_id = $3 AND id = $4")
                .bind(at).bind(summary).bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|_| ()))?
            }
            Err(e) => {
                on!(&mut self.inner.tx, c => sqlx::query("UPDATE sources SET last_attempt_at = $1, last_error = $2, progress = NULL WHERE org_id = $3 AND id = $4")
                .bind(at).bind(e).bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|_| ()))?
            }
        }
        Ok(())
    }

    /// Deletes a source; with `keep_data` false its lake files leave the live set too.
    pub async fn delete_source(&mut self, id: SourceId, keep_data: bool) -> Result<bool> {
        let id = id.as_uuid();
        let org = self.scope.org_id().as_uuid();
        let n = on!(&mut self.inner.tx, c => sqlx::query("DELETE FROM sources WHERE org_id = $1 AND id = $2")
            .bind(org).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        if n > 0 && !keep_data {
            on!(&mut self.inner.tx, c => sqlx::query("UPDATE lake_files SET state = 'superseded', superseded_at = $1 WHERE org_id = $2 AND source_id = $3 AND state = 'live'")
                .bind(now()).bind(org).bind(id).execute(c).await.map(|_| ()))?;
        }
        Ok(n > 0)
    }
}

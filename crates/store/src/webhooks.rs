//! Webhook destinations. The signing secret is sealed with the organization's data key, bound to
//! this table, column and row (S1), and opened only to sign a delivery (S2).

use burnrate_core::{UserId, WebhookId};
use chrono::{DateTime, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::accounts::now;
use crate::{Result, StoreError, TenantTx, Vault, on};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    /// Deliveries go out as a Slack-compatible message rather than the event's JSON.
    pub slack: bool,
    /// The event types it takes; empty: every type.
    pub events: Vec<String>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    /// Attempts that failed since the last one delivered.
    pub failures_in_a_row: u32,
    /// Since when nothing is sent to it: it kept failing, and waits for an admin to resume it.
    pub paused_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    url: String,
    description: String,
    slack: bool,
    events: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    failures_in_a_row: i32,
    paused_at: Option<DateTime<Utc>>,
}

impl From<Row> for WebhookRecord {
    fn from(r: Row) -> Self {
        Self {
            id: WebhookId::from_uuid(r.id),
            url: r.url,
            description: r.description,
            slack: r.slack,
            // Written by this code as a JSON list; anything else reads as "every type".
            events: serde_json::from_str(&r.events).unwrap_or_default(),
            created_by: UserId::from_uuid(r.created_by),
            created_at: r.created_at,
            failures_in_a_row: u32::try_from(r.failures_in_a_row).unwrap_or_default(),
            paused_at: r.paused_at,
        }
    }
}

pub struct NewWebhook<'a> {
    pub url: &'a str,
    pub description: &'a str,
    pub slack: bool,
    /// The event types it takes; empty: every type.
    pub events: &'a [String],
    /// `whsec_…`.
    pub secret: &'a str,
    pub created_by: UserId,
}

const COLUMNS: &str = "id, url, description, slack, events, created_by, created_at, failures_in_a_row, paused_at";

impl TenantTx {
    pub async fn create_webhook(&mut self, vault: &Vault, new: &NewWebhook<'_>) -> Result<WebhookId> {
        let id = WebhookId::generate();
        let sealed = vault.seal_org(self, "webhooks", "secret", &id.to_string(), new.secret.as_bytes()).await?;
        let events = serde_json::to_string(new.events)?;
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO webhooks (id, org_id, url, description, slack, events, secret_sealed, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(id.as_uuid()).bind(self.scope.org_id().as_uuid()).bind(new.url).bind(new.description).bind(new.slack).bind(events).bind(sealed)
            .bind(new.created_by.as_uuid()).bind(now()).execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    /// This organization's webhooks, oldest first.
    pub async fn webhooks(&mut self) -> Result<Vec<WebhookRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE org_id = $1 ORDER BY created_at, id");
        let rows: Vec<Row> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn webhook(&mut self, id: WebhookId) -> Result<Option<WebhookRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE org_id = $1 AND id = $2");
        let row: Option<Row> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).fetch_optional(c).await)?;
        Ok(row.map(Into::into))
    }

    /// Opens the signing secret for the delivery about to be signed; the caller drops it after.
    pub async fn open_webhook_secret(&mut self, vault: &Vault, id: WebhookId) -> Result<Zeroizing<String>> {
        let sealed: Option<Vec<u8>> = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT secret_sealed FROM webhooks WHERE org_id = $1 AND id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).fetch_optional(c).await)?;
        let plain = vault
            .open_org(self, "webhooks", "secret", &id.to_string(), sealed.ok_or(StoreError::NotFound("webhook"))?)
            .await?;
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| StoreError::Corrupt("webhook secret is not UTF-8".into()))
    }

    /// Counts an attempt's outcome against the destination: a delivery clears its failures, a
    /// failure adds one, and the `pause_after`th in a row pauses it at `at`. True when this
    /// failure paused it (once, however many workers fail at once).
    pub async fn record_webhook_outcome(
        &mut self,
        id: WebhookId,
        delivered: bool,
        pause_after: u32,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let (org, id) = (self.scope.org_id().as_uuid(), id.as_uuid());
        if delivered {
            on!(&mut self.inner.tx, c => sqlx::query("UPDATE webhooks SET failures_in_a_row = 0 WHERE org_id = $1 AND id = $2")
                .bind(org).bind(id).execute(c).await.map(|_| ()))?;
            return Ok(false);
        }
        let threshold = i32::try_from(pause_after).unwrap_or(i32::MAX);
        let failures: Option<i32> = on!(&mut self.inner.tx, c => sqlx::query_scalar("UPDATE webhooks SET failures_in_a_row = failures_in_a_row + 1, paused_at = CASE WHEN paused_at IS NULL AND failures_in_a_row + 1 >= $1 THEN $2 ELSE paused_at END WHERE org_id = $3 AND id = $4 RETURNING failures_in_a_row")
            .bind(threshold).bind(at).bind(org).bind(id).fetch_optional(c).await)?;
        Ok(failures == Some(threshold))
    }

    /// Sends to a paused destination again; false when it was not paused.
    pub async fn resume_webhook(&mut self, id: WebhookId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE webhooks SET paused_at = NULL, failures_in_a_row = 0 WHERE org_id = $1 AND id = $2 AND paused_at IS NOT NULL")
            .bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn delete_webhook(&mut self, id: WebhookId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("DELETE FROM webhooks WHERE org_id = $1 AND id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}

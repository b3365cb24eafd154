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

const COLUMNS: &str = "id, url, description, slack, events, created_by, created_at";

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

    pub async fn delete_webhook(&mut self, id: WebhookId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("DELETE FROM webhooks WHERE org_id = $1 AND id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}

//! Mail waiting for delivery. A message holds a recipient and often a one-time link, so it is
//! sealed like any other secret and deleted as soon as it has been handed to the SMTP server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::accounts::now;
use crate::{InstanceTx, Result, StoreError, Vault, on};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The organization the message speaks for (alerts, digests), paced per organization (S15);
    /// `None` for mail to a person about their own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<Uuid>,
}

#[derive(Clone, Debug)]
pub struct QueuedMail {
    pub id: Uuid,
    pub message: OutboxMessage,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

impl InstanceTx {
    pub async fn enqueue_mail(&mut self, vault: &Vault, message: &OutboxMessage) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(message)?);
        let sealed = vault.seal_instance(self, "outbox", "message", &id.to_string(), &plain).await?;
        on!(&mut self.tx, c => sqlx::query("INSERT INTO outbox (id, sealed, created_at) VALUES ($1, $2, $3)")
            .bind(id).bind(sealed).bind(now()).execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    /// Leases the oldest `limit` messages nobody else is sending (until `now_ms + lease_ms`) and
    /// opens them. Another instance skips leased messages, so a message goes out once at a time.
    pub async fn claim_mail(
        &mut self,
        vault: &Vault,
        limit: i64,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<QueuedMail>> {
        const PG: &str = "UPDATE outbox SET locked_until_ms = $1 WHERE id IN (SELECT id FROM outbox WHERE locked_until_ms IS NULL OR locked_until_ms < $2 ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id, sealed, attempts, created_at";
        // SQLite: the transaction holds the write lock, which serializes claims.
        const SQLITE: &str = "UPDATE outbox SET locked_until_ms = $1 WHERE id IN (SELECT id FROM outbox WHERE locked_until_ms IS NULL OR locked_until_ms < $2 ORDER BY created_at LIMIT $3) RETURNING id, sealed, attempts, created_at";
        let sql = if self.tx.backend() == crate::Backend::Postgres { PG } else { SQLITE };
        let rows: Vec<(Uuid, Vec<u8>, i32, DateTime<Utc>)> = on!(&mut self.tx, c => sqlx::query_as(sql)
            .bind(now_ms + lease_ms).bind(now_ms).bind(limit).fetch_all(c).await)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, sealed, attempts, created_at) in rows {
            let plain = vault.open_instance(self, "outbox", "message", &id.to_string(), sealed).await?;
            let message: OutboxMessage =
                serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push(QueuedMail { id, message, attempts, created_at });
        }
        Ok(out)
    }

    pub async fn mail_delivered(&mut self, id: Uuid) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("DELETE FROM outbox WHERE id = $1").bind(id).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Gives a leased message back untried (it was paced), for the next pass.
    pub async fn release_mail(&mut self, id: Uuid) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("UPDATE outbox SET locked_until_ms = NULL WHERE id = $1").bind(id).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn mail_failed(&mut self, id: Uuid, error: &str) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $1, locked_until_ms = NULL WHERE id = $2")
            .bind(error).bind(id).execute(c).await.map(|_| ()))?;
        Ok(())
    }
}

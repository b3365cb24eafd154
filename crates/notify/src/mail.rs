//! Outgoing mail. A message is queued — sealed — in the same transaction as the action that sends
//! it (a reset link exists only if the reset was recorded), then a worker hands it to the SMTP
//! server and deletes it. Without `BURNRATE_SMTP_URL` messages stay queued and the worker says so.

use std::sync::Arc;
use std::time::Duration;

use burnrate_core::EmailAddress;
use burnrate_store::{InstanceTx, OutboxMessage, Quota, RateLimiter, Store, StoreError, Vault};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;

const SEND_TIMEOUT: Duration = Duration::from_secs(30);
const RETRY_EVERY: Duration = Duration::from_secs(30);
/// Mail to one recipient: a burst of 20, then one a minute.
const PER_RECIPIENT: Quota = Quota { interval: Duration::from_secs(60), burst: 20 };
/// Mail speaking for one organization (alerts, digests): a burst of 200, then 60 a minute.
const PER_ORG: Quota = Quota { interval: Duration::from_secs(1), burst: 200 };
/// Messages one delivery pass takes on.
const BATCH: i64 = 20;
/// Longer than a pass can take (every message timing out), so a lease never lapses mid-pass;
/// a crashed instance's messages go out from another one after it.
const LEASE: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    vault: Arc<Vault>,
    /// Paces mail per recipient (S15), so an alert storm cannot flood one inbox.
    limiter: RateLimiter,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    wake: Notify,
}

/// Parses `smtp://`, `smtps://` (TLS from the start) and `smtp+starttls://` (STARTTLS required).
fn transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let lettre_url = if let Some(rest) = url.strip_prefix("smtp+starttls://") {
        let sep = if rest.contains('?') { '&' } else { '?' };
        format!("smtp://{rest}{sep}tls=required")
    } else if url.starts_with("smtp://") || url.starts_with("smtps://") {
        url.to_owned()
    } else {
        return Err("BURNRATE_SMTP_URL: expected smtp://, smtps:// or smtp+starttls://".into());
    };
    AsyncSmtpTransport::<Tokio1Executor>::from_url(&lettre_url)
        .map(|b| b.timeout(Some(SEND_TIMEOUT)).build())
        .map_err(|e| format!("BURNRATE_SMTP_URL: {e}"))
}

impl Mailer {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        limiter: RateLimiter,
        smtp_url: Option<&str>,
        from: &str,
    ) -> Result<Self, String> {
        let transport = smtp_url.map(transport).transpose()?;
        let from: Mailbox = from.parse().map_err(|e| format!("BURNRATE_MAIL_FROM: {e}"))?;
        Ok(Self { inner: Arc::new(Inner { store, vault, limiter, transport, from, wake: Notify::new() }) })
    }

    /// Queues a message inside the caller's transaction; call [`Mailer::wake`] after commit.
    pub async fn enqueue(
        &self,
        tx: &mut InstanceTx,
        to: &EmailAddress,
        subject: &str,
        body: String,
    ) -> Result<(), StoreError> {
        let msg = OutboxMessage { to: to.as_str().to_owned(), subject: subject.to_owned(), body, org: None };
        tx.enqueue_mail(&self.inner.vault, &msg).await?;
        Ok(())
    }

    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Runs the delivery loop until the task is dropped.
    pub fn spawn_worker(&self) -> tokio::task::JoinHandle<()> {
        let mailer = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = mailer.deliver_queued().await {
                    tracing::warn!(error = %e, "mail delivery pass failed");
                }
                tokio::select! {
                    _ = mailer.inner.wake.notified() => {}
                    _ = tokio::time::sleep(RETRY_EVERY) => {}
                }
            }
        })
    }

    /// One delivery pass over the queue; returns how many messages were sent.
    pub async fn deliver_queued(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let mut tx = inner.store.instance().await?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut queued = tx.claim_mail(&inner.vault, BATCH, now_ms, LEASE.as_millis() as i64).await?;
        queued.sort_by_key(|m| m.created_at);
        tx.commit().await?;
        if queued.is_empty() {
            return Ok(0);
        }
        let Some(transport) = &inner.transport else {
            tracing::warn!(
                queued = queued.len(),
                "mail is undeliverable: BURNRATE_SMTP_URL is not set; kept for retry"
            );
            return Ok(0);
        };
        let mut sent = 0;
        for mail in queued {
            if !inner.paced(&mail.message).await {
                // Kept, sealed, for a later pass.
                tracing::info!(mail = %mail.id, "mail is paced (per recipient or organization); kept for a later pass");
                let mut tx = inner.store.instance().await?;
                tx.release_mail(mail.id).await?;
                tx.commit().await?;
                continue;
            }
            let result = match build(&inner.from, &mail.message) {
                Ok(message) => match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("SMTP: {e}")),
                    Err(_) => Err("SMTP: timed out".to_owned()),
                },
                Err(e) => Err(e),
            };
            let mut tx = inner.store.instance().await?;
            match result {
                Ok(()) => {
                    tx.mail_delivered(mail.id).await?;
                    sent += 1;
                }
                Err(e) => {
                    tracing::warn!(mail = %mail.id, error = %e, "mail not delivered; will retry");
                    tx.mail_failed(mail.id, &e).await?;
                }
            }
            tx.commit().await?;
        }
        Ok(sent)
    }
}

impl Inner {
    /// Whether `message` may go now: per recipient, and per organization for mail that speaks for
    /// one (S15).
    async fn paced(&self, message: &OutboxMessage) -> bool {
        if self.limiter.check(&format!("mail-to:{}", message.to.to_lowercase()), PER_RECIPIENT).await.is_err() {
            return false;
        }
        match message.org {
            Some(org) => self.limiter.check(&format!("mail-org:{org}"), PER_ORG).await.is_ok(),
            None => true,
        }
    }
}

fn build(from: &Mailbox, msg: &OutboxMessage) -> Result<Message, String> {
    let to: Mailbox = msg.to.parse().map_err(|e| format!("recipient: {e}"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(msg.subject.clone())
        .body(msg.body.clone())
        .map_err(|e| format!("message: {e}"))
}

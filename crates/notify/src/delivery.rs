//! Webhook deliveries through the job queue: at least once, signed at each attempt, retried with
//! exponential backoff and jitter, then dead-lettered — never dropped (S15). Each attempt is
//! logged with its status, latency and answer code; the log never holds the secret.

use std::time::{Duration, Instant};

use burnrate_core::DeliveryId;
use burnrate_store::{
    Actor, AuditAction, DeliveryAttempt, DeliveryState, InstanceTx, Job, NewAuditEntry, OrgScope, OutboxMessage, Quota,
    StoreError, TenantTx, WebhookRecord,
};
use chrono::Utc;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::webhook::WebhookSecret;
use crate::{DELIVER_JOB, Notifier, NotifyError};

/// How deliveries are retried and paced.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryPolicy {
    /// The wait before the second attempt; each further wait doubles, up to `max_delay`, and is
    /// then cut by up to half at random so that retries to one receiver spread out.
    pub first_retry: Duration,
    pub max_delay: Duration,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// Deliveries per webhook destination (S15).
    pub per_destination: Quota,
    /// Deliveries per organization, over all its destinations (S15).
    pub per_org: Quota,
    /// How long one attempt may wait for a receiver's answer: a receiver that never answers
    /// costs a worker this long, then the attempt counts as failed and is retried later.
    pub attempt_timeout: Duration,
    /// Deliveries of one organization in flight at once, over every instance: its dead
    /// receivers hold at most this many workers while other organizations' alerts go out.
    pub per_org_in_flight: u32,
    /// Failed attempts in a row after which a destination is paused (its admins told by mail):
    /// nothing more is sent to it until an admin resumes it.
    pub pause_after: u32,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        // 30 s, 1, 2, 4, 8, 16, 32 min, then 1 h: about two hours before a delivery is dead.
        Self {
            first_retry: Duration::from_secs(30),
            max_delay: Duration::from_secs(3600),
            max_attempts: 8,
            per_destination: Quota::per_minute(600, 100),
            per_org: Quota::per_minute(1200, 200),
            attempt_timeout: Duration::from_secs(10),
            per_org_in_flight: 2,
            // A day of a delivery's retries, or ten events in a row unanswered.
            pause_after: 10,
        }
    }
}

impl DeliveryPolicy {
    /// The wait after `attempts` failed attempts.
    pub fn retry_delay(&self, attempts: u32, rng: &mut impl Rng) -> Duration {
        let doubled = self.first_retry.saturating_mul(1 << attempts.saturating_sub(1).min(20));
        let full = doubled.min(self.max_delay);
        full.mul_f64(rng.gen_range(0.5..=1.0))
    }
}

/// A delivery job's lease beyond its attempt's timeout: time for the database work around it.
const LEASE_BEYOND_ATTEMPT: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
struct DeliverJob {
    delivery: DeliveryId,
}

/// Queues an attempt at `delivery` now; call [`burnrate_store::Store::jobs_queued`] after commit.
pub async fn queue(tx: &mut TenantTx, org: OrgScope, delivery: DeliveryId, now_ms: i64) -> Result<(), StoreError> {
    let payload = serde_json::to_string(&DeliverJob { delivery })?;
    tx.enqueue_job(DELIVER_JOB, Some(org.org_id().as_uuid()), &payload, None, now_ms, now_ms).await?;
    Ok(())
}

/// The event types webhooks carry (a destination may take a subset).
pub const EVENT_TYPES: [&str; 7] = [
    "budget.threshold_crossed",
    "budget.forecast_exceeded",
    "spend.anomaly",
    "source.sync_failed",
    "approval.requested",
    "reconciliation.gap",
    "test",
];

/// An event on its way to every webhook of an organization that takes its type.
pub struct Event {
    pub event_type: &'static str,
    pub timestamp: chrono::DateTime<Utc>,
    /// The event's data, for JSON destinations.
    pub data: serde_json::Value,
    /// The event in a sentence, with a link in Slack's `<url|words>` form, for Slack destinations.
    pub text: String,
}

impl Event {
    /// The body sent to `webhook`: the event's JSON, or a Slack-compatible message.
    pub fn body(&self, webhook: &WebhookRecord) -> String {
        let value = if webhook.slack {
            serde_json::json!({ "text": self.text })
        } else {
            serde_json::json!({
                "type": self.event_type,
                "timestamp": self.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "data": self.data,
            })
        };
        value.to_string()
    }
}

/// Adds a delivery of `event` to each of `webhooks` that takes its type and queues its first attempt, in the caller's
/// transaction (call [`burnrate_store::Store::jobs_queued`] after the commit).
pub async fn queue_to_all(
    tx: &mut TenantTx,
    org: OrgScope,
    webhooks: &[WebhookRecord],
    event: &Event,
    committed_at_ms: i64,
) -> Result<(), StoreError> {
    for webhook in webhooks.iter().filter(|w| w.events.is_empty() || w.events.iter().any(|e| e == event.event_type)) {
        let id = tx.create_delivery(webhook.id, event.event_type, &event.body(webhook), committed_at_ms).await?;
        queue(tx, org, id, Utc::now().timestamp_millis()).await?;
    }
    Ok(())
}

impl Notifier {
    /// Claims and attempts due deliveries until none is left; returns how many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, NotifyError> {
        let mut attempted = 0;
        loop {
            let now_ms = Utc::now().timestamp_millis();
            let mut tx = self.inner.store.instance().await?;
            let lease = (self.inner.policy.attempt_timeout + LEASE_BEYOND_ATTEMPT).as_millis() as i64;
            let share = self.inner.policy.per_org_in_flight;
            let job = tx.claim_job_fairly(DELIVER_JOB, &self.inner.worker, now_ms, lease, share).await?;
            let Some(job) = job else {
                tx.commit().await?;
                return Ok(attempted);
            };
            attempted += 1;
            if let Err(e) = self.attempt(&job, tx).await {
                // Not an answer from the receiver but trouble here (the database, a corrupt row):
                // tried again in a minute, counted as an attempt.
                tracing::warn!(job = %job.id, error = %e, "webhook delivery could not be attempted");
                let mut tx = self.inner.store.instance().await?;
                let retry = Utc::now().timestamp_millis() + 60_000;
                tx.fail_job(job.id, &e.to_string(), retry, job.attempts >= self.inner.policy.max_attempts as i32)
                    .await?;
                tx.commit().await?;
            }
        }
    }

    /// One attempt at the delivery `job` names, recorded with its outcome. `claimed` is the
    /// transaction that claimed the job: the delivery is read in it, one round trip fewer.
    async fn attempt(&self, job: &Job, claimed: InstanceTx) -> Result<(), NotifyError> {
        let inner = &self.inner;
        let (Some(org), Ok(spec)) = (job.org_id, serde_json::from_str::<DeliverJob>(&job.payload)) else {
            let mut tx = claimed;
            tx.fail_job(job.id, "a malformed delivery job", 0, true).await?;
            return Ok(tx.commit().await?);
        };
        let org = OrgScope::trusted(burnrate_core::OrgId::from_uuid(org));
        let mut tx = claimed.into_tenant(org).await?;
        let delivery = tx.delivery(spec.delivery).await?;
        let webhook = match &delivery {
            Some(d) if d.state == DeliveryState::Pending => tx.webhook(d.webhook_id).await?,
            _ => None,
        };
        let (Some(delivery), Some(webhook)) = (delivery, webhook) else {
            // Delivered already, or its webhook was removed: nothing left to do.
            tx.complete_job(job.id).await?;
            return Ok(tx.commit().await?);
        };
        if let Some(since) = webhook.paused_at {
            // Kept, not sent: an admin resumes the destination, then redelivers.
            let not_sent = DeliveryAttempt {
                at: Utc::now(),
                status: None,
                latency_ms: 0,
                error: Some(format!(
                    "not sent: the destination has been paused since {} after {} failed attempts in a row; \
                     resume it, then redeliver",
                    since.format("%Y-%m-%d %H:%M UTC"),
                    webhook.failures_in_a_row
                )),
            };
            metrics::counter!("burnrate_webhook_dead_letters_total").increment(1);
            tx.record_delivery_attempt(delivery.id, &not_sent, DeliveryState::Dead).await?;
            tx.fail_job(job.id, "the destination is paused", 0, true).await?;
            return Ok(tx.commit().await?);
        }
        let secret = tx.open_webhook_secret(&inner.vault, webhook.id).await?;
        let grants = tx.egress_grants().await?;
        tx.commit().await?;
        let http = inner.http.granted(&grants).map_err(|e| NotifyError::Data(format!("egress grants: {e}")))?;
        let secret =
            WebhookSecret::parse(&secret).map_err(|e| NotifyError::Data(format!("webhook {}: {e}", webhook.id)))?;

        let mut paced = inner.limiter.check(&format!("webhook:{}", webhook.id), inner.policy.per_destination).await;
        if paced.is_ok() {
            paced = inner.limiter.check(&format!("webhook-org:{}", org.org_id()), inner.policy.per_org).await;
        }
        if let Err(wait) = paced {
            let mut tx = inner.store.instance().await?;
            tx.postpone_job(job.id, Utc::now().timestamp_millis() + wait.as_millis() as i64).await?;
            return Ok(tx.commit().await?);
        }

        let message_id = format!("msg_{}", delivery.id.as_uuid().simple());
        let attempt = self.send_signed(&http, &webhook.url, &secret, &message_id, delivery.payload.as_bytes()).await;
        drop(secret);
        let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        let delivered = attempt.error.is_none();
        let give_up = !delivered && attempts >= inner.policy.max_attempts;
        let state = match (delivered, give_up) {
            (true, _) => DeliveryState::Delivered,
            (false, true) => DeliveryState::Dead,
            (false, false) => DeliveryState::Pending,
        };
        if state == DeliveryState::Dead {
            metrics::counter!("burnrate_webhook_dead_letters_total").increment(1);
        }
        let mut tx = inner.store.tenant(org).await?;
        tx.record_delivery_attempt(delivery.id, &attempt, state).await?;
        let paused = tx.record_webhook_outcome(webhook.id, delivered, inner.policy.pause_after, attempt.at).await?;
        if paused {
            self.tell_paused(&mut tx, &webhook, &attempt).await?;
        }
        if delivered {
            tx.complete_job(job.id).await?;
        } else {
            let wait = inner.policy.retry_delay(attempts, &mut rand::thread_rng());
            let retry_at = Utc::now().timestamp_millis() + wait.as_millis() as i64;
            tx.fail_job(job.id, attempt.error.as_deref().unwrap_or_default(), retry_at, give_up).await?;
        }
        tx.commit().await?;
        if paused {
            inner.mailer.wake();
        }
        match state {
            DeliveryState::Delivered => {
                tracing::debug!(delivery = %delivery.id, latency_ms = attempt.latency_ms, "webhook delivered")
            }
            DeliveryState::Dead => tracing::warn!(
                delivery = %delivery.id, webhook = %webhook.id, attempts,
                "webhook delivery failed for good; it is in the dead-letter list"
            ),
            DeliveryState::Pending => {
                tracing::info!(delivery = %delivery.id, attempts, error = ?attempt.error, "webhook delivery will be retried")
            }
        }
        Ok(())
    }

    /// Records in the organization's log that `webhook` was paused after `last`, and tells its
    /// owners and admins by mail, in `tx`.
    async fn tell_paused(
        &self,
        tx: &mut TenantTx,
        webhook: &WebhookRecord,
        last: &DeliveryAttempt,
    ) -> Result<(), NotifyError> {
        let inner = &self.inner;
        let why = last.error.clone().unwrap_or_default();
        let failures = inner.policy.pause_after;
        tx.audit(NewAuditEntry {
            actor: Actor::system("webhook delivery"),
            action: AuditAction::WebhookPaused,
            target_type: Some("webhook"),
            target_id: Some(webhook.id.to_string()),
            details: serde_json::json!({ "failures_in_a_row": failures, "last_error": why }),
            ip: None,
            user_agent: None,
        })
        .await?;
        tracing::warn!(webhook = %webhook.id, failures, "paused a webhook destination that keeps failing");
        let host = url::Url::parse(&webhook.url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        let link = inner.public_url.join("/webhooks").map(|u| u.to_string()).unwrap_or_default();
        let body = format!(
            "burnrate stopped sending events to the webhook destination at {host} ({}): its last {failures} \
             attempts failed, the last with: {why}.\n\n\
             Events for it are kept in its dead-letter list. Once the receiver answers again, resume the \
             destination and redeliver what it missed:\n\n{link}\n",
            if webhook.description.is_empty() { "no description" } else { &webhook.description },
        );
        let admins = tx.members(&inner.vault).await?.into_iter().filter(|m| m.role.is_admin());
        for member in admins {
            let mail = OutboxMessage {
                to: member.email.as_str().to_owned(),
                subject: format!("burnrate: webhook to {host} paused after {failures} failed attempts"),
                body: body.clone(),
                org: Some(tx.scope().org_id().as_uuid()),
            };
            tx.enqueue_mail(&inner.vault, &mail).await?;
        }
        Ok(())
    }

    /// Signs and POSTs `body` once, through `http` (the egress-guarded client of the
    /// organization's reach). A delivery's message id is the same at every attempt, so a receiver
    /// can tell a retry from a new event; the timestamp is the attempt's.
    pub async fn send_signed(
        &self,
        http: &burnrate_net::HttpClient,
        url: &str,
        secret: &WebhookSecret,
        message_id: &str,
        body: &[u8],
    ) -> DeliveryAttempt {
        let at = Utc::now();
        let started = Instant::now();
        let signed = secret.sign(message_id, at.timestamp(), body);
        let mut headers: Vec<(&str, String)> = signed.headers().to_vec();
        headers.push(("content-type", "application/json".into()));
        headers.push(("user-agent", "burnrate-webhooks".into()));
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let timeout = self.inner.policy.attempt_timeout;
        let result = match url::Url::parse(url) {
            Ok(url) => match tokio::time::timeout(timeout, http.post_once(&url, &headers, body.to_vec())).await {
                Ok(answer) => answer.map_err(|e| e.to_string()),
                Err(_) => Err(format!("the receiver did not answer within {} s", timeout.as_secs_f32())),
            },
            Err(e) => Err(format!("the URL is unreadable: {e}")),
        };
        let latency_ms = started.elapsed().as_millis() as i64;
        let outcome = match &result {
            Ok(reply) if (200..300).contains(&reply.status) => "delivered",
            Ok(_) => "refused",
            Err(_) => "unanswered",
        };
        metrics::counter!("burnrate_webhook_deliveries_total", "outcome" => outcome).increment(1);
        match result {
            Ok(reply) if (200..300).contains(&reply.status) => {
                DeliveryAttempt { at, status: Some(i32::from(reply.status)), latency_ms, error: None }
            }
            Ok(reply) => DeliveryAttempt {
                at,
                status: Some(i32::from(reply.status)),
                latency_ms,
                error: Some(format!("the receiver answered {}", reply.status)),
            },
            Err(e) => DeliveryAttempt { at, status: None, latency_ms, error: Some(e) },
        }
    }

    /// Puts a dead delivery back in the queue for a new round of attempts; false when it is not
    /// dead (delivered, pending, or not this organization's).
    pub async fn redeliver(&self, org: OrgScope, delivery: DeliveryId) -> Result<bool, NotifyError> {
        let mut tx = self.inner.store.tenant(org).await?;
        if !tx.revive_delivery(delivery).await? {
            tx.commit().await?;
            return Ok(false);
        }
        queue(&mut tx, org, delivery, Utc::now().timestamp_millis()).await?;
        tx.commit().await?;
        self.inner.store.jobs_queued();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_with_jitter_up_to_the_cap() {
        let policy = DeliveryPolicy::default();
        let mut rng = rand::thread_rng();
        for attempts in 1..=10u32 {
            let d = policy.retry_delay(attempts, &mut rng);
            let full = (Duration::from_secs(30) * 2u32.pow(attempts - 1)).min(Duration::from_secs(3600));
            assert!(d >= full / 2 && d <= full, "attempt {attempts}: {d:?} outside {:?}..={full:?}", full / 2);
        }
    }
}

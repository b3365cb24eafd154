//! Webhook destinations (S14, S15, S29). A URL is saved only where the egress guard lets it
//! through (https, public addresses, or the operator's allow-list); the signing secret is made
//! here, shown once and sealed; a new destination follows the approval policy. A destination's
//! URL may carry a token of the receiver's: only admins see it ([`crate::policy::sees_webhook_urls`]).

use burnrate_core::{DeliveryId, WebhookId};
use burnrate_notify::WebhookSecret;
use burnrate_notify::delivery::EVENT_TYPES;
use burnrate_store::AuditAction;
pub use burnrate_store::{Delivery, DeliveryAttempt, DeliveryState, WebhookRecord};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Actor, App, Change, Error, Result, Submitted};

/// A new destination, as the API takes it and the page's form is read into.
#[derive(Deserialize, ToSchema)]
pub struct NewWebhookInput {
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// Deliver a Slack-compatible message instead of the event's JSON.
    #[serde(default)]
    pub slack: bool,
    /// The event types to take (`budget.threshold_crossed`, …); every type when absent or empty.
    #[serde(default)]
    pub events: Vec<String>,
}

/// A new destination with its signing secret, to show this once: stored now, or — where the
/// organization asks for approval of new destinations — once another admin approves.
pub enum NewWebhook {
    Saved(WebhookRecord, String),
    Queued(Uuid, String),
}

/// How a test event went.
pub struct TestOutcome {
    pub delivered: bool,
    /// The receiver's answer, if it answered.
    pub status: Option<u16>,
    /// Why there was no answer.
    pub error: Option<String>,
    pub latency_ms: u64,
    /// The `webhook-id` the event was signed with.
    pub message_id: String,
}

/// How many deliveries a destination's list shows.
pub const DELIVERIES_SHOWN: i64 = 100;

impl App {
    pub async fn create_webhook(&self, actor: &Actor, input: NewWebhookInput) -> Result<NewWebhook> {
        actor.require_admin()?;
        if let Some(unknown) = input.events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
            return Err(Error::invalid(
                "events",
                format!("Events: {unknown:?} is not one of {}.", EVENT_TYPES.join(", ")),
            ));
        }
        let checked = self
            .http_of(actor.scope)
            .await?
            .check_destination(input.url.trim())
            .await
            .map_err(|e| Error::invalid("url", format!("URL: {e}.")))?;
        let description = input.description.trim();
        if description.chars().count() > 200 || description.chars().any(char::is_control) {
            return Err(Error::invalid("description", "Description: at most 200 characters, no control characters."));
        }
        let shown = WebhookSecret::generate().expose();
        let change = Change::WebhookCreate {
            url: checked.to_string(),
            description: description.to_owned(),
            slack: input.slack,
            events: input.events,
            secret: shown.clone(),
        };
        match self.submit(actor, change, None).await? {
            Submitted::Applied(id) => {
                let mut tx = self.store.read_tenant(actor.scope).await?;
                let saved = tx.webhook(WebhookId::from_uuid(id)).await?.ok_or(Error::NotFound)?;
                tx.commit().await?;
                Ok(NewWebhook::Saved(saved, shown))
            }
            Submitted::Queued(request) => Ok(NewWebhook::Queued(request, shown)),
        }
    }

    pub async fn delete_webhook(&self, actor: &Actor, id: WebhookId) -> Result<()> {
        self.admin_change(actor, ("webhook", id.to_string()), AuditAction::WebhookDeleted, async |tx| {
            Ok(tx.delete_webhook(id).await?)
        })
        .await
    }

    /// Sends a signed `test` event to the destination now, once.
    pub async fn test_webhook(&self, actor: &Actor, id: WebhookId) -> Result<TestOutcome> {
        actor.require_admin()?;
        let notifier = self.notifier()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let webhook = tx.webhook(id).await?.ok_or(Error::NotFound)?;
        let secret = tx.open_webhook_secret(&self.vault, id).await?;
        let http = self.reach(&tx.egress_grants().await?)?;
        tx.commit().await?;
        let secret = WebhookSecret::parse(&secret).map_err(|e| Error::internal(format!("webhook {id}: {e}")))?;
        let event = burnrate_notify::delivery::Event {
            event_type: "test",
            timestamp: chrono::Utc::now(),
            data: json!({ "webhook": id, "message": "A test event from burnrate: this destination receives signed events." }),
            text: "A test event from burnrate: this destination receives burnrate's alerts.".into(),
        };
        let message_id = format!("msg_{}", Uuid::now_v7().simple());
        let sent =
            notifier.send_signed(&http, &webhook.url, &secret, &message_id, event.body(&webhook).as_bytes()).await;
        Ok(TestOutcome {
            delivered: sent.error.is_none(),
            status: sent.status.and_then(|s| u16::try_from(s).ok()),
            // An answer, even a refusal, is shown as its status code; no answer as why.
            error: if sent.status.is_some() { None } else { sent.error },
            latency_ms: u64::try_from(sent.latency_ms).unwrap_or_default(),
            message_id,
        })
    }

    /// A destination's latest deliveries (those in `state` when given), each with its attempts.
    pub async fn deliveries(
        &self,
        actor: &Actor,
        webhook: WebhookId,
        state: Option<DeliveryState>,
    ) -> Result<Vec<(Delivery, Vec<DeliveryAttempt>)>> {
        actor.require_admin()?;
        let mut tx = self.store.read_tenant(actor.scope).await?;
        tx.webhook(webhook).await?.ok_or(Error::NotFound)?;
        let list = tx.deliveries(webhook, state, DELIVERIES_SHOWN).await?;
        let mut out = Vec::with_capacity(list.len());
        for d in list {
            let attempts = tx.delivery_attempts(d.id).await?;
            out.push((d, attempts));
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Puts a dead delivery back in the queue (a new round of attempts), audited.
    pub async fn redeliver(&self, actor: &Actor, webhook: WebhookId, delivery: DeliveryId) -> Result<()> {
        actor.require_admin()?;
        let notifier = self.notifier()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let found = tx.delivery(delivery).await?.filter(|d| d.webhook_id == webhook).ok_or(Error::NotFound)?;
        if found.state != DeliveryState::Dead {
            return Err(Error::Conflict(format!(
                "only a dead delivery can be redelivered; this one is {}",
                found.state.as_str()
            )));
        }
        tx.audit(actor.entry(
            AuditAction::WebhookRedelivered,
            "webhook",
            webhook.to_string(),
            json!({ "delivery": delivery }),
        ))
        .await?;
        tx.commit().await?;
        if !notifier.redeliver(actor.scope, delivery).await.map_err(Error::internal)? {
            return Err(Error::Conflict("the delivery is no longer dead".into()));
        }
        Ok(())
    }

    /// Sends to a paused destination again, audited. What was dead-lettered while it was paused
    /// stays in its list, to redeliver.
    pub async fn resume_webhook(&self, actor: &Actor, id: WebhookId) -> Result<()> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        tx.webhook(id).await?.ok_or(Error::NotFound)?;
        if !tx.resume_webhook(id).await? {
            return Err(Error::Conflict("the destination is not paused".into()));
        }
        tx.audit(actor.entry(AuditAction::WebhookResumed, "webhook", id.to_string(), json!({}))).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A destination as the webhooks page shows it to `actor`: its URL host-only for non-admins
/// (S29), its latest deliveries each with its last attempt in words, and its dead letters.
pub struct WebhookOverview {
    pub webhook: WebhookRecord,
    pub recent: Vec<(Delivery, String)>,
    pub dead: Vec<Delivery>,
}

/// Deliveries of each destination the webhooks page shows.
const RECENT_SHOWN: i64 = 10;

impl App {
    /// The organization's webhooks, URLs host-only for those who may not see them (S29).
    pub async fn webhooks(&self, actor: &Actor) -> Result<Vec<WebhookRecord>> {
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let mut list = tx.webhooks().await?;
        tx.commit().await?;
        if !crate::policy::sees_webhook_urls(actor.role) {
            for w in &mut list {
                w.url = destination_host(&w.url);
            }
        }
        Ok(list)
    }

    /// Every destination with its recent deliveries and dead letters, as `actor` may see them.
    pub async fn webhooks_overview(&self, actor: &Actor) -> Result<Vec<WebhookOverview>> {
        let admin = crate::policy::sees_webhook_urls(actor.role);
        let webhooks = self.webhooks(actor).await?;
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let mut out = Vec::with_capacity(webhooks.len());
        for webhook in webhooks {
            let mut recent = Vec::new();
            for d in tx.deliveries(webhook.id, None, RECENT_SHOWN).await? {
                let last = match tx.delivery_attempts(d.id).await?.pop() {
                    Some(a) => match (a.status, a.error) {
                        (Some(s), None) => format!("{s} in {} ms", a.latency_ms),
                        // A transport error may quote the destination, which only admins see (S29).
                        (_, Some(e)) if admin => format!("{e} ({} ms)", a.latency_ms),
                        (_, Some(_)) => format!("failed ({} ms)", a.latency_ms),
                        (None, None) => String::new(),
                    },
                    None => String::new(),
                };
                recent.push((d, last));
            }
            let dead = tx.deliveries(webhook.id, Some(DeliveryState::Dead), DELIVERIES_SHOWN).await?;
            out.push(WebhookOverview { webhook, recent, dead });
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// A destination as people who may not see its URL see it: its host.
fn destination_host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| format!("{h} (full address: admins only)")))
        .unwrap_or_default()
}

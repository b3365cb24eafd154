//! The approval queue (S17).
//!
//! A sensitive change — by default raising a budget or its percentages, a new webhook destination,
//! new provider credentials or a new place to send them, a new SQL credential, a promotion to
//! admin or owner — goes through [`App::submit`]: applied at once when the organization does not
//! ask for approval of it, or has a single admin (audited as applied without a second approver;
//! see [`crate::policy`] for when that shortcut is closed); otherwise queued as a request (the
//! change sealed, a summary without secrets for approvers) that another admin approves or
//! rejects. Approval applies the change in the transaction that decides it, so it happens once,
//! or not at all when the world changed. A request whose requester is no longer an admin is
//! withdrawn, never applied.

use burnrate_core::{Currency, Money, Role, SqlCredentialId, Thresholds, UserId};
pub use burnrate_store::{ApprovalRequest, ApprovalState};
use burnrate_store::{AuditAction, NewWebhook, OutboxMessage, TenantTx};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::policy::{self, Route};
use crate::{Actor, App, Error, Result};

/// A change that may wait for a second admin. Held sealed in its request: it may carry a secret.
// No `Debug`: a change may hold a secret, and nothing should print it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    WebhookCreate {
        url: String,
        description: String,
        slack: bool,
        #[serde(default)]
        events: Vec<String>,
        secret: String,
    },
    BudgetRaise {
        budget: burnrate_core::BudgetId,
        name: String,
        amount: String,
        currency: String,
        thresholds: Vec<u32>,
        forecast_alert: bool,
    },
    /// A new source with its credential (a provider's admin key, a database's password).
    SourceCreate {
        kind: String,
        name: String,
        /// The non-secret settings, as stored.
        config: String,
        secret: String,
        /// What the audit entry says of it (no secret).
        details: serde_json::Value,
    },
    /// A source's credential replaced (for AWS with its new access key id, in `config`), or sent
    /// somewhere else (a new base URL in `config`, with the credential entered again: S23).
    SourceRotate {
        source: burnrate_core::SourceId,
        name: String,
        secret: String,
        #[serde(default)]
        config: Option<String>,
        /// Where the credential is sent, before and after, when that changes.
        #[serde(default)]
        destination: Option<(Option<String>, Option<String>)>,
    },
    /// Fewer changes sent for approval: itself always approved by another admin, or four eyes
    /// could be switched off by one.
    ApprovalPolicy { actions: Vec<String> },
    /// The credential's id and password were shown to the requester; this holds its verifier.
    SqlCredentialCreate { id: SqlCredentialId, name: String, verifier: String },
    /// A member made admin or owner.
    MemberPromote { user: Uuid, from: Role, to: Role },
    /// Prices of the organization's own for a provider's model, checked when asked.
    PriceOverride {
        provider: String,
        model: String,
        effective_from: chrono::NaiveDate,
        effective_to: Option<chrono::NaiveDate>,
        discount_percent: Option<String>,
        /// `{"input_mtok": "2.5", …}`.
        rates: Option<String>,
        note: String,
    },
    /// One of the organization's own prices removed: usage is priced by the catalogue again.
    PriceOverrideRemove {
        id: Uuid,
        /// `anthropic/claude-sonnet-4-5 from 2026-11-15`, for approvers.
        what: String,
    },
}

impl Change {
    /// The name the organization's approval policy lists.
    pub fn action(&self) -> &'static str {
        match self {
            Change::WebhookCreate { .. } => "webhook_create",
            Change::BudgetRaise { .. } => "budget_raise",
            Change::SqlCredentialCreate { .. } => "sql_credential_create",
            Change::SourceCreate { .. } | Change::SourceRotate { .. } => "source_credentials",
            Change::ApprovalPolicy { .. } => policy::APPROVAL_POLICY,
            Change::MemberPromote { .. } => "member_promote",
            Change::PriceOverride { .. } | Change::PriceOverrideRemove { .. } => "price_override",
        }
    }

    /// The audit entry's action when the change is applied.
    fn audit_action(&self) -> AuditAction {
        match self {
            Change::WebhookCreate { .. } => AuditAction::WebhookCreated,
            Change::BudgetRaise { .. } => AuditAction::BudgetUpdated,
            Change::SqlCredentialCreate { .. } => AuditAction::SqlCredentialCreated,
            Change::SourceCreate { .. } => AuditAction::SourceCreated,
            Change::SourceRotate { .. } => AuditAction::SourceCredentialRotated,
            Change::ApprovalPolicy { .. } => AuditAction::OrgSettingsChanged,
            Change::MemberPromote { .. } => AuditAction::MemberRoleChanged,
            Change::PriceOverride { .. } => AuditAction::PriceOverrideCreated,
            Change::PriceOverrideRemove { .. } => AuditAction::PriceOverrideRemoved,
        }
    }

    fn target_type(&self) -> &'static str {
        match self {
            Change::WebhookCreate { .. } => "webhook",
            Change::BudgetRaise { .. } => "budget",
            Change::SqlCredentialCreate { .. } => "sql_credential",
            Change::SourceCreate { .. } | Change::SourceRotate { .. } => "source",
            Change::ApprovalPolicy { .. } => "organization",
            Change::MemberPromote { .. } => "user",
            Change::PriceOverride { .. } | Change::PriceOverrideRemove { .. } => "price_override",
        }
    }

    /// What approvers (admins) see: the change in words and values, never the secret.
    fn summary(&self, before: Option<serde_json::Value>) -> serde_json::Value {
        match self {
            Change::WebhookCreate { url, description, slack, events, .. } => json!({
                "text": format!("Add the webhook destination {url}"),
                "after": { "url": url, "description": description, "slack": slack, "events": events },
            }),
            Change::SourceCreate { kind, name, details, .. } => json!({
                "text": format!("Connect the {kind} source {name}"),
                "after": details,
            }),
            Change::ApprovalPolicy { actions } => json!({
                "text": format!("Send only these changes for approval: {}", if actions.is_empty() { "none".to_owned() } else { actions.join(", ") }),
                "before": before,
                "after": { "approval_actions": actions },
            }),
            Change::SourceRotate { name, destination: None, .. } => json!({
                "text": format!("Replace the credential of source {name}"),
            }),
            Change::SourceRotate { name, destination: Some((from, to)), .. } => json!({
                "text": format!(
                    "Send the credential of source {name} to {} instead of {}",
                    to.as_deref().unwrap_or("the provider's own API"),
                    from.as_deref().unwrap_or("the provider's own API"),
                ),
                "before": { "base_url": from },
                "after": { "base_url": to },
            }),
            Change::SqlCredentialCreate { id, name, .. } => json!({
                "text": format!("Create the SQL credential {name} (user {id})"),
                "after": { "name": name, "user": id },
            }),
            Change::BudgetRaise { name, amount, currency, thresholds, forecast_alert, .. } => json!({
                "text": format!("Change budget {name} to {amount} {currency}, alerts at {thresholds:?} %"),
                "before": before,
                "after": { "amount": amount, "currency": currency, "thresholds": thresholds, "forecast_alert": forecast_alert },
            }),
            Change::MemberPromote { user, from, to } => json!({
                "text": format!("Make member {} {to} (now {from})", &user.to_string()[..8]),
                "before": { "user": user, "role": from },
                "after": { "user": user, "role": to },
            }),
            Change::PriceOverrideRemove { id, what } => json!({
                "text": format!("Remove the organization's own price of {what}: the catalogue prices it again"),
                "before": before,
                "after": { "removed": id },
            }),
            Change::PriceOverride { provider, model, effective_from, effective_to, discount_percent, rates, note } => {
                let what = match (discount_percent, rates) {
                    (Some(p), _) => format!("{p}% off the catalogue's price"),
                    (_, Some(r)) => format!("its own rates {r}"),
                    _ => String::new(),
                };
                let days = match effective_to {
                    Some(to) => format!("from {effective_from} through {to}"),
                    None => format!("from {effective_from}"),
                };
                json!({
                    "text": format!("Price {provider}/{model} {days} at {what}"),
                    "after": { "provider": provider, "model": model, "effective_from": effective_from,
                               "effective_to": effective_to, "discount_percent": discount_percent,
                               "rates": rates, "note": note },
                })
            }
        }
    }

    /// The summary as events carry it to webhook destinations, which people who are not admins
    /// may read: a destination is named by its host only (S29).
    fn event_summary(&self, summary: &serde_json::Value) -> serde_json::Value {
        match self {
            Change::WebhookCreate { url, description, slack, events, .. } => {
                let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
                json!({
                    "text": format!("Add a webhook destination on {host}"),
                    "after": { "host": host, "description": description, "slack": slack, "events": events },
                })
            }
            _ => summary.clone(),
        }
    }

    /// Applies the change for `requested_by` in `tx`; returns the id of what it made or changed.
    /// A change the world has overtaken (its budget removed) is `NotFound` or `Conflict`.
    async fn apply(&self, app: &App, tx: &mut TenantTx, requested_by: UserId) -> Result<Uuid> {
        match self {
            Change::WebhookCreate { url, description, slack, events, secret } => {
                let new = NewWebhook { url, description, slack: *slack, events, secret, created_by: requested_by };
                Ok(tx.create_webhook(&app.vault, &new).await?.as_uuid())
            }
            Change::BudgetRaise { budget, amount, currency, thresholds, forecast_alert, .. } => {
                let currency = Currency::parse(currency).map_err(Error::internal)?;
                let (amount, _) = Money::parse(amount, currency).map_err(Error::internal)?;
                let thresholds = Thresholds::new(thresholds.clone()).map_err(Error::internal)?;
                if !tx.update_budget(*budget, amount, &thresholds, *forecast_alert).await? {
                    return Err(Error::Conflict("the budget was removed or changed currency since".into()));
                }
                Ok(budget.as_uuid())
            }
            Change::SourceCreate { kind, name, config, secret, .. } => {
                let new = burnrate_store::NewSource { kind, name, config, secret };
                Ok(tx.create_source(&app.vault, &new).await?.as_uuid())
            }
            Change::ApprovalPolicy { actions } => {
                tx.set_approval_actions(actions).await?;
                Ok(tx.scope().org_id().as_uuid())
            }
            Change::SourceRotate { source, secret, config, .. } => {
                if !tx.rotate_source_secret(&app.vault, *source, secret).await? {
                    return Err(Error::Conflict("the source was removed since".into()));
                }
                if let Some(config) = config {
                    tx.set_source_config(*source, config).await?;
                }
                Ok(source.as_uuid())
            }
            Change::SqlCredentialCreate { id, name, verifier } => {
                Ok(tx.create_sql_credential(*id, name, verifier, requested_by).await?.as_uuid())
            }
            Change::PriceOverride { provider, model, effective_from, effective_to, discount_percent, rates, note } => {
                let new = burnrate_store::NewPriceOverride {
                    provider,
                    model,
                    effective_from: *effective_from,
                    effective_to: *effective_to,
                    discount_percent: discount_percent.as_deref(),
                    rates: rates.as_deref(),
                    note,
                    created_by: requested_by.as_uuid(),
                };
                Ok(tx.create_price_override(&new).await?)
            }
            Change::PriceOverrideRemove { id, .. } => match tx.delete_price_override(*id).await? {
                true => Ok(*id),
                false => Err(Error::Conflict("the price was removed since".into())),
            },
            Change::MemberPromote { user, from, to } => {
                let user = UserId::from_uuid(*user);
                if tx.member_role(user).await? != Some(*from) {
                    return Err(Error::Conflict("the member left or their role changed since".into()));
                }
                tx.set_member_role(user, *to).await?;
                Ok(user.as_uuid())
            }
        }
    }
}

/// What became of a submitted change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Applied now: the id of what it made or changed.
    Applied(Uuid),
    /// Waiting for another admin: the request's id.
    Queued(Uuid),
}

impl App {
    /// Applies `change` now, or queues it for another admin's approval, as the organization's
    /// policy says ([`policy::route`]). `before` is what it replaces, for the summary.
    pub async fn submit(&self, actor: &Actor, change: Change, before: Option<serde_json::Value>) -> Result<Submitted> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let route = policy::route(&mut tx, change.action(), Utc::now()).await?;
        let summary = change.summary(before);
        if route != Route::Queue {
            let id = change.apply(self, &mut tx, actor.member).await?;
            let mut details = match &change {
                // A source's entry keeps the shape it always had.
                Change::SourceCreate { details, .. } => details.clone(),
                _ => json!({ "change": summary }),
            };
            if route == Route::ApplyAsSoleAdmin {
                details["approval"] = json!("applied without a second approver (sole admin)");
            }
            tx.audit(actor.entry(change.audit_action(), change.target_type(), id.to_string(), details)).await?;
            tx.commit().await?;
            return Ok(Submitted::Applied(id));
        }
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(&change).map_err(Error::internal)?);
        let id = tx
            .create_approval_request(
                &self.vault,
                change.action(),
                &summary,
                &plain,
                actor.member,
                Utc::now() + policy::APPROVAL_WINDOW,
            )
            .await?;
        tx.audit(actor.entry(
            AuditAction::ApprovalRequested,
            "approval_request",
            id.to_string(),
            json!({ "change": summary }),
        ))
        .await?;
        // Every other admin hears of it.
        let link = self.link("/approvals");
        for admin in
            tx.members(&self.vault).await?.into_iter().filter(|m| m.role.is_admin() && m.user_id != actor.member)
        {
            let body = format!(
                "A change waits for your approval:\n\n  {}\n\nApprove or reject it: {link}\nIt expires in 7 days.\n",
                summary["text"].as_str().unwrap_or_default()
            );
            let mail = OutboxMessage {
                to: admin.email.as_str().to_owned(),
                subject: "[burnrate] A change waits for your approval".into(),
                body,
                org: Some(actor.scope.org_id().as_uuid()),
            };
            tx.enqueue_mail(&self.vault, &mail).await?;
        }
        // And every webhook destination: an `approval.requested` event, without the change's secret.
        let webhooks = tx.webhooks().await?;
        let shown = change.event_summary(&summary);
        let event = burnrate_notify::delivery::Event {
            event_type: "approval.requested",
            timestamp: Utc::now(),
            data: json!({
                "organization_id": actor.scope.org_id().as_uuid(),
                "approval_id": id,
                "action": change.action(),
                "summary": shown,
                "requested_by": actor.member,
                "links": { "approvals": link },
            }),
            text: format!(
                "{} — waiting for approval <{link}|Open approvals>",
                shown["text"].as_str().unwrap_or_default()
            ),
        };
        burnrate_notify::delivery::queue_to_all(&mut tx, actor.scope, &webhooks, &event, Utc::now().timestamp_millis())
            .await?;
        tx.commit().await?;
        self.mailer.wake();
        self.store.jobs_queued();
        Ok(Submitted::Queued(id))
    }

    /// Approves (applying the change) or rejects a request. The requester can never decide their
    /// own; a request is decided once, not after it expired, and never once its requester is no
    /// longer an admin (it is withdrawn then).
    pub async fn decide(
        &self,
        actor: &Actor,
        id: Uuid,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<ApprovalRequest> {
        actor.require_admin()?;
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if comment.is_some_and(|c| c.chars().count() > 1000) {
            return Err(Error::invalid("comment", "comment: at most 1000 characters"));
        }
        let mut tx = self.store.tenant(actor.scope).await?;
        let request = tx.approval_request(id).await?.ok_or(Error::NotFound)?;
        if request.requested_by == actor.member {
            return Err(Error::Forbidden("You asked for this change: another admin must approve or reject it.".into()));
        }
        let now = Utc::now();
        if !request.is_open(now) {
            return Err(Error::Conflict(closed_reason(&request)));
        }
        if !tx.member_role(request.requested_by).await?.is_some_and(Role::is_admin) {
            // Left or demoted since: a request nobody still entitled stands behind is withdrawn.
            drop(tx);
            self.withdraw_requests_of(actor, request.requested_by, "its requester is no longer an admin").await?;
            return Err(Error::Conflict(
                "The member who asked for this is no longer an admin, so it cannot be approved; it was withdrawn."
                    .into(),
            ));
        }
        let change: Option<Change> = if approve {
            let plain = tx.open_approval_change(&self.vault, id).await?;
            let change: Change =
                serde_json::from_slice(&plain).map_err(|e| Error::internal(format!("request {id}: {e}")))?;
            if let Change::MemberPromote { to, .. } = &change {
                policy::require_may_grant(actor, *to)?;
            }
            Some(change)
        } else {
            None
        };
        let decision = if approve { ApprovalState::Approved } else { ApprovalState::Rejected };
        if !tx.decide_approval(id, decision, actor.member, comment, now).await? {
            return Err(Error::Conflict("Another admin decided this request a moment ago.".into()));
        }
        let target = id.to_string();
        match change {
            Some(change) => match change.apply(self, &mut tx, request.requested_by).await {
                Ok(made) => {
                    tx.finish_approval(
                        id,
                        ApprovalState::Approved,
                        &format!("applied: {} {made}", change.target_type()),
                    )
                    .await?;
                    let summary: serde_json::Value = serde_json::from_str(&request.summary).unwrap_or_default();
                    let details =
                        json!({ "change": summary, "requested_by": request.requested_by, "comment": comment });
                    tx.audit(actor.entry(AuditAction::ApprovalApproved, "approval_request", target.clone(), details))
                        .await?;
                    tx.audit(actor.entry(
                        change.audit_action(),
                        change.target_type(),
                        made.to_string(),
                        json!({ "approval": id, "change": summary }),
                    ))
                    .await?;
                }
                Err(Error::NotFound | Error::Conflict(_)) => {
                    let why = "the change could no longer be applied: what it changes was removed or changed since";
                    tx.finish_approval(id, ApprovalState::Failed, why).await?;
                    tx.audit(actor.entry(
                        AuditAction::ApprovalFailed,
                        "approval_request",
                        target.clone(),
                        json!({ "reason": why }),
                    ))
                    .await?;
                }
                Err(e) => return Err(e),
            },
            None => {
                tx.audit(actor.entry(
                    AuditAction::ApprovalRejected,
                    "approval_request",
                    target.clone(),
                    json!({ "comment": comment }),
                ))
                .await?;
            }
        }
        let decided = tx.approval_request(id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(decided)
    }

    /// Withdraws the pending requests of `user`, each audited, in its own transaction.
    async fn withdraw_requests_of(&self, actor: &Actor, user: UserId, why: &str) -> Result<()> {
        let mut tx = self.store.tenant(actor.scope).await?;
        withdraw_requests(&mut tx, actor, user, why).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Withdraws `user`'s pending requests in `tx`, one audit entry each; returns their ids.
pub(crate) async fn withdraw_requests(tx: &mut TenantTx, actor: &Actor, user: UserId, why: &str) -> Result<Vec<Uuid>> {
    let ids = tx.withdraw_approval_requests_of(user, why).await?;
    for id in &ids {
        tx.audit(actor.entry(
            AuditAction::ApprovalWithdrawn,
            "approval_request",
            id.to_string(),
            json!({ "reason": why }),
        ))
        .await?;
    }
    Ok(ids)
}

fn closed_reason(r: &ApprovalRequest) -> String {
    match r.state {
        ApprovalState::Pending => {
            format!("This request expired on {}; ask for the change again.", r.expires_at.format("%Y-%m-%d %H:%M UTC"))
        }
        other => format!("This request was {} already.", other.as_str()),
    }
}

/// Requests a listing shows at most, newest first.
const REQUESTS_SHOWN: i64 = 200;

impl App {
    /// The organization's approval requests, newest first.
    pub async fn approval_requests(&self, actor: &Actor) -> Result<Vec<ApprovalRequest>> {
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let list = tx.approval_requests(REQUESTS_SHOWN).await?;
        tx.commit().await?;
        Ok(list)
    }

    /// The queue as an admin sees it: the requests, newest first, and whether the organization's
    /// changes apply at once for want of a second admin.
    pub async fn approval_queue(&self, actor: &Actor) -> Result<(Vec<ApprovalRequest>, bool)> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let list = tx.approval_requests(REQUESTS_SHOWN).await?;
        let sole_admin = policy::sole_admin_shortcut(&mut tx, Utc::now()).await?;
        tx.commit().await?;
        Ok((list, sole_admin))
    }

    pub async fn approval_request(&self, actor: &Actor, id: Uuid) -> Result<ApprovalRequest> {
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let request = tx.approval_request(id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(request)
    }
}

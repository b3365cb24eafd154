//! The approval queue (S17): `/approvals` and `/api/v1/approvals`.
//!
//! A sensitive change — by default raising a budget or its percentages, a new webhook destination,
//! new provider credentials, a new SQL credential — goes through [`submit`]: applied at once when
//! the organization does not ask for approval of it, or has a single admin (audited as applied
//! without a second approver); otherwise queued as a request (the change sealed, a summary without
//! secrets for approvers) that another admin approves or rejects. Approval applies the change in
//! the transaction that decides it, so it happens once, or not at all when the world changed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiScope, Currency, Money, Thresholds, UserId};
use burnrate_store::{ApprovalRequest, ApprovalState, NewWebhook, OutboxMessage, TenantTx};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::openapi::{BodyRefusals, Conflicting, Missing, Refusals};
use super::parse_id;
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{ApprovalRow, ApprovalsPage, Nav, render, when};
use crate::security::CsrfForm;

/// The changes an organization may send for approval (its policy lists some of these; all by
/// default).
pub(crate) const APPROVABLE: [&str; 4] =
    ["budget_raise", "source_credentials", "webhook_create", "sql_credential_create"];

/// How long a request waits for a decision.
const EXPIRY: chrono::Duration = chrono::Duration::days(7);

/// A change that may wait for a second admin. Held sealed in its request: it may carry a secret.
// No `Debug`: a change may hold a secret, and nothing should print it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(crate) enum Change {
    WebhookCreate {
        url: String,
        description: String,
        slack: bool,
        #[serde(default)]
        events: Vec<String>,
        secret: String,
    },
    BudgetRaise {
        budget: Uuid,
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
    /// A source's credential replaced (for AWS with its new access key id, in `config`).
    SourceRotate {
        source: Uuid,
        name: String,
        secret: String,
        #[serde(default)]
        config: Option<String>,
    },
    /// Fewer changes sent for approval: itself always approved by another admin, or four eyes
    /// could be switched off by one.
    ApprovalPolicy { actions: Vec<String> },
    /// The credential's id and password were shown to the requester; this holds its verifier.
    SqlCredentialCreate { id: burnrate_core::SqlCredentialId, name: String, verifier: String },
}

impl Change {
    /// The name the organization's approval policy lists.
    pub fn action(&self) -> &'static str {
        match self {
            Change::WebhookCreate { .. } => "webhook_create",
            Change::BudgetRaise { .. } => "budget_raise",
            Change::SqlCredentialCreate { .. } => "sql_credential_create",
            Change::SourceCreate { .. } | Change::SourceRotate { .. } => "source_credentials",
            Change::ApprovalPolicy { .. } => "approval_policy",
        }
    }

    /// The audit entry's action when the change is applied.
    fn audit_action(&self) -> &'static str {
        match self {
            Change::WebhookCreate { .. } => "webhook_created",
            Change::BudgetRaise { .. } => "budget_updated",
            Change::SqlCredentialCreate { .. } => "sql_credential_created",
            Change::SourceCreate { .. } => "source_created",
            Change::SourceRotate { .. } => "source_credential_rotated",
            Change::ApprovalPolicy { .. } => "org_settings_changed",
        }
    }

    /// What approvers see: the change in words and values, never the secret.
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
            Change::SourceRotate { name, .. } => json!({
                "text": format!("Replace the credential of source {name}"),
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
        }
    }

    /// Applies the change for `requested_by` in `tx`; returns the id of what it made or changed.
    /// A change the world has overtaken (its budget removed) is `NotFound` or `Conflict`.
    async fn apply(&self, state: &AppState, tx: &mut TenantTx, requested_by: UserId) -> Result<Uuid, AppError> {
        match self {
            Change::WebhookCreate { url, description, slack, events, secret } => {
                let new = NewWebhook { url, description, slack: *slack, events, secret, created_by: requested_by };
                Ok(tx.create_webhook(&state.vault, &new).await?)
            }
            Change::BudgetRaise { budget, amount, currency, thresholds, forecast_alert, .. } => {
                let currency = Currency::parse(currency).map_err(|e| AppError::Internal(e.to_string()))?;
                let (amount, _) = Money::parse(amount, currency).map_err(|e| AppError::Internal(e.to_string()))?;
                let thresholds = Thresholds::new(thresholds.clone()).map_err(|e| AppError::Internal(e.to_string()))?;
                if !tx.update_budget(*budget, amount, &thresholds, *forecast_alert).await? {
                    return Err(AppError::Conflict("the budget was removed or changed currency since".into()));
                }
                Ok(*budget)
            }
            Change::SourceCreate { kind, name, config, secret, .. } => {
                let new = burnrate_store::NewSource { kind, name, config, secret };
                Ok(tx.create_source(&state.vault, &new).await?)
            }
            Change::ApprovalPolicy { actions } => {
                tx.set_approval_actions(actions).await?;
                Ok(tx.scope().org_id().as_uuid())
            }
            Change::SourceRotate { source, secret, config, .. } => {
                if !tx.rotate_source_secret(&state.vault, *source, secret).await? {
                    return Err(AppError::Conflict("the source was removed since".into()));
                }
                if let Some(config) = config {
                    tx.set_source_config(*source, config).await?;
                }
                Ok(*source)
            }
            Change::SqlCredentialCreate { id, name, verifier } => {
                Ok(tx.create_sql_credential(*id, name, verifier, requested_by).await?.as_uuid())
            }
        }
    }
}

/// What became of a submitted change.
pub(crate) enum Submitted {
    /// Applied now: the id of what it made or changed.
    Applied(Uuid),
    /// Waiting for another admin: the request's id.
    Queued(Uuid),
}

/// Applies `change` now, or queues it for another admin's approval, as the organization's policy
/// and its number of admins say. `audit` names the action's own audit entry (written when the
/// change is applied, here or on approval) and `before` what it replaces, for the summary.
pub(crate) async fn submit(
    state: &AppState,
    caller: &impl Caller,
    change: Change,
    before: Option<serde_json::Value>,
) -> Result<Submitted, AppError> {
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let needs_approval = matches!(change, Change::ApprovalPolicy { .. })
        || tx.approval_actions().await?.iter().any(|a| a == change.action());
    let summary = change.summary(before);
    if !needs_approval || tx.count_admins().await? < 2 {
        let id = change.apply(state, &mut tx, caller.member()).await?;
        let mut details = match &change {
            // A source's entry keeps the shape it always had.
            Change::SourceCreate { details, .. } => details.clone(),
            _ => json!({ "change": summary }),
        };
        if needs_approval {
            details["approval"] = json!("applied without a second approver (sole admin)");
        }
        tx.audit(caller.entry(change.audit_action(), target_type(&change), id.to_string(), details)).await?;
        tx.commit().await?;
        return Ok(Submitted::Applied(id));
    }
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(&change).map_err(|e| AppError::Internal(e.to_string()))?);
    let id = tx
        .create_approval_request(&state.vault, change.action(), &summary, &plain, caller.member(), Utc::now() + EXPIRY)
        .await?;
    tx.audit(caller.entry("approval_requested", "approval_request", id.to_string(), json!({ "change": summary })))
        .await?;
    // Every other admin hears of it.
    let link = state.config.link("/approvals");
    for admin in
        tx.members(&state.vault).await?.into_iter().filter(|m| m.role.is_admin() && m.user_id != caller.member())
    {
        let body = format!(
            "A change waits for your approval:\n\n  {}\n\nApprove or reject it: {link}\nIt expires in 7 days.\n",
            summary["text"].as_str().unwrap_or_default()
        );
        let mail = OutboxMessage {
            to: admin.email.as_str().to_owned(),
            subject: "[burnrate] A change waits for your approval".into(),
            body,
            org: Some(caller.scope().org_id().as_uuid()),
        };
        tx.enqueue_mail(&state.vault, &mail).await?;
    }
    // And every webhook destination: an `approval.requested` event, without the change's secret.
    let webhooks = tx.webhooks().await?;
    let event = burnrate_notify::delivery::Event {
        event_type: "approval.requested",
        timestamp: Utc::now(),
        data: json!({
            "organization_id": caller.scope().org_id().as_uuid(),
            "approval_id": id,
            "action": change.action(),
            "summary": summary,
            "requested_by": caller.member(),
            "links": { "approvals": link },
        }),
        text: format!(
            "{} — waiting for approval <{link}|Open approvals>",
            summary["text"].as_str().unwrap_or_default()
        ),
    };
    burnrate_notify::delivery::queue_to_all(&mut tx, caller.scope(), &webhooks, &event, Utc::now().timestamp_millis())
        .await?;
    tx.commit().await?;
    state.mailer.wake();
    state.store.jobs_queued();
    Ok(Submitted::Queued(id))
}

fn target_type(change: &Change) -> &'static str {
    match change {
        Change::WebhookCreate { .. } => "webhook",
        Change::BudgetRaise { .. } => "budget",
        Change::SqlCredentialCreate { .. } => "sql_credential",
        Change::SourceCreate { .. } | Change::SourceRotate { .. } => "source",
        Change::ApprovalPolicy { .. } => "organization",
    }
}

/// A change that went to the queue, with what was made for it at once (a secret shown now, the
/// one time it is shown; nothing for most changes).
#[derive(Serialize, ToSchema)]
pub struct Queued<T> {
    /// The approval request to follow.
    approval_id: Uuid,
    /// `pending`.
    state: &'static str,
    url: String,
    #[serde(flatten)]
    made: T,
}

/// Nothing more to show for a queued change.
#[derive(Serialize, ToSchema)]
pub struct Nothing {}

/// The answer `202` to a change that went to the queue.
pub type QueuedView = Queued<Nothing>;

/// The answer to a change that went to the queue: `202` with where to follow it.
pub(crate) fn queued<T: Serialize>(state: &AppState, id: Uuid, made: T) -> Response {
    let url = state.config.link(&format!("/api/v1/approvals/{id}"));
    (StatusCode::ACCEPTED, Json(Queued { approval_id: id, state: "pending", url, made })).into_response()
}

/// Approves (applying the change) or rejects a request. The requester can never decide their own;
/// a request is decided once, and not after it expired.
async fn decide(
    state: &AppState,
    caller: &impl Caller,
    id: Uuid,
    approve: bool,
    comment: Option<&str>,
) -> Result<ApprovalRequest, AppError> {
    caller.require_admin()?;
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > 1000) {
        return Err(AppError::Validation("comment: at most 1000 characters".into()));
    }
    let mut tx = state.store.tenant(caller.scope()).await?;
    let request = tx.approval_request(id).await?.ok_or(AppError::NotFound)?;
    if request.requested_by == caller.member() {
        return Err(AppError::Forbidden("You asked for this change: another admin must approve or reject it.".into()));
    }
    let now = Utc::now();
    if !request.is_open(now) {
        return Err(AppError::Conflict(closed_reason(&request)));
    }
    let decision = if approve { ApprovalState::Approved } else { ApprovalState::Rejected };
    if !tx.decide_approval(id, decision, caller.member(), comment, now).await? {
        return Err(AppError::Conflict("Another admin decided this request a moment ago.".into()));
    }
    let target = id.to_string();
    if approve {
        let plain = tx.open_approval_change(&state.vault, id).await?;
        let change: Change =
            serde_json::from_slice(&plain).map_err(|e| AppError::Internal(format!("request {id}: {e}")))?;
        match change.apply(state, &mut tx, request.requested_by).await {
            Ok(made) => {
                tx.finish_approval(id, ApprovalState::Approved, &format!("applied: {} {made}", target_type(&change)))
                    .await?;
                let details = json!({ "change": serde_json::from_str::<serde_json::Value>(&request.summary).unwrap_or_default(),
                                      "requested_by": request.requested_by, "comment": comment });
                tx.audit(caller.entry("approval_approved", "approval_request", target.clone(), details)).await?;
                tx.audit(caller.entry(
                    change.audit_action(),
                    target_type(&change),
                    made.to_string(),
                    json!({ "approval": id }),
                ))
                .await?;
            }
            Err(AppError::NotFound | AppError::Conflict(_)) => {
                let why = "the change could no longer be applied: what it changes was removed or changed since";
                tx.finish_approval(id, ApprovalState::Failed, why).await?;
                tx.audit(caller.entry("approval_failed", "approval_request", target.clone(), json!({ "reason": why })))
                    .await?;
            }
            Err(e) => return Err(e),
        }
    } else {
        tx.audit(caller.entry("approval_rejected", "approval_request", target.clone(), json!({ "comment": comment })))
            .await?;
    }
    let decided = tx.approval_request(id).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(decided)
}

fn closed_reason(r: &ApprovalRequest) -> String {
    match r.state {
        ApprovalState::Pending => format!("This request expired on {}; ask for the change again.", when(r.expires_at)),
        other => format!("This request was {} already.", other.as_str()),
    }
}

/// A request's state as people read it (`expired` is a pending request past its time).
fn shown_state(r: &ApprovalRequest) -> &'static str {
    if r.state == ApprovalState::Pending && Utc::now() >= r.expires_at { "expired" } else { r.state.as_str() }
}

/// An approval request.
#[derive(Serialize, ToSchema)]
pub struct ApprovalView {
    id: Uuid,
    /// `budget_raise`, `webhook_create`, `source_credentials`, `sql_credential_create` or
    /// `approval_policy`.
    action: String,
    /// pending, approved, rejected, failed or expired.
    state: &'static str,
    /// The change in words (`text`) with before and after values, without secrets.
    #[schema(value_type = Object)]
    summary: serde_json::Value,
    requested_by: Uuid,
    requested_at: chrono::DateTime<Utc>,
    expires_at: chrono::DateTime<Utc>,
    decided_by: Option<Uuid>,
    decided_at: Option<chrono::DateTime<Utc>>,
    comment: Option<String>,
    /// What applying it did, or why it could not.
    outcome: Option<String>,
}

impl From<&ApprovalRequest> for ApprovalView {
    fn from(r: &ApprovalRequest) -> Self {
        ApprovalView {
            id: r.id,
            action: r.action.clone(),
            state: shown_state(r),
            summary: serde_json::from_str(&r.summary).unwrap_or_else(|_| json!({})),
            requested_by: r.requested_by.as_uuid(),
            requested_at: r.requested_at,
            expires_at: r.expires_at,
            decided_by: r.decided_by.map(|u| u.as_uuid()),
            decided_at: r.decided_at,
            comment: r.comment.clone(),
            outcome: r.outcome.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalsView {
    approvals: Vec<ApprovalView>,
}

/// The organization's approval requests, newest first (admins).
#[utoipa::path(get, path = "/approvals", tag = "approvals", responses((status = 200, body = ApprovalsView), Refusals))]
pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let list = tx.approval_requests(200).await?;
    tx.commit().await?;
    Ok(Json(ApprovalsView { approvals: list.iter().map(ApprovalView::from).collect() }).into_response())
}

#[utoipa::path(get, path = "/approvals/{id}", tag = "approvals",
    params(("id" = Uuid, Path, description = "The request's id")),
    responses((status = 200, body = ApprovalView), Refusals, Missing))]
pub async fn api_get(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let request = tx.approval_request(parse_id(&id)?).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(Json(ApprovalView::from(&request)).into_response())
}

/// A decision's optional comment; the body itself may be left out.
#[derive(Default, Deserialize, ToSchema)]
pub struct DecisionBody {
    #[serde(default)]
    comment: Option<String>,
}

/// Decides by API; the body (`{"comment": "…"}`) is optional.
async fn api_decide(
    state: AppState,
    caller: ApiCaller,
    id: String,
    body: bytes::Bytes,
    approve: bool,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let body: DecisionBody = if body.iter().all(u8::is_ascii_whitespace) {
        DecisionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| AppError::Validation(format!("body: {e}")))?
    };
    let comment = body.comment;
    let decided = decide(&state, &caller, parse_id(&id)?, approve, comment.as_deref()).await?;
    Ok(Json(ApprovalView::from(&decided)).into_response())
}

/// Approves a request and applies its change (another admin than the requester). The answer
/// says whether it was applied (`approved`) or could no longer be (`failed`).
#[utoipa::path(post, path = "/approvals/{id}/approve", tag = "approvals",
    params(("id" = Uuid, Path, description = "The request's id")),
    request_body(content = Option<DecisionBody>, description = "An optional comment"),
    responses((status = 200, body = ApprovalView), Refusals, BodyRefusals, Missing, Conflicting))]
pub async fn api_approve(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    api_decide(state, caller, id, body, true).await
}

#[utoipa::path(post, path = "/approvals/{id}/reject", tag = "approvals",
    params(("id" = Uuid, Path, description = "The request's id")),
    request_body(content = Option<DecisionBody>, description = "An optional comment"),
    responses((status = 200, body = ApprovalView), Refusals, BodyRefusals, Missing, Conflicting))]
pub async fn api_reject(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    api_decide(state, caller, id, body, false).await
}

async fn page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    who.require_admin()?;
    let mut tx = state.store.tenant(who.scope).await?;
    let list = tx.approval_requests(200).await?;
    let sole_admin = tx.count_admins().await? < 2;
    tx.commit().await?;
    let me = who.member();
    let rows = list
        .iter()
        .map(|r| {
            let summary: serde_json::Value = serde_json::from_str(&r.summary).unwrap_or_default();
            ApprovalRow {
                id: r.id.to_string(),
                text: summary["text"].as_str().unwrap_or_default().to_owned(),
                before: summary.get("before").filter(|b| !b.is_null()).map(|b| b.to_string()).unwrap_or_default(),
                after: summary.get("after").map(|a| a.to_string()).unwrap_or_default(),
                state: shown_state(r).to_owned(),
                requested: when(r.requested_at),
                expires: when(r.expires_at),
                mine: r.requested_by == me,
                open: r.is_open(Utc::now()),
                comment: r.comment.clone().unwrap_or_default(),
                outcome: r.outcome.clone().unwrap_or_default(),
            }
        })
        .collect();
    let status = if error.is_some() { StatusCode::CONFLICT } else { StatusCode::OK };
    let page = ApprovalsPage {
        nav: Some(Nav::new(who, "approvals")),
        csrf: who.csrf.clone(),
        requests: rows,
        sole_admin,
        notice,
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn approvals_page(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    page(&state, &who, None, None).await
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    comment: String,
}

async fn decide_form(
    state: AppState,
    who: Authed,
    id: String,
    comment: String,
    approve: bool,
) -> Result<Response, AppError> {
    match decide(&state, &who, parse_id(&id)?, approve, Some(&comment)).await {
        Ok(r) => {
            let notice = match (approve, r.state) {
                (true, ApprovalState::Failed) => {
                    format!("Approved, but not applied: {}.", r.outcome.unwrap_or_default())
                }
                (true, _) => "Approved and applied.".to_owned(),
                (false, _) => "Rejected.".to_owned(),
            };
            page(&state, &who, Some(notice), None).await
        }
        Err(AppError::Conflict(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn approve_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DecisionForm>,
) -> Result<Response, AppError> {
    decide_form(state, who, id, f.comment, true).await
}

pub async fn reject_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DecisionForm>,
) -> Result<Response, AppError> {
    decide_form(state, who, id, f.comment, false).await
}

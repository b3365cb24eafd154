//! The approval queue (S17): `/approvals` and `/api/v1/approvals`. The rules — what waits,
//! who decides, what applying does — are the application's (`burnrate_app::approvals`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::approvals::{ApprovalRequest, ApprovalState};
use burnrate_core::ApiScope;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::openapi::{BodyRefusals, Conflicting, Missing, Refusals};
use super::parse_id;
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{ApprovalRow, ApprovalsPage, Nav, render, when};
use crate::security::CsrfForm;

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

/// Approves (applying the change) or rejects a request: the application decides.
async fn decide(
    state: &AppState,
    caller: &impl Caller,
    id: Uuid,
    approve: bool,
    comment: Option<&str>,
) -> Result<ApprovalRequest, AppError> {
    Ok(state.app.decide(&caller.actor(), id, approve, comment).await?)
}

/// A request's state as people read it (`expired` is a pending request past its time).
fn shown_state(r: &ApprovalRequest) -> &'static str {
    if r.state == ApprovalState::Pending && Utc::now() >= r.expires_at { "expired" } else { r.state.as_str() }
}

/// An approval request.
#[derive(Serialize, ToSchema)]
pub struct ApprovalView {
    id: Uuid,
    /// `budget_raise`, `webhook_create`, `source_credentials`, `sql_credential_create`,
    /// `member_promote` or `approval_policy`.
    action: String,
    /// pending, approved, rejected, failed, withdrawn or expired.
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
            summary: serde_json::from_str(&r.summary).unwrap_or_else(|_| serde_json::json!({})),
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
    let list = state.app.approval_requests(&caller.actor()).await?;
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
    let request = state.app.approval_request(&caller.actor(), parse_id(&id)?).await?;
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
    let (list, sole_admin) = state.app.approval_queue(&who.actor()).await?;
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

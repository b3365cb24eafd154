//! The approval queue through the JSON API: `/api/v1/approvals`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use burnrate_app::approvals::ApprovalRequest;
use burnrate_core::ApiScope;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{decide, shown_state};
use crate::AppState;
use crate::api::{BodyRefusals, Conflicting, Missing, Refusals};
use crate::auth::{ApiCaller, Caller};
use crate::error::{ApiError, AppError};
use crate::routes::parse_id;

/// An approval request.
#[derive(Serialize, ToSchema)]
pub struct ApprovalView {
    id: Uuid,
    /// `budget_raise`, `webhook_create`, `source_credentials`, `sql_credential_create`,
    /// `member_promote`, `price_override` or `approval_policy`.
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

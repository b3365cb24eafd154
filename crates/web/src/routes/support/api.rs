//! The support access through the JSON API: `/api/v1/support-grants`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use burnrate_app::support::SupportGrantView;
use burnrate_core::ApiScope;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Decision, decide};
use crate::AppState;
use crate::api::{Conflicting, Missing, Refusals};
use crate::auth::{ApiCaller, Caller};
use crate::error::ApiError;
use crate::routes::parse_id;

#[derive(Serialize, ToSchema)]
pub struct SupportGrantsView {
    support_grants: Vec<SupportGrantView>,
}

/// The organization's support grants (S18), newest first: operators' requests, and the access
/// given, active and past.
#[utoipa::path(get, path = "/support-grants", tag = "support access",
    responses((status = 200, body = SupportGrantsView), Refusals))]
pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let grants = state.app.support().org_grants(&caller.actor()).await?.grants;
    let now = Utc::now();
    let support_grants = grants.iter().map(|g| SupportGrantView::new(g, now)).collect();
    Ok(Json(SupportGrantsView { support_grants }).into_response())
}

async fn api_decide(state: AppState, caller: ApiCaller, id: String, decision: Decision) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let grant = decide(&state, &caller, parse_id(&id)?, decision).await?;
    Ok(Json(SupportGrantView::new(&grant, Utc::now())).into_response())
}

/// Consents to an operator's request (admins): access opens once a second operator approves too.
#[utoipa::path(post, path = "/support-grants/{id}/consent", tag = "support access",
    params(("id" = uuid::Uuid, Path, description = "The grant's id")),
    responses((status = 200, body = SupportGrantView), Refusals, Missing, Conflicting))]
pub async fn api_consent(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api_decide(state, caller, id, Decision::Consent).await
}

/// Declines an operator's request (admins).
#[utoipa::path(post, path = "/support-grants/{id}/decline", tag = "support access",
    params(("id" = uuid::Uuid, Path, description = "The grant's id")),
    responses((status = 200, body = SupportGrantView), Refusals, Missing, Conflicting))]
pub async fn api_decline(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api_decide(state, caller, id, Decision::Decline).await
}

/// Ends a grant now, waiting or active (admins).
#[utoipa::path(post, path = "/support-grants/{id}/revoke", tag = "support access",
    params(("id" = uuid::Uuid, Path, description = "The grant's id")),
    responses((status = 200, body = SupportGrantView), Refusals, Missing, Conflicting))]
pub async fn api_revoke(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api_decide(state, caller, id, Decision::Revoke).await
}

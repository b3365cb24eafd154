//! The organization through the JSON API: `/api/v1/notices`, `/api/v1/org`, `/api/v1/spend`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use burnrate_app::organization::OrgSettingsChange;
use burnrate_app::spend::SpendSummary;
use burnrate_core::ApiScope;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::api::{ApiJson, BodyRefusals, Refusals};
use crate::auth::{ApiCaller, Caller as _};
use crate::error::ApiError;

/// The organization of the key.
#[derive(Serialize, ToSchema)]
pub struct OrgView {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
    /// The IANA time zone that budget periods and days follow.
    reporting_time_zone: String,
    /// The kinds of change that wait for a second admin's approval.
    approval_actions: Vec<String>,
    /// How far (percent of the billed cost) a day's bill may differ from its priced usage before
    /// reconciliation calls it a gap; decimal text.
    reconciliation_tolerance_percent: String,
    /// Span attributes promoted to tags of reported requests.
    request_tag_attributes: Vec<String>,
}

#[utoipa::path(get, path = "/org", tag = "organization", responses((status = 200, body = OrgView), Refusals))]
pub async fn org(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let settings = state.app.org_settings(&caller.actor()).await?;
    let view = OrgView {
        id: settings.organization.id.as_uuid(),
        name: settings.organization.name,
        created_at: settings.organization.created_at,
        reporting_time_zone: settings.reporting_time_zone,
        approval_actions: settings.approval_actions,
        reconciliation_tolerance_percent: settings.reconciliation_tolerance_percent,
        request_tag_attributes: settings.request_tag_attributes,
    };
    Ok(Json(view).into_response())
}

/// The organization's settings after a change.
#[derive(Serialize, ToSchema)]
pub struct OrgSettingsView {
    reporting_time_zone: String,
    approval_actions: Vec<String>,
    reconciliation_tolerance_percent: String,
    request_tag_attributes: Vec<String>,
}

/// Changes the organization's settings (admins), audited with what each was before. Sending
/// fewer kinds of change for approval waits for another admin (`202`).
#[utoipa::path(patch, path = "/org", tag = "organization", request_body = OrgSettingsChange,
    responses((status = 200, body = OrgSettingsView), (status = 202, body = crate::api::QueuedView), Refusals, BodyRefusals))]
pub async fn update_org(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<OrgSettingsChange>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let actor = caller.actor();
    if let burnrate_app::Submitted::Queued(request) = state.app.change_org_settings(&actor, body).await? {
        return Ok(crate::api::queued(&state, request, crate::api::Nothing {}));
    }
    let settings = state.app.org_settings(&actor).await?;
    let answer = OrgSettingsView {
        reporting_time_zone: settings.reporting_time_zone,
        approval_actions: settings.approval_actions,
        reconciliation_tolerance_percent: settings.reconciliation_tolerance_percent,
        request_tag_attributes: settings.request_tag_attributes,
    };
    Ok(Json(answer).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct NoticesView {
    notices: Vec<burnrate_app::support::NoticeView>,
}

/// Notices from the instance's operators (such as a change of sub-processors), published in the
/// last half year, newest first.
#[utoipa::path(get, path = "/notices", tag = "organization",
    responses((status = 200, body = NoticesView), crate::api::Refusals))]
pub async fn api_notices(
    State(state): State<AppState>,
    caller: crate::auth::ApiCaller,
) -> Result<Response, crate::error::ApiError> {
    caller.require(ApiScope::Read)?;
    let notices =
        state.app.support().recent_notices().await?.iter().map(burnrate_app::support::NoticeView::from).collect();
    Ok(axum::Json(NoticesView { notices }).into_response())
}

/// The overview's numbers, exact, in the organization's reporting time zone: the last 30 days by
/// day and provider, the month to date per currency beside the same days of the month before and
/// the month-end forecast, this month's top models, projects and API keys, and the week's movers.
#[utoipa::path(get, path = "/spend", tag = "spend",
    responses((status = 200, body = SpendSummary), crate::api::Refusals))]
pub async fn api_spend(
    State(state): State<AppState>,
    caller: crate::auth::ApiCaller,
) -> Result<Response, crate::error::ApiError> {
    caller.require(ApiScope::Read)?;
    let zone = state.app.reporting_zone(&caller.actor()).await?;
    Ok(axum::Json(state.app.spend_summary(&caller.actor(), zone).await?).into_response())
}

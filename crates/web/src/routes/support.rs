//! The organization's side of support access (S18): the requests operators made, consent or
//! decline, and ending a grant at any time — as a page and through `/api/v1/support-grants`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::support::{GrantStatus, Grants, SupportGrant, SupportGrantView};
use burnrate_core::{ApiScope, OperatorId, SupportGrantId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::account::NoFields;
use super::openapi::{Conflicting, Missing, Refusals};
use super::parse_id;
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{GrantRow, Nav, SupportPage, render, when};
use crate::security::CsrfForm;

/// Who looks at a grant, for which actions a row offers.
pub(crate) enum Viewer {
    Org,
    Operator(OperatorId),
}

pub(crate) fn grant_row(
    g: &SupportGrant,
    now: DateTime<Utc>,
    names: &HashMap<OperatorId, String>,
    org_name: String,
    viewer: &Viewer,
) -> GrantRow {
    let status = g.status(now);
    let name = |id: &OperatorId| names.get(id).cloned().unwrap_or_default();
    let consent = match (g.consented_at, g.declined_at) {
        (Some(at), _) => format!("consented {}", when(at)),
        (_, Some(at)) => format!("declined {}", when(at)),
        _ => String::new(),
    };
    let approval =
        g.approved_by.map(|by| format!("approved by {} {}", name(&by), g.approved_at.map(when).unwrap_or_default()));
    let live = status.is_waiting() || status == GrantStatus::Active;
    GrantRow {
        id: g.id.to_string(),
        org_id: g.org_id.to_string(),
        org_name,
        issue: g.issue.clone(),
        hours: g.duration.num_hours(),
        requested_by: name(&g.requested_by),
        requested: when(g.requested_at),
        status: status.as_str().replace('_', " "),
        consent,
        approval: approval.unwrap_or_default(),
        until: if status == GrantStatus::Active { g.expires_at.map(when).unwrap_or_default() } else { String::new() },
        revoked_by: g.revoked_by.clone().unwrap_or_default(),
        mine: matches!(viewer, Viewer::Operator(me) if *me == g.requested_by),
        can_consent: matches!(viewer, Viewer::Org)
            && matches!(status, GrantStatus::AwaitingBoth | GrantStatus::AwaitingConsent),
        can_approve: matches!(viewer, Viewer::Operator(me) if *me != g.requested_by)
            && matches!(status, GrantStatus::AwaitingBoth | GrantStatus::AwaitingApproval),
        can_revoke: live,
        can_open: matches!(viewer, Viewer::Operator(me) if *me == g.requested_by) && status == GrantStatus::Active,
    }
}

async fn page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let Grants { grants, operators } = state.app.support().org_grants(&who.actor()).await?;
    let now = Utc::now();
    let rows = grants.iter().map(|g| grant_row(g, now, &operators, who.org_name.clone(), &Viewer::Org)).collect();
    let status = if error.is_some() { StatusCode::CONFLICT } else { StatusCode::OK };
    let page = SupportPage {
        nav: Some(Nav::new(who, "support")),
        csrf: who.csrf.clone(),
        grants: rows,
        is_admin: who.role.is_admin(),
        notice,
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn support_page(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    page(&state, &who, None, None).await
}

/// What an organization can do to a grant.
#[derive(Clone, Copy)]
enum Decision {
    Consent,
    Decline,
    Revoke,
}

async fn decide(
    state: &AppState,
    caller: &impl Caller,
    id: SupportGrantId,
    decision: Decision,
) -> Result<SupportGrant, AppError> {
    let (support, actor) = (state.app.support(), caller.actor());
    Ok(match decision {
        Decision::Consent => support.consent_to_access(&actor, id).await?,
        Decision::Decline => support.decline_access(&actor, id).await?,
        Decision::Revoke => support.revoke_for_org(&actor, id).await?,
    })
}

async fn decide_form(state: AppState, who: Authed, id: String, decision: Decision) -> Result<Response, AppError> {
    match decide(&state, &who, parse_id(&id)?, decision).await {
        Ok(g) => {
            let notice = match (decision, g.status(Utc::now())) {
                (Decision::Consent, GrantStatus::Active) => format!(
                    "Consent given; a second operator approved already, so access is open until {}.",
                    g.expires_at.map(when).unwrap_or_default()
                ),
                (Decision::Consent, _) => {
                    "Consent given. Access opens once a second operator approves, for the hours shown.".to_owned()
                }
                (Decision::Decline, _) => "Declined: the operator sees nothing.".to_owned(),
                (Decision::Revoke, _) => "Access ended: the operator sees nothing from now on.".to_owned(),
            };
            page(&state, &who, Some(notice), None).await
        }
        Err(AppError::Conflict(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn consent_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    decide_form(state, who, id, Decision::Consent).await
}

pub async fn decline_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    decide_form(state, who, id, Decision::Decline).await
}

pub async fn revoke_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    decide_form(state, who, id, Decision::Revoke).await
}

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

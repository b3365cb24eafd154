//! The JSON API under `/api/v1`, authenticated by API keys (S12). Each endpoint states the scope
//! it needs; the key's effective scope is also capped by its creator's current role.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiKeyId, ApiScope, Role, UserId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{actions, parse_id};
use crate::AppState;
use crate::auth::{ApiCaller, Caller as _};
use crate::error::{ApiError, AppError};

/// A JSON body whose errors answer in the API's error format.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state).await.map(|Json(v)| ApiJson(v)).map_err(|r: JsonRejection| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(AppError::PayloadTooLarge)
            } else {
                ApiError(AppError::Validation(r.body_text()))
            }
        })
    }
}

pub async fn not_found() -> ApiError {
    ApiError(AppError::NotFound)
}

pub async fn org(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let mut tx = state.store.instance().await?;
    let org = tx.org(caller.scope.org_id()).await?.ok_or(AppError::NotFound)?;
    let mut tx = tx.into_tenant(caller.scope).await?;
    let zone = tx.reporting_tz().await?;
    let approval_actions = tx.approval_actions().await?;
    tx.commit().await?;
    Ok(Json(json!({ "id": org.id, "name": org.name, "created_at": org.created_at, "reporting_time_zone": zone,
                    "approval_actions": approval_actions }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSettingsBody {
    /// An IANA time zone name: budget periods and days follow it.
    reporting_time_zone: Option<String>,
    /// The changes that wait for a second admin (S17), from [`super::approvals::APPROVABLE`].
    approval_actions: Option<Vec<String>>,
}

/// Changes the organization's settings (admins), audited with what each was before.
pub async fn update_org(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<OrgSettingsBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let zone = body
        .reporting_time_zone
        .as_deref()
        .map(burnrate_core::ReportingZone::parse)
        .transpose()
        .map_err(|e| AppError::Validation(format!("reporting_{e}")))?;
    if let Some(actions) = &body.approval_actions
        && let Some(unknown) = actions.iter().find(|a| !super::approvals::APPROVABLE.contains(&a.as_str()))
    {
        return Err(AppError::Validation(format!(
            "approval_actions: {unknown:?} is not one of {}",
            super::approvals::APPROVABLE.join(", ")
        ))
        .into());
    }
    let mut tx = state.store.tenant(caller.scope).await?;
    let mut details = serde_json::Map::new();
    if let Some(zone) = zone {
        let before = tx.reporting_tz().await?;
        tx.set_reporting_tz(zone.name()).await?;
        details.insert("reporting_time_zone".into(), json!({ "from": before, "to": zone.name() }));
    }
    // Sending fewer changes for approval needs another admin's approval itself.
    let mut relaxed = None;
    if let Some(actions) = &body.approval_actions {
        let before = tx.approval_actions().await?;
        if before.iter().any(|a| !actions.contains(a)) {
            relaxed = Some((actions.clone(), before));
        } else {
            tx.set_approval_actions(actions).await?;
            details.insert("approval_actions".into(), json!({ "from": before, "to": actions }));
        }
    }
    if !details.is_empty() {
        let target = caller.scope.org_id().to_string();
        tx.audit(caller.entry("org_settings_changed", "organization", target, details.into())).await?;
    }
    tx.commit().await?;
    if let Some((actions, before)) = relaxed {
        let change = super::approvals::Change::ApprovalPolicy { actions };
        let before = json!({ "approval_actions": before });
        if let super::approvals::Submitted::Queued(request) =
            super::approvals::submit(&state, &caller, change, Some(before)).await?
        {
            return Ok(super::approvals::queued(&state, request, json!({})));
        }
    }
    let mut tx = state.store.tenant(caller.scope).await?;
    let answer =
        json!({ "reporting_time_zone": tx.reporting_tz().await?, "approval_actions": tx.approval_actions().await? });
    tx.commit().await?;
    Ok(Json(answer).into_response())
}

pub async fn members(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let mut tx = state.store.tenant(caller.scope).await?;
    let members = tx.members(&state.vault).await?;
    tx.commit().await?;
    let members: Vec<_> = members
        .into_iter()
        .map(|m| json!({ "user_id": m.user_id, "email": m.email.as_str(), "role": m.role, "since": m.since }))
        .collect();
    Ok(Json(json!({ "members": members })).into_response())
}

#[derive(Deserialize)]
pub struct InviteBody {
    email: String,
    role: Role,
}

pub async fn invite(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<InviteBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let (id, expires) = actions::invite(&state, &caller, &body.email, body.role).await?;
    Ok((StatusCode::CREATED, Json(json!({ "invitation_id": id, "role": body.role, "expires_at": expires })))
        .into_response())
}

#[derive(Deserialize)]
pub struct RoleBody {
    role: Role,
}

pub async fn change_role(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(user): Path<String>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let user: UserId = parse_id(&user)?;
    actions::change_role(&state, &caller, user, body.role).await?;
    Ok(Json(json!({ "user_id": user, "role": body.role })).into_response())
}

pub async fn remove_member(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let user: UserId = parse_id(&user)?;
    actions::remove_member(&state, &caller, user).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn api_keys(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let mut tx = state.store.tenant(caller.scope).await?;
    let keys = tx.api_keys().await?;
    tx.commit().await?;
    let keys: Vec<_> = keys
        .into_iter()
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "prefix": k.prefix, "scope": k.scope, "created_by": k.created_by,
                "created_at": k.created_at, "last_used_at": k.last_used_at, "revoked_at": k.revoked_at,
            })
        })
        .collect();
    Ok(Json(json!({ "api_keys": keys })).into_response())
}

#[derive(Deserialize)]
pub struct NewKeyBody {
    name: String,
    scope: ApiScope,
}

pub async fn create_api_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let (id, key, prefix) = actions::create_api_key(&state, &caller, &body.name, body.scope).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "key": key, "prefix": prefix, "scope": body.scope })))
        .into_response())
}

pub async fn revoke_api_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id: ApiKeyId = parse_id(&id)?;
    actions::revoke_api_key(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

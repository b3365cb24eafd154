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
    tx.commit().await?;
    Ok(Json(json!({ "id": org.id, "name": org.name, "created_at": org.created_at, "reporting_time_zone": zone }))
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSettingsBody {
    /// An IANA time zone name: budget periods and days follow it.
    reporting_time_zone: String,
}

/// Changes the organization's settings (admins), audited.
pub async fn update_org(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<OrgSettingsBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let zone = burnrate_core::ReportingZone::parse(&body.reporting_time_zone)
        .map_err(|e| AppError::Validation(format!("reporting_{e}")))?;
    let mut tx = state.store.tenant(caller.scope).await?;
    let before = tx.reporting_tz().await?;
    tx.set_reporting_tz(zone.name()).await?;
    let details = json!({ "reporting_time_zone": { "from": before, "to": zone.name() } });
    tx.audit(caller.entry("org_settings_changed", "organization", caller.scope.org_id().to_string(), details)).await?;
    tx.commit().await?;
    Ok(Json(json!({ "reporting_time_zone": zone.name() })).into_response())
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

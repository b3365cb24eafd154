//! The JSON API under `/api/v1`, authenticated by API keys (S12). Each endpoint states the scope
//! it needs; the key's effective scope is also capped by its creator's current role.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiKeyId, ApiScope, Role, UserId};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::openapi::{BodyRefusals, Conflicting, Missing, Refusals};
use super::parse_id;
use crate::AppState;
use crate::auth::{ApiCaller, Caller as _};
use crate::error::{ApiError, AppError};
use burnrate_app::organization::OrgSettingsChange;

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

/// A query string whose errors answer in the API's error format.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|r| ApiError(AppError::Validation(r.body_text())))
    }
}

pub async fn not_found() -> ApiError {
    ApiError(AppError::NotFound)
}

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
    };
    Ok(Json(view).into_response())
}

/// The organization's settings after a change.
#[derive(Serialize, ToSchema)]
pub struct OrgSettingsView {
    reporting_time_zone: String,
    approval_actions: Vec<String>,
}

/// Changes the organization's settings (admins), audited with what each was before. Sending
/// fewer kinds of change for approval waits for another admin (`202`).
#[utoipa::path(patch, path = "/org", tag = "organization", request_body = OrgSettingsChange,
    responses((status = 200, body = OrgSettingsView), (status = 202, body = super::approvals::QueuedView), Refusals, BodyRefusals))]
pub async fn update_org(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<OrgSettingsChange>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let actor = caller.actor();
    if let burnrate_app::Submitted::Queued(request) = state.app.change_org_settings(&actor, body).await? {
        return Ok(super::approvals::queued(&state, request, super::approvals::Nothing {}));
    }
    let settings = state.app.org_settings(&actor).await?;
    let answer = OrgSettingsView {
        reporting_time_zone: settings.reporting_time_zone,
        approval_actions: settings.approval_actions,
    };
    Ok(Json(answer).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    user_id: Uuid,
    email: String,
    /// owner, admin, member or viewer.
    role: String,
    since: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct MembersView {
    members: Vec<MemberView>,
}

#[utoipa::path(get, path = "/members", tag = "members", responses((status = 200, body = MembersView), Refusals))]
pub async fn members(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let (members, _) = state.app.members(&caller.actor()).await?;
    let members = members
        .into_iter()
        .map(|m| MemberView {
            user_id: m.user_id.as_uuid(),
            email: m.email.as_str().to_owned(),
            role: m.role.to_string(),
            since: m.since,
        })
        .collect();
    Ok(Json(MembersView { members }).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct InviteBody {
    email: String,
    #[schema(value_type = String, example = "member")]
    role: Role,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationView {
    invitation_id: Uuid,
    role: String,
    expires_at: DateTime<Utc>,
}

/// Invites a person by email (admins); they get a link that lasts 7 days.
#[utoipa::path(post, path = "/members", tag = "members", request_body = InviteBody,
    responses((status = 201, body = InvitationView), Refusals, BodyRefusals, Conflicting))]
pub async fn invite(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<InviteBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let (id, expires) = state.app.invite(&caller.actor(), &body.email, body.role).await?;
    let view = InvitationView { invitation_id: id.as_uuid(), role: body.role.to_string(), expires_at: expires };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct RoleBody {
    #[schema(value_type = String, example = "viewer")]
    role: Role,
}

#[derive(Serialize, ToSchema)]
pub struct RoleView {
    user_id: Uuid,
    role: String,
}

#[utoipa::path(patch, path = "/members/{user_id}", tag = "members", request_body = RoleBody,
    params(("user_id" = Uuid, Path, description = "The member's user id")),
    responses((status = 200, body = RoleView), (status = 202, description = "A promotion to admin or owner waits for another admin", body = super::approvals::QueuedView),
        Refusals, BodyRefusals, Missing, Conflicting))]
pub async fn change_role(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(user): Path<String>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let user: UserId = parse_id(&user)?;
    match state.app.change_role(&caller.actor(), user, body.role).await? {
        burnrate_app::Submitted::Applied(_) => {
            Ok(Json(RoleView { user_id: user.as_uuid(), role: body.role.to_string() }).into_response())
        }
        // A promotion waits for another admin.
        burnrate_app::Submitted::Queued(request) => {
            Ok(super::approvals::queued(&state, request, super::approvals::Nothing {}))
        }
    }
}

#[utoipa::path(delete, path = "/members/{user_id}", tag = "members",
    params(("user_id" = Uuid, Path, description = "The member's user id")),
    responses((status = 204, description = "Removed: their sessions end, their API keys and SQL credentials are revoked, their pending requests withdrawn"), Refusals, Missing, Conflicting))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let user: UserId = parse_id(&user)?;
    state.app.remove_member(&caller.actor(), user).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    id: Uuid,
    name: String,
    /// The first characters of the key, to tell keys apart.
    prefix: String,
    /// read, write or admin.
    scope: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeysView {
    api_keys: Vec<ApiKeyView>,
}

#[utoipa::path(get, path = "/api-keys", tag = "api keys", responses((status = 200, body = ApiKeysView), Refusals))]
pub async fn api_keys(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    // Credentials' metadata is for admins, as on the API keys page.
    caller.require(ApiScope::Admin)?;
    let keys = state.app.api_keys(&caller.actor()).await?;
    let api_keys = keys
        .into_iter()
        .map(|k| ApiKeyView {
            id: k.id.as_uuid(),
            name: k.name,
            prefix: k.prefix,
            scope: k.scope.to_string(),
            created_by: k.created_by.as_uuid(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        })
        .collect();
    Ok(Json(ApiKeysView { api_keys }).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct NewKeyBody {
    name: String,
    #[schema(value_type = String, example = "read")]
    scope: ApiScope,
}

/// A new key: `key` is shown this once and never again.
#[derive(Serialize, ToSchema)]
pub struct NewKeyView {
    id: Uuid,
    key: String,
    prefix: String,
    scope: String,
}

#[utoipa::path(post, path = "/api-keys", tag = "api keys", request_body = NewKeyBody,
    responses((status = 201, body = NewKeyView), Refusals, BodyRefusals))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let new = state.app.create_api_key(&caller.actor(), &body.name, body.scope).await?;
    let view = NewKeyView { id: new.id.as_uuid(), key: new.key, prefix: new.prefix, scope: body.scope.to_string() };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api keys",
    params(("id" = Uuid, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked: the key stops working at once"), Refusals, Missing))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id: ApiKeyId = parse_id(&id)?;
    state.app.revoke_api_key(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An invitation that has been neither accepted nor revoked.
#[derive(Serialize, ToSchema)]
pub struct OpenInvitationView {
    id: Uuid,
    email: String,
    role: String,
    invited_by: Uuid,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationsView {
    invitations: Vec<OpenInvitationView>,
}

/// Invitations waiting to be accepted (admins).
#[utoipa::path(get, path = "/invitations", tag = "members", responses((status = 200, body = InvitationsView), Refusals))]
pub async fn invitations(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let open = state.app.open_invitations(&caller.actor()).await?;
    let invitations = open
        .into_iter()
        .map(|i| OpenInvitationView {
            id: i.id.as_uuid(),
            email: i.email.as_str().to_owned(),
            role: i.role.to_string(),
            invited_by: i.invited_by.as_uuid(),
            created_at: i.created_at,
            expires_at: i.expires_at,
        })
        .collect();
    Ok(Json(InvitationsView { invitations }).into_response())
}

/// Revokes an invitation (admins): its link stops working.
#[utoipa::path(delete, path = "/invitations/{id}", tag = "members",
    params(("id" = Uuid, Path, description = "The invitation's id")),
    responses((status = 204, description = "Revoked"), Refusals, Missing))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    state.app.revoke_invitation(&caller.actor(), parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

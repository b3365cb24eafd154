//! The members through the JSON API: `/api/v1/invitations`, `/api/v1/members`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiScope, Role, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::api::{ApiJson, BodyRefusals, Conflicting, Missing, Refusals};
use crate::auth::{ApiCaller, Caller as _};
use crate::error::ApiError;
use crate::routes::parse_id;

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
    responses((status = 200, body = RoleView), (status = 202, description = "A promotion to admin or owner waits for another admin", body = crate::api::QueuedView),
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
        burnrate_app::Submitted::Queued(request) => Ok(crate::api::queued(&state, request, crate::api::Nothing {})),
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

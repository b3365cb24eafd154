//! The members pages: server-rendered, every change a form post behind the CSRF check.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use burnrate_core::{InvitationId, Role, UserId};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{Nav, render, when};
use crate::routes::{parse_id, see_other};
use crate::security::{CsrfForm, NoFields};

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn notice_for(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "invited" => "Invitation sent.",
            "role" => "Role changed.",
            "queued" => "The promotion waits for another admin's approval (Approvals).",
            "removed" => "Member removed.",
            "revoked" => "Invitation revoked.",
            _ => return None,
        }
        .into(),
    )
}

async fn members_page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let (members, _) = state.app.members(&who.actor()).await?;
    let invitations = if who.role.is_admin() { state.app.open_invitations(&who.actor()).await? } else { vec![] };
    let grantable = Role::ALL.iter().filter(|r| who.role.may_grant(**r)).map(|r| r.to_string()).collect();
    let page = MembersPage {
        nav: Some(Nav::new(who, "members")),
        csrf: who.csrf.clone(),
        members: members
            .into_iter()
            .map(|m| MemberRow {
                user_id: m.user_id.to_string(),
                email: m.email.to_string(),
                role: m.role.to_string(),
                since: when(m.since),
                is_you: m.user_id == who.user_id,
            })
            .collect(),
        invitations: invitations
            .into_iter()
            .map(|i| InvitationRow {
                id: i.id.to_string(),
                email: i.email.to_string(),
                role: i.role.to_string(),
                expires: when(i.expires_at),
            })
            .collect(),
        can_manage: who.role.is_admin(),
        grantable,
        notice,
        error,
    };
    let status =
        if page.error.is_some() { axum::http::StatusCode::UNPROCESSABLE_ENTITY } else { axum::http::StatusCode::OK };
    Ok((status, render(&page)).into_response())
}

pub async fn members(State(state): State<AppState>, who: Authed, Query(q): Query<Done>) -> Result<Response, AppError> {
    members_page(&state, &who, notice_for(q.done.as_deref()), None).await
}

#[derive(Deserialize)]
pub struct InviteForm {
    email: String,
    role: String,
}

pub async fn invite(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Result<Response, AppError> {
    let role: Role = form.role.parse().map_err(|e| AppError::Validation(format!("Role: {e}.")))?;
    match state.app.invite(&who.actor(), &form.email, role).await.map_err(AppError::from) {
        Ok(_) => Ok(see_other("/members?done=invited")),
        Err(AppError::Validation(m)) | Err(AppError::Conflict(m)) => members_page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn change_role(
    State(state): State<AppState>,
    who: Authed,
    Path(user): Path<String>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<Response, AppError> {
    let target: UserId = parse_id(&user)?;
    let role: Role = form.role.parse().map_err(|e| AppError::Validation(format!("Role: {e}.")))?;
    match state.app.change_role(&who.actor(), target, role).await.map_err(AppError::from) {
        Ok(burnrate_app::Submitted::Applied(_)) => Ok(see_other("/members?done=role")),
        Ok(burnrate_app::Submitted::Queued(_)) => Ok(see_other("/members?done=queued")),
        Err(AppError::Conflict(m)) => members_page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn remove_member(
    State(state): State<AppState>,
    who: Authed,
    Path(user): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let target: UserId = parse_id(&user)?;
    match state.app.remove_member(&who.actor(), target).await.map_err(AppError::from) {
        Ok(()) => Ok(see_other("/members?done=removed")),
        Err(AppError::Conflict(m)) => members_page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn revoke_invitation(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let id: InvitationId = parse_id(&id)?;
    state.app.revoke_invitation(&who.actor(), id).await?;
    Ok(see_other("/members?done=revoked"))
}

pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub since: String,
    pub is_you: bool,
}

pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "members.html")]
pub struct MembersPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub members: Vec<MemberRow>,
    pub invitations: Vec<InvitationRow>,
    pub can_manage: bool,
    pub grantable: Vec<String>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

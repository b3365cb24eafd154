//! The support access pages: server-rendered, every change a form post behind the CSRF check.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::support::{GrantStatus, Grants};
use chrono::Utc;

use super::{Decision, decide};
use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{GrantRow, Nav, Viewer, grant_row, render, when};
use crate::routes::parse_id;
use crate::security::{CsrfForm, NoFields};

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

#[derive(Template)]
#[template(path = "support.html")]
pub struct SupportPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub grants: Vec<GrantRow>,
    pub is_admin: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

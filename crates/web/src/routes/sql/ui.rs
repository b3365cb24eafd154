//! The SQL credentials pages: server-rendered, every change a form post behind the CSRF check.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{NewCredential, create, endpoint, revoke};
use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{Nav, render, when};
use crate::routes::{parse_id, see_other};
use crate::security::{CsrfForm, NoFields};

async fn page(
    state: &AppState,
    who: &Authed,
    new: Option<NewCredential>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let credentials = if who.role().is_admin() { state.app.sql_credentials(&who.actor()).await? } else { Vec::new() };
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = SqlPage {
        nav: Some(Nav::new(who, "sql")),
        csrf: who.csrf.clone(),
        is_admin: who.role().is_admin(),
        endpoint: endpoint(state).map(|e| e.address.clone()),
        credentials: credentials
            .into_iter()
            .map(|c| SqlCredentialRow {
                id: c.id.to_string(),
                name: c.name,
                created: when(c.created_at),
                last_used: c.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                revoked: c.revoked_at.is_some(),
            })
            .collect(),
        new_waits: new.as_ref().is_some_and(|n| n.approval.is_some()),
        new_user: new.as_ref().map(|n| n.id.to_string()),
        new_password: new.as_ref().map(|n| n.password.clone()),
        new_psql: new.map(|n| n.psql).filter(|p| !p.is_empty()),
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn sql_page(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    page(&state, &who, None, None).await
}

#[derive(Deserialize)]
pub struct NewCredentialForm {
    name: String,
}

pub async fn create_form(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<NewCredentialForm>,
) -> Result<Response, AppError> {
    match create(&state, &who, &form.name).await {
        Ok(new) => page(&state, &who, Some(new), None).await,
        Err(AppError::Validation(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn revoke_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    revoke(&state, &who, parse_id(&id)?).await?;
    Ok(see_other("/sql"))
}

pub struct SqlCredentialRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "sql.html")]
pub struct SqlPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub is_admin: bool,
    pub endpoint: Option<String>,
    pub credentials: Vec<SqlCredentialRow>,
    /// The new credential waits for another admin's approval.
    pub new_waits: bool,
    pub new_user: Option<String>,
    pub new_password: Option<String>,
    pub new_psql: Option<String>,
    pub error: Option<String>,
}

//! SQL credentials (S11): generated logins for psql and BI tools on the Postgres wire endpoint,
//! shown once, listed with who made them and when they were last used, revocable.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiScope, SqlCredentialId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::account::NoFields;
use super::api::ApiJson;
use super::approvals::{Queued, queued};
use super::openapi::{BodyRefusals, Missing, Refusals};
use super::{parse_id, see_other};
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{Nav, SqlCredentialRow, SqlPage, render, when};
use crate::security::CsrfForm;

/// A credential as it is handed over, once.
pub struct NewCredential {
    pub id: SqlCredentialId,
    /// Waiting for another admin's approval: it works once approved.
    pub approval: Option<uuid::Uuid>,
    pub password: String,
    /// `postgresql://user:password@host:port/burnrate[?sslmode=require]`.
    pub url: String,
    /// The same as a ready-to-paste psql command.
    pub psql: String,
}

/// How clients reach the endpoint, as configured; `None` when the instance has no endpoint.
fn endpoint(state: &AppState) -> Option<&crate::config::PgEndpoint> {
    state.config.pg_endpoint.as_ref()
}

pub async fn create(state: &AppState, caller: &impl Caller, name: &str) -> Result<NewCredential, AppError> {
    let burnrate_app::sql_access::NewSqlCredential { id, password, approval } =
        state.app.create_sql_credential(&caller.actor(), name).await?;
    let (url, psql) = match endpoint(state) {
        Some(e) => {
            let url = format!(
                "postgresql://{id}:{password}@{}/burnrate{}",
                e.address,
                if e.tls { "?sslmode=require" } else { "" }
            );
            let psql = format!("psql '{url}'");
            (url, psql)
        }
        None => (String::new(), String::new()),
    };
    Ok(NewCredential { id, approval, password, url, psql })
}

pub async fn revoke(state: &AppState, caller: &impl Caller, id: SqlCredentialId) -> Result<(), AppError> {
    Ok(state.app.revoke_sql_credential(&caller.actor(), id).await?)
}

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

/// A SQL credential: its id is also the Postgres user name.
#[derive(Serialize, ToSchema)]
pub struct SqlCredentialView {
    id: String,
    /// The user name to log in with (the id).
    user: String,
    name: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct SqlCredentialsView {
    sql_credentials: Vec<SqlCredentialView>,
}

#[utoipa::path(get, path = "/sql-credentials", tag = "sql", responses((status = 200, body = SqlCredentialsView), Refusals))]
pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let list = state.app.sql_credentials(&caller.actor()).await?;
    let sql_credentials = list
        .into_iter()
        .map(|c| SqlCredentialView {
            id: c.id.to_string(),
            user: c.id.to_string(),
            name: c.name,
            created_by: c.created_by.as_uuid(),
            created_at: c.created_at,
            last_used_at: c.last_used_at,
            revoked_at: c.revoked_at,
        })
        .collect();
    Ok(Json(SqlCredentialsView { sql_credentials }).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct NewCredentialBody {
    name: String,
}

/// A new credential: the password is shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewCredentialView {
    id: String,
    user: String,
    password: String,
    /// `burnrate`.
    database: &'static str,
    /// A `postgresql://` URL to paste, when the instance knows its Postgres address.
    connection_string: Option<String>,
    /// A ready-to-paste `psql` command line.
    psql: Option<String>,
}

/// Makes a SQL credential (admins). Where the organization asks for approval, it logs in only
/// once another admin approves (`202`; the password is shown now, once, all the same).
#[utoipa::path(post, path = "/sql-credentials", tag = "sql", request_body = NewCredentialBody,
    responses((status = 201, body = NewCredentialView), (status = 202, body = Queued<NewCredentialView>), Refusals, BodyRefusals))]
pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewCredentialBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let new = create(&state, &caller, &body.name).await?;
    let body = NewCredentialView {
        id: new.id.to_string(),
        user: new.id.to_string(),
        password: new.password.clone(),
        database: "burnrate",
        connection_string: (!new.url.is_empty()).then(|| new.url.clone()),
        psql: (!new.psql.is_empty()).then(|| new.psql.clone()),
    };
    // Shown now, once; it logs in from the moment another admin approves it.
    Ok(match new.approval {
        Some(request) => queued(&state, request, body),
        None => (StatusCode::CREATED, Json(body)).into_response(),
    })
}

#[utoipa::path(delete, path = "/sql-credentials/{id}", tag = "sql",
    params(("id" = String, Path, description = "The credential's id (its user name, brs_…)")),
    responses((status = 204, description = "Revoked; its live sessions close"), Refusals, Missing))]
pub async fn api_revoke(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    revoke(&state, &caller, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

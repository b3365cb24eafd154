//! SQL credentials (S11): generated logins for psql and BI tools on the Postgres wire endpoint,
//! shown once, listed with who made them and when they were last used, revocable.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiScope, SqlCredentialId};
use burnrate_crypto::{ScramVerifier, random_sql_password};
use serde::Deserialize;
use serde_json::json;

use super::account::NoFields;
use super::actions::parse_key_name;
use super::api::ApiJson;
use super::approvals::{Change, Submitted, queued, submit};
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
    caller.require_admin()?;
    let name = parse_key_name(name)?;
    let password = random_sql_password();
    let verifier = ScramVerifier::new(&password).encode();
    let id = SqlCredentialId::generate();
    let change = Change::SqlCredentialCreate { id, name, verifier };
    let approval = match submit(state, caller, change, None).await? {
        Submitted::Applied(_) => None,
        Submitted::Queued(request) => Some(request),
    };
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
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    if !tx.revoke_sql_credential(id).await? {
        return Err(AppError::NotFound);
    }
    tx.audit(caller.entry("sql_credential_revoked", "sql_credential", id.to_string(), json!({}))).await?;
    tx.commit().await?;
    Ok(())
}

async fn page(
    state: &AppState,
    who: &Authed,
    new: Option<NewCredential>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let credentials = if who.role().is_admin() {
        let mut tx = state.store.tenant(who.scope).await?;
        let list = tx.sql_credentials().await?;
        tx.commit().await?;
        list
    } else {
        Vec::new()
    };
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

pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let mut tx = state.store.tenant(caller.scope).await?;
    let list = tx.sql_credentials().await?;
    tx.commit().await?;
    let list: Vec<_> = list
        .into_iter()
        .map(|c| {
            json!({
                "id": c.id, "user": c.id, "name": c.name, "created_by": c.created_by, "created_at": c.created_at,
                "last_used_at": c.last_used_at, "revoked_at": c.revoked_at,
            })
        })
        .collect();
    Ok(Json(json!({ "sql_credentials": list })).into_response())
}

#[derive(Deserialize)]
pub struct NewCredentialBody {
    name: String,
}

pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewCredentialBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let new = create(&state, &caller, &body.name).await?;
    let body = json!({
        "id": new.id, "user": new.id, "password": new.password, "database": "burnrate",
        "connection_string": (!new.url.is_empty()).then_some(&new.url),
        "psql": (!new.psql.is_empty()).then_some(&new.psql),
    });
    // Shown now, once; it logs in from the moment another admin approves it.
    Ok(match new.approval {
        Some(request) => queued(&state, request, body),
        None => (StatusCode::CREATED, Json(body)).into_response(),
    })
}

pub async fn api_revoke(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    revoke(&state, &caller, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

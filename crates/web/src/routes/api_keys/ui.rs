//! The API keys pages: server-rendered, every change a form post behind the CSRF check.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiKeyId, ApiScope};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{Nav, render, when};
use crate::routes::{parse_id, see_other};
use crate::security::{CsrfForm, NoFields};

async fn api_keys_page(
    state: &AppState,
    who: &Authed,
    new_key: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let keys = state.app.api_keys(&who.actor()).await?;
    let status =
        if error.is_some() { axum::http::StatusCode::UNPROCESSABLE_ENTITY } else { axum::http::StatusCode::OK };
    let page = ApiKeysPage {
        nav: Some(Nav::new(who, "api-keys")),
        csrf: who.csrf.clone(),
        keys: keys
            .into_iter()
            .map(|k| ApiKeyRow {
                id: k.id.to_string(),
                name: k.name,
                prefix: k.prefix,
                scope: k.scope.to_string(),
                created: when(k.created_at),
                last_used: k.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                revoked: k.revoked_at.is_some(),
            })
            .collect(),
        new_key,
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn api_keys(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    who.require_admin()?;
    api_keys_page(&state, &who, None, None).await
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    name: String,
    scope: String,
}

pub async fn create_api_key(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<NewKeyForm>,
) -> Result<Response, AppError> {
    who.require_admin()?;
    let scope: ApiScope =
        form.scope.parse().map_err(|_| AppError::Validation("Scope: expected read, write or admin.".into()))?;
    match state.app.create_api_key(&who.actor(), &form.name, scope).await.map_err(AppError::from) {
        Ok(new) => api_keys_page(&state, &who, Some(new.key), None).await,
        Err(AppError::Validation(m)) => api_keys_page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn revoke_api_key(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let id: ApiKeyId = parse_id(&id)?;
    state.app.revoke_api_key(&who.actor(), id).await?;
    Ok(see_other("/api-keys"))
}

pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scope: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
pub struct ApiKeysPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub keys: Vec<ApiKeyRow>,
    pub new_key: Option<String>,
    pub error: Option<String>,
}

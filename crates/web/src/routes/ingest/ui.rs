//! The ingest keys page: server-rendered, every change a form post behind the CSRF check, with
//! the exporter settings to copy.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use burnrate_core::IngestKeyId;
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{Nav, render, when};
use crate::routes::{parse_id, see_other};
use crate::security::{CsrfForm, NoFields};

async fn ingest_keys_page(
    state: &AppState,
    who: &Authed,
    new_key: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let keys = state.app.ingest_keys(&who.actor()).await?;
    let status =
        if error.is_some() { axum::http::StatusCode::UNPROCESSABLE_ENTITY } else { axum::http::StatusCode::OK };
    let page = IngestKeysPage {
        nav: Some(Nav::new(who, "ingest-keys")),
        csrf: who.csrf.clone(),
        otlp_url: state.config.otlp_url.clone(),
        keys: keys
            .into_iter()
            .map(|k| IngestKeyRow {
                id: k.id.to_string(),
                name: k.name,
                prefix: k.prefix,
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

pub async fn ingest_keys(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    who.require_admin()?;
    ingest_keys_page(&state, &who, None, None).await
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    name: String,
}

pub async fn create_ingest_key(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<NewKeyForm>,
) -> Result<Response, AppError> {
    who.require_admin()?;
    match state.app.create_ingest_key(&who.actor(), &form.name).await.map_err(AppError::from) {
        Ok(new) => ingest_keys_page(&state, &who, Some(new.key), None).await,
        Err(AppError::Validation(m)) => ingest_keys_page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn revoke_ingest_key(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let id: IngestKeyId = parse_id(&id)?;
    state.app.revoke_ingest_key(&who.actor(), id).await?;
    Ok(see_other("/ingest-keys"))
}

pub struct IngestKeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "ingest_keys.html")]
pub struct IngestKeysPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    /// The receiver's origin as exporters reach it.
    pub otlp_url: Option<String>,
    pub keys: Vec<IngestKeyRow>,
    pub new_key: Option<String>,
    pub error: Option<String>,
}

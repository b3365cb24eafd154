//! Webhook destinations: `/api/v1/webhooks`. A URL is saved only if the egress guard lets it
//! through (S14: https, public addresses, or the operator's allow-list); the signing secret is
//! generated here, shown once in the answer to its creation, and sealed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::ApiScope;
use burnrate_notify::WebhookSecret;
use burnrate_store::{NewWebhook, WebhookRecord};
use serde::Deserialize;
use serde_json::json;

use super::account::NoFields;
use super::api::ApiJson;
use super::{change, parse_id, see_other};
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{Nav, WebhookRow, WebhooksPage, render, when};
use crate::security::CsrfForm;

#[derive(Deserialize)]
pub struct NewWebhookBody {
    url: String,
    #[serde(default)]
    description: String,
    /// Deliver a Slack-compatible message instead of the event's JSON.
    #[serde(default)]
    slack: bool,
}

/// Checks, seals and stores a new destination; returns it as stored, and its secret (to show
/// once).
async fn create(
    state: &AppState,
    caller: &impl Caller,
    url: &str,
    description: &str,
    slack: bool,
) -> Result<(WebhookRecord, String), AppError> {
    caller.require_admin()?;
    let checked = state
        .syncer
        .http
        .check_destination(url.trim())
        .await
        .map_err(|e| AppError::Validation(format!("URL: {e}.")))?;
    let description = description.trim();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(AppError::Validation("Description: at most 200 characters, no control characters.".into()));
    }
    let shown = WebhookSecret::generate().expose();
    let mut tx = state.store.tenant(caller.scope()).await?;
    let new = NewWebhook { url: checked.as_str(), description, slack, secret: &shown, created_by: caller.member() };
    let id = tx.create_webhook(&state.vault, &new).await?;
    tx.audit(caller.entry("webhook_created", "webhook", id.to_string(), json!({ "url": checked.as_str() }))).await?;
    let saved = tx.webhook(id).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok((saved, shown))
}

pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewWebhookBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let (saved, secret) = create(&state, &caller, &body.url, &body.description, body.slack).await?;
    let answer = json!({
        "id": saved.id, "url": saved.url, "description": saved.description, "slack": saved.slack,
        // Shown once: burnrate keeps it sealed and never shows it again.
        "secret": secret,
    });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let list = tx.webhooks().await?;
    tx.commit().await?;
    let list: Vec<_> = list
        .into_iter()
        .map(|w| {
            json!({ "id": w.id, "url": w.url, "description": w.description, "slack": w.slack,
                    "created_by": w.created_by, "created_at": w.created_at })
        })
        .collect();
    Ok(Json(json!({ "webhooks": list })).into_response())
}

pub async fn api_delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    remove(&state, &caller, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove(state: &AppState, caller: &impl Caller, id: uuid::Uuid) -> Result<(), AppError> {
    change(state, caller, ("webhook", id), "webhook_deleted", async |tx| Ok(tx.delete_webhook(id).await?)).await
}

/// How a test event went.
pub(crate) struct TestOutcome {
    pub delivered: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
    pub message_id: String,
}

/// Sends a signed `test` event to the webhook now, once.
async fn send_test(state: &AppState, caller: &impl Caller, id: uuid::Uuid) -> Result<TestOutcome, AppError> {
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let webhook = tx.webhook(id).await?.ok_or(AppError::NotFound)?;
    let secret = tx.open_webhook_secret(&state.vault, id).await?;
    tx.commit().await?;
    let secret = WebhookSecret::parse(&secret).map_err(|e| AppError::Internal(format!("webhook {id}: {e}")))?;
    let now = chrono::Utc::now();
    let body = if webhook.slack {
        json!({ "text": "A test event from burnrate: this destination receives burnrate's alerts." })
    } else {
        json!({
            "type": "test",
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "data": { "webhook": id, "message": "A test event from burnrate: this destination receives signed events." },
        })
    };
    let body = serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.to_string()))?;
    let message_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let signed = secret.sign(&message_id, now.timestamp(), &body);
    let mut headers: Vec<(&str, String)> = signed.headers().to_vec();
    headers.push(("content-type", "application/json".into()));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = url::Url::parse(&webhook.url).map_err(|e| AppError::Internal(format!("stored webhook URL: {e}")))?;
    let started = std::time::Instant::now();
    let sent = state.syncer.http.post_once(&url, &headers, body).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    Ok(match sent {
        Ok(reply) => TestOutcome {
            delivered: (200..300).contains(&reply.status),
            status: Some(reply.status),
            error: None,
            latency_ms,
            message_id,
        },
        Err(e) => TestOutcome { delivered: false, status: None, error: Some(e.to_string()), latency_ms, message_id },
    })
}

/// Sends a signed `test` event to the webhook now and says how it went.
pub async fn api_test(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let t = send_test(&state, &caller, parse_id(&id)?).await?;
    let answer = json!({
        "delivered": t.delivered, "status": t.status, "error": t.error,
        "latency_ms": t.latency_ms, "webhook_id": t.message_id,
    });
    Ok(Json(answer).into_response())
}

/// The webhooks page: destinations, with a form to add one (its secret shown once) and a test
/// button for each.
async fn page(
    state: &AppState,
    who: &Authed,
    new_secret: Option<String>,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let mut tx = state.store.tenant(who.scope).await?;
    let list = tx.webhooks().await?;
    tx.commit().await?;
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = WebhooksPage {
        nav: Some(Nav::new(who, "webhooks")),
        csrf: who.csrf.clone(),
        can_manage: who.role().is_admin(),
        webhooks: list
            .into_iter()
            .map(|w| WebhookRow {
                id: w.id.to_string(),
                url: w.url,
                description: w.description,
                slack: w.slack,
                created: when(w.created_at),
            })
            .collect(),
        new_secret,
        notice,
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn webhooks_page(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    page(&state, &who, None, None, None).await
}

#[derive(Deserialize)]
pub struct NewWebhookForm {
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    slack: Option<String>,
}

pub async fn create_form(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(f): CsrfForm<NewWebhookForm>,
) -> Result<Response, AppError> {
    match create(&state, &who, &f.url, &f.description, f.slack.is_some()).await {
        Ok((_, secret)) => page(&state, &who, Some(secret), None, None).await,
        Err(AppError::Validation(m)) => page(&state, &who, None, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn test_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let t = send_test(&state, &who, parse_id(&id)?).await?;
    if t.delivered {
        let status = t.status.map(|s| s.to_string()).unwrap_or_default();
        let notice = format!("Test event delivered: the receiver answered {status} in {} ms.", t.latency_ms);
        page(&state, &who, None, Some(notice), None).await
    } else {
        let why = t.error.unwrap_or_else(|| format!("the receiver answered {}", t.status.unwrap_or_default()));
        page(&state, &who, None, None, Some(format!("Test event not delivered: {why}."))).await
    }
}

pub async fn delete_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    remove(&state, &who, parse_id(&id)?).await?;
    Ok(see_other("/webhooks"))
}

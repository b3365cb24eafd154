//! Webhook destinations: `/api/v1/webhooks`. A URL is saved only if the egress guard lets it
//! through (S14: https, public addresses, or the operator's allow-list); the signing secret is
//! generated here, shown once in the answer to its creation, and sealed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::ApiScope;
use burnrate_notify::WebhookSecret;
use burnrate_store::NewWebhook;
use serde::Deserialize;
use serde_json::json;

use super::api::ApiJson;
use super::parse_id;
use crate::AppState;
use crate::auth::{ApiCaller, Caller};
use crate::error::{ApiError, AppError};

#[derive(Deserialize)]
pub struct NewWebhookBody {
    url: String,
    #[serde(default)]
    description: String,
    /// Deliver a Slack-compatible message instead of the event's JSON.
    #[serde(default)]
    slack: bool,
}

pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewWebhookBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let url = body.url.trim();
    let checked = state.syncer.http.guard().check_url(url).map_err(|e| AppError::Validation(format!("URL: {e}.")))?;
    let description = body.description.trim();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(AppError::Validation("Description: at most 200 characters, no control characters.".into()).into());
    }
    let secret = WebhookSecret::generate();
    let shown = secret.expose();
    let mut tx = state.store.tenant(caller.scope()).await?;
    let new = NewWebhook {
        url: checked.as_str(),
        description,
        slack: body.slack,
        secret: &shown,
        created_by: caller.member(),
    };
    let id = tx.create_webhook(&state.vault, &new).await?;
    tx.audit(caller.entry("webhook_created", "webhook", id.to_string(), json!({ "url": checked.as_str() }))).await?;
    tx.commit().await?;
    let answer = json!({
        "id": id, "url": checked.as_str(), "description": description, "slack": body.slack,
        // Shown once: burnrate keeps it sealed and never shows it again.
        "secret": shown,
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
    let id = parse_id(&id)?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    if !tx.delete_webhook(id).await? {
        return Err(AppError::NotFound.into());
    }
    tx.audit(caller.entry("webhook_deleted", "webhook", id.to_string(), json!({}))).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sends a signed `test` event to the webhook now and says how it went.
pub async fn api_test(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id = parse_id(&id)?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let webhook = tx.webhook(id).await?.ok_or(AppError::NotFound)?;
    let secret = tx.open_webhook_secret(&state.vault, id).await?;
    tx.commit().await?;
    let secret = WebhookSecret::parse(&secret).map_err(|e| AppError::Internal(format!("webhook {id}: {e}")))?;
    let now = chrono::Utc::now();
    let event = json!({
        "type": "test",
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": { "webhook": id, "message": "A test event from burnrate: this destination receives signed events." },
    });
    let body = if webhook.slack {
        json!({ "text": "A test event from burnrate: this destination receives burnrate's alerts." })
    } else {
        event
    };
    let body = serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.to_string()))?;
    let message_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let signed = secret.sign(&message_id, now.timestamp(), &body);
    let mut headers: Vec<(&str, String)> = signed.headers().to_vec();
    headers.push(("content-type", "application/json".into()));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = url::Url::parse(&webhook.url).map_err(|e| AppError::Internal(format!("stored webhook URL: {e}")))?;
    let started = std::time::Instant::now();
    let answer = match state.syncer.http.post_once(&url, &headers, body).await {
        Ok(reply) => json!({
            "delivered": (200..300).contains(&reply.status), "status": reply.status,
            "latency_ms": started.elapsed().as_millis() as u64, "webhook_id": message_id,
        }),
        Err(e) => json!({ "delivered": false, "error": e.to_string(), "webhook_id": message_id }),
    };
    Ok(Json(answer).into_response())
}

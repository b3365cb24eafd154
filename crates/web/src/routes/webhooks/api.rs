//! The webhooks through the JSON API: `/api/v1/webhooks`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::webhooks::{DeliveryState, NewWebhook, NewWebhookInput, WebhookRecord};
use burnrate_core::ApiScope;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::remove;
use crate::AppState;
use crate::api::{ApiJson, ApiQuery, BodyRefusals, Conflicting, Missing, Queued, Refusals, queued};
use crate::auth::{ApiCaller, Caller};
use crate::error::{ApiError, AppError};
use crate::routes::parse_id;

/// A webhook destination.
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    id: Uuid,
    url: String,
    description: String,
    /// Deliveries go out as a Slack-compatible message instead of the event's JSON.
    slack: bool,
    /// The event types it takes; every type when empty.
    events: Vec<String>,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    /// Attempts that failed since the last one delivered.
    failures_in_a_row: u32,
    /// Since when nothing is sent to it (it kept failing); `POST …/resume` sends again.
    paused_at: Option<DateTime<Utc>>,
}

/// The signing secret of a new destination (`whsec_…`): shown this once, then kept sealed.
#[derive(Serialize, ToSchema)]
pub struct SigningSecret {
    secret: String,
}

/// A new destination with its signing secret.
#[derive(Serialize, ToSchema)]
pub struct NewWebhookView {
    #[serde(flatten)]
    webhook: WebhookView,
    #[serde(flatten)]
    secret: SigningSecret,
}

/// Adds a destination (admins). Where the organization asks for approval of new destinations,
/// it waits for another admin (`202`, with the secret already, to set up the receiver).
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = NewWebhookInput,
    responses((status = 201, body = NewWebhookView), (status = 202, body = Queued<SigningSecret>), Refusals, BodyRefusals))]
pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewWebhookInput>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    match state.app.create_webhook(&caller.actor(), body).await? {
        NewWebhook::Saved(saved, secret) => {
            let answer = NewWebhookView { webhook: saved.into(), secret: SigningSecret { secret } };
            Ok((StatusCode::CREATED, Json(answer)).into_response())
        }
        // The secret is shown now, once: the receiver can be set up while the request waits.
        NewWebhook::Queued(request, secret) => Ok(queued(&state, request, SigningSecret { secret })),
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhooksView {
    webhooks: Vec<WebhookView>,
}

#[utoipa::path(get, path = "/webhooks", tag = "webhooks", responses((status = 200, body = WebhooksView), Refusals))]
pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let list = state.app.webhooks(&caller.actor()).await?;
    Ok(Json(WebhooksView { webhooks: list.into_iter().map(WebhookView::from).collect() }).into_response())
}

#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The destination's id")),
    responses((status = 204, description = "Removed"), Refusals, Missing))]
pub async fn api_delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    remove(&state, &caller, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// How a test event went.
#[derive(Serialize, ToSchema)]
pub struct TestView {
    delivered: bool,
    /// The receiver's answer, if it answered.
    status: Option<u16>,
    /// Why there was no answer.
    error: Option<String>,
    latency_ms: u64,
    /// The `webhook-id` the event was signed with.
    webhook_id: String,
}

/// Sends a signed `test` event to the webhook now and says how it went.
#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The destination's id")),
    responses((status = 200, body = TestView), Refusals, Missing))]
pub async fn api_test(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let t = state.app.test_webhook(&caller.actor(), parse_id(&id)?).await?;
    let answer = TestView {
        delivered: t.delivered,
        status: t.status,
        error: t.error,
        latency_ms: t.latency_ms,
        webhook_id: t.message_id,
    };
    Ok(Json(answer).into_response())
}

/// One attempt to deliver.
#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    at: DateTime<Utc>,
    /// The receiver's answer, if it answered.
    status: Option<i32>,
    latency_ms: i64,
    error: Option<String>,
}

/// A delivery and its attempt log.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    id: Uuid,
    event_type: String,
    /// pending, delivered or dead.
    state: &'static str,
    attempts: u32,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    /// The event exactly as signed and sent.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    log: Vec<AttemptView>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveriesView {
    deliveries: Vec<DeliveryView>,
}

/// A webhook's deliveries with their attempt log (status, latency, answer code — never the
/// secret), newest first.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The destination's id"), DeliveriesQuery),
    responses((status = 200, body = DeliveriesView), Refusals, BodyRefusals, Missing))]
pub async fn api_deliveries(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let webhook: burnrate_core::WebhookId = parse_id(&id)?;
    let wanted = match q.state.as_deref() {
        None => None,
        Some("pending") => Some(DeliveryState::Pending),
        Some("delivered") => Some(DeliveryState::Delivered),
        Some("dead") => Some(DeliveryState::Dead),
        Some(other) => {
            return Err(AppError::Validation(format!("state: {other:?} is not pending, delivered or dead")).into());
        }
    };
    let list = state.app.deliveries(&caller.actor(), webhook, wanted).await?;
    let mut deliveries = Vec::with_capacity(list.len());
    for (d, attempts) in list {
        let log = attempts
            .into_iter()
            .map(|a| AttemptView { at: a.at, status: a.status, latency_ms: a.latency_ms, error: a.error })
            .collect();
        deliveries.push(DeliveryView {
            id: d.id.as_uuid(),
            event_type: d.event_type,
            state: d.state.as_str(),
            attempts: d.attempts,
            created_at: d.created_at,
            finished_at: d.finished_at,
            payload: serde_json::from_str(&d.payload).unwrap_or_else(|_| json!({})),
            log,
        });
    }
    Ok(Json(DeliveriesView { deliveries }).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct RedeliveryView {
    /// `pending`: queued for a new round of attempts.
    state: &'static str,
}

/// Puts a dead delivery back in the queue (admins).
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The destination's id"), ("delivery" = Uuid, Path, description = "The delivery's id")),
    responses((status = 202, body = RedeliveryView), Refusals, Missing, Conflicting))]
pub async fn api_redeliver(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    state.app.redeliver(&caller.actor(), parse_id(&id)?, parse_id(&delivery)?).await?;
    Ok((StatusCode::ACCEPTED, Json(RedeliveryView { state: "pending" })).into_response())
}

/// Sends to a destination paused for failing again (admins); what it missed stays in its
/// dead-letter list, to redeliver.
#[utoipa::path(post, path = "/webhooks/{id}/resume", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The destination's id")),
    responses((status = 204, description = "Resumed"), Refusals, Missing, Conflicting))]
pub async fn api_resume(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    state.app.resume_webhook(&caller.actor(), parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

impl From<WebhookRecord> for WebhookView {
    fn from(w: WebhookRecord) -> Self {
        WebhookView {
            id: w.id.as_uuid(),
            url: w.url,
            description: w.description,
            slack: w.slack,
            events: w.events,
            created_by: w.created_by.as_uuid(),
            created_at: w.created_at,
            failures_in_a_row: w.failures_in_a_row,
            paused_at: w.paused_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// `pending`, `delivered` or `dead` (the dead-letter list); all when absent.
    state: Option<String>,
}

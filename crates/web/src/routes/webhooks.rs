//! Webhook destinations: `/api/v1/webhooks`. A URL is saved only if the egress guard lets it
//! through (S14: https, public addresses, or the operator's allow-list); the signing secret is
//! generated here, shown once in the answer to its creation, and sealed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::webhooks::{Delivery, DeliveryState, WebhookOverview, WebhookRecord};
use burnrate_core::ApiScope;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::account::NoFields;
use super::api::{ApiJson, ApiQuery};
use super::approvals::{Queued, queued};
use super::openapi::{BodyRefusals, Conflicting, Missing, Refusals};
use super::{parse_id, see_other};
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{DeliveryRow, Nav, WebhookRow, WebhooksPage, render, when};
use crate::security::CsrfForm;
use burnrate_app::webhooks::{NewWebhook, NewWebhookInput};

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
}

impl From<WebhookRecord> for WebhookView {
    fn from(w: WebhookRecord) -> Self {
        WebhookView {
            id: w.id,
            url: w.url,
            description: w.description,
            slack: w.slack,
            events: w.events,
            created_by: w.created_by.as_uuid(),
            created_at: w.created_at,
        }
    }
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

async fn remove(state: &AppState, caller: &impl Caller, id: uuid::Uuid) -> Result<(), AppError> {
    Ok(state.app.delete_webhook(&caller.actor(), id).await?)
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// `pending`, `delivered` or `dead` (the dead-letter list); all when absent.
    state: Option<String>,
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
    let webhook: uuid::Uuid = parse_id(&id)?;
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
            id: d.id,
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

pub async fn redeliver_form(
    State(state): State<AppState>,
    who: Authed,
    Path((id, delivery)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    match state.app.redeliver(&who.actor(), parse_id(&id)?, parse_id(&delivery)?).await.map_err(AppError::from) {
        Ok(()) => page(&state, &who, None, Some("Delivery queued again.".into()), None).await,
        Err(AppError::Conflict(m)) => page(&state, &who, None, None, Some(m)).await,
        Err(e) => Err(e),
    }
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
    let shown = |d: &Delivery, last: String| DeliveryRow {
        id: d.id.to_string(),
        event_type: d.event_type.clone(),
        state: d.state.as_str().to_owned(),
        attempts: d.attempts,
        created: when(d.created_at),
        last,
    };
    let rows = state
        .app
        .webhooks_overview(&who.actor())
        .await?
        .into_iter()
        .map(|WebhookOverview { webhook: w, recent, dead }| WebhookRow {
            id: w.id.to_string(),
            url: w.url,
            description: w.description,
            slack: w.slack,
            events: if w.events.is_empty() { "all events".into() } else { w.events.join(", ") },
            created: when(w.created_at),
            recent: recent.iter().map(|(d, last)| shown(d, last.clone())).collect(),
            dead: dead.iter().map(|d| shown(d, String::new())).collect(),
        })
        .collect();
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = WebhooksPage {
        nav: Some(Nav::new(who, "webhooks")),
        csrf: who.csrf.clone(),
        can_manage: who.role().is_admin(),
        webhooks: rows,
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
    /// Event types separated by commas; every type when empty.
    #[serde(default)]
    events: String,
}

pub async fn create_form(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(f): CsrfForm<NewWebhookForm>,
) -> Result<Response, AppError> {
    let events = f.events.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
    let input = NewWebhookInput { url: f.url, description: f.description, slack: f.slack.is_some(), events };
    match state.app.create_webhook(&who.actor(), input).await.map_err(AppError::from) {
        Ok(NewWebhook::Saved(_, secret)) => page(&state, &who, Some(secret), None, None).await,
        Ok(NewWebhook::Queued(_, secret)) => {
            let notice =
                "Sent for approval: the destination receives alerts once another admin approves it (see Approvals).";
            page(&state, &who, Some(secret), Some(notice.into()), None).await
        }
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
    let t = state.app.test_webhook(&who.actor(), parse_id(&id)?).await?;
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

//! The webhooks pages: server-rendered, every change a form post behind the CSRF check.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::webhooks::{Delivery, NewWebhook, NewWebhookInput, WebhookOverview};
use serde::Deserialize;

use super::remove;
use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{Nav, render, when};
use crate::routes::{parse_id, see_other};
use crate::security::{CsrfForm, NoFields};

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

pub async fn resume_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    match state.app.resume_webhook(&who.actor(), parse_id(&id)?).await.map_err(AppError::from) {
        Ok(()) => {
            let notice =
                "Resumed: events go to the destination again. Redeliver its dead letters to send what it missed.";
            page(&state, &who, None, Some(notice.into()), None).await
        }
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
            paused_since: w.paused_at.map(when),
            failures_in_a_row: w.failures_in_a_row,
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

pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub slack: bool,
    /// The event types it takes, in words.
    pub events: String,
    pub created: String,
    /// When it was paused for failing, if it is.
    pub paused_since: Option<String>,
    pub failures_in_a_row: u32,
    /// The latest deliveries, newest first.
    pub recent: Vec<DeliveryRow>,
    /// Deliveries whose every attempt failed: the dead-letter list.
    pub dead: Vec<DeliveryRow>,
}

pub struct DeliveryRow {
    pub id: String,
    pub event_type: String,
    pub state: String,
    pub attempts: u32,
    pub created: String,
    /// The last attempt: `204 in 12 ms`, or why it failed.
    pub last: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
pub struct WebhooksPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub can_manage: bool,
    pub webhooks: Vec<WebhookRow>,
    /// The signing secret of the destination just added, shown this once.
    pub new_secret: Option<String>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

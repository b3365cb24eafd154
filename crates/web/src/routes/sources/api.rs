//! The sources through the JSON API: `/api/v1/sources`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::Submitted;
use burnrate_app::sources::{Listed, NewSourceInput, SettingsChange, SourceSpec};
use burnrate_core::ApiScope;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    SecretForm, connect, credential, final_through, remove, request_sync, rotate_secret, set_paused, test_connection,
};
use crate::AppState;
use crate::api::{ApiJson, ApiQuery, BodyRefusals, Conflicting, Missing, Nothing, QueuedView, Refusals, queued};
use crate::auth::{ApiCaller, Caller};
use crate::error::ApiError;
use crate::routes::parse_id;

#[derive(Deserialize, ToSchema)]
pub struct SettingsBody {
    /// Where the provider's API is reached instead of its own (a proxy); empty for the provider's.
    /// Changing it needs `secret`, and follows the approval policy of new credentials.
    base_url: Option<String>,
    backfill_days: Option<u32>,
    interval_minutes: Option<u32>,
    /// The source's credential, entered again: required with a new `base_url`.
    secret: Option<String>,
    /// AWS: the access key id that goes with `secret`.
    access_key_id: Option<String>,
}

/// Changes how a source syncs (admins). A new base URL comes with the credential and may wait
/// for another admin (202).
#[utoipa::path(patch, path = "/sources/{id}", tag = "sources", request_body = SettingsBody,
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 204, description = "Changed"), (status = 202, description = "Waits for another admin", body = QueuedView),
        Refusals, BodyRefusals, Missing))]
pub async fn api_settings(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SettingsBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id = parse_id(&id)?;
    let change = SettingsChange {
        base_url: b.base_url,
        backfill_days: b.backfill_days,
        interval_minutes: b.interval_minutes,
        credential: credential(b.secret, b.access_key_id),
    };
    Ok(match state.app.change_source_settings(&caller.actor(), id, change).await? {
        Submitted::Applied(_) => StatusCode::NO_CONTENT.into_response(),
        Submitted::Queued(request) => queued(&state, request, Nothing {}),
    })
}

// --- API -------------------------------------------------------------------------------------

/// A connected source and how fresh its data is.
#[derive(Serialize, ToSchema)]
pub struct SourceView {
    id: Uuid,
    /// openai, anthropic, aws, openrouter, postgres or mysql.
    kind: String,
    name: String,
    /// Settings without secrets: the provider's kind and settings, base URL, backfill depth,
    /// interval; host and database of a database source. `null` when the stored settings no
    /// longer read (`last_error` then says so).
    #[schema(value_type = Option<Object>)]
    config: Option<serde_json::Value>,
    /// The last four characters of the credential.
    secret_last4: String,
    secret_set_at: DateTime<Utc>,
    paused: bool,
    last_attempt_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    /// A running sync's progress, in words.
    progress: Option<String>,
    /// The last day with complete costs in the lake.
    costs_through: Option<NaiveDate>,
    usage_through: Option<NaiveDate>,
    /// The last day the provider is no longer expected to revise: later days are re-pulled by
    /// each sync and may still change.
    final_through: Option<NaiveDate>,
    /// OpenRouter: the prepaid credits left (USD, exact decimal) at the last sync.
    credits_remaining: Option<String>,
    credits_checked_at: Option<DateTime<Utc>>,
    /// What the last successful sync did: lines written, requests made (and their price where
    /// the provider bills them).
    last_sync_summary: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SourcesView {
    sources: Vec<SourceView>,
}

#[utoipa::path(get, path = "/sources", tag = "sources", responses((status = 200, body = SourcesView), Refusals))]
pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let sources = state
        .app
        .sources(&caller.actor())
        .await?
        .into_iter()
        .map(|Listed { source: s, spec, fresh }| {
            // A database source has no re-pulled days: what it holds is final. Settings that no
            // longer read are shown as none, and the source's error says why.
            let (config, repull_days, error) = match spec {
                Ok(SourceSpec::Provider(c)) => (serde_json::to_value(&c).ok(), Some(c.repull_days), s.last_error),
                Ok(SourceSpec::Database { config, .. }) => (serde_json::to_value(&config).ok(), Some(0), s.last_error),
                Err(e) => (None, None, Some(e.to_string())),
            };
            SourceView {
                final_through: fresh.costs.zip(repull_days).map(|(d, days)| final_through(d, days)),
                costs_through: fresh.costs,
                usage_through: fresh.usage,
                id: s.id.as_uuid(),
                kind: s.kind,
                name: s.name,
                config,
                secret_last4: s.secret_hint,
                secret_set_at: s.secret_set_at,
                paused: s.paused,
                last_attempt_at: s.last_attempt_at,
                last_success_at: s.last_success_at,
                last_error: error,
                progress: s.progress,
                credits_remaining: s.credits_remaining,
                credits_checked_at: s.credits_checked_at,
                last_sync_summary: s.last_sync_summary,
            }
        })
        .collect();
    Ok(Json(SourcesView { sources }).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct CreatedView {
    id: Uuid,
}

/// Connects a source (admins): its credential is sealed and its backfill starts. Where the
/// organization asks for approval of new credentials, it waits for another admin (`202`).
#[utoipa::path(post, path = "/sources", tag = "sources", request_body = NewSourceInput,
    responses((status = 201, body = CreatedView), (status = 202, body = QueuedView), Refusals, BodyRefusals, Conflicting))]
pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(input): ApiJson<NewSourceInput>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    Ok(match connect(&state, &caller, input).await? {
        Submitted::Applied(id) => (StatusCode::CREATED, Json(CreatedView { id })).into_response(),
        Submitted::Queued(request) => queued(&state, request, Nothing {}),
    })
}

/// Removes a source (admins); its data stays unless `keep_data=false`.
#[utoipa::path(delete, path = "/sources/{id}", tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id"), KeepData),
    responses((status = 204, description = "Removed"), Refusals, BodyRefusals, Missing))]
pub async fn api_delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<KeepData>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    remove(&state, &caller, parse_id(&id)?, q.keep_data.unwrap_or(true)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, ToSchema)]
pub struct SyncStarted {
    id: Uuid,
    /// `sync started`.
    status: &'static str,
}

/// Starts a sync of the source now (admins); follow it in the source's `progress`.
#[utoipa::path(post, path = "/sources/{id}/sync", tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 202, body = SyncStarted), Refusals, Missing, Conflicting))]
pub async fn api_sync(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id = parse_id(&id)?;
    request_sync(&state, &caller, id).await?;
    Ok((StatusCode::ACCEPTED, Json(SyncStarted { id: id.as_uuid(), status: "sync started" })).into_response())
}

/// How a connection test went.
#[derive(Serialize, ToSchema)]
pub struct ConnectionTestView {
    ok: bool,
    /// What happened, in words: the provider's answer when it refused.
    message: String,
}

/// Calls the provider once with the source's credential and says whether it works (admins).
#[utoipa::path(post, path = "/sources/{id}/test", tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 200, body = ConnectionTestView), Refusals, Missing))]
pub async fn api_test(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let (ok, message) = test_connection(&state, &caller, parse_id(&id)?).await?;
    Ok(Json(ConnectionTestView { ok, message }).into_response())
}

/// Stops the source's scheduled syncs until it is resumed (admins); its data stays.
#[utoipa::path(post, path = "/sources/{id}/pause", tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 204, description = "Paused"), Refusals, Missing))]
pub async fn api_pause(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    set_paused(&state, &caller, parse_id(&id)?, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/sources/{id}/resume", tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 204, description = "Resumed: scheduled syncs run again"), Refusals, Missing))]
pub async fn api_resume(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    set_paused(&state, &caller, parse_id(&id)?, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Replaces the source's credential (admins); where the organization asks for approval of new
/// credentials, it waits for another admin (`202`).
#[utoipa::path(post, path = "/sources/{id}/rotate", tag = "sources", request_body = SecretForm,
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 204, description = "Replaced"), (status = 202, body = QueuedView), Refusals, BodyRefusals, Missing))]
pub async fn api_rotate(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SecretForm>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    Ok(match rotate_secret(&state, &caller, parse_id(&id)?, &body).await? {
        Submitted::Applied(_) => StatusCode::NO_CONTENT.into_response(),
        Submitted::Queued(request) => queued(&state, request, Nothing {}),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeepData {
    /// Keep the synced data in the lake (default) or remove it too.
    keep_data: Option<bool>,
}

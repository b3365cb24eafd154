//! Connected sources: UI and API. Credentials go in once and never come out (S1, S2); every
//! change is audited (S16) without the secret.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::ApiScope;
use burnrate_sources::{DATABASE_KINDS, DatabaseConfig, schema_name};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::account::NoFields;
use super::api::{ApiJson, ApiQuery};
use super::approvals::{Nothing, QueuedView, queued};
use super::openapi::{BodyRefusals, Conflicting, Missing, Refusals};
use super::{parse_id, see_other};
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{DatabaseRow, Nav, SourceRow, SourcesPage, render, when};
use crate::security::CsrfForm;
use burnrate_app::Submitted;
use burnrate_app::sources::{
    Freshness, Listed, NewCredential, NewSourceInput, SettingsChange, SourceKind, provider_config,
};

async fn page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let listed = state.app.sources(&who.actor()).await?;
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (databases, sources): (Vec<_>, Vec<_>) =
        listed.into_iter().partition(|l| DATABASE_KINDS.contains(&l.source.kind.as_str()));
    let page = SourcesPage {
        nav: Some(Nav::new(who, "sources")),
        csrf: who.csrf.clone(),
        databases: databases
            .into_iter()
            .map(|Listed { source: s, .. }| {
                let config: Option<DatabaseConfig> = serde_json::from_str(&s.config).ok();
                DatabaseRow {
                    id: s.id.to_string(),
                    schema: schema_name(&s.name),
                    kind: if s.kind == "mysql" { "MySQL / MariaDB" } else { "PostgreSQL" }.into(),
                    address: config
                        .map(|c| format!("{}:{}/{} as {}", c.host, c.port, c.database, c.user))
                        .unwrap_or_default(),
                    hint: s.secret_hint,
                    name: s.name,
                }
            })
            .collect(),
        sources: sources
            .into_iter()
            .map(|Listed { source: s, fresh }| {
                let config = provider_config(&s)?;
                Ok(SourceRow {
                    id: s.id.to_string(),
                    name: s.name,
                    kind: SourceKind::parse(&s.kind).map(|k| k.label().to_owned()).unwrap_or(s.kind),
                    hint: s.secret_hint,
                    paused: s.paused,
                    synced: s.last_success_at.is_some(),
                    error: s.last_error,
                    last_success: s.last_success_at.map(when).unwrap_or_else(|| "never".into()),
                    fresh: freshness_text(fresh, config.repull_days),
                    config,
                    progress: s.progress,
                    summary: s.last_sync_summary,
                    credits: s.credits_remaining.map(|c| {
                        let read = s.credits_checked_at.map(|t| format!(" (read {})", when(t))).unwrap_or_default();
                        format!("USD {c} credits left{read}")
                    }),
                })
            })
            .collect::<Result<_, AppError>>()?,
        can_manage: who.role.is_admin(),
        notice,
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// "costs through 2026-11-21 · usage through 2026-11-21 · final through 2026-11-18", or a dash
/// before the first sync. Days the next syncs re-pull are not final: providers still revise them.
fn freshness_text(fresh: Freshness, repull_days: u32) -> String {
    let mut parts: Vec<String> = [("costs", fresh.costs), ("usage", fresh.usage)]
        .into_iter()
        .filter_map(|(table, day)| day.map(|d| format!("{table} through {d}")))
        .collect();
    if let Some(last) = fresh.costs {
        parts.push(format!("final through {}", final_through(last, repull_days)));
    }
    if parts.is_empty() { "—".into() } else { parts.join(" · ") }
}

/// The last day the provider is no longer expected to revise: before the days each sync re-pulls.
fn final_through(last: NaiveDate, repull_days: u32) -> NaiveDate {
    last - chrono::Duration::days(i64::from(repull_days.max(1)))
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn list(State(state): State<AppState>, who: Authed, Query(q): Query<Done>) -> Result<Response, AppError> {
    let notice = match q.done.as_deref() {
        Some("connected") => Some("Connected. The first sync is running; refresh in a moment.".to_owned()),
        Some("database") => Some(
            "Database connected. Its tables appear in SQL under the name shown; they are read when a query names them."
                .to_owned(),
        ),
        Some("syncing") => Some("Sync started.".to_owned()),
        Some("paused") => Some("Paused: no syncs until you resume.".to_owned()),
        Some("resumed") => Some("Resumed.".to_owned()),
        Some("rotated") => Some("Key replaced. The old key is no longer stored.".to_owned()),
        Some("settings") => Some("Settings saved; they apply from the next sync.".to_owned()),
        Some("deleted") => Some("Source removed.".to_owned()),
        Some("queued") => Some(
            "Sent for approval: the credential takes effect once another admin approves it (see Approvals).".to_owned(),
        ),
        _ => None,
    };
    page(&state, &who, notice, None).await
}

/// Connects a source (the application decides) and starts its first sync when it was applied.
async fn connect(state: &AppState, caller: &impl Caller, input: NewSourceInput) -> Result<Submitted, AppError> {
    // A database is read when a query names it: nothing to sync.
    let provider = !DATABASE_KINDS.contains(&input.kind.as_str());
    let submitted = state.app.connect_source(&caller.actor(), input).await?;
    if let Submitted::Applied(id) = submitted
        && provider
    {
        state.app.sync_soon(caller.scope(), id);
    }
    Ok(submitted)
}

#[derive(Deserialize)]
pub struct NewDatabaseForm {
    kind: String,
    name: String,
    host: String,
    port: String,
    database: String,
    user: String,
    #[serde(default)]
    schema: String,
    #[serde(default)]
    tls: String,
    secret: String,
}

pub async fn create_database(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(f): CsrfForm<NewDatabaseForm>,
) -> Result<Response, AppError> {
    let port = match f.port.trim() {
        "" => None,
        p => {
            Some(p.parse::<u16>().map_err(|_| AppError::Validation("Port: expected a number from 1 to 65535.".into())))
        }
    };
    let input = port.transpose().map(|port| NewSourceInput {
        kind: f.kind,
        name: f.name,
        secret: f.secret,
        access_key_id: None,
        role_arn: None,
        external_id: None,
        cost_allocation_tag: None,
        tenant_id: None,
        client_id: None,
        scope: None,
        billing_table: None,
        project_id: None,
        location: None,
        base_url: None,
        host: Some(f.host),
        port,
        database: Some(f.database),
        user: Some(f.user),
        schema: Some(f.schema),
        tls: Some(f.tls),
    });
    match async { connect(&state, &who, input?).await }.await {
        Ok(Submitted::Applied(_)) => Ok(see_other("/sources?done=database")),
        Ok(Submitted::Queued(_)) => Ok(see_other("/sources?done=queued")),
        Err(AppError::Validation(m)) | Err(AppError::Conflict(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct NewSourceForm {
    kind: String,
    name: String,
    secret: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    role_arn: String,
    #[serde(default)]
    external_id: String,
    #[serde(default)]
    cost_allocation_tag: String,
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    billing_table: String,
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    base_url: String,
}

pub async fn create(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(f): CsrfForm<NewSourceForm>,
) -> Result<Response, AppError> {
    let input = NewSourceInput {
        kind: f.kind,
        name: f.name,
        secret: f.secret,
        access_key_id: Some(f.access_key_id).filter(|a| !a.trim().is_empty()),
        role_arn: Some(f.role_arn),
        external_id: Some(f.external_id),
        cost_allocation_tag: Some(f.cost_allocation_tag),
        tenant_id: Some(f.tenant_id),
        client_id: Some(f.client_id),
        scope: Some(f.scope),
        billing_table: Some(f.billing_table),
        project_id: Some(f.project_id),
        location: Some(f.location),
        base_url: Some(f.base_url),
        host: None,
        port: None,
        database: None,
        user: None,
        schema: None,
        tls: None,
    };
    match connect(&state, &who, input).await {
        Ok(Submitted::Applied(_)) => Ok(see_other("/sources?done=connected")),
        Ok(Submitted::Queued(_)) => Ok(see_other("/sources?done=queued")),
        Err(AppError::Validation(m)) | Err(AppError::Conflict(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

async fn remove(state: &AppState, caller: &impl Caller, id: Uuid, keep_data: bool) -> Result<(), AppError> {
    Ok(state.app.delete_source(&caller.actor(), id, keep_data).await?)
}

async fn request_sync(state: &AppState, caller: &impl Caller, id: Uuid) -> Result<(), AppError> {
    Ok(state.app.request_sync(&caller.actor(), id).await?)
}

async fn set_paused(state: &AppState, caller: &impl Caller, id: Uuid, paused: bool) -> Result<(), AppError> {
    Ok(state.app.set_source_paused(&caller.actor(), id, paused).await?)
}

pub async fn pause(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    set_paused(&state, &who, parse_id(&id)?, true).await?;
    Ok(see_other("/sources?done=paused"))
}

pub async fn resume(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    set_paused(&state, &who, parse_id(&id)?, false).await?;
    Ok(see_other("/sources?done=resumed"))
}

/// A new credential for a source (for AWS, a new access key: its id and secret).
#[derive(Deserialize, ToSchema)]
pub struct SecretForm {
    secret: String,
    /// AWS: the new key's id (an AWS key is replaced as a pair).
    #[serde(default)]
    access_key_id: Option<String>,
}

/// Replaces a source's credential (the application applies or queues it).
async fn rotate_secret(
    state: &AppState,
    caller: &impl Caller,
    id: Uuid,
    new: &SecretForm,
) -> Result<Submitted, AppError> {
    let new = NewCredential { secret: new.secret.clone(), access_key_id: new.access_key_id.clone() };
    Ok(state.app.rotate_source(&caller.actor(), id, new).await?)
}

pub async fn rotate(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<SecretForm>,
) -> Result<Response, AppError> {
    match rotate_secret(&state, &who, parse_id(&id)?, &f).await {
        Ok(Submitted::Applied(_)) => Ok(see_other("/sources?done=rotated")),
        Ok(Submitted::Queued(_)) => Ok(see_other("/sources?done=queued")),
        Err(AppError::Validation(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct SettingsForm {
    base_url: String,
    backfill_days: String,
    interval_minutes: String,
    /// The credential again: needed only with a new base URL (S23).
    #[serde(default)]
    secret: String,
    #[serde(default)]
    access_key_id: Option<String>,
}

/// The credential entered again, when one was.
fn credential(secret: Option<String>, access_key_id: Option<String>) -> Option<NewCredential> {
    secret.filter(|s| !s.trim().is_empty()).map(|secret| NewCredential { secret, access_key_id })
}

pub async fn settings(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<SettingsForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let number = |v: &str, what: &str| {
        v.trim().parse::<u32>().map_err(|_| AppError::Validation(format!("{what}: a whole number.")))
    };
    let result = async {
        let days = number(&f.backfill_days, "Backfill")?;
        let minutes = number(&f.interval_minutes, "Sync interval")?;
        let change = SettingsChange {
            base_url: Some(f.base_url.clone()),
            backfill_days: Some(days),
            interval_minutes: Some(minutes),
            credential: credential(Some(f.secret.clone()), f.access_key_id.clone()),
        };
        Ok(state.app.change_source_settings(&who.actor(), id, change).await?)
    }
    .await;
    match result {
        Ok(Submitted::Applied(_)) => Ok(see_other("/sources?done=settings")),
        Ok(Submitted::Queued(_)) => Ok(see_other("/sources?done=queued")),
        Err(AppError::Validation(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

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

#[derive(Deserialize)]
pub struct DeleteForm {
    keep_data: String,
}

pub async fn delete(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DeleteForm>,
) -> Result<Response, AppError> {
    remove(&state, &who, parse_id(&id)?, f.keep_data != "no").await?;
    Ok(see_other("/sources?done=deleted"))
}

pub async fn sync_now(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    request_sync(&state, &who, parse_id(&id)?).await?;
    Ok(see_other("/sources?done=syncing"))
}

/// Calls the provider once with the source's credential (yesterday's costs): whether it works,
/// in words.
async fn test_connection(state: &AppState, caller: &impl Caller, id: Uuid) -> Result<(bool, String), AppError> {
    let (name, outcome) = state.app.test_source(&caller.actor(), id).await?;
    Ok(match outcome {
        Ok(n) => (true, format!("Connection to {name} works: the key was accepted ({n} cost lines for yesterday).")),
        Err(e) => (false, format!("Connection to {name} failed: {e}")),
    })
}

pub async fn test(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    match test_connection(&state, &who, parse_id(&id)?).await? {
        (true, message) => page(&state, &who, Some(message), None).await,
        (false, message) => page(&state, &who, None, Some(message)).await,
    }
}

// --- API -------------------------------------------------------------------------------------

/// A connected source and how fresh its data is.
#[derive(Serialize, ToSchema)]
pub struct SourceView {
    id: Uuid,
    /// openai, anthropic, aws, openrouter, postgres or mysql.
    kind: String,
    name: String,
    /// Settings without secrets: base URL, backfill depth, interval; host and database of a
    /// database source.
    #[schema(value_type = Object)]
    config: serde_json::Value,
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
        .map(|Listed { source: s, fresh }| {
            // A database source has no re-pulled days: what it holds is final.
            let repull_days = match DATABASE_KINDS.contains(&s.kind.as_str()) {
                true => 0,
                false => provider_config(&s)?.repull_days,
            };
            Ok(SourceView {
                final_through: fresh.costs.map(|d| final_through(d, repull_days)),
                costs_through: fresh.costs,
                usage_through: fresh.usage,
                id: s.id,
                kind: s.kind,
                name: s.name,
                config: serde_json::from_str(&s.config).unwrap_or_else(|_| json!({})),
                secret_last4: s.secret_hint,
                secret_set_at: s.secret_set_at,
                paused: s.paused,
                last_attempt_at: s.last_attempt_at,
                last_success_at: s.last_success_at,
                last_error: s.last_error,
                progress: s.progress,
                credits_remaining: s.credits_remaining,
                credits_checked_at: s.credits_checked_at,
                last_sync_summary: s.last_sync_summary,
            })
        })
        .collect::<Result<_, AppError>>()?;
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeepData {
    /// Keep the synced data in the lake (default) or remove it too.
    keep_data: Option<bool>,
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
    Ok((StatusCode::ACCEPTED, Json(SyncStarted { id, status: "sync started" })).into_response())
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

//! Connected sources: UI and API. Credentials go in once and never come out (S1, S2); every
//! change is audited (S16) without the secret.

mod api;
mod ui;

use axum::Router;
use axum::routing::{get, post};
use burnrate_app::Submitted;
use burnrate_app::sources::{Freshness, NewCredential, NewSourceInput};
use burnrate_core::DATABASE_KINDS;
use burnrate_core::SourceId;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;

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

/// Connects a source (the application decides) and starts its first sync when it was applied.
async fn connect(state: &AppState, caller: &impl Caller, input: NewSourceInput) -> Result<Submitted, AppError> {
    // A database is read when a query names it: nothing to sync.
    let provider = !DATABASE_KINDS.contains(&input.kind.as_str());
    let submitted = state.app.connect_source(&caller.actor(), input).await?;
    if let Submitted::Applied(id) = submitted
        && provider
    {
        state.app.sync_soon(caller.scope(), SourceId::from_uuid(id));
    }
    Ok(submitted)
}

async fn remove(state: &AppState, caller: &impl Caller, id: SourceId, keep_data: bool) -> Result<(), AppError> {
    Ok(state.app.delete_source(&caller.actor(), id, keep_data).await?)
}

async fn request_sync(state: &AppState, caller: &impl Caller, id: SourceId) -> Result<(), AppError> {
    Ok(state.app.request_sync(&caller.actor(), id).await?)
}

async fn set_paused(state: &AppState, caller: &impl Caller, id: SourceId, paused: bool) -> Result<(), AppError> {
    Ok(state.app.set_source_paused(&caller.actor(), id, paused).await?)
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
    id: SourceId,
    new: &SecretForm,
) -> Result<Submitted, AppError> {
    let new = NewCredential { secret: new.secret.clone(), access_key_id: new.access_key_id.clone() };
    Ok(state.app.rotate_source(&caller.actor(), id, new).await?)
}

/// The credential entered again, when one was.
fn credential(secret: Option<String>, access_key_id: Option<String>) -> Option<NewCredential> {
    secret.filter(|s| !s.trim().is_empty()).map(|secret| NewCredential { secret, access_key_id })
}

/// Calls the provider once with the source's credential (yesterday's costs): whether it works,
/// in words.
async fn test_connection(state: &AppState, caller: &impl Caller, id: SourceId) -> Result<(bool, String), AppError> {
    let (name, outcome) = state.app.test_source(&caller.actor(), id).await?;
    Ok(match outcome {
        Ok(n) => (true, format!("Connection to {name} works: the key was accepted ({n} cost lines for yesterday).")),
        Err(e) => (false, format!("Connection to {name} failed: {e}")),
    })
}

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route("/sources", get(ui::list).post(ui::create))
        .route("/sources/databases", post(ui::create_database))
        .route("/sources/{id}/sync", post(ui::sync_now))
        .route("/sources/{id}/test", post(ui::test))
        .route("/sources/{id}/pause", post(ui::pause))
        .route("/sources/{id}/resume", post(ui::resume))
        .route("/sources/{id}/rotate", post(ui::rotate))
        .route("/sources/{id}/settings", post(ui::settings))
        .route("/sources/{id}/delete", post(ui::delete))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::api_list, api::api_create))
        .routes(routes!(api::api_delete, api::api_settings))
        .routes(routes!(api::api_sync))
        .routes(routes!(api::api_test))
        .routes(routes!(api::api_pause))
        .routes(routes!(api::api_resume))
        .routes(routes!(api::api_rotate))
}

//! API keys: made by a member for scripts, scoped to read, write or admin — never more than the
//! member who made it may — shown once, revocable.

mod api;
mod ui;

use axum::Router;
use axum::routing::{get, post};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(ui::api_keys).post(ui::create_api_key))
        .route("/api-keys/{id}/revoke", post(ui::revoke_api_key))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(api::api_keys, api::create_api_key)).routes(routes!(api::revoke_api_key))
}

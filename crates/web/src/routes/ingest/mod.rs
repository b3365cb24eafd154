//! Request ingestion over OTLP: ingest keys (made, listed and revoked by admins like API keys,
//! but write-only) and the traces receiver, which listens on its own address.

mod api;
mod receiver;
mod ui;

use axum::Router;
use axum::routing::{get, post};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub use receiver::router as receiver;

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route("/ingest-keys", get(ui::ingest_keys).post(ui::create_ingest_key))
        .route("/ingest-keys/{id}/revoke", post(ui::revoke_ingest_key))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::ingest_keys, api::create_ingest_key))
        .routes(routes!(api::revoke_ingest_key))
}

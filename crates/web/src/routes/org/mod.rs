//! The organization itself: its overview page (spend, budgets, notices) and, through the API, its
//! settings, spend summary and operators' notices.

mod api;
mod ui;

use axum::Router;
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new().route("/", get(ui::overview))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::org, api::update_org))
        .routes(routes!(api::api_spend))
        .routes(routes!(api::api_notices))
}

//! Reconciliation: `/reconciliation` and `/api/v1/reconciliation`. What providers billed against
//! what usage costs at the price book's rates, per day, provider, model and project.

mod api;
mod ui;

use axum::Router;
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The page.
pub(super) fn pages() -> Router<AppState> {
    Router::new().route("/reconciliation", get(ui::reconciliation_page))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(api::api_reconciliation))
}

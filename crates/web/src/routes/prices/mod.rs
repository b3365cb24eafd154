//! The organization's own prices: `/api/v1/prices/overrides`. Negotiated rates or discounts for
//! a model over some days, winning over the instance's catalogue when usage is priced.

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
        .route("/prices", get(ui::prices_page))
        .route("/prices/overrides", post(ui::create_form))
        .route("/prices/overrides/{id}/delete", post(ui::delete_form))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::api_list, api::api_create))
        .routes(routes!(api::api_delete))
        .routes(routes!(api::api_reprice))
}

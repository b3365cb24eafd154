//! The organization's own prices: `/api/v1/prices/overrides`. Negotiated rates or discounts for
//! a model over some days, winning over the instance's catalogue when usage is priced.

mod api;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::api_list, api::api_create))
        .routes(routes!(api::api_delete))
        .routes(routes!(api::api_reprice))
}

//! Attributed spend: `/api/v1/spend/attributed`. Billed cost shared among the requests
//! applications reported, by customer, feature, team, user or service.

mod api;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(api::attributed_spend))
}

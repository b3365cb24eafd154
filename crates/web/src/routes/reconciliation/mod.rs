//! Reconciliation: `/api/v1/reconciliation`. What providers billed against what usage costs at
//! the price book's rates, per day, provider and model.

mod api;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(api::api_reconciliation))
}

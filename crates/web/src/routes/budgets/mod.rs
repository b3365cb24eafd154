//! Budgets: `/api/v1/budgets`. burnrate cannot stop provider calls; a budget tells people, it does
//! not block (soft budgets).

mod api;
mod ui;

use axum::Router;
use axum::routing::{get, post};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;

async fn remove(state: &AppState, caller: &impl Caller, id: burnrate_core::BudgetId) -> Result<(), AppError> {
    Ok(state.app.delete_budget(&caller.actor(), id).await?)
}

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route("/budgets", get(ui::budgets_page).post(ui::create_form))
        .route("/budgets/{id}/delete", post(ui::delete_form))
        .route("/budgets/time-zone", post(ui::zone_form))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::api_list, api::api_create))
        .routes(routes!(api::api_delete, api::api_update))
}

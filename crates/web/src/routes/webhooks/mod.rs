//! Webhook destinations: `/api/v1/webhooks`. A URL is saved only if the egress guard lets it
//! through (S14: https, public addresses, or the operator's allow-list); the signing secret is
//! generated here, shown once in the answer to its creation, and sealed.

mod api;
mod ui;

pub(crate) use api::SigningSecret;
use axum::Router;
use axum::routing::{get, post};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;

async fn remove(state: &AppState, caller: &impl Caller, id: burnrate_core::WebhookId) -> Result<(), AppError> {
    Ok(state.app.delete_webhook(&caller.actor(), id).await?)
}

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(ui::webhooks_page).post(ui::create_form))
        .route("/webhooks/{id}/test", post(ui::test_form))
        .route("/webhooks/{id}/delete", post(ui::delete_form))
        .route("/webhooks/{id}/resume", post(ui::resume_form))
        .route("/webhooks/{id}/deliveries/{delivery}/redeliver", post(ui::redeliver_form))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::api_list, api::api_create))
        .routes(routes!(api::api_delete))
        .routes(routes!(api::api_test))
        .routes(routes!(api::api_deliveries))
        .routes(routes!(api::api_redeliver))
        .routes(routes!(api::api_resume))
}

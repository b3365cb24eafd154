//! The approval queue (S17): `/approvals` and `/api/v1/approvals`. The rules — what waits,
//! who decides, what applying does — are the application's (`burnrate_app::approvals`).

mod api;
mod ui;

use axum::Router;
use axum::routing::{get, post};
use burnrate_app::approvals::{ApprovalRequest, ApprovalState};
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;

/// Approves (applying the change) or rejects a request: the application decides.
async fn decide(
    state: &AppState,
    caller: &impl Caller,
    id: Uuid,
    approve: bool,
    comment: Option<&str>,
) -> Result<ApprovalRequest, AppError> {
    Ok(state.app.decide(&caller.actor(), id, approve, comment).await?)
}

/// A request's state as people read it (`expired` is a pending request past its time).
fn shown_state(r: &ApprovalRequest) -> &'static str {
    if r.state == ApprovalState::Pending && Utc::now() >= r.expires_at { "expired" } else { r.state.as_str() }
}

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(ui::approvals_page))
        .route("/approvals/{id}/approve", post(ui::approve_form))
        .route("/approvals/{id}/reject", post(ui::reject_form))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::api_list))
        .routes(routes!(api::api_get))
        .routes(routes!(api::api_approve))
        .routes(routes!(api::api_reject))
}

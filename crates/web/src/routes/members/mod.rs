//! Members and invitations: who belongs to the organization and with which role. Promotions to
//! admin or owner follow the approval policy; removal and demotion apply at once (S22).

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
        .route("/members", get(ui::members))
        .route("/members/invite", post(ui::invite))
        .route("/members/{user_id}/role", post(ui::change_role))
        .route("/members/{user_id}/remove", post(ui::remove_member))
        .route("/members/invitations/{id}/revoke", post(ui::revoke_invitation))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::members, api::invite))
        .routes(routes!(api::change_role, api::remove_member))
        .routes(routes!(api::invitations))
        .routes(routes!(api::revoke_invitation))
}

//! The organization's side of support access (S18): the requests operators made, consent or
//! decline, and ending a grant at any time — as a page and through `/api/v1/support-grants`.

mod api;
mod ui;

use axum::Router;
use axum::routing::{get, post};
use burnrate_app::support::SupportGrant;
use burnrate_core::SupportGrantId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;

/// What an organization can do to a grant.
#[derive(Clone, Copy)]
enum Decision {
    Consent,
    Decline,
    Revoke,
}

async fn decide(
    state: &AppState,
    caller: &impl Caller,
    id: SupportGrantId,
    decision: Decision,
) -> Result<SupportGrant, AppError> {
    let (support, actor) = (state.app.support(), caller.actor());
    Ok(match decision {
        Decision::Consent => support.consent_to_access(&actor, id).await?,
        Decision::Decline => support.decline_access(&actor, id).await?,
        Decision::Revoke => support.revoke_for_org(&actor, id).await?,
    })
}

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route("/support", get(ui::support_page))
        .route("/support/{id}/consent", post(ui::consent_form))
        .route("/support/{id}/decline", post(ui::decline_form))
        .route("/support/{id}/revoke", post(ui::revoke_form))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::api_list))
        .routes(routes!(api::api_consent))
        .routes(routes!(api::api_decline))
        .routes(routes!(api::api_revoke))
}

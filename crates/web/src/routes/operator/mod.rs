//! The operators' side of support access (S18), under `/operator`: their own login with a TOTP
//! second factor, asking for and approving grants, and a read-only view of an organization while
//! a grant of theirs is active. Without one, every organization route answers 404, and every
//! request made under one is written to that organization's audit log before it is served.

mod ui;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::AppState;

/// The pages; those of an organization only under an active grant.
pub(super) fn pages(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/operator", get(ui::home))
        .route("/operator/login", get(ui::login_page).post(ui::login))
        .route("/operator/logout", post(ui::logout))
        .route("/operator/grants", post(ui::request))
        .route("/operator/grants/{id}/approve", post(ui::approve))
        .route("/operator/grants/{id}/revoke", post(ui::revoke))
        .route("/operator/notices", post(ui::publish))
        .merge(
            // Read-only by construction: only GET routes, each behind the grant check.
            Router::new()
                .route("/operator/orgs/{org}", get(ui::org_overview))
                .route("/operator/orgs/{org}/audit", get(ui::org_audit))
                .route_layer(from_fn_with_state(state.clone(), ui::under_grant)),
        )
}

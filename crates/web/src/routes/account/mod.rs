//! Accounts (S3, S4, S9): sign-up, email verification, login, logout, password reset, invitation
//! acceptance, second factors and the sessions of one's own account. Login and reset answer the same for known and unknown addresses, and cost the same
//! (one bcrypt either way).

mod ui;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route("/login", get(ui::login_page).post(ui::login))
        .route("/login/code", post(ui::login_code))
        .route("/account/second-factor/setup", post(ui::second_factor_setup))
        .route("/account/second-factor/confirm", post(ui::second_factor_confirm))
        .route("/account/second-factor/disable", post(ui::second_factor_disable))
        .route("/logout", post(ui::logout))
        .route("/signup", get(ui::signup_page).post(ui::signup))
        .route("/verify-email/{token}", get(ui::verify_page).post(ui::verify))
        .route("/password-reset", get(ui::reset_request_page).post(ui::reset_request))
        .route("/password-reset/{token}", get(ui::reset_page).post(ui::reset))
        .route("/invitations/{token}", get(ui::invitation_page).post(ui::accept_invitation))
        .route("/sessions", get(ui::sessions))
        .route("/sessions/end-others", post(ui::end_other_sessions))
        .route("/sessions/{handle}/end", post(ui::end_session))
}

//! The route table: UI pages (with the CSRF cookie), the JSON API (with CORS for our own origin
//! only), and the operational endpoints. Security headers and the body limit cover everything.

mod account;
mod actions;
mod api;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod budgets;
mod console;
mod operator;
mod ops;
mod org;
mod sources;
mod sql;
mod support;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::AppState;
use crate::security::{csrf_cookie, security_headers};

/// The answer to a form post that worked: go and look (303, so a reload does not post again).
pub(crate) fn see_other(to: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut r = axum::response::Redirect::to(to).into_response();
    *r.status_mut() = axum::http::StatusCode::SEE_OTHER;
    r
}

/// Ids in paths: anything that is not a well-formed id cannot name a row, so it is a 404.
/// An admin's change to one of the organization's things (`target`: its type and id), made by
/// `f` (false: no such thing) and audited as `action`, in one transaction.
pub(crate) async fn change(
    state: &crate::AppState,
    caller: &impl crate::auth::Caller,
    target: (&'static str, uuid::Uuid),
    action: &'static str,
    f: impl AsyncFnOnce(&mut burnrate_store::TenantTx) -> Result<bool, crate::error::AppError>,
) -> Result<(), crate::error::AppError> {
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    if !f(&mut tx).await? {
        return Err(crate::error::AppError::NotFound);
    }
    tx.audit(caller.entry(action, target.0, target.1.to_string(), serde_json::json!({}))).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, crate::error::AppError> {
    raw.parse().map_err(|_| crate::error::AppError::NotFound)
}

/// Forms and API bodies are small; anything larger is refused before it is read.
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let ui = Router::new()
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route("/signup", get(account::signup_page).post(account::signup))
        .route("/verify-email/{token}", get(account::verify_page).post(account::verify))
        .route("/password-reset", get(account::reset_request_page).post(account::reset_request))
        .route("/password-reset/{token}", get(account::reset_page).post(account::reset))
        .route("/invitations/{token}", get(account::invitation_page).post(account::accept_invitation))
        .route("/", get(org::overview))
        .route("/sources", get(sources::list).post(sources::create))
        .route("/sources/databases", post(sources::create_database))
        .route("/sources/{id}/sync", post(sources::sync_now))
        .route("/sources/{id}/test", post(sources::test))
        .route("/sources/{id}/pause", post(sources::pause))
        .route("/sources/{id}/resume", post(sources::resume))
        .route("/sources/{id}/rotate", post(sources::rotate))
        .route("/sources/{id}/settings", post(sources::settings))
        .route("/sources/{id}/delete", post(sources::delete))
        .route("/budgets", get(budgets::budgets_page).post(budgets::create_form))
        .route("/budgets/{id}/delete", post(budgets::delete_form))
        .route("/budgets/time-zone", post(budgets::zone_form))
        .route("/sql", get(sql::sql_page))
        .route("/sql/console", get(console::console_page).post(console::run))
        .route("/webhooks", get(webhooks::webhooks_page).post(webhooks::create_form))
        .route("/webhooks/{id}/test", post(webhooks::test_form))
        .route("/webhooks/{id}/delete", post(webhooks::delete_form))
        .route("/webhooks/{id}/deliveries/{delivery}/redeliver", post(webhooks::redeliver_form))
        .route("/sql/console.csv", post(console::csv))
        .route("/sql/credentials", post(sql::create_form))
        .route("/sql/credentials/{id}/revoke", post(sql::revoke_form))
        .route("/members", get(org::members))
        .route("/members/invite", post(org::invite))
        .route("/members/{user_id}/role", post(org::change_role))
        .route("/members/{user_id}/remove", post(org::remove_member))
        .route("/members/invitations/{id}/revoke", post(org::revoke_invitation))
        .route("/sessions", get(org::sessions))
        .route("/sessions/end-others", post(org::end_other_sessions))
        .route("/sessions/{handle}/end", post(org::end_session))
        .route("/api-keys", get(org::api_keys).post(org::create_api_key))
        .route("/api-keys/{id}/revoke", post(org::revoke_api_key))
        .route("/approvals", get(approvals::approvals_page))
        .route("/approvals/{id}/approve", post(approvals::approve_form))
        .route("/approvals/{id}/reject", post(approvals::reject_form))
        .route("/audit", get(audit::audit_page))
        .route("/audit.csv", get(audit::audit_csv))
        .route("/support", get(support::support_page))
        .route("/support/{id}/consent", post(support::consent_form))
        .route("/support/{id}/decline", post(support::decline_form))
        .route("/support/{id}/revoke", post(support::revoke_form))
        .route("/operator", get(operator::home))
        .route("/operator/login", get(operator::login_page).post(operator::login))
        .route("/operator/logout", post(operator::logout))
        .route("/operator/grants", post(operator::request))
        .route("/operator/grants/{id}/approve", post(operator::approve))
        .route("/operator/grants/{id}/revoke", post(operator::revoke))
        .merge(
            // Read-only by construction: only GET routes, each behind the grant check.
            Router::new()
                .route("/operator/orgs/{org}", get(operator::org_overview))
                .route("/operator/orgs/{org}/audit", get(operator::org_audit))
                .route_layer(from_fn_with_state(state.clone(), operator::under_grant)),
        )
        .fallback(ops::not_found)
        .layer(from_fn(csrf_cookie));

    let origin = HeaderValue::from_str(&state.config.origin()).expect("an origin is a valid header value");
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list([origin]))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);
    let api = Router::new()
        .route("/org", get(api::org).patch(api::update_org))
        .route("/members", get(api::members).post(api::invite))
        .route("/members/{user_id}", axum::routing::patch(api::change_role).delete(api::remove_member))
        .route("/api-keys", get(api::api_keys).post(api::create_api_key))
        .route("/api-keys/{id}", axum::routing::delete(api::revoke_api_key))
        .route("/sql-credentials", get(sql::api_list).post(sql::api_create))
        .route("/sql-credentials/{id}", axum::routing::delete(sql::api_revoke))
        .route("/audit", get(audit::api_audit))
        .route("/approvals", get(approvals::api_list))
        .route("/approvals/{id}", get(approvals::api_get))
        .route("/approvals/{id}/approve", post(approvals::api_approve))
        .route("/approvals/{id}/reject", post(approvals::api_reject))
        .route("/budgets", get(budgets::api_list).post(budgets::api_create))
        .route("/budgets/{id}", axum::routing::delete(budgets::api_delete).patch(budgets::api_update))
        .route("/webhooks", get(webhooks::api_list).post(webhooks::api_create))
        .route("/webhooks/{id}", axum::routing::delete(webhooks::api_delete))
        .route("/webhooks/{id}/test", post(webhooks::api_test))
        .route("/webhooks/{id}/deliveries", get(webhooks::api_deliveries))
        .route("/webhooks/{id}/deliveries/{delivery}/redeliver", post(webhooks::api_redeliver))
        .route("/sources", get(sources::api_list).post(sources::api_create))
        .route("/sources/{id}", axum::routing::delete(sources::api_delete).patch(sources::api_settings))
        .route("/sources/{id}/sync", post(sources::api_sync))
        .route("/support-grants", get(support::api_list))
        .route("/support-grants/{id}/consent", post(support::api_consent))
        .route("/support-grants/{id}/decline", post(support::api_decline))
        .route("/support-grants/{id}/revoke", post(support::api_revoke))
        .fallback(api::not_found)
        .layer(cors);

    Router::new()
        .merge(ui)
        .nest("/api/v1", api)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/static/app.css", get(ops::stylesheet))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), security_headers))
        .with_state(state)
}

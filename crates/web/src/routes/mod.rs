//! The route table: UI pages (with the CSRF cookie), the JSON API (with CORS for our own origin
//! only), and the operational endpoints. Security headers and the body limit cover everything.

mod account;
mod api;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod budgets;
mod console;
mod explore;
mod exports;
mod openapi;
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
use utoipa::OpenApi as _;
use utoipa_axum::routes;

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
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, crate::error::AppError> {
    raw.parse().map_err(|_| crate::error::AppError::NotFound)
}

/// The days `from` (inclusive) to `to` (exclusive) of a query, each `YYYY-MM-DD` or empty (`None`);
/// when both are given, `to` must come after `from`.
pub(crate) fn day_range(
    from: &str,
    to: &str,
) -> Result<(Option<chrono::NaiveDate>, Option<chrono::NaiveDate>), crate::error::AppError> {
    let day = |name: &str, v: &str| {
        (!v.is_empty())
            .then(|| {
                v.parse().map_err(|_| crate::error::AppError::Validation(format!("{name}: {v:?} is not YYYY-MM-DD")))
            })
            .transpose()
    };
    let (from, to) = (day("from", from)?, day("to", to)?);
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(crate::error::AppError::Validation(
            "to: must be after from (it is the day after the last one)".into(),
        ));
    }
    Ok((from, to))
}

/// Forms and API bodies are small; anything larger is refused before it is read.
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let ui = Router::new()
        .route("/login", get(account::login_page).post(account::login))
        .route("/login/code", post(account::login_code))
        .route("/account/second-factor/setup", post(account::second_factor_setup))
        .route("/account/second-factor/confirm", post(account::second_factor_confirm))
        .route("/account/second-factor/disable", post(account::second_factor_disable))
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
        .route("/exports/focus", get(exports::download))
        .route("/explore", get(explore::explore))
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
        .route("/operator/notices", post(operator::publish))
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
    let (api, doc) = utoipa_axum::router::OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(api::org, api::update_org))
        .routes(routes!(api::members, api::invite))
        .routes(routes!(api::change_role, api::remove_member))
        .routes(routes!(api::api_keys, api::create_api_key))
        .routes(routes!(api::revoke_api_key))
        .routes(routes!(api::invitations))
        .routes(routes!(api::revoke_invitation))
        .routes(routes!(approvals::api_list))
        .routes(routes!(approvals::api_get))
        .routes(routes!(approvals::api_approve))
        .routes(routes!(approvals::api_reject))
        .routes(routes!(sql::api_list, sql::api_create))
        .routes(routes!(sql::api_revoke))
        .routes(routes!(audit::api_audit))
        .routes(routes!(console::api_query))
        .routes(routes!(exports::api_export))
        .routes(routes!(org::api_spend))
        .routes(routes!(org::api_notices))
        .routes(routes!(budgets::api_list, budgets::api_create))
        .routes(routes!(budgets::api_delete, budgets::api_update))
        .routes(routes!(webhooks::api_list, webhooks::api_create))
        .routes(routes!(webhooks::api_delete))
        .routes(routes!(webhooks::api_test))
        .routes(routes!(webhooks::api_deliveries))
        .routes(routes!(webhooks::api_redeliver))
        .routes(routes!(sources::api_list, sources::api_create))
        .routes(routes!(sources::api_delete, sources::api_settings))
        .routes(routes!(sources::api_sync))
        .routes(routes!(sources::api_test))
        .routes(routes!(sources::api_pause))
        .routes(routes!(sources::api_resume))
        .routes(routes!(sources::api_rotate))
        .routes(routes!(support::api_list))
        .routes(routes!(support::api_consent))
        .routes(routes!(support::api_decline))
        .routes(routes!(support::api_revoke))
        .split_for_parts();
    // The document, generated once; served without a key, like any API's description.
    let doc = std::sync::Arc::new(serde_json::to_value(&doc).expect("the OpenAPI document serializes"));
    let api = api
        .route("/openapi.json", get(move || async move { axum::Json(doc.as_ref().clone()) }))
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

//! The route table: UI pages (with the CSRF cookie), the JSON API (with CORS for our own origin
//! only), and the operational endpoints. Security headers and the body limit cover everything.

mod account;
mod api_keys;
mod approvals;
mod attribution;
mod audit;
mod budgets;
mod console;
mod explore;
mod exports;
mod ingest;
mod members;
mod operator;
mod ops;
mod org;
mod prices;
mod reconciliation;
mod sources;
mod sql;
mod support;
mod webhooks;

pub use ingest::receiver as otlp_receiver;
pub(crate) use webhooks::SigningSecret;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

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
        .merge(account::pages())
        .merge(org::pages())
        .merge(members::pages())
        .merge(api_keys::pages())
        .merge(ingest::pages())
        .merge(sources::pages())
        .merge(budgets::pages())
        .merge(prices::pages())
        .merge(reconciliation::pages())
        .merge(webhooks::pages())
        .merge(sql::pages())
        .merge(console::pages())
        .merge(explore::pages())
        .merge(exports::pages())
        .merge(approvals::pages())
        .merge(audit::pages())
        .merge(support::pages())
        .merge(operator::pages(&state))
        .fallback(ops::not_found)
        .layer(from_fn(csrf_cookie));

    let origin = HeaderValue::from_str(&state.config.origin()).expect("an origin is a valid header value");
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list([origin]))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);
    let (api, doc) = OpenApiRouter::with_openapi(crate::api::ApiDoc::openapi())
        .merge(org::api())
        .merge(members::api())
        .merge(api_keys::api())
        .merge(ingest::api())
        .merge(sources::api())
        .merge(budgets::api())
        .merge(prices::api())
        .merge(reconciliation::api())
        .merge(attribution::api())
        .merge(webhooks::api())
        .merge(sql::api())
        .merge(console::api())
        .merge(exports::api())
        .merge(approvals::api())
        .merge(audit::api())
        .merge(support::api())
        .split_for_parts();
    // The document, generated once; served without a key, like any API's description.
    let doc = std::sync::Arc::new(serde_json::to_value(&doc).expect("the OpenAPI document serializes"));
    let api = api
        .route("/openapi.json", get(move || async move { axum::Json(doc.as_ref().clone()) }))
        .fallback(crate::api::not_found)
        .layer(cors);

    Router::new()
        .merge(ui)
        .nest("/api/v1", api)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/static/app.css", get(ops::stylesheet))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), security_headers))
        .with_state(state)
}

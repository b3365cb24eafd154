//! The SQL console through the JSON API: `/api/v1/sql`.

use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use burnrate_engine::EngineError;

use super::{run_page, shown};
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;

/// A query over the organization's tables (`costs`, `usage`, its databases' schemas).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    sql: String,
    /// Which page of 100 rows, from 0.
    #[serde(default)]
    page: usize,
}

/// A page of a query's result; values as text (money stays exact), `null` for NULL.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct QueryResultView {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
    page: usize,
    /// More rows follow on the next page.
    more: bool,
    millis: u128,
}

/// Runs a read-only SQL query (the console's): a page of up to 100 rows. A query the engine
/// refuses answers `422` with the reason; one over the organization's or the instance's
/// concurrency limit, after a short wait for a slot, `429` with `Retry-After`.
#[utoipa::path(post, path = "/sql", tag = "sql", request_body = QueryBody,
    responses((status = 200, body = QueryResultView), crate::api::Refusals, crate::api::BodyRefusals))]
pub async fn api_query(
    State(state): State<AppState>,
    caller: crate::auth::ApiCaller,
    crate::api::ApiJson(body): crate::api::ApiJson<QueryBody>,
) -> Result<Response, crate::error::ApiError> {
    caller.require(burnrate_core::ApiScope::Read)?;
    let label = caller.actor().audit_actor().label;
    let session = state.app.sql_session(&caller.actor(), &label)?;
    let started = Instant::now();
    match run_page(&session, &body.sql, body.page).await {
        Ok((columns, rows, more)) => {
            let view = QueryResultView { columns, rows, page: body.page, more, millis: started.elapsed().as_millis() };
            Ok(axum::Json(view).into_response())
        }
        Err(busy @ EngineError::Busy(..)) => Err(AppError::Busy(busy.to_string()).into()),
        Err(e) => Err(AppError::Validation(shown(e)?).into()),
    }
}

//! The exports through the JSON API: `/api/v1/exports`.

use axum::extract::State;
use axum::response::Response;
use burnrate_core::ApiScope;

use super::{ExportQuery, export};
use crate::AppState;
use crate::api::ApiQuery;
use crate::auth::{ApiCaller, Caller};
use crate::error::ApiError;

/// `GET /api/v1/exports`: the organization's costs as FOCUS 1.2, Parquet or CSV, streamed.
#[utoipa::path(get, path = "/exports", tag = "exports", params(ExportQuery),
    responses(
        (status = 200, description = "The FOCUS 1.2 file, streamed",
         content((Vec<u8> = "application/vnd.apache.parquet"), (String = "text/csv"))),
        crate::api::Refusals, crate::api::BodyRefusals))]
pub async fn api_export(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let label = caller.actor().audit_actor().label;
    Ok(export(&state, &caller, &label, &q).await?)
}

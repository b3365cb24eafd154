//! Attributed spend through the JSON API.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use burnrate_app::attribution::AttributionKey;
use burnrate_core::ApiScope;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::Refusals;
use crate::auth::{ApiCaller, Caller};
use crate::error::ApiError;

#[derive(Deserialize, IntoParams)]
pub struct Asked {
    /// `customer`, `feature`, `team`, `user` or `service`.
    group_by: String,
    /// The first UTC day (`YYYY-MM-DD`); 29 days before `to` when absent.
    from: Option<String>,
    /// The last UTC day; yesterday in the organization's reporting zone when absent.
    to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AttributedRow {
    /// The customer, feature, team, user or service; null for requests that did not say.
    key: Option<String>,
    /// Its share of the bill, USD decimal text.
    attributed_cost: String,
}

#[derive(Serialize, ToSchema)]
pub struct AttributedView {
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    group_by: &'static str,
    /// Largest first.
    rows: Vec<AttributedRow>,
    /// What no request explains, USD decimal text.
    unattributed: String,
    /// Everything billed (US-dollar cost lines naming a model): the rows and `unattributed` sum
    /// to it exactly.
    billed_total: String,
}

/// Billed cost per customer, feature, team, user or service: each UTC day's bill of a provider's
/// model shared among that day's requests of it in proportion to their computed cost, with what
/// no request explains kept apart.
#[utoipa::path(get, path = "/spend/attributed", tag = "spend", params(Asked),
    responses((status = 200, body = AttributedView), Refusals))]
pub async fn attributed_spend(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(asked): Query<Asked>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let key = AttributionKey::parse(&asked.group_by)?;
    let spend = state.app.attributed_spend(&caller.actor(), key, asked.from.as_deref(), asked.to.as_deref()).await?;
    let text = |d: rust_decimal::Decimal| d.normalize().to_string();
    Ok(Json(AttributedView {
        from: spend.from,
        to: spend.to,
        group_by: key.as_str(),
        rows: spend.rows.into_iter().map(|(key, cost)| AttributedRow { key, attributed_cost: text(cost) }).collect(),
        unattributed: text(spend.unattributed),
        billed_total: text(spend.billed_total),
    })
    .into_response())
}

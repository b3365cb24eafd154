//! Reconciliation through the JSON API.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use burnrate_core::ApiScope;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::Refusals;
use crate::auth::{ApiCaller, Caller};
use crate::error::ApiError;

#[derive(Deserialize, IntoParams)]
pub struct Window {
    /// The first day (`YYYY-MM-DD`); 29 days before `to` when absent.
    from: Option<String>,
    /// The last day; yesterday in the organization's reporting zone when absent.
    to: Option<String>,
}

/// One UTC day, provider, model and project: both sides and how they differ.
#[derive(Serialize, ToSchema)]
pub struct ReconciliationRow {
    day: chrono::NaiveDate,
    provider: String,
    model: String,
    /// The OpenAI project or Anthropic workspace; null: none, or the default workspace.
    project_id: Option<String>,
    /// What the provider billed, USD decimal text; null when no cost line names the model.
    billed_cost: Option<String>,
    /// What its priced usage costs at the price book's rates; null when none is priced.
    computed_cost: Option<String>,
    /// Billed minus computed; null when usage is unpriced.
    difference: Option<String>,
    /// `none` (within the organization's tolerance), `quantity` (a side is missing, or the
    /// tokens billed are not the tokens used), `price` (the same tokens cost differently, or the
    /// bill carries no quantities) or `unpriced` (some usage has no rate).
    gap_kind: &'static str,
    /// Computed ÷ billed: the share of the bill priced usage explains.
    coverage: Option<String>,
    /// The tokens the cost lines bill, where the provider reports them (OpenAI).
    billed_tokens: Option<i64>,
    /// The tokens of every class the usage rows count.
    usage_tokens: Option<i64>,
    usage_rows: i64,
    unpriced_rows: i64,
}

#[derive(Serialize, ToSchema)]
pub struct UnpricedModel {
    provider: String,
    model: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReconciliationView {
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    rows: Vec<ReconciliationRow>,
    /// Models with usage no rate prices: never counted as free.
    unpriced_models: Vec<UnpricedModel>,
}

/// Billed against computed cost per UTC day, provider, model and project (by default the last
/// 30 complete days), with each difference classified, and the models no rate prices.
#[utoipa::path(get, path = "/reconciliation", tag = "reconciliation", params(Window),
    responses((status = 200, body = ReconciliationView), Refusals))]
pub async fn api_reconciliation(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(window): Query<Window>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let r = state.app.reconciliation(&caller.actor(), window.from.as_deref(), window.to.as_deref()).await?;
    let text = |d: rust_decimal::Decimal| d.normalize().to_string();
    Ok(Json(ReconciliationView {
        from: r.from,
        to: r.to,
        rows: r
            .rows
            .into_iter()
            .map(|row| ReconciliationRow {
                day: row.day,
                provider: row.provider,
                model: row.model,
                project_id: row.project,
                billed_cost: row.billed.map(text),
                computed_cost: row.computed.map(text),
                difference: row.difference.map(text),
                gap_kind: row.gap_kind.as_str(),
                coverage: row.coverage.map(text),
                billed_tokens: row.billed_tokens,
                usage_tokens: row.usage_tokens,
                usage_rows: row.usage_rows,
                unpriced_rows: row.unpriced_rows,
            })
            .collect(),
        unpriced_models: r
            .unpriced_models
            .into_iter()
            .map(|(provider, model)| UnpricedModel { provider, model })
            .collect(),
    })
    .into_response())
}

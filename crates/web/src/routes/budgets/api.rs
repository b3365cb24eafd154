//! The budgets through the JSON API: `/api/v1/budgets`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::Submitted;
use burnrate_app::budgets::BudgetStatus;
use burnrate_app::budgets::{BudgetChange, BudgetRecord, NewBudgetInput};
use burnrate_core::{ApiScope, BudgetScope};
use serde::Serialize;
use utoipa::ToSchema;

use super::remove;
use crate::AppState;
use crate::api::{ApiJson, BodyRefusals, Missing, QueuedView, Refusals, queued};
use crate::auth::{ApiCaller, Caller};
use crate::error::ApiError;
use crate::routes::parse_id;

/// A budget, and (in lists) where it stands now.
#[derive(Serialize, ToSchema)]
pub struct BudgetView {
    id: uuid::Uuid,
    name: String,
    /// Decimal text.
    amount: String,
    currency: String,
    period: &'static str,
    #[schema(value_type = Object)]
    scope: BudgetScope,
    /// The percentages of the amount at which alerts fire.
    thresholds: Vec<u32>,
    forecast_alert: bool,
    /// Members who get this budget's alerts by email.
    email_members: Vec<uuid::Uuid>,
    created_by: uuid::Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<BudgetStanding>,
}

/// Where a budget stands in its current period.
#[derive(Serialize, ToSchema)]
pub struct BudgetStanding {
    /// The period's first and last local day, in the organization's time zone.
    period_start: chrono::NaiveDate,
    period_end: chrono::NaiveDate,
    time_zone: String,
    resets_at: chrono::DateTime<chrono::Utc>,
    /// In-scope spend so far, decimal text in the budget's currency.
    spend: String,
    /// Period-end spend, forecast from the days so far.
    forecast: String,
    percent_used: String,
    /// In-scope spend billed in other currencies, which this budget does not count.
    other_currencies: Vec<OtherCurrency>,
}

#[derive(Serialize, ToSchema)]
pub struct OtherCurrency {
    currency: String,
    amount: String,
}

#[derive(Serialize, ToSchema)]
pub struct BudgetsView {
    budgets: Vec<BudgetView>,
}

/// Sets a budget (admins).
#[utoipa::path(post, path = "/budgets", tag = "budgets", request_body = NewBudgetInput,
    responses((status = 201, body = BudgetView), Refusals, BodyRefusals))]
pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewBudgetInput>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let created = state.app.create_budget(&caller.actor(), body).await?;
    Ok((StatusCode::CREATED, Json(shown(&created))).into_response())
}

/// Every budget with where it stands now.
#[utoipa::path(get, path = "/budgets", tag = "budgets", responses((status = 200, body = BudgetsView), Refusals))]
pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let list = state.app.budget_statuses(&caller.actor()).await?;
    Ok(Json(BudgetsView { budgets: list.iter().map(shown_with_status).collect() }).into_response())
}

/// `PATCH /api/v1/budgets/{id}`. Lowering applies at once; raising the amount or the alert
/// percentages is sent for approval where the organization asks for it (`202`).
#[utoipa::path(patch, path = "/budgets/{id}", tag = "budgets", request_body = BudgetChange,
    params(("id" = uuid::Uuid, Path, description = "The budget's id")),
    responses((status = 200, body = BudgetView), (status = 202, body = QueuedView), Refusals, BodyRefusals, Missing))]
pub async fn api_update(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BudgetChange>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id: burnrate_core::BudgetId = parse_id(&id)?;
    let actor = caller.actor();
    if let Submitted::Queued(request) = state.app.change_budget(&actor, id, body).await? {
        return Ok(queued(&state, request, crate::api::Nothing {}));
    }
    let updated = state.app.budget(&actor, id).await?;
    Ok(Json(shown(&updated)).into_response())
}

#[utoipa::path(delete, path = "/budgets/{id}", tag = "budgets",
    params(("id" = uuid::Uuid, Path, description = "The budget's id")),
    responses((status = 204, description = "Removed"), Refusals, Missing))]
pub async fn api_delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    remove(&state, &caller, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn shown(b: &BudgetRecord) -> BudgetView {
    BudgetView {
        id: b.id.as_uuid(),
        name: b.name.clone(),
        amount: b.amount.amount().to_string(),
        currency: b.amount.currency().to_string(),
        period: b.period.as_str(),
        scope: b.scope.clone(),
        thresholds: b.thresholds.percents().to_vec(),
        forecast_alert: b.forecast_alert,
        email_members: b.email_members.iter().map(|u| u.as_uuid()).collect(),
        created_by: b.created_by.as_uuid(),
        created_at: b.created_at,
        status: None,
    }
}

/// A budget with where it stands now: spend, forecast, percentage used, when it resets.
fn shown_with_status(s: &BudgetStatus) -> BudgetView {
    BudgetView {
        status: Some(BudgetStanding {
            period_start: s.period.start,
            period_end: s.period.end,
            time_zone: s.zone.name().to_owned(),
            resets_at: s.resets_at,
            spend: s.spend.to_string(),
            forecast: s.forecast.round_dp(9).to_string(),
            percent_used: s.percent_used().to_string(),
            other_currencies: s
                .other_currencies
                .iter()
                .map(|(c, a)| OtherCurrency { currency: c.clone(), amount: a.to_string() })
                .collect(),
        }),
        ..shown(&s.budget)
    }
}

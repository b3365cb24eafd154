//! Budgets: `/api/v1/budgets`. burnrate cannot stop provider calls; a budget tells people, it does
//! not block (soft budgets).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiScope, BudgetPeriod, BudgetScope, Currency, Money, Rounding, Thresholds};
use burnrate_store::{BudgetRecord, NewBudget};
use serde::Deserialize;
use serde_json::json;

use super::api::ApiJson;
use super::parse_id;
use crate::AppState;
use crate::auth::{ApiCaller, Caller};
use crate::error::{ApiError, AppError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBudgetBody {
    name: String,
    /// Decimal text, `"1500.00"`: money never travels as a float.
    amount: String,
    currency: String,
    period: String,
    #[serde(default)]
    scope: BudgetScope,
    thresholds: Option<Vec<u32>>,
    #[serde(default = "yes")]
    forecast_alert: bool,
}

fn yes() -> bool {
    true
}

fn shown(b: &BudgetRecord) -> serde_json::Value {
    json!({
        "id": b.id, "name": b.name, "amount": b.amount.amount().to_string(), "currency": b.amount.currency().to_string(),
        "period": b.period.as_str(), "scope": b.scope, "thresholds": b.thresholds, "forecast_alert": b.forecast_alert,
        "created_by": b.created_by, "created_at": b.created_at,
    })
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::Validation(message.into())
}

pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewBudgetBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let name = super::actions::parse_key_name(&body.name)?;
    let currency = Currency::parse(&body.currency).map_err(|_| invalid("currency: a three-letter code such as USD"))?;
    let amount = match Money::parse(&body.amount, currency) {
        Ok((m, Rounding::Exact)) if m.amount() > rust_decimal::Decimal::ZERO => m,
        _ => return Err(invalid("amount: a positive decimal such as \"1500.00\", at most 9 decimals").into()),
    };
    let period = BudgetPeriod::parse(&body.period).ok_or_else(|| invalid("period: month, quarter or year"))?;
    body.scope.validate().map_err(invalid)?;
    let thresholds = match body.thresholds {
        Some(t) => Thresholds::new(t).map_err(|e| invalid(e.to_string()))?,
        None => Thresholds::default(),
    };
    let mut tx = state.store.tenant(caller.scope()).await?;
    let new = NewBudget {
        name: &name,
        amount,
        period,
        scope: &body.scope,
        thresholds: &thresholds,
        forecast_alert: body.forecast_alert,
        created_by: caller.member(),
    };
    let id = tx.create_budget(&new).await?;
    let details = json!({ "name": name, "amount": amount.amount().to_string(), "currency": currency.to_string(), "period": period.as_str() });
    tx.audit(caller.entry("budget_created", "budget", id.to_string(), details)).await?;
    let created = tx.budgets().await?.into_iter().find(|b| b.id == id).ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(shown(&created))).into_response())
}

pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let list = tx.budgets().await?;
    tx.commit().await?;
    Ok(Json(json!({ "budgets": list.iter().map(shown).collect::<Vec<_>>() })).into_response())
}

pub async fn api_delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id = parse_id(&id)?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    if !tx.delete_budget(id).await? {
        return Err(AppError::NotFound.into());
    }
    tx.audit(caller.entry("budget_deleted", "budget", id.to_string(), json!({}))).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

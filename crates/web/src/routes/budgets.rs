//! Budgets: `/api/v1/budgets`. burnrate cannot stop provider calls; a budget tells people, it does
//! not block (soft budgets).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::budgets::{AlertKind, BudgetRecord};
use burnrate_core::{ApiScope, BudgetScope};
use burnrate_notify::BudgetStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::account::NoFields;
use super::api::ApiJson;
use super::approvals::{QueuedView, queued};
use super::openapi::{BodyRefusals, Missing, Refusals};
use super::{parse_id, see_other};
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{AlertRow, BudgetRow, BudgetsPage, Nav, render, when};
use crate::security::CsrfForm;
use burnrate_app::Submitted;
use burnrate_app::budgets::{BudgetChange, NewBudgetInput};
use burnrate_app::organization::OrgSettingsChange;

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

fn shown(b: &BudgetRecord) -> BudgetView {
    BudgetView {
        id: b.id,
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

/// Where every budget of the organization stands now.
pub(crate) async fn statuses(state: &AppState, scope: burnrate_app::OrgScope) -> Result<Vec<BudgetStatus>, AppError> {
    let notifier = state.notifier().ok_or_else(|| AppError::internal("this instance runs no SQL engine"))?;
    notifier.statuses(scope, chrono::Utc::now()).await.map_err(AppError::internal)
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
    let list = statuses(&state, caller.scope()).await?;
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
    let id: uuid::Uuid = parse_id(&id)?;
    let actor = caller.actor();
    if let Submitted::Queued(request) = state.app.change_budget(&actor, id, body).await? {
        return Ok(queued(&state, request, super::approvals::Nothing {}));
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

async fn remove(state: &AppState, caller: &impl Caller, id: uuid::Uuid) -> Result<(), AppError> {
    Ok(state.app.delete_budget(&caller.actor(), id).await?)
}

/// The latest `limit` alerts, newest first, as the budgets page and the overview list them.
pub(crate) async fn alert_rows(
    state: &AppState,
    actor: &burnrate_app::Actor,
    budgets: &[BudgetStatus],
    limit: i64,
) -> Result<Vec<AlertRow>, AppError> {
    let names: std::collections::HashMap<uuid::Uuid, String> =
        budgets.iter().map(|s| (s.budget.id, s.budget.name.clone())).collect();
    // A stored amount that does not read is an error, never shown as 0.
    let amount = |text: &str| {
        text.parse::<rust_decimal::Decimal>()
            .map(|d| d.round_dp(2))
            .map_err(|e| AppError::internal(format!("alert amount {text:?}: {e}")))
    };
    state
        .app
        .alerts(actor, limit)
        .await?
        .into_iter()
        .map(|e| {
            Ok(AlertRow {
                when: when(e.fired_at),
                budget: names.get(&e.budget_id).cloned().unwrap_or_default(),
                what: match e.kind {
                    AlertKind::Threshold => format!("reached {} %", e.threshold),
                    AlertKind::Forecast => match e.forecast.as_deref() {
                        Some(forecast) => format!("forecast to reach {} {}", amount(forecast)?, e.currency),
                        None => "forecast to pass it".to_owned(),
                    },
                    AlertKind::Anomaly => format!("unusual spend on {}", e.period_start),
                },
                spend: format!("{} {}", amount(&e.spend)?, e.currency),
            })
        })
        .collect()
}

/// The budgets page: the organization's budgets with where each stands, the latest alerts and,
/// for admins, a form to add one (refilled with what was typed when it is refused) and the
/// reporting time zone.
async fn page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<String>,
    typed: Option<NewBudgetForm>,
) -> Result<Response, AppError> {
    let list = statuses(state, who.scope).await?;
    let zone = state.app.reporting_time_zone(&who.actor()).await?;
    let alerts = alert_rows(state, &who.actor(), &list, RECENT_ALERTS).await?;
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = BudgetsPage {
        nav: Some(Nav::new(who, "budgets")),
        csrf: who.csrf.clone(),
        can_manage: who.role().is_admin(),
        zone,
        alerts,
        form: typed.unwrap_or_default(),
        budgets: list
            .into_iter()
            .map(|s| {
                let b = &s.budget;
                let money = |a: rust_decimal::Decimal| format!("{} {}", a.round_dp(2), b.amount.currency());
                BudgetRow {
                    id: b.id.to_string(),
                    name: b.name.clone(),
                    amount: format!("{} {}", b.amount.amount(), b.amount.currency()),
                    period: b.period.as_str().to_owned(),
                    scope: scope_text(&b.scope),
                    thresholds: b.thresholds.percents().iter().map(|p| format!("{p} %")).collect::<Vec<_>>().join(", "),
                    forecast: b.forecast_alert,
                    spend: money(s.spend),
                    forecast_spend: money(s.forecast),
                    percent_used: format!("{} %", s.percent_used().round_dp(1)),
                    over: s.spend >= b.amount.amount(),
                    resets: format!("{} ({})", s.period.end, s.zone.name()),
                    other_currencies: s
                        .other_currencies
                        .iter()
                        .map(|(c, a)| format!("{} {c}", a.round_dp(2)))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })
            .collect(),
        notice,
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// "provider OpenAI · model gpt-4o*", or "all spend".
fn scope_text(scope: &BudgetScope) -> String {
    let parts: Vec<String> = [
        ("provider", &scope.provider),
        ("source", &scope.source_id),
        ("project", &scope.project),
        ("model", &scope.model),
        ("API key", &scope.api_key_id),
    ]
    .into_iter()
    .filter_map(|(what, v)| v.as_ref().map(|v| format!("{what} {v}")))
    .collect();
    if parts.is_empty() { "all spend".into() } else { parts.join(" · ") }
}

pub async fn budgets_page(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    page(&state, &who, None, None, None).await
}

/// Alerts the budgets page lists, newest first.
const RECENT_ALERTS: i64 = 20;

/// The add form as typed (and as first shown: the defaults).
#[derive(Clone, Deserialize)]
pub struct NewBudgetForm {
    pub(crate) name: String,
    pub(crate) amount: String,
    pub(crate) currency: String,
    pub(crate) period: String,
    #[serde(default)]
    pub(crate) provider: String,
    #[serde(default)]
    pub(crate) model: String,
    #[serde(default)]
    pub(crate) thresholds: String,
    #[serde(default)]
    pub(crate) forecast_alert: Option<String>,
    /// Email this budget's alerts to the member adding it.
    #[serde(default)]
    pub(crate) email_me: Option<String>,
}

impl Default for NewBudgetForm {
    fn default() -> Self {
        Self {
            name: String::new(),
            amount: String::new(),
            currency: "USD".into(),
            period: "month".into(),
            provider: String::new(),
            model: String::new(),
            thresholds: "50, 80, 100".into(),
            forecast_alert: Some("yes".into()),
            email_me: Some("yes".into()),
        }
    }
}

impl NewBudgetForm {
    pub fn checked(&self, which: &str) -> bool {
        match which {
            "forecast_alert" => self.forecast_alert.is_some(),
            _ => self.email_me.is_some(),
        }
    }
}

pub async fn create_form(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(f): CsrfForm<NewBudgetForm>,
) -> Result<Response, AppError> {
    let given = |v: String| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let thresholds = match f.thresholds.trim() {
        "" => None,
        text => Some(
            text.split(',')
                .map(|p| p.trim().trim_end_matches('%').trim().parse::<u32>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    AppError::Validation("thresholds: percentages separated by commas, such as 50, 80, 100".into())
                }),
        ),
    };
    let typed = f.clone();
    let body = thresholds.transpose().map(|thresholds| NewBudgetInput {
        name: f.name,
        amount: f.amount,
        currency: f.currency,
        period: f.period,
        scope: BudgetScope { provider: given(f.provider), model: given(f.model), ..Default::default() },
        thresholds,
        forecast_alert: f.forecast_alert.is_some(),
        email_members: f.email_me.map(|_| who.member().to_string()).into_iter().collect(),
    });
    match async { Ok(state.app.create_budget(&who.actor(), body?).await?) }.await {
        Ok(b) => page(&state, &who, Some(format!("Budget {} added.", b.name)), None, None).await,
        Err(AppError::Validation(m)) | Err(AppError::Conflict(m)) => {
            page(&state, &who, None, Some(m), Some(typed)).await
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct ZoneForm {
    time_zone: String,
}

/// Sets the organization's reporting time zone (admins), audited.
pub async fn zone_form(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(f): CsrfForm<ZoneForm>,
) -> Result<Response, AppError> {
    let change = OrgSettingsChange { reporting_time_zone: Some(f.time_zone.clone()), ..Default::default() };
    if let Err(e) = state.app.change_org_settings(&who.actor(), change).await {
        return match AppError::from(e) {
            AppError::Validation(m) => page(&state, &who, None, Some(m), None).await,
            other => Err(other),
        };
    }
    page(&state, &who, Some(format!("Budget periods now follow {}.", f.time_zone.trim())), None, None).await
}

pub async fn delete_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    remove(&state, &who, parse_id(&id)?).await?;
    Ok(see_other("/budgets"))
}

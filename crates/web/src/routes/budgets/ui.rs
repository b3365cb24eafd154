//! The budgets pages: server-rendered, every change a form post behind the CSRF check.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::budgets::NewBudgetInput;
use burnrate_app::organization::OrgSettingsChange;
use burnrate_core::BudgetScope;
use serde::Deserialize;

use super::remove;
use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{AlertRow, Nav, alert_rows, render};
use crate::routes::{parse_id, see_other};
use crate::security::{CsrfForm, NoFields};

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
    let list = state.app.budget_statuses(&who.actor()).await?;
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
                    estimated: if s.estimated.is_zero() { String::new() } else { money(s.estimated) },
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

pub struct BudgetRow {
    pub id: String,
    pub name: String,
    /// `1500.10 USD`.
    pub amount: String,
    pub period: String,
    pub scope: String,
    pub thresholds: String,
    pub forecast: bool,
    /// Spend this period, `412.50 USD`.
    pub spend: String,
    /// The part of `spend` estimated from usage not billed yet, or empty.
    pub estimated: String,
    /// The period-end forecast.
    pub forecast_spend: String,
    pub percent_used: String,
    pub over: bool,
    /// The first day of the next period, and the zone it begins in.
    pub resets: String,
    /// In-scope spend billed in other currencies (not counted), or empty.
    pub other_currencies: String,
}

#[derive(Template)]
#[template(path = "budgets.html")]
pub struct BudgetsPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub can_manage: bool,
    /// The organization's reporting time zone.
    pub zone: String,
    pub budgets: Vec<BudgetRow>,
    /// The latest alerts, newest first.
    pub alerts: Vec<AlertRow>,
    /// The add form's values: defaults, or what was typed when it was refused.
    pub form: NewBudgetForm,
    pub notice: Option<String>,
    pub error: Option<String>,
}

//! The overview page: this month's spend and how it compares, what moved, budgets at a glance and
//! operators' notices.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use burnrate_app::attribution::{AttributedSpend, AttributionKey};
use burnrate_app::spend::{SpendSummary, TopSpend, previous_month_to_date};
use chrono::Datelike;

use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{AlertRow, Nav, NoticeRow, alert_rows, explore_link, notice_row, render};

pub async fn overview(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    let (members, admins) = state.app.members(&who.actor()).await?;
    let zone = state.app.reporting_zone(&who.actor()).await?;
    let summary = state.app.spend_summary(&who.actor(), zone).await?;
    // The organization's today: its days are the ones the numbers count.
    let today = zone.date_of(chrono::Utc::now());
    let chart = spend_chart(&summary, today);
    let spend = summary
        .days
        .iter()
        .map(|d| SpendRow {
            day: d.day.to_string(),
            provider: d.provider.clone(),
            amount: format!("{} {}", d.amount.round_dp(2), d.currency),
            estimated: d.estimated,
            link: explore_link("model", d.day, d.day + chrono::Duration::days(1), "day", &[("provider", &d.provider)]),
        })
        .collect();
    let month_to_date = summary
        .month_to_date
        .iter()
        .map(|m| {
            (format!("{} {}", m.amount.round_dp(2), m.currency), format!("{} {}", m.amount.normalize(), m.currency))
        })
        .collect();
    let month_estimated = summary
        .month_to_date_estimated
        .iter()
        .map(|m| format!("{} {}", m.amount.round_dp(2), m.currency))
        .collect::<Vec<_>>()
        .join(", ");
    let month_start = today.with_day(1).unwrap_or(today);
    let (previous_start, previous_until) = previous_month_to_date(today);
    let compared = summary
        .month_to_date
        .iter()
        .filter_map(|m| {
            let before = summary.previous_month_to_date.iter().find(|p| p.currency == m.currency)?;
            Some(Compared {
                amount: format!("{} {}", before.amount.round_dp(2), before.currency),
                change: percent_change(m.amount, before.amount).map(|p| format!(" ({p})")).unwrap_or_default(),
                link: explore_link("provider", previous_start, previous_until, "day", &[]),
            })
        })
        .collect();
    let forecast = summary
        .month_forecast
        .iter()
        .map(|f| format!("{} {} forecast for the whole month", f.amount.round_dp(2), f.currency))
        .collect();
    let tomorrow = today + chrono::Duration::days(1);
    let top = |what, id, dimension: &str, list: &[TopSpend]| TopList {
        what,
        id,
        rows: list
            .iter()
            .map(|t| TopRow {
                name: t.name.clone(),
                amount: format!("{} {}", t.amount.round_dp(2), t.currency),
                link: explore_link(t.dimension, month_start, tomorrow, "day", &[(t.dimension, &t.name)]),
            })
            .collect(),
        all: explore_link(dimension, month_start, tomorrow, "day", &[]),
    };
    let tops = vec![
        top("models", "top-models", "model", &summary.top_models),
        top("projects", "top-projects", "project", &summary.top_projects),
        top("API keys", "top-api-keys", "api_key", &summary.top_api_keys),
    ];
    let (attributed_days, attribution) = state.app.attribution(&who.actor(), None, None).await?;
    let callers = [
        (AttributionKey::Customer, "customers", "top-customers"),
        (AttributionKey::Feature, "features", "top-features"),
    ]
    .map(|(key, what, id)| {
        let spend = AttributedSpend::of(&attribution, key, attributed_days);
        let unattributed = format!("{} USD", spend.unattributed.round_dp(2));
        CallerList {
            what,
            id,
            rows: spend
                .rows
                .into_iter()
                .take(5)
                .map(|(name, amount)| CallerRow {
                    name: name.unwrap_or_else(|| "(not said)".into()),
                    amount: format!("{} USD", amount.round_dp(2)),
                })
                .collect(),
            unattributed,
        }
    })
    .into_iter()
    .filter(|list| !list.rows.is_empty())
    .collect();
    let week = today - chrono::Duration::days(7);
    let movers = summary
        .movers
        .iter()
        .map(|m| {
            let change = m.last_7_days - m.previous_7_days;
            MoverRow {
                name: m.name.clone(),
                last: format!("{} {}", m.last_7_days.round_dp(2), m.currency),
                previous: format!("{} {}", m.previous_7_days.round_dp(2), m.currency),
                change: percent_change(m.last_7_days, m.previous_7_days).unwrap_or_else(|| "new".into()),
                rising: change.is_sign_positive(),
                link: explore_link(
                    m.dimension,
                    week - chrono::Duration::days(7),
                    today,
                    "day",
                    &[(m.dimension, &m.name)],
                ),
            }
        })
        .collect();
    let mut statuses = state.app.budget_statuses(&who.actor()).await?;
    let alerts = alert_rows(&state, &who.actor(), &statuses, 5).await?;
    statuses.sort_by_key(|b| std::cmp::Reverse(b.percent_used()));
    let budgets = statuses
        .iter()
        .map(|s| {
            let (amount, currency) = (s.budget.amount.amount(), s.budget.amount.currency());
            BudgetGlance {
                name: s.budget.name.clone(),
                used: match s.estimated.is_zero() {
                    true => {
                        format!("{} of {amount} {currency} ({} %)", s.spend.round_dp(2), s.percent_used().round_dp(1))
                    }
                    false => format!(
                        "{} of {amount} {currency} ({} %, {} estimated)",
                        s.spend.round_dp(2),
                        s.percent_used().round_dp(1),
                        s.estimated.round_dp(2)
                    ),
                },
                forecast: format!("{} {currency}", s.forecast.round_dp(2)),
                at_risk: s.spend >= amount || s.forecast > amount,
            }
        })
        .collect();
    Ok(render(&OverviewPage {
        nav: Some(Nav::new(&who, "overview")),
        notices: state.app.support().recent_notices().await?.iter().map(notice_row).collect(),
        spend,
        month_to_date,
        month_estimated,
        chart,
        compared,
        forecast,
        tops,
        callers,
        movers,
        alerts,
        budgets,
        explore: explore_links(today),
        zone: summary.zone.clone(),
        org_name: who.org_name.clone(),
        member_count: members.len(),
        is_admin: who.role.is_admin(),
        sole_admin: who.role.is_admin() && admins == 1,
    }))
}

/// The explorer views that produce the overview's numbers (the organization's days, as both count).
fn explore_links(today: chrono::NaiveDate) -> ExploreLinks {
    let month_start = today.with_day(1).unwrap_or(today);
    let tomorrow = today + chrono::Duration::days(1);
    ExploreLinks {
        month: explore_link("provider", month_start, tomorrow, "day", &[]),
        days: explore_link("provider", today - chrono::Duration::days(29), tomorrow, "day", &[]),
    }
}

/// `now` against `before` as a signed percentage ("+12.5 %", "−3.1 %"); `None` when there was
/// nothing before to compare with.
fn percent_change(now: rust_decimal::Decimal, before: rust_decimal::Decimal) -> Option<String> {
    (!before.is_zero()).then(|| {
        let percent = ((now - before) / before * rust_decimal::Decimal::ONE_HUNDRED).round_dp(1);
        if percent.is_sign_negative() { format!("−{} %", percent.abs()) } else { format!("+{percent} %") }
    })
}

/// The last 30 days' spend, stacked by provider, in the currency with the most of it (a note says
/// so where there are others).
fn spend_chart(summary: &SpendSummary, today: chrono::NaiveDate) -> Option<String> {
    let mut by_currency: std::collections::BTreeMap<&str, rust_decimal::Decimal> = Default::default();
    for d in &summary.days {
        *by_currency.entry(d.currency.as_str()).or_default() += d.amount;
    }
    let currency = by_currency.iter().max_by(|a, b| a.1.cmp(b.1)).map(|(c, _)| *c)?;
    let days: Vec<chrono::NaiveDate> = (0..30).rev().map(|back| today - chrono::Duration::days(back)).collect();
    let amounts = summary
        .days
        .iter()
        .filter(|d| d.currency == currency)
        .map(|d| ((d.day, d.provider.clone()), d.amount))
        .collect();
    let title = match by_currency.len() {
        1 => format!("Spend by day and provider, last 30 days ({currency})"),
        n => format!("Spend by day and provider, last 30 days ({currency}; {} other currencies in the table)", n - 1),
    };
    crate::chart::stacked("spend-chart", &title, &days, &amounts, currency, "day")
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub nav: Option<Nav>,
    /// Recent notices from the instance's operators (S20).
    pub notices: Vec<NoticeRow>,
    pub spend: Vec<SpendRow>,
    /// (shown to the cent, exact) per currency.
    pub month_to_date: Vec<(String, String)>,
    /// The part of the month to date estimated from usage not billed yet ("" when none).
    pub month_estimated: String,
    /// Per currency: what the same days of the previous month spent.
    pub compared: Vec<Compared>,
    /// The month-end forecast, per currency.
    pub forecast: Vec<String>,
    /// This month's largest models, projects and API keys.
    pub tops: Vec<TopList>,
    /// The customers and features that caused the most of the last 30 days' bill (only with
    /// requests reported over OTLP).
    pub callers: Vec<CallerList>,
    /// The models whose spend moved most this week.
    pub movers: Vec<MoverRow>,
    /// The latest alerts.
    pub alerts: Vec<AlertRow>,
    /// Spend by day stacked by provider, as SVG, in the currency with the most spend.
    pub chart: Option<String>,
    /// The budgets, most used first.
    pub budgets: Vec<BudgetGlance>,
    /// The explorer views behind the numbers.
    pub explore: ExploreLinks,
    /// The organization's reporting time zone, whose days and months these are.
    pub zone: String,
    pub org_name: String,
    pub member_count: usize,
    pub is_admin: bool,
    pub sole_admin: bool,
}

/// Who caused the most of the bill: the largest customers or features by attributed cost.
pub struct CallerList {
    /// "customers", "features".
    pub what: &'static str,
    pub id: &'static str,
    pub rows: Vec<CallerRow>,
    /// What no request explains, over the same days.
    pub unattributed: String,
}

pub struct CallerRow {
    pub name: String,
    pub amount: String,
}

/// The overview's largest of one kind this month.
pub struct TopList {
    /// "models", "projects", "API keys".
    pub what: &'static str,
    pub id: &'static str,
    pub rows: Vec<TopRow>,
    /// The explorer's month by this dimension.
    pub all: String,
}

/// One of the overview's largest: its name, spend and the explorer view of it.
pub struct TopRow {
    pub name: String,
    pub amount: String,
    pub link: String,
}

/// A model whose spend moved: the last seven complete days, the seven before, the change.
pub struct MoverRow {
    pub name: String,
    pub last: String,
    pub previous: String,
    /// "+35.2 %", "−12.0 %", or "new".
    pub change: String,
    pub rising: bool,
    pub link: String,
}

/// Explorer views behind the overview's numbers.
pub struct ExploreLinks {
    /// This month by provider: the month to date.
    pub month: String,
    /// The last 30 days by provider: the table and chart.
    pub days: String,
}

/// A budget on the overview: how much is used and where the period is heading.
pub struct BudgetGlance {
    pub name: String,
    /// "123.45 of 500 USD (24.7 %)".
    pub used: String,
    pub forecast: String,
    /// Spend or forecast past the budget.
    pub at_risk: bool,
}

pub struct SpendRow {
    pub day: String,
    pub provider: String,
    pub amount: String,
    /// Estimated from usage the provider has not billed yet.
    pub estimated: bool,
    /// The explorer: that day's models of that provider.
    pub link: String,
}

/// The same days of the previous month: "1100.00 USD", " (+12.2 %)", and its explorer view.
pub struct Compared {
    pub amount: String,
    pub change: String,
    pub link: String,
}

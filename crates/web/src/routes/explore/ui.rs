//! The explorer page and its CSV.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use burnrate_app::exports::Export;
use burnrate_engine::spend::{Dimension, Granularity, SpendQuery, SpendRow};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::chart::PeriodLabel;
use crate::error::AppError;
use crate::pages::{Nav, render};

/// What the URL asks for. Filters are one value per dimension.
#[derive(Deserialize, Default)]
pub struct ExploreQuery {
    #[serde(default)]
    group: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    granularity: String,
    #[serde(default)]
    format: String,
    #[serde(flatten)]
    filters: BTreeMap<String, String>,
}

/// A checked view.
struct View {
    /// Days and their boundaries are this zone's; lines a provider reports as whole UTC days stay
    /// on their UTC day (they cannot be split).
    zone: burnrate_core::ReportingZone,
    group: Dimension,
    from: NaiveDate,
    to: NaiveDate,
    granularity: Granularity,
    filters: Vec<(Dimension, String)>,
}

fn invalid(message: String) -> AppError {
    AppError::Validation(message)
}

impl ExploreQuery {
    fn check(&self, today: NaiveDate, zone: burnrate_core::ReportingZone) -> Result<View, AppError> {
        let group = match self.group.as_str() {
            "" => Dimension::Provider,
            name => Dimension::parse(name).ok_or_else(|| {
                invalid(format!("group: {name:?} is not one of {}", Dimension::ALL.map(Dimension::name).join(", ")))
            })?,
        };
        let (from, to) = crate::routes::day_range(&self.from, &self.to)?;
        let from = from.unwrap_or(today.with_day(1).unwrap_or(today));
        let to = to.unwrap_or(today + chrono::Duration::days(1));
        if from >= to {
            return Err(invalid("to: must be after from (it is the day after the last one)".into()));
        }
        if (to - from).num_days() > 3 * 366 {
            return Err(invalid("to: at most three years at a time".into()));
        }
        let granularity = match self.granularity.as_str() {
            "" => Granularity::Day,
            other => Granularity::parse(other)
                .ok_or_else(|| invalid(format!("granularity: {other:?} is not hour, day, week or month")))?,
        };
        if granularity == Granularity::Hour && (to - from).num_days() > HOURLY_DAYS {
            return Err(invalid(format!("to: at most {HOURLY_DAYS} days at a time by hour")));
        }
        let mut filters = Vec::new();
        for (name, value) in &self.filters {
            let Some(d) = Dimension::parse(name) else {
                return Err(invalid(format!("{name}: not a dimension to filter by")));
            };
            if value.is_empty() {
                continue;
            }
            // Values are literals of the plan, never text of a statement; still, only what names and
            // ids are made of passes, so a mistake is told rather than matching nothing.
            if value.chars().count() > 200 || value.chars().any(|c| c == '\'' || c == '\\' || c.is_control()) {
                return Err(invalid(format!("{name}: {value:?} has a character filters do not take")));
            }
            filters.push((d, value.clone()));
        }
        Ok(View { zone, group, from, to, granularity, filters })
    }
}

/// The longest range the explorer shows by hour: a month of hours is already 744 periods.
const HOURLY_DAYS: i64 = 31;

impl View {
    fn query(&self) -> SpendQuery {
        let query = SpendQuery::new(self.zone, self.from, self.to).by(self.granularity).grouped_by(self.group);
        self.filters.iter().fold(query, |q, (d, value)| q.where_is(*d, value))
    }

    /// The URL of this view (with `format` when given): what a person shares.
    fn url(&self, format: &str) -> String {
        let filters: Vec<(&str, &str)> = self.filters.iter().map(|(d, v)| (d.name(), v.as_str())).collect();
        let view =
            crate::pages::explore_link(self.group.name(), self.from, self.to, self.granularity.as_str(), &filters);
        if format.is_empty() { view } else { format!("{view}&format={format}") }
    }
}

/// `GET /explore`.
pub async fn explore(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<ExploreQuery>,
) -> Result<Response, AppError> {
    let zone = state.app.reporting_zone(&who.actor()).await?;
    let today = zone.date_of(chrono::Utc::now());
    let view = match q.check(today, zone) {
        Ok(v) => v,
        Err(AppError::Validation(m)) => {
            let page = form(&who, &q, today, zone);
            let page = ExplorePage { error: Some(m), ..page };
            return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
        }
        Err(e) => return Err(e),
    };
    let mut rows: Vec<SpendRow> = state.app.spend(&who.actor(), &view.query()).await?;
    // By period, the largest first within one.
    rows.sort_by(|a, b| a.slot.cmp(&b.slot).then_with(|| b.amount.cmp(&a.amount)));
    let period = |r: &SpendRow| r.slot.map(|s| s.to_string()).unwrap_or_default();
    let label = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    if q.format == "csv" {
        // Exports are audited (S16).
        let details = serde_json::json!({ "format": "csv", "view": view.url("csv") });
        state.app.record_export(&who.actor(), Export::Explorer, details).await?;
        let mut body = burnrate_core::csv::record(["period", "grp", "currency", "billed"].map(Some));
        for r in &rows {
            let (period, amount) = (period(r), r.amount.to_string());
            let cells =
                [Some(period.as_str()), r.groups[0].as_deref(), Some(r.currency.as_str()), Some(amount.as_str())];
            body.push_str(&burnrate_core::csv::record(cells));
        }
        let headers = [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"burnrate-explorer.csv\""),
        ];
        return Ok((headers, body).into_response());
    }
    let mut by_currency: BTreeMap<String, Decimal> = BTreeMap::new();
    for r in &rows {
        *by_currency.entry(r.currency.clone()).or_default() += r.amount;
    }
    // The chart, in the currency with the most spend.
    let chart = by_currency.iter().max_by(|a, b| a.1.cmp(b.1)).and_then(|(currency, _)| {
        let mut amounts = BTreeMap::new();
        let mut periods: Vec<PeriodLabel> = Vec::new();
        for r in rows.iter().filter(|r| r.currency == *currency) {
            let period = PeriodLabel(period(r));
            if periods.last() != Some(&period) {
                periods.push(period.clone());
            }
            *amounts.entry((period, label(&r.groups[0]))).or_insert(Decimal::ZERO) += r.amount;
        }
        let title = format!(
            "Spend by {} and {}, {} to {} ({currency})",
            view.granularity.as_str(),
            view.group.label().to_lowercase(),
            view.from,
            view.to - chrono::Duration::days(1)
        );
        crate::chart::stacked("explore-chart", &title, &periods, &amounts, currency, view.granularity.as_str())
    });
    let page = ExplorePage {
        chart,
        rows: rows
            .iter()
            .map(|r| ExploreRow {
                period: period(r),
                group: label(&r.groups[0]),
                amount: format!("{} {}", r.amount.normalize(), r.currency),
            })
            .collect(),
        totals: by_currency.iter().map(|(c, a)| format!("{} {c}", a.normalize())).collect(),
        csv: Some(view.url("csv")),
        ..form(&who, &q, today, zone)
    };
    Ok(render(&page).into_response())
}

/// The page with its form filled from the URL, and no results.
fn form(who: &Authed, q: &ExploreQuery, today: NaiveDate, zone: burnrate_core::ReportingZone) -> ExplorePage {
    let month_start = today.with_day(1).unwrap_or(today);
    let or = |v: &str, default: String| if v.is_empty() { default } else { v.to_owned() };
    ExplorePage {
        nav: Some(Nav::new(who, "explore")),
        dimensions: Dimension::ALL
            .iter()
            .map(|d| ExploreDimension {
                name: d.name(),
                label: d.label(),
                grouped: q.group == d.name() || (q.group.is_empty() && *d == Dimension::Provider),
                filter: q.filters.get(d.name()).cloned().unwrap_or_default(),
            })
            .collect(),
        from: or(&q.from, month_start.to_string()),
        to: or(&q.to, (today + chrono::Duration::days(1)).to_string()),
        granularity: or(&q.granularity, "day".into()),
        zone: zone.name().to_owned(),
        chart: None,
        rows: Vec::new(),
        totals: Vec::new(),
        csv: None,
        error: None,
    }
}

#[derive(Template)]
#[template(path = "explore.html")]
pub struct ExplorePage {
    pub nav: Option<Nav>,
    pub dimensions: Vec<ExploreDimension>,
    pub from: String,
    pub to: String,
    pub granularity: String,
    /// The organization's reporting time zone: whose days these are.
    pub zone: String,
    pub chart: Option<String>,
    pub rows: Vec<ExploreRow>,
    /// The total per currency.
    pub totals: Vec<String>,
    /// The CSV of this view; `None` before a view was shown.
    pub csv: Option<String>,
    pub error: Option<String>,
}

/// A dimension in the explorer's form: grouped by, and the value it is filtered to.
pub struct ExploreDimension {
    pub name: &'static str,
    pub label: &'static str,
    pub grouped: bool,
    pub filter: String,
}

pub struct ExploreRow {
    pub period: String,
    pub group: String,
    pub amount: String,
}

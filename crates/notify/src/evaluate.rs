//! Where each budget stands, read through the SQL engine so a budget counts exactly what a query
//! over `costs` would, and which alerts that standing calls for.

use std::collections::BTreeMap;

use burnrate_core::{BudgetScope, Period, ReportingZone};
use burnrate_engine::Engine;
use burnrate_engine::spend::{Granularity, SpendQuery};
use burnrate_store::{AlertKind, BudgetRecord, OrgScope};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::NotifyError;
use crate::forecast::{DaySpend, anomaly, forecast_period_end};

/// Days of history before the period (or the day) that the forecast and the anomaly test read.
const HISTORY_DAYS: i64 = 35;

/// A budget's standing at one moment.
#[derive(Clone, Debug)]
pub struct BudgetStatus {
    pub budget: BudgetRecord,
    pub zone: ReportingZone,
    /// The current period, in the organization's local dates.
    pub period: Period,
    /// When the current period ends and the next begins.
    pub resets_at: DateTime<Utc>,
    /// In-scope spend this period, in the budget's currency.
    pub spend: Decimal,
    /// The part of `spend` estimated from usage not billed yet.
    pub estimated: Decimal,
    /// In-scope spend this period billed in other currencies, which the budget does not count.
    pub other_currencies: BTreeMap<String, Decimal>,
    /// Period-end spend, forecast from the days before today.
    pub forecast: Decimal,
    /// Local day by local day, in the budget's currency, from [`HISTORY_DAYS`] before the period.
    pub history: Vec<DaySpend>,
    /// The last complete local day.
    pub yesterday: NaiveDate,
}

impl BudgetStatus {
    /// Spend as a percentage of the amount, to two places (0 for a zero budget).
    pub fn percent_used(&self) -> Decimal {
        let amount = self.budget.amount.amount();
        if amount.is_zero() {
            return Decimal::ZERO;
        }
        (self.spend * Decimal::ONE_HUNDRED / amount).round_dp(2)
    }

    /// The alerts this standing calls for. Each is recorded once per budget × kind × threshold ×
    /// period, so repeating them on later evaluations is harmless.
    pub fn alerts(&self) -> Vec<Alert> {
        let amount = self.budget.amount.amount();
        let mut out = Vec::new();
        for &percent in self.budget.thresholds.percents() {
            if self.spend >= amount * Decimal::from(percent) / Decimal::ONE_HUNDRED {
                out.push(Alert { call: Call::Threshold { percent }, period: self.period, amount: self.spend });
            }
        }
        // A forecast says something only while the budget is not spent yet.
        if self.budget.forecast_alert && self.spend < amount && self.forecast >= amount {
            out.push(Alert {
                call: Call::Forecast { forecast: self.forecast },
                period: self.period,
                amount: self.spend,
            });
        }
        // Cents on a quiet scope are not news: an anomaly must also exceed a tenth of the
        // budget's average day.
        let floor = amount / Decimal::from(self.period.days().max(1)) / Decimal::TEN;
        if let Some(a) = anomaly(&self.history, self.yesterday, floor) {
            let day = Period { start: a.day, end: a.day.succ_opt().expect("a next day") };
            out.push(Alert { call: Call::Anomaly { usual: a.usual }, period: day, amount: a.amount });
        }
        out
    }
}

/// An alert a budget's standing calls for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub call: Call,
    /// The budget period, or the anomalous day.
    pub period: Period,
    /// Spend so far (threshold, forecast), or the day's spend (anomaly).
    pub amount: Decimal,
}

/// Why an alert fires, with what each kind carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Spend reached this percent of the budget.
    Threshold { percent: u32 },
    /// Spend is forecast to reach this by the period's end.
    Forecast { forecast: Decimal },
    /// The day's spend is far from this, what that weekday usually sees.
    Anomaly { usual: Decimal },
}

impl Call {
    pub fn kind(self) -> AlertKind {
        match self {
            Call::Threshold { .. } => AlertKind::Threshold,
            Call::Forecast { .. } => AlertKind::Forecast,
            Call::Anomaly { .. } => AlertKind::Anomaly,
        }
    }

    /// The amount an alert is measured against, as its stored event keeps it: the forecast, or
    /// the weekday's usual spend; none for a threshold.
    pub fn reference(self) -> Option<Decimal> {
        match self {
            Call::Threshold { .. } => None,
            Call::Forecast { forecast } => Some(forecast),
            Call::Anomaly { usual } => Some(usual),
        }
    }

    /// The threshold an alert is recorded under, once per period: a percent, 100 for the
    /// forecast, 0 for an anomaly.
    pub fn threshold(self) -> u32 {
        match self {
            Call::Threshold { percent } => percent,
            Call::Forecast { .. } => 100,
            Call::Anomaly { .. } => 0,
        }
    }
}

/// Spend by local day and currency over `[from, to)` local dates, in `scope`, with the part of
/// it estimated from usage not billed yet (from the UTC day before `now`'s): days as the overview
/// and the explorer place lines on them, so a budget counts what they show.
async fn daily_spend(
    engine: &Engine,
    org: OrgScope,
    zone: ReportingZone,
    scope: &BudgetScope,
    (from, to): (NaiveDate, NaiveDate),
    now: DateTime<Utc>,
) -> Result<BTreeMap<(String, NaiveDate), (Decimal, Decimal)>, NotifyError> {
    let since = now.date_naive() - chrono::Duration::days(1);
    let query = SpendQuery::new(zone, from, to).by(Granularity::Day).within(scope).estimating_since(since);
    let mut out: BTreeMap<(String, NaiveDate), (Decimal, Decimal)> = BTreeMap::new();
    for row in engine.spend(org, &query).await? {
        let day = row.slot.ok_or_else(|| NotifyError::Data("a day's spend without its day".into()))?.day();
        let (amount, estimated) = out.entry((row.currency, day)).or_default();
        *amount += row.amount;
        *estimated += row.estimated;
    }
    Ok(out)
}

/// A scope's spend in the current period of a kind, in one currency, and where it is heading.
#[derive(Clone, Debug)]
pub struct PeriodSpend {
    /// The current period, in the organization's local dates.
    pub period: Period,
    /// Spend this period in the currency.
    pub spend: Decimal,
    /// The part of `spend` estimated from usage not billed yet.
    pub estimated: Decimal,
    /// Spend this period billed in other currencies.
    pub other_currencies: BTreeMap<String, Decimal>,
    /// Period-end spend, forecast from the complete days before today (never below `spend`).
    pub forecast: Decimal,
    /// Local day by local day, in the currency, from [`HISTORY_DAYS`] before the period.
    pub history: Vec<DaySpend>,
    /// The last complete local day.
    pub yesterday: NaiveDate,
}

/// The spend of `scope` (of the whole organization when empty) in the `kind` period holding
/// `now`, in `currency`, with its forecast: what a budget of that scope counts, and the overview's
/// month-end forecast.
pub async fn period_spend(
    engine: &Engine,
    org: OrgScope,
    zone: ReportingZone,
    scope: &BudgetScope,
    kind: burnrate_core::BudgetPeriod,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<PeriodSpend, NotifyError> {
    let today = zone.date_of(now);
    let yesterday = today.pred_opt().expect("a day before");
    let period = Period::containing(kind, today);
    let from = period.start.min(yesterday) - chrono::Duration::days(HISTORY_DAYS);
    let spend_by_day = daily_spend(engine, org, zone, scope, (from, period.end), now).await?;
    let (mut spend, mut estimated) = (Decimal::ZERO, Decimal::ZERO);
    let mut other_currencies: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut history: BTreeMap<NaiveDate, Decimal> = BTreeMap::new();
    for ((c, day), (amount, estimate)) in &spend_by_day {
        let counted = c == currency;
        if period.contains(*day) {
            if counted {
                spend += amount;
                estimated += estimate;
            } else {
                *other_currencies.entry(c.clone()).or_default() += amount;
            }
        }
        if counted {
            *history.entry(*day).or_default() += amount;
        }
    }
    // Days without spend since the scope's first spend are days that spent nothing; the norms
    // need them. Before it there is no history, not a history of zeros (a new scope's first day
    // is no anomaly).
    let mut day = history.keys().next().copied().unwrap_or(today);
    while day < period.end.min(today.succ_opt().expect("a next day")) {
        history.entry(day).or_default();
        day = day.succ_opt().expect("a next day");
    }
    let history: Vec<DaySpend> = history.into_iter().map(|(day, amount)| DaySpend { day, amount }).collect();
    // The forecast rests on complete days: today's partial spend would read as a slowdown.
    let complete: Vec<DaySpend> = history.iter().copied().filter(|d| d.day <= yesterday).collect();
    let forecast = forecast_period_end(&complete, period.start, period.end, yesterday);
    Ok(PeriodSpend { period, spend, estimated, other_currencies, forecast: forecast.max(spend), history, yesterday })
}

/// Where `budget` stands at `now`.
pub async fn budget_status(
    engine: &Engine,
    org: OrgScope,
    zone: ReportingZone,
    budget: &BudgetRecord,
    now: DateTime<Utc>,
) -> Result<BudgetStatus, NotifyError> {
    let currency = budget.amount.currency();
    let p = period_spend(engine, org, zone, &budget.scope, budget.period, currency.as_str(), now).await?;
    Ok(BudgetStatus {
        budget: budget.clone(),
        zone,
        period: p.period,
        resets_at: zone.start_of(p.period.end),
        spend: p.spend,
        estimated: p.estimated,
        other_currencies: p.other_currencies,
        forecast: p.forecast,
        history: p.history,
        yesterday: p.yesterday,
    })
}

//! Spend as people read it: the overview's summary and the explorer's views, asked as typed spend
//! queries ([`burnrate_engine::spend`]), and the FOCUS export's statement — all through the SQL
//! engine (the same path as SQL clients), each as the actor may read.

use std::collections::BTreeMap;

use burnrate_core::ReportingZone;
use burnrate_engine::spend::{Dimension, Granularity, SpendQuery, SpendRow};
use burnrate_engine::{EngineError, QueryStream, SqlSession};
use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::exports::Export;
use crate::sql_access::reader_for;
use crate::{Actor, App, Error, Result};

/// A FOCUS column no provider reports to burnrate yet: null in every export.
const NULL_TEXT: &str = "CAST(NULL AS VARCHAR)";

/// The FOCUS 1.2 columns of an export, in order: (name, SQL over the cost line `c` and its source
/// `s`). Columns FOCUS requires that the providers do not report are derived where FOCUS says how
/// (billing period from the charge period, pricing as consumed) and null otherwise; burnrate's own
/// columns carry the `x_` prefix.
const FOCUS_COLUMNS: [(&str, &str); 45] = [
    ("ChargePeriodStart", "c.charge_period_start"),
    ("ChargePeriodEnd", "c.charge_period_end"),
    ("BillingPeriodStart", "date_trunc('month', c.charge_period_start)"),
    ("BillingPeriodEnd", "date_trunc('month', c.charge_period_start) + INTERVAL '1 month'"),
    ("BilledCost", "c.billed_cost"),
    ("EffectiveCost", "c.effective_cost"),
    ("ListCost", "c.list_cost"),
    ("ContractedCost", "c.billed_cost"),
    ("BillingCurrency", "c.billing_currency"),
    ("BillingAccountId", "c.source_id"),
    ("BillingAccountName", "s.name"),
    ("ProviderName", "c.provider_name"),
    ("PublisherName", "c.provider_name"),
    ("InvoiceIssuerName", "c.provider_name"),
    ("InvoiceId", NULL_TEXT),
    ("ServiceName", "c.service_name"),
    ("ServiceCategory", "'AI and Machine Learning'"),
    (
        "ServiceSubcategory",
        "CASE WHEN c.provider_name IN ('Google Cloud', 'Microsoft') THEN 'AI Platforms' ELSE 'Generative AI' END",
    ),
    ("SubAccountId", "c.sub_account_id"),
    ("SubAccountName", NULL_TEXT),
    ("RegionId", NULL_TEXT),
    ("RegionName", NULL_TEXT),
    ("ResourceId", NULL_TEXT),
    ("ResourceName", NULL_TEXT),
    ("ResourceType", NULL_TEXT),
    ("SkuId", "c.sku_id"),
    ("ChargeCategory", "c.charge_category"),
    ("ChargeClass", NULL_TEXT),
    ("ChargeFrequency", "CASE WHEN c.charge_category = 'Purchase' THEN 'One-Time' ELSE 'Usage-Based' END"),
    ("ChargeDescription", "c.charge_description"),
    ("PricingCategory", "CASE WHEN c.charge_category IN ('Usage', 'Purchase') THEN 'Standard' END"),
    ("CommitmentDiscountId", NULL_TEXT),
    ("CommitmentDiscountName", NULL_TEXT),
    ("CommitmentDiscountCategory", NULL_TEXT),
    ("CommitmentDiscountType", NULL_TEXT),
    ("CommitmentDiscountStatus", NULL_TEXT),
    ("ConsumedQuantity", "c.consumed_quantity"),
    ("ConsumedUnit", "c.consumed_unit"),
    ("PricingQuantity", "c.consumed_quantity"),
    ("PricingUnit", "c.consumed_unit"),
    ("Tags", "c.tags"),
    ("x_Model", "c.model"),
    ("x_ApiKeyId", "c.api_key_id"),
    ("x_SourceId", "c.source_id"),
    ("x_ListCostEstimated", "c.x_list_cost_estimated"),
];

/// The FOCUS export's statement over the days `from` (inclusive) to `to` (exclusive), UTC;
/// all of them without bounds. Dates are checked values, so they are written in as literals.
fn focus_statement(from: Option<NaiveDate>, to: Option<NaiveDate>) -> String {
    let mut conditions = Vec::new();
    if let Some(from) = from {
        conditions.push(format!("c.charge_day >= DATE '{from}'"));
    }
    if let Some(to) = to {
        conditions.push(format!("c.charge_day < DATE '{to}'"));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    let columns: Vec<String> = FOCUS_COLUMNS.iter().map(|(name, sql)| format!("{sql} AS \"{name}\"")).collect();
    format!(
        "SELECT {} FROM costs c LEFT JOIN sources s ON s.id = c.source_id{filter} ORDER BY c.charge_period_start",
        columns.join(", ")
    )
}

impl App {
    /// A SQL session of the actor's organization, reading what their role may (`label` names it
    /// where the engine names its sessions); not found in an instance that serves no SQL.
    pub fn sql_session(&self, actor: &Actor, label: &str) -> Result<SqlSession> {
        let engine = self.engine.as_ref().ok_or(Error::NotFound)?;
        let session = engine.connect(actor.scope, reader_for(actor.role), label).map_err(Error::internal)?;
        Ok(session.from_front_end("sql"))
    }

    /// Starts the FOCUS export of the days `from` to `to` (exclusive) in `format`, recorded first
    /// (S16); the rows stream from the returned query as the engine produces them.
    pub async fn export_focus(
        &self,
        actor: &Actor,
        label: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        format: &str,
    ) -> Result<(SqlSession, QueryStream)> {
        let session = self.sql_session(actor, label)?;
        let stream = session.query(&focus_statement(from, to)).await.map_err(Error::internal)?;
        let details = json!({ "dataset": "focus", "format": format, "from": from, "to": to });
        self.record_export(actor, Export::Costs, details).await?;
        Ok((session, stream))
    }
}

/// Spend of one provider on one UTC day, in one currency.
#[derive(Serialize, ToSchema)]
pub struct DaySpend {
    pub day: chrono::NaiveDate,
    /// The FOCUS provider name (`OpenAI`, `Anthropic`, …).
    pub provider: String,
    pub currency: String,
    /// Exact decimal text.
    #[schema(value_type = String, example = "12.345678900")]
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: rust_decimal::Decimal,
    /// The amount is (in part) estimated from usage the provider has not billed yet: its
    /// computed cost at the price book's rates. It switches to billed when the cost report
    /// arrives.
    pub estimated: bool,
}

/// An amount in one currency.
#[derive(Serialize, ToSchema)]
pub struct CurrencyAmount {
    pub currency: String,
    #[schema(value_type = String, example = "1234.5")]
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: rust_decimal::Decimal,
}

/// What the overview shows: the last 30 days by day and provider, newest first; the month to date
/// per currency, the same days of the previous month and the month-end forecast; this month's five
/// largest models, projects and API keys; the models whose spend moved most this week.
#[derive(Serialize, ToSchema)]
pub struct SpendSummary {
    pub days: Vec<DaySpend>,
    pub month_to_date: Vec<CurrencyAmount>,
    /// The part of the month to date estimated from usage not billed yet, per currency (none
    /// when all of it was billed).
    pub month_to_date_estimated: Vec<CurrencyAmount>,
    /// The previous month from its first day up to the same day of the month as today (or its
    /// end), per currency: what the month to date compares with.
    pub previous_month_to_date: Vec<CurrencyAmount>,
    /// The month's spend at its end, per currency: the month to date plus, for each day left, the
    /// last seven complete days' level shaped by weekday (as budgets forecast).
    pub month_forecast: Vec<CurrencyAmount>,
    /// The model, or the service where a line names no model.
    pub top_models: Vec<TopSpend>,
    /// Projects, workspaces or accounts (lines that name one).
    pub top_projects: Vec<TopSpend>,
    /// API keys (lines that name one).
    pub top_api_keys: Vec<TopSpend>,
    /// Up to five models (or services) whose spend changed most between the last seven complete
    /// days and the seven before, largest change first.
    pub movers: Vec<Mover>,
    /// The organization's reporting time zone: whose days and months these are.
    pub zone: String,
}

/// This month's spend on one model, project or API key.
#[derive(Serialize, ToSchema)]
pub struct TopSpend {
    pub name: String,
    /// The explorer dimension `name` is a value of: `model`, `service`, `project` or `api_key`.
    pub dimension: &'static str,
    pub currency: String,
    #[schema(value_type = String, example = "812.25")]
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: rust_decimal::Decimal,
}

/// A model's (or service's) spend over the last seven complete days beside the seven before.
#[derive(Serialize, ToSchema)]
pub struct Mover {
    pub name: String,
    /// `model` or `service`, as in [`TopSpend`].
    pub dimension: &'static str,
    pub currency: String,
    #[schema(value_type = String, example = "410.5")]
    #[serde(with = "rust_decimal::serde::str")]
    pub last_7_days: rust_decimal::Decimal,
    #[schema(value_type = String, example = "300")]
    #[serde(with = "rust_decimal::serde::str")]
    pub previous_7_days: rust_decimal::Decimal,
}

impl App {
    /// The organization's spend as `query` asks, read as the actor's role may (through the same
    /// engine as SQL clients), in no particular order.
    pub async fn spend(&self, actor: &Actor, query: &SpendQuery) -> Result<Vec<SpendRow>> {
        self.sql_session(actor, "spend")?.spend(query).await.map_err(Error::internal)
    }

    /// The overview's numbers, read through the spend queries (the same as the explorer, budgets and
    /// the digest ask), in the organization's reporting time zone.
    pub async fn spend_summary(&self, actor: &Actor, zone: ReportingZone) -> Result<SpendSummary> {
        let engine = self.engine.as_ref().ok_or_else(|| Error::internal("this instance runs no SQL engine"))?;
        let now = self.clock.now();
        let today = zone.date_of(now);
        let tomorrow = today + chrono::Duration::days(1);
        let month_start = today.with_day(1).unwrap_or(today);
        let (previous_start, previous_until) = previous_month_to_date(today);
        let since = today - chrono::Duration::days(29);
        let ask = |query: SpendQuery| async move { self.spend(actor, &query).await };
        // Today and yesterday (UTC, the providers' billing days) may be known from usage only.
        let estimating_since = now.date_naive() - chrono::Duration::days(1);
        let days_of = |from, to| SpendQuery::new(zone, from, to).estimating_since(estimating_since);

        let mut days: Vec<DaySpend> =
            ask(days_of(since, tomorrow).by(Granularity::Day).grouped_by(Dimension::Provider))
                .await?
                .into_iter()
                .map(|r| {
                    // Asked by day and provider: a row without either is a broken answer.
                    let broken = || Error::internal("a day's spend without its day or provider");
                    Ok(DaySpend {
                        day: r.slot.ok_or_else(broken)?.day(),
                        provider: r.groups[0].clone().ok_or_else(broken)?,
                        currency: r.currency,
                        amount: r.amount,
                        estimated: !r.estimated.is_zero(),
                    })
                })
                .collect::<Result<_>>()?;
        days.sort_by(|a, b| {
            b.day.cmp(&a.day).then_with(|| (&a.provider, &a.currency).cmp(&(&b.provider, &b.currency)))
        });

        let per_currency = |rows: Vec<SpendRow>| {
            let mut amounts: Vec<CurrencyAmount> =
                rows.into_iter().map(|r| CurrencyAmount { currency: r.currency, amount: r.amount }).collect();
            amounts.sort_by(|a, b| a.currency.cmp(&b.currency));
            amounts
        };
        let month = ask(days_of(month_start, tomorrow)).await?;
        let mut month_to_date_estimated: Vec<CurrencyAmount> = month
            .iter()
            .filter(|r| !r.estimated.is_zero())
            .map(|r| CurrencyAmount { currency: r.currency.clone(), amount: r.estimated })
            .collect();
        month_to_date_estimated.sort_by(|a, b| a.currency.cmp(&b.currency));
        let month_to_date = per_currency(month);
        let previous = per_currency(ask(days_of(previous_start, previous_until)).await?);

        let top = |dimension: Dimension| async move {
            let rows = ask(days_of(month_start, tomorrow).grouped_by(dimension)).await?;
            let mut top: Vec<TopSpend> = rows
                .into_iter()
                .filter_map(|r| {
                    let name = r.groups[0].clone()?;
                    Some(TopSpend { name, dimension: dimension.name(), currency: r.currency, amount: r.amount })
                })
                .collect();
            top.sort_by(|a, b| b.amount.cmp(&a.amount).then_with(|| a.name.cmp(&b.name)));
            top.truncate(5);
            Ok::<_, Error>(top)
        };
        // A line without a model counts under its service, and links to the explorer by service.
        let by_model = |from, to| async move {
            let rows = ask(days_of(from, to).grouped_by(Dimension::Model).grouped_by(Dimension::Service)).await?;
            let mut out: BTreeMap<(String, &'static str, String), Decimal> = BTreeMap::new();
            for r in rows {
                let (name, dimension) = model_or_service(&r.groups[0], &r.groups[1]);
                *out.entry((name, dimension, r.currency)).or_default() += r.amount;
            }
            Ok::<_, Error>(out)
        };
        let mut top_models: Vec<TopSpend> = by_model(month_start, tomorrow)
            .await?
            .into_iter()
            .map(|((name, dimension, currency), amount)| TopSpend { name, dimension, currency, amount })
            .collect();
        top_models.sort_by(|a, b| {
            b.amount
                .cmp(&a.amount)
                .then_with(|| (a.dimension == "service", &a.name).cmp(&(b.dimension == "service", &b.name)))
        });
        top_models.truncate(5);

        let week = today - chrono::Duration::days(7);
        let last = by_model(week, today).await?;
        let before = by_model(week - chrono::Duration::days(7), week).await?;
        let mut movers: Vec<Mover> = last
            .keys()
            .chain(before.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|key| {
                let (name, dimension, currency) = key.clone();
                // A model with no lines in one of the weeks spent nothing in it.
                let amount = |side: &BTreeMap<_, Decimal>| side.get(key).map_or(Decimal::ZERO, |d| *d);
                Mover { name, dimension, currency, last_7_days: amount(&last), previous_7_days: amount(&before) }
            })
            .filter(|m| m.last_7_days != m.previous_7_days)
            .collect();
        movers.sort_by(|a, b| {
            let change = |m: &Mover| (m.last_7_days - m.previous_7_days).abs();
            change(b).cmp(&change(a)).then_with(|| a.name.cmp(&b.name))
        });
        movers.truncate(5);

        let mut month_forecast = Vec::new();
        for m in &month_to_date {
            let whole = burnrate_core::BudgetScope::default();
            let p = burnrate_notify::period_spend(
                engine,
                actor.scope,
                zone,
                &whole,
                burnrate_core::BudgetPeriod::Month,
                &m.currency,
                now,
            )
            .await
            .map_err(Error::internal)?;
            month_forecast.push(CurrencyAmount { currency: m.currency.clone(), amount: p.forecast });
        }
        Ok(SpendSummary {
            days,
            month_to_date,
            month_to_date_estimated,
            previous_month_to_date: previous,
            month_forecast,
            top_models,
            top_projects: top(Dimension::Project).await?,
            top_api_keys: top(Dimension::ApiKey).await?,
            movers,
            zone: zone.name().to_owned(),
        })
    }
}

/// The name a grouped line goes by: its model, else its service (and which of the two it is).
fn model_or_service(model: &Option<String>, service: &Option<String>) -> (String, &'static str) {
    match model {
        Some(m) => (m.clone(), "model"),
        None => (service.clone().unwrap_or_default(), "service"),
    }
}

/// What the month to date of `today` compares with: the previous month from its first day, as
/// many days into it (never past its end); the end is exclusive.
pub fn previous_month_to_date(today: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
    let month_start = today.with_day(1).unwrap_or(today);
    let start = month_start - chrono::Months::new(1);
    (start, (start + (today - month_start) + chrono::Duration::days(1)).min(month_start))
}

/// Rows `from..from + n` of `batch` as text (NULL as `None`), each value cut to `cut` characters.
pub fn texts(
    batch: &RecordBatch,
    from: usize,
    n: usize,
    cut: Option<usize>,
) -> Result<Vec<Vec<Option<String>>>, EngineError> {
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EngineError::Plan(e.to_string()))?;
    Ok((from..from + n)
        .map(|row| {
            batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(column, f)| {
                    (!column.is_null(row)).then(|| {
                        let text = f.value(row).to_string();
                        match cut {
                            Some(max) if text.chars().count() > max => {
                                format!("{}…", text.chars().take(max).collect::<String>())
                            }
                            _ => text,
                        }
                    })
                })
                .collect()
        })
        .collect())
}

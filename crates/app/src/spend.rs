//! Spend as people read it: the overview's summary, and the statements over an organization's
//! cost lines that the explorer and the FOCUS export run, all through the SQL engine (the same path
//! as SQL clients), each as the actor may read.

use burnrate_core::ReportingZone;
use burnrate_engine::{EngineError, QueryStream, SqlSession, local};
use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::exports::Export;
use crate::sql_access::reader_for;
use crate::{Actor, App, Error, Result};

/// The dimensions the explorer groups and filters by: (URL name, label, SQL expression).
pub const DIMENSIONS: [(&str, &str, &str); 9] = [
    ("provider", "Provider", "c.provider_name"),
    ("source", "Source", "s.name"),
    ("service", "Service", "c.service_name"),
    ("project", "Project / workspace / account", "c.sub_account_id"),
    ("model", "Model", "c.model"),
    ("api_key", "API key", "c.api_key_id"),
    ("sku", "SKU", "c.sku_id"),
    ("category", "Charge category", "c.charge_category"),
    ("tags", "Tags", "c.tags"),
];

/// A dimension: its URL name, its label, and the expression over the cost line `c` and its
/// source `s` that reads it.
pub type Dimension = (&'static str, &'static str, &'static str);

/// How finely the explorer cuts its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
    Week,
    Month,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }
}

/// An explorer view: spend by `group` over the days `from` to `to` (exclusive) of `zone`, cut by
/// `granularity`, where each filter's dimension equals its value (checked: no quote, backslash
/// or control character, at most 200 characters).
pub struct ExplorerView<'a> {
    pub zone: ReportingZone,
    pub group: Dimension,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub granularity: Granularity,
    pub filters: &'a [(Dimension, String)],
}

impl ExplorerView<'_> {
    /// Rows of (period, group, currency, billed), by period then billed, largest first.
    pub fn statement(&self) -> String {
        let mut conditions = vec![local::in_days(self.zone, self.from, self.to)];
        for ((_, _, expr), value) in self.filters {
            conditions.push(format!("{expr} = '{value}'"));
        }
        let period = match self.granularity {
            Granularity::Hour => local::hour(self.zone),
            other => local::period(self.zone, other.as_str()),
        };
        // The roll-up serves every view that does not look at SKUs, API keys or tags.
        let columns: Vec<&str> = std::iter::once(self.group.2)
            .chain(self.filters.iter().map(|((_, _, expr), _)| *expr))
            .filter_map(|expr| expr.strip_prefix("c."))
            .collect();
        let table = burnrate_engine::cost_table_reading(&columns);
        format!(
            "SELECT {period} AS period, {dim} AS grp, c.billing_currency AS currency, sum(c.billed_cost) AS billed \
             FROM {table} c LEFT JOIN sources s ON s.id = c.source_id WHERE {} \
             GROUP BY {period}, {dim}, c.billing_currency ORDER BY period, billed DESC",
            conditions.join(" AND "),
            dim = self.group.2,
        )
    }
}

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
        engine.connect(actor.scope, reader_for(actor.role), label).map_err(Error::internal)
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
    /// The overview's numbers, read through the SQL engine (the same path as SQL, exports and the
    /// explorer), in the organization's reporting time zone as the explorer counts days.
    pub async fn spend_summary(&self, actor: &Actor, zone: ReportingZone) -> Result<SpendSummary> {
        let scope = actor.scope;
        use burnrate_engine::local::{in_days, period};
        let engine = self.engine.as_ref().ok_or_else(|| Error::internal("this instance runs no SQL engine"))?;
        let today = zone.date_of(chrono::Utc::now());
        let tomorrow = today + chrono::Duration::days(1);
        let month_start = today.with_day(1).unwrap_or(today);
        let (previous_start, previous_until) = previous_month_to_date(today);
        let since = today - chrono::Duration::days(29);
        let day = period(zone, "day");
        // Provider, service and model: the roll-up has them (and the days, currencies and sums).
        let costs = burnrate_engine::cost_table_reading(&["provider_name", "service_name", "model"]);
        let rows = |sql: String| async move {
            let (_, batches) = engine.collect(scope, &sql).await.map_err(Error::internal)?;
            text_rows(&batches)
        };
        let decimal = decimal_cell;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let days = rows(format!(
            "SELECT {day} AS d, c.provider_name, c.billing_currency, sum(c.billed_cost) FROM {costs} c \
             WHERE {} GROUP BY {day}, c.provider_name, c.billing_currency \
             ORDER BY d DESC, c.provider_name, c.billing_currency",
            in_days(zone, since, tomorrow)
        ))
        .await?
        .iter()
        .map(|r| {
            Ok(DaySpend {
                day: r[0].as_deref().and_then(|d| d.parse().ok()).unwrap_or(today),
                provider: text(&r[1]),
                currency: text(&r[2]),
                amount: decimal(&r[3])?,
            })
        })
        .collect::<Result<_>>()?;
        let months = rows(format!(
            "SELECT c.billing_currency, \
             sum(CASE WHEN {day} >= DATE '{month_start}' THEN c.billed_cost END), \
             sum(CASE WHEN {day} < DATE '{previous_until}' THEN c.billed_cost END) \
             FROM {costs} c WHERE {} GROUP BY c.billing_currency ORDER BY c.billing_currency",
            in_days(zone, previous_start, tomorrow)
        ))
        .await?;
        let amounts = |column: usize| -> Result<Vec<CurrencyAmount>> {
            months
                .iter()
                .filter(|r| r[column].is_some())
                .map(|r| Ok(CurrencyAmount { currency: text(&r[0]), amount: decimal(&r[column])? }))
                .collect()
        };
        let month = in_days(zone, month_start, tomorrow);
        let top = |dimension: &'static str, column: &'static str| {
            let month = month.clone();
            async move {
                let table = burnrate_engine::cost_table_reading(&[column]);
                let sql = format!(
                    "SELECT c.{column} AS what, c.billing_currency, sum(c.billed_cost) AS spent FROM {table} c \
                     WHERE {month} AND c.{column} IS NOT NULL GROUP BY c.{column}, c.billing_currency \
                     ORDER BY spent DESC, what LIMIT 5"
                );
                rows(sql)
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(TopSpend { name: text(&r[0]), dimension, currency: text(&r[1]), amount: decimal(&r[2])? })
                    })
                    .collect::<Result<Vec<_>>>()
            }
        };
        // A line without a model counts under its service, and links to the explorer by service.
        let top_models = rows(format!(
            "SELECT c.model, CASE WHEN c.model IS NULL THEN c.service_name END AS service, c.billing_currency, \
             sum(c.billed_cost) AS spent FROM {costs} c WHERE {month} \
             GROUP BY c.model, CASE WHEN c.model IS NULL THEN c.service_name END, c.billing_currency \
             ORDER BY spent DESC, c.model, service LIMIT 5"
        ))
        .await?
        .iter()
        .map(|r| {
            let (name, dimension) = model_or_service(&r[0], &r[1]);
            Ok(TopSpend { name, dimension, currency: text(&r[2]), amount: decimal(&r[3])? })
        })
        .collect::<Result<_>>()?;
        let week = today - chrono::Duration::days(7);
        let mut movers: Vec<Mover> = rows(format!(
            "SELECT c.model, CASE WHEN c.model IS NULL THEN c.service_name END AS service, c.billing_currency, \
             sum(CASE WHEN {day} >= DATE '{week}' THEN c.billed_cost END), \
             sum(CASE WHEN {day} < DATE '{week}' THEN c.billed_cost END) \
             FROM {costs} c WHERE {} \
             GROUP BY c.model, CASE WHEN c.model IS NULL THEN c.service_name END, c.billing_currency",
            in_days(zone, week - chrono::Duration::days(7), today)
        ))
        .await?
        .iter()
        .map(|r| {
            let (name, dimension) = model_or_service(&r[0], &r[1]);
            Ok(Mover {
                name,
                dimension,
                currency: text(&r[2]),
                last_7_days: decimal(&r[3])?,
                previous_7_days: decimal(&r[4])?,
            })
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|m| m.last_7_days != m.previous_7_days)
        .collect();
        movers.sort_by(|a, b| {
            let change = |m: &Mover| (m.last_7_days - m.previous_7_days).abs();
            change(b).cmp(&change(a)).then_with(|| a.name.cmp(&b.name))
        });
        movers.truncate(5);
        let month_to_date = amounts(1)?;
        let mut month_forecast = Vec::new();
        for m in &month_to_date {
            let whole = burnrate_core::BudgetScope::default();
            let p = burnrate_notify::period_spend(
                engine,
                scope,
                zone,
                &whole,
                burnrate_core::BudgetPeriod::Month,
                &m.currency,
                chrono::Utc::now(),
            )
            .await
            .map_err(Error::internal)?;
            month_forecast.push(CurrencyAmount { currency: m.currency.clone(), amount: p.forecast });
        }
        Ok(SpendSummary {
            days,
            month_to_date,
            previous_month_to_date: amounts(2)?,
            month_forecast,
            top_models,
            top_projects: top("project", "sub_account_id").await?,
            top_api_keys: top("api_key", "api_key_id").await?,
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

/// Every row of a finished query as text (NULL as `None`), for pages that compute from a result.
pub fn text_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<Option<String>>>> {
    let mut rows = Vec::new();
    for batch in batches {
        rows.extend(texts(batch, 0, batch.num_rows(), None).map_err(Error::internal)?);
    }
    Ok(rows)
}

/// A decimal cell of [`text_rows`]; NULL (an empty sum) is zero. A cell that does not read as a
/// decimal is an error: a figure is never shown as 0 because it could not be read.
pub fn decimal_cell(cell: &Option<String>) -> Result<rust_decimal::Decimal> {
    match cell.as_deref() {
        None => Ok(rust_decimal::Decimal::ZERO),
        Some(t) => {
            t.parse().map_err(|e| Error::internal(format!("a spend amount {t:?} does not read as a decimal: {e}")))
        }
    }
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

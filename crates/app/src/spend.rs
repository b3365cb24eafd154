//! The statements over an organization's cost lines that the explorer and the FOCUS export run,
//! through the SQL engine (the same path as SQL clients), each as the actor may read.

use burnrate_core::ReportingZone;
use burnrate_engine::{QueryStream, SqlSession, local};
use chrono::NaiveDate;
use serde_json::json;

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

//! Spend questions, typed: which local days of the organization, cut by hour, day, week or month,
//! grouped and filtered by dimensions, within a budget's scope — built as DataFusion expressions over
//! `cost_rollup` (or `costs` when the roll-up lacks a column), never as SQL text, and answered in
//! rows whose amounts are decoded once, by [`amounts`].
//!
//! Where a line falls in the organization's days is one rule for the overview, the explorer,
//! budgets and digests, so their numbers agree: a line shorter than a day falls on the local day
//! (hour, week, month) its start falls in; a line a provider reports as a whole UTC day has no
//! hours to place and stays on its UTC day. In UTC, both rules are the line's `charge_day`, which
//! is then read alone.

use burnrate_core::{BudgetScope, ReportingZone};
use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type, TimeUnit};
use datafusion::common::JoinType;
use datafusion::functions::expr_fn::{date_part, date_trunc, lower, to_char};
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use datafusion::scalar::ScalarValue;
use rust_decimal::Decimal;

use burnrate_store::OrgScope;

use crate::{EngineError, cost_table_reading};

/// How finely a range of days is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
    /// From Monday.
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

    pub fn parse(name: &str) -> Option<Self> {
        [Granularity::Hour, Granularity::Day, Granularity::Week, Granularity::Month]
            .into_iter()
            .find(|g| g.as_str() == name)
    }
}

/// What spend is grouped and filtered by: a column of the cost lines, or their source's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Provider,
    /// The connected source's name.
    Source,
    Service,
    /// The project, workspace or account (`sub_account_id`).
    Project,
    Model,
    ApiKey,
    Sku,
    Category,
    Tags,
}

impl Dimension {
    pub const ALL: [Dimension; 9] = [
        Dimension::Provider,
        Dimension::Source,
        Dimension::Service,
        Dimension::Project,
        Dimension::Model,
        Dimension::ApiKey,
        Dimension::Sku,
        Dimension::Category,
        Dimension::Tags,
    ];

    /// Its name in URLs and forms.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Provider => "provider",
            Dimension::Source => "source",
            Dimension::Service => "service",
            Dimension::Project => "project",
            Dimension::Model => "model",
            Dimension::ApiKey => "api_key",
            Dimension::Sku => "sku",
            Dimension::Category => "category",
            Dimension::Tags => "tags",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Dimension::Provider => "Provider",
            Dimension::Source => "Source",
            Dimension::Service => "Service",
            Dimension::Project => "Project / workspace / account",
            Dimension::Model => "Model",
            Dimension::ApiKey => "API key",
            Dimension::Sku => "SKU",
            Dimension::Category => "Charge category",
            Dimension::Tags => "Tags",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The cost column it reads (the source's id, for its name).
    fn column(self) -> &'static str {
        match self {
            Dimension::Provider => "provider_name",
            Dimension::Source => "source_id",
            Dimension::Service => "service_name",
            Dimension::Project => "sub_account_id",
            Dimension::Model => "model",
            Dimension::ApiKey => "api_key_id",
            Dimension::Sku => "sku_id",
            Dimension::Category => "charge_category",
            Dimension::Tags => "tags",
        }
    }

    fn expr(self) -> Expr {
        match self {
            Dimension::Source => col(SOURCE_NAME),
            other => col(other.column()),
        }
    }
}

/// The source's name beside each line, joined in when a question asks for it.
const SOURCE_NAME: &str = "x_source_name";

/// Where a row of an answer falls: a local day (the first of its week or month), an hour, or — by
/// hour — a whole UTC day that a provider reports without hours. A whole day comes before that
/// day's hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    Day(NaiveDate),
    Hour(NaiveDateTime),
    WholeDay(NaiveDate),
}

impl Slot {
    fn key(&self) -> (NaiveDate, Option<chrono::NaiveTime>) {
        match *self {
            Slot::Day(d) | Slot::WholeDay(d) => (d, None),
            Slot::Hour(t) => (t.date(), Some(t.time())),
        }
    }

    /// The day it falls on.
    pub fn day(&self) -> NaiveDate {
        self.key().0
    }
}

impl Ord for Slot {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slot::Day(d) => write!(f, "{d}"),
            Slot::Hour(t) => write!(f, "{}", t.format("%Y-%m-%d %H:00")),
            Slot::WholeDay(d) => write!(f, "{d} (whole day)"),
        }
    }
}

/// Spend over the organization's local days `from` (inclusive) to `to` (exclusive), by currency,
/// and by what [`SpendQuery::by`], [`SpendQuery::grouped_by`], [`SpendQuery::where_is`] and
/// [`SpendQuery::within`] add.
#[derive(Clone, Debug)]
pub struct SpendQuery {
    zone: ReportingZone,
    from: NaiveDate,
    to: NaiveDate,
    granularity: Option<Granularity>,
    groups: Vec<Dimension>,
    filters: Vec<(Dimension, String)>,
    scope: BudgetScope,
    estimating_since: Option<NaiveDate>,
}

/// One row of an answer: where it falls (when cut), the groups' values in the order asked (`None`
/// for lines without one), the currency and the amount billed in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendRow {
    pub slot: Option<Slot>,
    pub groups: Vec<Option<String>>,
    pub currency: String,
    pub amount: Decimal,
    /// The part of `amount` estimated from usage not billed yet (see
    /// [`SpendQuery::estimating_since`]); zero when all of it was billed.
    pub estimated: Decimal,
}

impl SpendQuery {
    pub fn new(zone: ReportingZone, from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            zone,
            from,
            to,
            granularity: None,
            groups: Vec::new(),
            filters: Vec::new(),
            scope: BudgetScope::default(),
            estimating_since: None,
        }
    }

    /// Counts, from the UTC day `since` on, each day a source has usage but no cost line yet at
    /// its usage's computed cost (the price book's), as estimated spend. Cost reports lag usage
    /// by hours to a day: today's and yesterday's spend is known from usage before it is billed.
    /// Usage no rate prices is not counted.
    pub fn estimating_since(mut self, since: NaiveDate) -> Self {
        self.estimating_since = Some(since);
        self
    }

    /// Cut by hour, local day, week (from Monday) or month.
    pub fn by(mut self, granularity: Granularity) -> Self {
        self.granularity = Some(granularity);
        self
    }

    /// Grouped by `dimension` too (after those already asked).
    pub fn grouped_by(mut self, dimension: Dimension) -> Self {
        self.groups.push(dimension);
        self
    }

    /// Only the lines whose `dimension` is `value`.
    pub fn where_is(mut self, dimension: Dimension, value: &str) -> Self {
        self.filters.push((dimension, value.to_owned()));
        self
    }

    /// Only the lines a budget of `scope` counts.
    pub fn within(mut self, scope: &BudgetScope) -> Self {
        self.scope = scope.clone();
        self
    }

    /// The cost columns the question reads besides days, currencies and amounts: the roll-up
    /// answers it when it has them all.
    fn columns(&self) -> Vec<&'static str> {
        let s = &self.scope;
        let mut columns: Vec<&'static str> =
            self.groups.iter().chain(self.filters.iter().map(|(d, _)| d)).map(|d| d.column()).collect();
        for (set, column) in [
            (s.provider.is_some(), "provider_name"),
            (s.source_id.is_some(), "source_id"),
            (s.project.is_some(), "sub_account_id"),
            (s.model.is_some(), "model"),
            (s.api_key_id.is_some(), "api_key_id"),
        ] {
            if set {
                columns.push(column);
            }
        }
        columns
    }

    fn reads_source_names(&self) -> bool {
        self.groups.iter().chain(self.filters.iter().map(|(d, _)| d)).any(|d| *d == Dimension::Source)
    }

    /// The lines the question counts: the days, then the filters and the scope.
    fn condition(&self) -> Expr {
        let filters = self.filters.iter().map(|(d, value)| d.expr().eq(lit(value.as_str())));
        filters.chain(scope_condition(&self.scope)).fold(in_days(self.zone, self.from, self.to), Expr::and)
    }

    /// The grouping: the slot's columns (`period`, and `hour` by hour), the groups (`g0`, `g1`, …)
    /// and the currency.
    fn grouping(&self) -> Vec<Expr> {
        let mut group = Vec::new();
        match self.granularity {
            Some(Granularity::Hour) => {
                // A whole-day line keeps its UTC day and has no hour; a shorter one has its local hour.
                let day = when(short_line(), lit(ScalarValue::Date32(None)))
                    .otherwise(col("charge_day"))
                    .expect("a CASE with one branch and an ELSE");
                let hour =
                    when(short_line(), to_char(date_trunc(lit("hour"), local_start(self.zone)), lit(HOUR_FORMAT)))
                        .end()
                        .expect("a CASE with one branch");
                group.push(day.alias("period"));
                group.push(hour.alias("hour"));
            }
            Some(g) => group.push(period(self.zone, g).alias("period")),
            None => {}
        }
        for (i, d) in self.groups.iter().enumerate() {
            group.push(d.expr().alias(format!("g{i}")));
        }
        group.push(col("billing_currency").alias("currency"));
        group
    }
}

/// An hour as the engine writes it, and as [`Slot::Hour`] reads it back.
const HOUR_FORMAT: &str = "%Y-%m-%d %H:%M";

/// Lines shorter than a day. In seconds: an interval of 24 hours does not compare as one day.
fn short_line() -> Expr {
    let epoch = |c: &str| date_part(lit("epoch"), col(c));
    (epoch("charge_period_end") - epoch("charge_period_start")).lt(lit(86_400))
}

/// The start of a line as a time in `zone` (what SQL's `AT TIME ZONE` plans to).
fn local_start(zone: ReportingZone) -> Expr {
    cast(col("charge_period_start"), DataType::Timestamp(TimeUnit::Nanosecond, Some(zone.name().into())))
}

fn date(d: NaiveDate) -> Expr {
    lit(ScalarValue::Date32(Some((d - NaiveDate::default()).num_days() as i32)))
}

/// The first local day of the `granularity` (day, week or month) period a line falls in.
fn period(zone: ReportingZone, granularity: Granularity) -> Expr {
    let unit = granularity.as_str();
    if zone == ReportingZone::UTC {
        return match granularity {
            Granularity::Day => col("charge_day"),
            _ => cast(date_trunc(lit(unit), col("charge_day")), DataType::Date32),
        };
    }
    when(short_line(), cast(date_trunc(lit(unit), local_start(zone)), DataType::Date32))
        .otherwise(cast(date_trunc(lit(unit), col("charge_period_start")), DataType::Date32))
        .expect("a CASE with one branch and an ELSE")
}

/// The lines of the local days `from` (inclusive) to `to` (exclusive). Whole days around the
/// range come first: the lake's files are pruned by them.
fn in_days(zone: ReportingZone, from: NaiveDate, to: NaiveDate) -> Expr {
    let days = |from: NaiveDate, to: NaiveDate| col("charge_day").gt_eq(date(from)).and(col("charge_day").lt(date(to)));
    if zone == ReportingZone::UTC {
        return days(from, to);
    }
    let instant = |d: NaiveDate| {
        lit(ScalarValue::TimestampMicrosecond(Some(zone.start_of(d).timestamp_micros()), Some("UTC".into())))
    };
    let short = short_line()
        .and(col("charge_period_start").gt_eq(instant(from)))
        .and(col("charge_period_start").lt(instant(to)));
    let whole = (!short_line()).and(days(from, to));
    days(from - chrono::Duration::days(1), to + chrono::Duration::days(1)).and(short.or(whole))
}

/// A model pattern (`*` for any run of characters) as a LIKE pattern; `\` escapes.
fn like_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 2);
    for c in pattern.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The lines a budget of `scope` counts, as conditions joined by AND (none: all spend). Values
/// are literals of the plan, never spliced into text.
fn scope_condition(scope: &BudgetScope) -> Option<Expr> {
    let mut conditions = Vec::new();
    if let Some(p) = &scope.provider {
        conditions.push(lower(col("provider_name")).eq(lower(lit(p.as_str()))));
    }
    if let Some(s) = &scope.source_id {
        conditions.push(col("source_id").eq(lit(s.as_str())));
    }
    if let Some(p) = &scope.project {
        conditions.push(col("sub_account_id").eq(lit(p.as_str())));
    }
    if let Some(m) = &scope.model {
        conditions.push(match m.contains('*') {
            true => col("model").like(lit(like_pattern(m))),
            false => col("model").eq(lit(m.as_str())),
        });
    }
    if let Some(k) = &scope.api_key_id {
        conditions.push(col("api_key_id").eq(lit(k.as_str())));
    }
    conditions.into_iter().reduce(Expr::and)
}

/// The amounts of a column of spend, exactly: a decimal column as it is, NULL as `None`. Any other
/// type, or a scale a decimal cannot hold, is an error — a sum is never read as zero.
pub fn amounts(column: &ArrayRef) -> Result<Vec<Option<Decimal>>, EngineError> {
    let DataType::Decimal128(_, scale) = column.data_type() else {
        return Err(EngineError::Plan(format!("a spend amount of type {}: expected a decimal", column.data_type())));
    };
    let scale = u32::try_from(*scale)
        .ok()
        .filter(|s| *s <= 28)
        .ok_or_else(|| EngineError::Plan(format!("a spend amount of scale {scale}: at most 28 digits are kept")))?;
    let values = column.as_primitive::<Decimal128Type>();
    (0..values.len())
        .map(|i| {
            if values.is_null(i) {
                return Ok(None);
            }
            Decimal::try_from_i128_with_scale(values.value(i), scale)
                .map(Some)
                .map_err(|e| EngineError::Plan(format!("a spend amount {}: {e}", values.value(i))))
        })
        .collect()
}

fn cast_column(column: &ArrayRef, to: &DataType) -> Result<ArrayRef, EngineError> {
    datafusion::arrow::compute::cast(column, to).map_err(|e| EngineError::Plan(format!("a spend answer's column: {e}")))
}

/// The rows of a spend answer, its columns as [`SpendQuery::grouping`] names them and `billed`.
fn rows(batches: &[RecordBatch], query: &SpendQuery) -> Result<Vec<SpendRow>, EngineError> {
    let mut out = Vec::new();
    for batch in batches {
        let n = batch.num_rows();
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| EngineError::Plan(format!("a spend answer without {name}")))
        };
        let texts = |name: &str| -> Result<Vec<Option<String>>, EngineError> {
            let c = cast_column(column(name)?, &DataType::Utf8)?;
            Ok(c.as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect())
        };
        let days = |name: &str| -> Result<Vec<Option<NaiveDate>>, EngineError> {
            let c = cast_column(column(name)?, &DataType::Date32)?;
            let c = c.as_primitive::<Date32Type>();
            let epoch = NaiveDate::default();
            Ok((0..c.len())
                .map(|i| (!c.is_null(i)).then(|| epoch + chrono::Duration::days(c.value(i).into())))
                .collect())
        };
        let slots: Vec<Option<Slot>> = match query.granularity {
            None => vec![None; n],
            Some(Granularity::Hour) => days("period")?
                .into_iter()
                .zip(texts("hour")?)
                .map(|(day, hour)| match (day, hour) {
                    (_, Some(h)) => NaiveDateTime::parse_from_str(&h, HOUR_FORMAT)
                        .map(|t| Some(Slot::Hour(t)))
                        .map_err(|e| EngineError::Plan(format!("an hour {h:?}: {e}"))),
                    (Some(d), None) => Ok(Some(Slot::WholeDay(d))),
                    (None, None) => Err(EngineError::Plan("a spend row with neither day nor hour".into())),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => days("period")?.into_iter().map(|d| d.map(Slot::Day)).collect(),
        };
        let groups = (0..query.groups.len()).map(|i| texts(&format!("g{i}"))).collect::<Result<Vec<_>, _>>()?;
        let currencies = texts("currency")?;
        let billed = amounts(column("billed")?)?;
        let estimated = amounts(column("estimated")?)?;
        for i in 0..n {
            // A group with no lines in it sums to NULL: nothing was billed.
            let Some(amount) = billed[i] else { continue };
            // Every cost line names its currency: a row without one is a broken answer, not "".
            let currency =
                currencies[i].clone().ok_or_else(|| EngineError::Plan("a spend row without its currency".into()))?;
            out.push(SpendRow {
                slot: slots[i],
                groups: groups.iter().map(|g| g[i].clone()).collect(),
                currency,
                amount: at_money_scale(amount),
                estimated: at_money_scale(
                    estimated[i].ok_or_else(|| EngineError::Plan("a spend row without its estimated part".into()))?,
                ),
            });
        }
    }
    Ok(out)
}

impl crate::SqlSession {
    /// The organization's spend as `query` asks, in no particular order.
    pub async fn spend(&self, query: &SpendQuery) -> Result<Vec<SpendRow>, EngineError> {
        let table = cost_table_reading(&query.columns());
        let batches = self
            .collect_built(|ctx| async move {
                let mut frame = ctx.table(table).await?.with_column(ESTIMATED, lit(false))?;
                if let Some(since) =
                    query.estimating_since.filter(|since| *since < query.to + chrono::Duration::days(1))
                {
                    frame = with_estimates(&ctx, frame, table, since).await?;
                }
                if query.reads_source_names() {
                    let names = ctx.table("sources").await?.select(vec![col("id"), col("name").alias(SOURCE_NAME)])?;
                    frame = frame.join(names, JoinType::Left, &["source_id"], &["id"], None)?;
                }
                // A row none of whose lines is estimated has no estimated values to sum: that
                // part is zero, said here so that the answer never holds a NULL to read as one.
                let estimated =
                    when(col(ESTIMATED), col("billed_cost")).otherwise(lit(ScalarValue::Decimal128(Some(0), 38, 0)))?;
                Ok(frame.filter(query.condition())?.aggregate(
                    query.grouping(),
                    vec![sum(col("billed_cost")).alias("billed"), sum(estimated).alias("estimated")],
                )?)
            })
            .await?;
        rows(&batches, query)
    }
}

/// `amount` with the lake's nine decimals when it needs no more (an answer with estimates is
/// summed at the computed costs' scale): the same billed sum reads the same either way.
fn at_money_scale(amount: Decimal) -> Decimal {
    let money_scale = 9;
    let mut out = amount.normalize();
    if out.scale() <= money_scale {
        out.rescale(money_scale);
        return out;
    }
    amount.normalize()
}

/// Marks the lines of an answer that are usage not billed yet.
const ESTIMATED: &str = "x_estimated";

/// `billed` (the lines of `table`) and, as lines of the same columns marked estimated, the priced
/// usage of each source and UTC day from `since` on that has no line in `table`. Amounts are
/// widened to the computed costs' scale so that no estimate is rounded.
async fn with_estimates(
    ctx: &datafusion::prelude::SessionContext,
    billed: datafusion::dataframe::DataFrame,
    table: &str,
    since: NaiveDate,
) -> Result<datafusion::dataframe::DataFrame, EngineError> {
    let exact = DataType::Decimal128(38, 18);
    let billed = billed.with_column("billed_cost", cast(col("billed_cost"), exact.clone()))?;
    let recent = col("charge_day").gt_eq(date(since));
    let billed_days = ctx
        .table(table)
        .await?
        .filter(recent.clone())?
        .aggregate(vec![col("source_id").alias("b_source"), col("charge_day").alias("b_day")], vec![])?;
    let unbilled = ctx.table("usage").await?.filter(recent.and(col("computed_cost").is_not_null()))?.join(
        billed_days,
        JoinType::LeftAnti,
        &["source_id", "charge_day"],
        &["b_source", "b_day"],
        None,
    )?;
    // The usage row in the lines' columns: a line of its model, project and API key, in US
    // dollars (prices are), under a service that says where it comes from.
    let columns = billed
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let value = match f.name().as_str() {
                "charge_period_start" => col("bucket_start"),
                "charge_period_end" => col("bucket_end"),
                "charge_day" | "provider_name" | "model" | "api_key_id" | "source_id" => col(f.name()),
                "sub_account_id" => col("project_id"),
                "billed_cost" | "effective_cost" | "list_cost" => col("computed_cost"),
                "billing_currency" => lit("USD"),
                "service_name" => lit(ESTIMATED_SERVICE),
                "charge_category" => lit("Usage"),
                ESTIMATED => lit(true),
                _ => lit(ScalarValue::Null),
            };
            cast(value, f.data_type().clone()).alias(f.name())
        })
        .collect::<Vec<_>>();
    Ok(billed.union(unbilled.select(columns)?)?)
}

/// The service of spend estimated from usage.
pub const ESTIMATED_SERVICE: &str = "Estimated from usage";

impl crate::Engine {
    /// The organization's spend as `query` asks, read as a member reads it.
    pub async fn spend(&self, org: OrgScope, query: &SpendQuery) -> Result<Vec<SpendRow>, EngineError> {
        self.connect(org, crate::Reader::Member, "spend")?.spend(query).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Decimal128Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// The models of the rows that a scope's condition keeps.
    async fn matching(scope: BudgetScope, rows: &[(&str, &str)]) -> Vec<String> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("provider_name", DataType::Utf8, false),
            Field::new("model", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap();
        let ctx = SessionContext::new();
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
        let frame = ctx.table("t").await.unwrap().filter(scope_condition(&scope).unwrap()).unwrap();
        let mut out = Vec::new();
        for b in frame.collect().await.unwrap() {
            out.extend(b.column(1).as_string::<i32>().iter().map(|v| v.unwrap().to_owned()));
        }
        out
    }

    #[tokio::test]
    async fn scope_values_are_values_however_they_are_spelled() {
        let rows = [
            ("Open'AI", "gpt-4o_x%"),
            ("Open'AI", "gpt-4o-mini_x%"),
            ("open'ai", "gpt-4oAxB"),
            ("OpenAI", "gpt-4o_x%"),
            ("Open'AI' OR '1'='1", "gpt-4o_x%"),
        ];
        // `_` and `%` in a pattern are themselves; `*` is any run; the provider matches in any case.
        let scope =
            BudgetScope { provider: Some("Open'AI".into()), model: Some("gpt-4o*_x%".into()), ..Default::default() };
        assert_eq!(matching(scope, &rows).await, ["gpt-4o_x%", "gpt-4o-mini_x%"]);
        let exact = BudgetScope { model: Some("gpt-4o_x%".into()), ..Default::default() };
        assert_eq!(matching(exact, &rows).await, ["gpt-4o_x%", "gpt-4o_x%", "gpt-4o_x%"]);
    }

    #[test]
    fn an_amount_that_is_not_a_decimal_is_an_error_never_zero() {
        let text: ArrayRef = Arc::new(StringArray::from(vec!["12.5"]));
        assert!(amounts(&text).unwrap_err().to_string().contains("expected a decimal"));
        let wide: ArrayRef = Arc::new(Decimal128Array::from(vec![1]).with_precision_and_scale(38, 30).unwrap());
        assert!(amounts(&wide).unwrap_err().to_string().contains("scale 30"));
        let exact: ArrayRef =
            Arc::new(Decimal128Array::from(vec![Some(1_234_567_891), None]).with_precision_and_scale(38, 9).unwrap());
        assert_eq!(amounts(&exact).unwrap(), [Some("1.234567891".parse().unwrap()), None]);
    }
}

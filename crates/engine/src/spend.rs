//! Spend questions, typed: which local days of the organization, cut by day, week or month,
//! grouped by one dimension, within a budget's scope — built as DataFusion expressions over
//! `cost_rollup` (or `costs` when the roll-up lacks a column), never as SQL text, and answered in
//! rows whose amounts are decoded once, by [`amounts`].
//!
//! Days follow the rule of [`crate::local`]: a line shorter than a day falls on the local day its
//! start falls in; a line a provider reports as a whole UTC day stays on that day.

use burnrate_core::{BudgetScope, ReportingZone};
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, TimeUnit};
use datafusion::functions::expr_fn::{date_part, date_trunc, lower};
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use datafusion::scalar::ScalarValue;
use rust_decimal::Decimal;

use burnrate_store::OrgScope;

use crate::{EngineError, cost_table_reading};

/// How finely a range of days is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Week,
    Month,
}

impl Granularity {
    fn unit(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }
}

/// A column of the cost lines that spend is grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Provider,
    Service,
    /// The project, workspace or account (`sub_account_id`).
    Project,
    Model,
    ApiKey,
}

impl Dimension {
    fn column(self) -> &'static str {
        match self {
            Dimension::Provider => "provider_name",
            Dimension::Service => "service_name",
            Dimension::Project => "sub_account_id",
            Dimension::Model => "model",
            Dimension::ApiKey => "api_key_id",
        }
    }
}

/// Spend over the organization's local days `from` (inclusive) to `to` (exclusive), by currency,
/// and by what [`SpendQuery::by`], [`SpendQuery::grouped_by`] and [`SpendQuery::within`] add.
#[derive(Clone, Debug)]
pub struct SpendQuery {
    zone: ReportingZone,
    from: NaiveDate,
    to: NaiveDate,
    granularity: Option<Granularity>,
    group: Option<Dimension>,
    scope: BudgetScope,
}

/// One row of an answer: the period's first local day (when cut), the group's value (when
/// grouped; `None` for lines without one), the currency and the amount billed in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendRow {
    pub period: Option<NaiveDate>,
    pub group: Option<String>,
    pub currency: String,
    pub amount: Decimal,
}

impl SpendQuery {
    pub fn new(zone: ReportingZone, from: NaiveDate, to: NaiveDate) -> Self {
        Self { zone, from, to, granularity: None, group: None, scope: BudgetScope::default() }
    }

    /// Cut by local day, week (from Monday) or month.
    pub fn by(mut self, granularity: Granularity) -> Self {
        self.granularity = Some(granularity);
        self
    }

    pub fn grouped_by(mut self, dimension: Dimension) -> Self {
        self.group = Some(dimension);
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
        let mut columns: Vec<&'static str> = self.group.map(Dimension::column).into_iter().collect();
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

    /// The lines the question counts: the days, then the scope.
    fn condition(&self) -> Expr {
        scope_condition(&self.scope).into_iter().fold(in_days(self.zone, self.from, self.to), Expr::and)
    }
}

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

/// The first local day of the `granularity` period a line falls in.
fn period(zone: ReportingZone, granularity: Granularity) -> Expr {
    let unit = granularity.unit();
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

/// The rows of a spend answer: (period, group, currency, billed) columns as the plan names them.
fn rows(batches: &[RecordBatch], query: &SpendQuery) -> Result<Vec<SpendRow>, EngineError> {
    let mut out = Vec::new();
    for batch in batches {
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| EngineError::Plan(format!("a spend answer without {name}")))
        };
        let texts = |name: &str| -> Result<Vec<Option<String>>, EngineError> {
            let c = cast_column(column(name)?, &DataType::Utf8)?;
            Ok(c.as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect())
        };
        let periods: Vec<Option<NaiveDate>> = match query.granularity {
            Some(_) => {
                let days = cast_column(column("period")?, &DataType::Date32)?;
                let days = days.as_primitive::<datafusion::arrow::datatypes::Date32Type>();
                (0..days.len())
                    .map(|i| {
                        (!days.is_null(i)).then(|| NaiveDate::default() + chrono::Duration::days(days.value(i).into()))
                    })
                    .collect()
            }
            None => vec![None; batch.num_rows()],
        };
        let groups = match query.group {
            Some(_) => texts("grp")?,
            None => vec![None; batch.num_rows()],
        };
        let currencies = texts("currency")?;
        let billed = amounts(column("billed")?)?;
        for i in 0..batch.num_rows() {
            // A group with no lines in it sums to NULL: nothing was billed.
            let Some(amount) = billed[i] else { continue };
            out.push(SpendRow {
                period: periods[i],
                group: groups[i].clone(),
                currency: currencies[i].clone().unwrap_or_default(),
                amount,
            });
        }
    }
    Ok(out)
}

impl crate::Engine {
    /// The organization's spend as `query` asks, in no particular order.
    pub async fn spend(&self, org: OrgScope, query: &SpendQuery) -> Result<Vec<SpendRow>, EngineError> {
        let session = self.connect(org, crate::Reader::Member, "spend")?;
        let table = cost_table_reading(&query.columns());
        let batches = session
            .collect_built(|ctx| async move {
                let mut group = Vec::new();
                if let Some(g) = query.granularity {
                    group.push(period(query.zone, g).alias("period"));
                }
                if let Some(d) = query.group {
                    group.push(col(d.column()).alias("grp"));
                }
                group.push(col("billing_currency").alias("currency"));
                Ok(ctx
                    .table(table)
                    .await?
                    .filter(query.condition())?
                    .aggregate(group, vec![sum(col("billed_cost")).alias("billed")])?)
            })
            .await?;
        rows(&batches, query)
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

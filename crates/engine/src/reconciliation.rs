//! `reconciliation`: per UTC day, provider, model and project, what the provider billed (cost
//! lines in US dollars that name a model) against what the organization's usage costs at the
//! price book's rates (`usage.computed_cost`, read summed from `usage_rollup`), the difference
//! classified. One plan serves the SQL table every session reads and the API, which filters its
//! days at the scans.
//!
//! A provider burnrate has read no usage of is not reconciled: its every bill would be a gap.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, Int64Type};
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::JoinType;
use datafusion::datasource::provider_as_source;
use datafusion::functions::expr_fn::{abs, coalesce, lower, nullif, round};
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, case, cast, col, lit, when};
use datafusion::scalar::ScalarValue;
use rust_decimal::Decimal;

use crate::EngineError;
use crate::spend::amounts;

/// The SQL table's name.
pub const TABLE: &str = "reconciliation";

/// Why billed and computed differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapKind {
    /// Within the tolerance.
    None,
    /// The quantities differ: one side is missing, or the tokens billed are not the tokens used.
    Quantity,
    /// The costs differ beyond the tolerance while the quantities agree (or the provider's bill
    /// carries none).
    Price,
    /// Some usage has no rate: its cost cannot be computed.
    Unpriced,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::None => "none",
            GapKind::Quantity => "quantity",
            GapKind::Price => "price",
            GapKind::Unpriced => "unpriced",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [GapKind::None, GapKind::Quantity, GapKind::Price, GapKind::Unpriced].into_iter().find(|k| k.as_str() == text)
    }
}

/// One day, provider, model and project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub day: NaiveDate,
    pub provider: String,
    pub model: String,
    /// The OpenAI project or Anthropic workspace; `None`: none (or the default workspace).
    pub project: Option<String>,
    /// `None`: no cost line (in USD) names the model that day.
    pub billed: Option<Decimal>,
    /// The sum of the priced usage rows; `None` when none is priced.
    pub computed: Option<Decimal>,
    /// Billed minus computed, a missing side counting as nothing; `None` when usage is unpriced.
    pub difference: Option<Decimal>,
    pub gap_kind: GapKind,
    /// Computed ÷ billed to four places: the share of the bill priced usage explains.
    pub coverage: Option<Decimal>,
    /// The tokens the cost lines bill, where the provider reports them.
    pub billed_tokens: Option<i64>,
    /// The tokens the usage rows count, every class.
    pub usage_tokens: Option<i64>,
    pub usage_rows: i64,
    /// Usage rows no rate priced.
    pub unpriced_rows: i64,
}

/// The `reconciliation` table over `costs` and `usage_rollup`, a difference within
/// `tolerance_percent` of the bill (or a cent) being none.
pub(crate) fn view(
    costs: Arc<dyn TableProvider>,
    usage: Arc<dyn TableProvider>,
    tolerance_percent: Decimal,
) -> Result<Arc<dyn TableProvider>, EngineError> {
    Ok(Arc::new(ViewTable::new(plan(costs, usage, tolerance_percent, None)?, None)))
}

fn day_literal(day: NaiveDate) -> Expr {
    lit(ScalarValue::Date32(Some((day - NaiveDate::default()).num_days() as i32)))
}

fn decimal_literal(d: Option<Decimal>, scale: i8) -> Expr {
    let value = d.map(|d| {
        let mut d = d;
        d.rescale(scale as u32);
        d.mantissa()
    });
    lit(ScalarValue::Decimal128(value, 38, scale))
}

/// The reconciliation of the days from `days.0` up to (not including) `days.1`, or of every day.
fn plan(
    costs: Arc<dyn TableProvider>,
    usage: Arc<dyn TableProvider>,
    tolerance_percent: Decimal,
    days: Option<(NaiveDate, NaiveDate)>,
) -> Result<LogicalPlan, EngineError> {
    let within = |rows: Expr| match days {
        Some((from, to)) => {
            rows.and(col("charge_day").gt_eq(day_literal(from))).and(col("charge_day").lt(day_literal(to)))
        }
        None => rows,
    };
    let money = DataType::Decimal128(38, 9);
    let computed_type = DataType::Decimal128(38, 18);
    let key = |c: &str| coalesce(vec![col(c), lit("")]).alias("project_key");
    // Tokens in the units OpenAI reports them; a line in any other unit bills no tokens.
    let unit = lower(col("consumed_unit"));
    let tokens_billed = case(unit)
        .when(lit("tokens"), col("consumed_quantity"))
        .when(lit("1000_tokens"), col("consumed_quantity") * lit(1000i64))
        .end()?;
    let billed = LogicalPlanBuilder::scan("costs", provider_as_source(costs), None)?
        .filter(within(col("billing_currency").eq(lit("USD")).and(col("model").is_not_null())))?
        .project(vec![
            col("charge_day").alias("day"),
            col("provider_name"),
            col("model"),
            key("sub_account_id"),
            col("billed_cost").alias("billed"),
            cast(tokens_billed, DataType::Int64).alias("billed_tokens"),
            cast(lit(ScalarValue::Null), computed_type.clone()).alias("computed"),
            lit(0i64).alias("usage_rows"),
            lit(0i64).alias("priced_rows"),
            lit(ScalarValue::Int64(None)).alias("usage_tokens"),
        ])?;
    let usage_scan = || LogicalPlanBuilder::scan("usage_rollup", provider_as_source(Arc::clone(&usage)), None);
    // A usage file from before roll-ups stands in for its own, its counts null: one row each.
    let rows = coalesce(vec![col("x_rows"), lit(1i64)]);
    let priced_rows =
        coalesce(vec![col("x_priced_rows"), when(col("computed_cost").is_not_null(), lit(1i64)).otherwise(lit(0i64))?]);
    let used = usage_scan()?.filter(within(col("model").is_not_null()))?.project(vec![
        col("charge_day").alias("day"),
        col("provider_name"),
        col("model"),
        key("project_id"),
        cast(lit(ScalarValue::Null), money).alias("billed"),
        lit(ScalarValue::Int64(None)).alias("billed_tokens"),
        col("computed_cost").alias("computed"),
        rows.alias("usage_rows"),
        priced_rows.alias("priced_rows"),
        (col("input_uncached_tokens")
            + col("input_cached_tokens")
            + col("input_cache_write_tokens")
            + col("output_tokens"))
        .alias("usage_tokens"),
    ])?;
    let reconciled_providers = usage_scan()?
        .aggregate(vec![col("provider_name").alias("reconciled_provider")], Vec::<Expr>::new())?
        .build()?;
    let summed = billed
        .union(used.build()?)?
        .aggregate(
            vec![col("day"), col("provider_name"), col("model"), col("project_key")],
            vec![
                sum(col("billed")).alias("billed_cost"),
                sum(col("computed")).alias("computed_cost"),
                sum(col("billed_tokens")).alias("billed_tokens"),
                sum(col("usage_tokens")).alias("usage_tokens"),
                sum(col("usage_rows")).alias("usage_rows"),
                sum(col("priced_rows")).alias("priced_rows"),
            ],
        )?
        .join(reconciled_providers, JoinType::LeftSemi, (vec!["provider_name"], vec!["reconciled_provider"]), None)?
        .project(vec![
            col("day"),
            col("provider_name"),
            col("model"),
            nullif(col("project_key"), lit("")).alias("project_id"),
            col("billed_cost"),
            col("computed_cost"),
            when(
                (col("usage_rows") - col("priced_rows")).gt(lit(0i64)),
                cast(lit(ScalarValue::Null), computed_type.clone()),
            )
            .otherwise(
                coalesce(vec![col("billed_cost"), decimal_literal(Some(Decimal::ZERO), 9)])
                    - coalesce(vec![col("computed_cost"), decimal_literal(Some(Decimal::ZERO), 18)]),
            )?
            .alias("difference"),
            col("billed_tokens"),
            col("usage_tokens"),
            col("usage_rows"),
            (col("usage_rows") - col("priced_rows")).alias("unpriced_rows"),
        ])?;
    let cent = decimal_literal(Some(Decimal::new(1, 2)), 2);
    let within_tolerance = abs(col("difference")).lt_eq(cent).or((abs(col("difference")) * lit(100i64)).lt_eq(
        abs(coalesce(vec![col("billed_cost"), decimal_literal(Some(Decimal::ZERO), 9)]))
            * decimal_literal(Some(tolerance_percent), tolerance_percent.scale().min(18) as i8),
    ));
    let gap_kind = when(col("unpriced_rows").gt(lit(0i64)), lit(GapKind::Unpriced.as_str()))
        .when(within_tolerance, lit(GapKind::None.as_str()))
        .when(
            col("usage_rows")
                .eq(lit(0i64))
                .or(col("billed_cost").is_null())
                .or(col("billed_tokens").is_not_null().and(col("billed_tokens").not_eq(col("usage_tokens")))),
            lit(GapKind::Quantity.as_str()),
        )
        .otherwise(lit(GapKind::Price.as_str()))?;
    let coverage = when(col("billed_cost").not_eq(decimal_literal(Some(Decimal::ZERO), 9)), {
        round(vec![col("computed_cost") / col("billed_cost"), lit(4i64)])
    })
    .end()?;
    Ok(summed
        .project(vec![
            col("day"),
            col("provider_name"),
            col("model"),
            col("project_id"),
            col("billed_cost"),
            col("computed_cost"),
            col("difference"),
            gap_kind.alias("gap_kind"),
            coverage.alias("coverage"),
            col("billed_tokens"),
            col("usage_tokens"),
            col("usage_rows"),
            col("unpriced_rows"),
        ])?
        .build()?)
}

impl crate::SqlSession {
    /// The reconciliation of every day from `from` up to (not including) `to`.
    pub async fn reconciliation(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        tolerance_percent: Decimal,
    ) -> Result<Vec<Row>, EngineError> {
        let batches = self
            .collect_built(|ctx| async move {
                let costs = ctx.table_provider("costs").await?;
                let usage = ctx.table_provider(burnrate_lake::USAGE_ROLLUP.name).await?;
                let plan = plan(costs, usage, tolerance_percent, Some((from, to)))?;
                Ok(datafusion::dataframe::DataFrame::new(ctx.state(), plan))
            })
            .await?;
        rows(&batches)
    }
}

impl crate::Engine {
    /// The reconciliation of `org`'s days from `from` up to (not including) `to`, read as a
    /// member reads it.
    pub async fn reconciliation(
        &self,
        org: burnrate_store::OrgScope,
        from: NaiveDate,
        to: NaiveDate,
        tolerance_percent: Decimal,
    ) -> Result<Vec<Row>, EngineError> {
        self.connect(org, crate::Reader::Member, "reconciliation")?.reconciliation(from, to, tolerance_percent).await
    }
}

fn rows(batches: &[RecordBatch]) -> Result<Vec<Row>, EngineError> {
    let mut out = Vec::new();
    for batch in batches {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| EngineError::Plan(format!("a reconciliation answer without {name}")))
        };
        let cast = |name: &str, to: &DataType| {
            datafusion::arrow::compute::cast(column(name)?, to)
                .map_err(|e| EngineError::Plan(format!("a reconciliation answer's {name}: {e}")))
        };
        let day = cast("day", &DataType::Date32)?;
        let day = day.as_primitive::<Date32Type>();
        let texts = ["provider_name", "model", "project_id", "gap_kind"]
            .map(|name| cast(name, &DataType::Utf8))
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let [provider, model, project, gap_kind] = [0, 1, 2, 3].map(|i| texts[i].as_string::<i32>());
        let counts = ["billed_tokens", "usage_tokens", "usage_rows", "unpriced_rows"]
            .map(|name| cast(name, &DataType::Int64))
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let [billed_tokens, usage_tokens, usage_rows, unpriced_rows] =
            [0, 1, 2, 3].map(|i| counts[i].as_primitive::<Int64Type>());
        let count =
            |a: &datafusion::arrow::array::PrimitiveArray<Int64Type>, i: usize| a.is_valid(i).then(|| a.value(i));
        let [billed, computed, difference, coverage] =
            [column("billed_cost")?, column("computed_cost")?, column("difference")?, column("coverage")?];
        let (billed, computed, difference, coverage) =
            (amounts(billed)?, amounts(computed)?, amounts(difference)?, amounts(coverage)?);
        for i in 0..batch.num_rows() {
            if day.is_null(i) || provider.is_null(i) || model.is_null(i) {
                return Err(EngineError::Plan("a reconciliation row without its day, provider or model".into()));
            }
            let kind = GapKind::parse(gap_kind.value(i))
                .ok_or_else(|| EngineError::Plan(format!("a reconciliation gap kind {:?}", gap_kind.value(i))))?;
            out.push(Row {
                day: NaiveDate::default() + chrono::Duration::days(day.value(i).into()),
                provider: provider.value(i).to_owned(),
                model: model.value(i).to_owned(),
                project: project.is_valid(i).then(|| project.value(i).to_owned()),
                billed: billed[i],
                computed: computed[i],
                difference: difference[i].map(|d| d.normalize()),
                gap_kind: kind,
                coverage: coverage[i].map(|d| d.normalize()),
                billed_tokens: count(billed_tokens, i),
                usage_tokens: count(usage_tokens, i),
                usage_rows: count(usage_rows, i).unwrap_or(0),
                unpriced_rows: count(unpriced_rows, i).unwrap_or(0),
            });
        }
    }
    out.sort_by(|a, b| (a.day, &a.provider, &a.model, &a.project).cmp(&(b.day, &b.provider, &b.model, &b.project)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use burnrate_core::{ChargeCategory, CostRecord, Currency, Money, UsageRecord};
    use burnrate_lake::LakeRow;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 3).unwrap()
    }

    fn cost(provider: &str, model: &str, billed: &str, tokens: Option<i64>) -> CostRecord {
        let start = day().and_hms_opt(0, 0, 0).unwrap().and_utc();
        let money = Money::parse(billed, Currency::USD).unwrap().0;
        CostRecord {
            charge_period_start: start,
            charge_period_end: start + chrono::Duration::days(1),
            billed_cost: money,
            effective_cost: money,
            list_cost: money,
            list_cost_estimated: false,
            provider_name: provider.into(),
            service_name: "API".into(),
            sub_account_id: Some("proj_a".into()),
            sku_id: None,
            model: Some(model.into()),
            charge_category: ChargeCategory::Usage,
            charge_description: None,
            consumed_quantity: tokens.map(Decimal::from),
            consumed_unit: tokens.map(|_| "tokens".into()),
            api_key_id: None,
            tags: Default::default(),
        }
    }

    fn used(provider: &str, model: &str, computed: Option<&str>, tokens: i64) -> UsageRecord {
        let start = day().and_hms_opt(0, 0, 0).unwrap().and_utc();
        UsageRecord {
            bucket_start: start,
            bucket_end: start + chrono::Duration::days(1),
            provider_name: provider.into(),
            usage_type: "completions".into(),
            model: Some(model.into()),
            project_id: Some("proj_a".into()),
            input_uncached_tokens: tokens / 2,
            output_tokens: tokens - tokens / 2,
            computed_cost: computed.map(|c| c.parse().unwrap()),
            ..Default::default()
        }
    }

    async fn reconcile(costs: &[CostRecord], usage: &[UsageRecord], percent: i64) -> Vec<(String, GapKind, Row)> {
        let table = |batch: RecordBatch| -> Arc<dyn TableProvider> {
            Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap())
        };
        let costs = table(CostRecord::batch(&costs.iter().collect::<Vec<_>>(), "src").unwrap());
        let usage = table((burnrate_lake::USAGE_ROLLUP.sum)(&usage.iter().collect::<Vec<_>>(), "src").unwrap());
        let ctx = SessionContext::new();
        ctx.register_table(TABLE, view(costs, usage, Decimal::from(percent)).unwrap()).unwrap();
        let batches = ctx.sql("SELECT * FROM reconciliation").await.unwrap().collect().await.unwrap();
        rows(&batches).unwrap().into_iter().map(|r| (r.model.clone(), r.gap_kind, r)).collect()
    }

    #[tokio::test]
    async fn each_difference_is_classified_by_what_differs_and_by_how_much() {
        let costs = [
            cost("OpenAI", "agrees", "100", Some(1000)),
            cost("OpenAI", "cheaper", "100", Some(1000)),
            cost("OpenAI", "fewer-tokens", "100", Some(1000)),
            cost("OpenAI", "billed-only", "100", Some(1000)),
            cost("OpenAI", "half-priced", "100", Some(1000)),
            cost("OpenAI", "a-fraction-of-a-cent", "0.004", None),
            cost("Anthropic", "no-quantities", "100", None),
            cost("AWS", "no-usage-read", "100", None),
        ];
        let usage = [
            used("OpenAI", "agrees", Some("99.5"), 1000),
            used("OpenAI", "cheaper", Some("90"), 1000),
            used("OpenAI", "fewer-tokens", Some("95.8"), 958),
            used("OpenAI", "used-only", Some("12"), 120),
            used("OpenAI", "half-priced", Some("60"), 600),
            used("OpenAI", "half-priced", None, 400),
            used("OpenAI", "a-fraction-of-a-cent", Some("0"), 1),
            used("Anthropic", "no-quantities", Some("90"), 1000),
        ];
        let out = reconcile(&costs, &usage, 1).await;
        let kinds: Vec<(&str, GapKind)> = out.iter().map(|(m, k, _)| (m.as_str(), *k)).collect();
        assert_eq!(
            kinds,
            [
                ("no-quantities", GapKind::Price),
                ("a-fraction-of-a-cent", GapKind::None),
                ("agrees", GapKind::None),
                ("billed-only", GapKind::Quantity),
                ("cheaper", GapKind::Price),
                ("fewer-tokens", GapKind::Quantity),
                ("half-priced", GapKind::Unpriced),
                ("used-only", GapKind::Quantity),
            ],
            "a provider of which no usage was read (AWS) is not reconciled"
        );
        let row = |model: &str| out.iter().find(|(m, _, _)| m == model).map(|(_, _, r)| r.clone()).unwrap();
        let cheaper = row("cheaper");
        assert_eq!(cheaper.difference, Some(Decimal::TEN));
        assert_eq!(cheaper.coverage, Some("0.9".parse().unwrap()));
        assert_eq!((cheaper.billed_tokens, cheaper.usage_tokens), (Some(1000), Some(1000)));
        assert_eq!(cheaper.project.as_deref(), Some("proj_a"));
        let unpriced = row("half-priced");
        assert_eq!((unpriced.difference, unpriced.usage_rows, unpriced.unpriced_rows), (None, 2, 1));
        assert_eq!(unpriced.computed, Some(Decimal::from(60)), "the priced part, never the unpriced as zero");
        let billed_only = row("billed-only");
        assert_eq!((billed_only.computed, billed_only.difference), (None, Some(Decimal::ONE_HUNDRED)));
        let used_only = row("used-only");
        assert_eq!(
            (used_only.billed, used_only.difference, used_only.coverage),
            (None, Some(Decimal::from(-12)), None)
        );

        let lenient = reconcile(&costs, &usage, 10).await;
        let kind = |model: &str| lenient.iter().find(|(m, _, _)| m == model).unwrap().1;
        assert_eq!(kind("cheaper"), GapKind::None, "within the organization's own tolerance");
        assert_eq!(kind("billed-only"), GapKind::Quantity);
    }
}

//! The two sides of reconciliation, per UTC day, provider and model: what the provider billed
//! (cost lines in US dollars that name a model) and what the organization's usage costs at the
//! price book's rates (`usage.computed_cost`), read in one query through the organization's own
//! session.

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, Int64Type};
use datafusion::common::JoinType;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::scalar::ScalarValue;
use rust_decimal::Decimal;

use crate::EngineError;
use crate::spend::amounts;

/// Billed and computed cost of one day, provider and model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sides {
    pub day: NaiveDate,
    pub provider: String,
    pub model: String,
    /// `None`: no cost line (in USD) names the model that day.
    pub billed: Option<Decimal>,
    /// The sum of the priced usage rows; `None` when none is priced.
    pub computed: Option<Decimal>,
    pub usage_rows: i64,
    /// Usage rows no rate priced.
    pub unpriced_rows: i64,
}

fn day_number(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

impl crate::SqlSession {
    /// Both sides of every day from `from` up to (not including) `to`, by provider and model.
    pub async fn reconciliation_sides(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<Sides>, EngineError> {
        let days = move |c: &str| -> Expr {
            col(c)
                .gt_eq(lit(ScalarValue::Date32(Some(day_number(from)))))
                .and(col(c).lt(lit(ScalarValue::Date32(Some(day_number(to))))))
        };
        let batches = self
            .collect_built(|ctx| async move {
                let billed = ctx
                    .table("costs")
                    .await?
                    .filter(
                        days("charge_day").and(col("billing_currency").eq(lit("USD"))).and(col("model").is_not_null()),
                    )?
                    .aggregate(
                        vec![
                            col("charge_day").alias("b_day"),
                            col("provider_name").alias("b_provider"),
                            col("model").alias("b_model"),
                        ],
                        vec![sum(col("billed_cost")).alias("billed")],
                    )?;
                let computed =
                    ctx.table("usage").await?.filter(days("charge_day").and(col("model").is_not_null()))?.aggregate(
                        vec![
                            col("charge_day").alias("u_day"),
                            col("provider_name").alias("u_provider"),
                            col("model").alias("u_model"),
                        ],
                        vec![
                            sum(col("computed_cost")).alias("computed"),
                            count(lit(1)).alias("usage_rows"),
                            count(col("computed_cost")).alias("priced_rows"),
                        ],
                    )?;
                Ok(billed
                    .join(
                        computed,
                        JoinType::Full,
                        &["b_day", "b_provider", "b_model"],
                        &["u_day", "u_provider", "u_model"],
                        None,
                    )?
                    .select(vec![
                        coalesce(vec![col("b_day"), col("u_day")]).alias("day"),
                        coalesce(vec![col("b_provider"), col("u_provider")]).alias("provider"),
                        coalesce(vec![col("b_model"), col("u_model")]).alias("model"),
                        col("billed"),
                        col("computed"),
                        col("usage_rows"),
                        col("priced_rows"),
                    ])?)
            })
            .await?;
        sides(&batches)
    }
}

impl crate::Engine {
    /// Both sides of reconciliation for `org`, read as a member reads them.
    pub async fn reconciliation_sides(
        &self,
        org: burnrate_store::OrgScope,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Sides>, EngineError> {
        self.connect(org, crate::Reader::Member, "reconciliation")?.reconciliation_sides(from, to).await
    }
}

fn sides(batches: &[RecordBatch]) -> Result<Vec<Sides>, EngineError> {
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
        let (provider, model) = (cast("provider", &DataType::Utf8)?, cast("model", &DataType::Utf8)?);
        let (provider, model) = (provider.as_string::<i32>(), model.as_string::<i32>());
        let (billed, computed) = (amounts(column("billed")?)?, amounts(column("computed")?)?);
        let (rows, priced) = (cast("usage_rows", &DataType::Int64)?, cast("priced_rows", &DataType::Int64)?);
        let (rows, priced) = (rows.as_primitive::<Int64Type>(), priced.as_primitive::<Int64Type>());
        for i in 0..batch.num_rows() {
            if day.is_null(i) || provider.is_null(i) || model.is_null(i) {
                return Err(EngineError::Plan("a reconciliation row without its day, provider or model".into()));
            }
            // A model billed but not used has no usage counts (NULL): none.
            let (usage_rows, priced_rows) =
                (if rows.is_null(i) { 0 } else { rows.value(i) }, if priced.is_null(i) { 0 } else { priced.value(i) });
            out.push(Sides {
                day: NaiveDate::default() + chrono::Duration::days(day.value(i).into()),
                provider: provider.value(i).to_owned(),
                model: model.value(i).to_owned(),
                billed: billed[i],
                computed: computed[i],
                usage_rows,
                unpriced_rows: usage_rows - priced_rows,
            });
        }
    }
    out.sort_by(|a, b| (a.day, &a.provider, &a.model).cmp(&(b.day, &b.provider, &b.model)));
    Ok(out)
}

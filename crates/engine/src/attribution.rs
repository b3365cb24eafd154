//! Billed cost attributed to the requests applications reported: for each UTC day, provider and
//! model, what the provider billed (US-dollar cost lines naming the model, as reconciliation
//! reads them) is shared among that day's requests of the model in proportion to their computed
//! cost, by who they were for (customer, feature, team, user, service). What no request explains
//! stays "unattributed", so the two always sum to the bill, to the nano-dollar.
//!
//! How much a day's requests explain: their computed cost, at most the bill. Requests that cover
//! only part of the traffic (an application not instrumented yet) leave the rest unattributed;
//! requests that cost more than the bill (a discount the price book does not know, a bill still
//! arriving) share the whole bill. Shares are whole nano-dollars, the rounding remainder going one
//! nano-dollar at a time to the largest fractions (ties in key order), so nothing is lost or made.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::SessionState;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use rust_decimal::Decimal;

use crate::EngineError;
use crate::spend::amounts;

/// The nano-dollars every share is a whole number of.
const SCALE: u32 = 9;

/// Who a request was for, as attribution groups by it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Who {
    pub customer: Option<String>,
    pub feature: Option<String>,
    pub team: Option<String>,
    pub user_id: Option<String>,
    pub service: Option<String>,
}

/// One day, provider and model: its bill, and what its requests explain of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Charge {
    pub day: NaiveDate,
    pub provider: String,
    pub model: String,
}

/// The share of one charge's bill that went to the requests of one `who`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributed {
    pub charge: Charge,
    pub who: Who,
    pub requests: i64,
    /// Their cost at the price book's rates (`None`: none of them priced).
    pub computed_cost: Option<Decimal>,
    pub attributed_cost: Decimal,
}

/// One charge's bill and the part of it no request explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Billed {
    pub charge: Charge,
    pub billed_cost: Decimal,
    pub unattributed: Decimal,
}

/// The attribution of a range of days.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attribution {
    pub attributed: Vec<Attributed>,
    pub billed: Vec<Billed>,
}

/// `total` (nano-dollars) shared by `weights` (nano-dollars, none negative): whole nano-dollar
/// shares in proportion, summing to `total` exactly.
pub fn shares(total: i128, weights: &[i128]) -> Vec<i128> {
    let sum: i128 = weights.iter().sum();
    if sum <= 0 {
        return vec![0; weights.len()];
    }
    let mut out: Vec<i128> = weights.iter().map(|w| total * w / sum).collect();
    let mut left = total - out.iter().sum::<i128>();
    // The largest remainders first; equal ones in the order given.
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(total * weights[i] % sum));
    for i in order {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// A decimal as whole nano-dollars, rounded half away from zero where it is finer.
fn nanos(d: Decimal) -> i128 {
    let mut d = d.round_dp_with_strategy(SCALE, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    d.rescale(SCALE);
    d.mantissa()
}

fn from_nanos(n: i128) -> Decimal {
    Decimal::from_i128_with_scale(n, SCALE)
}

/// Shares each charge's bill among its requests; see the module docs.
pub fn attribute(bills: BTreeMap<Charge, Decimal>, requests: Vec<(Charge, Who, i64, Option<Decimal>)>) -> Attribution {
    let mut by_charge: BTreeMap<Charge, Vec<(Who, i64, Option<Decimal>)>> = BTreeMap::new();
    for (charge, who, n, cost) in requests {
        by_charge.entry(charge).or_default().push((who, n, cost));
    }
    let mut out = Attribution::default();
    for (charge, mut groups) in by_charge {
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        let bill = bills.get(&charge).map_or(0, |b| nanos(*b));
        let weights: Vec<i128> = groups.iter().map(|(_, _, c)| c.map_or(0, |c| nanos(c).max(0))).collect();
        let explained = if bill > 0 { bill.min(weights.iter().sum()) } else { 0 };
        for ((who, requests, computed_cost), share) in groups.into_iter().zip(shares(explained, &weights)) {
            out.attributed.push(Attributed {
                charge: charge.clone(),
                who,
                requests,
                computed_cost,
                attributed_cost: from_nanos(share),
            });
        }
        if let Some(billed) = bills.get(&charge) {
            out.billed.push(Billed { charge, billed_cost: *billed, unattributed: *billed - from_nanos(explained) });
        }
    }
    for (charge, billed) in bills {
        if !out.billed.iter().any(|b| b.charge == charge) {
            out.billed.push(Billed { charge, billed_cost: billed, unattributed: billed });
        }
    }
    out.billed.sort_by(|a, b| a.charge.cmp(&b.charge));
    out
}

fn day_literal(day: NaiveDate) -> datafusion::logical_expr::Expr {
    lit(ScalarValue::Date32(Some((day - NaiveDate::default()).num_days() as i32)))
}

fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<std::sync::Arc<dyn Array>, EngineError> {
    let c =
        batch.column_by_name(name).ok_or_else(|| EngineError::Plan(format!("an attribution answer without {name}")))?;
    datafusion::arrow::compute::cast(c, to)
        .map_err(|e| EngineError::Plan(format!("an attribution answer's {name}: {e}")))
}

fn texts(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>, EngineError> {
    let c = column(batch, name, &DataType::Utf8)?;
    let c = c.as_string::<i32>();
    Ok((0..c.len()).map(|i| (!c.is_null(i)).then(|| c.value(i).to_owned())).collect())
}

fn days(batch: &RecordBatch) -> Result<Vec<NaiveDate>, EngineError> {
    let c = column(batch, "charge_day", &DataType::Date32)?;
    let c = c.as_primitive::<Date32Type>();
    Ok((0..c.len()).map(|i| NaiveDate::default() + chrono::Duration::days(i64::from(c.value(i)))).collect())
}

/// Each day, provider and model's US-dollar bill of models, in `days` (all when `None`): from
/// the costs' roll-up, whose sums are the lines' exactly, in far fewer rows.
fn bills(
    ctx: &SessionContext,
    days: Option<(NaiveDate, NaiveDate)>,
) -> impl Future<Output = Result<DataFrame, EngineError>> {
    let ctx = ctx.clone();
    async move {
        Ok(ctx
            .table(burnrate_lake::COST_ROLLUP.name)
            .await?
            .filter(within(days).and(col("billing_currency").eq(lit("USD"))).and(col("model").is_not_null()))?
            .aggregate(
                vec![col("charge_day"), col("provider_name"), col("model")],
                vec![sum(col("billed_cost")).alias("billed")],
            )?)
    }
}

/// The requests of `days` (all when `None`) counted and their computed cost summed, by day,
/// provider, model and who they were for.
fn requests(
    ctx: &SessionContext,
    days: Option<(NaiveDate, NaiveDate)>,
) -> impl Future<Output = Result<DataFrame, EngineError>> {
    let ctx = ctx.clone();
    async move {
        Ok(ctx
            .table("requests")
            .await?
            .filter(within(days).and(col("provider_name").is_not_null()).and(col("model").is_not_null()))?
            .aggregate(
                ["charge_day", "provider_name", "model", "customer", "feature", "team", "user_id", "service"]
                    .map(col)
                    .to_vec(),
                vec![count(lit(1)).alias("requests"), sum(col("computed_cost")).alias("computed")],
            )?)
    }
}

fn within(days: Option<(NaiveDate, NaiveDate)>) -> Expr {
    match days {
        Some((from, to)) => col("charge_day").gt_eq(day_literal(from)).and(col("charge_day").lt(day_literal(to))),
        None => lit(true),
    }
}

/// The attribution the answers of [`bills`] and [`requests`] make.
fn decode(bills: &[RecordBatch], requests: &[RecordBatch]) -> Result<Attribution, EngineError> {
    let charge = |day: &[NaiveDate], provider: &[Option<String>], model: &[Option<String>], i: usize| Charge {
        day: day[i],
        provider: provider[i].clone().unwrap_or_default(),
        model: model[i].clone().unwrap_or_default(),
    };
    let mut billed = BTreeMap::new();
    for batch in bills {
        let (day, provider, model) = (days(batch)?, texts(batch, "provider_name")?, texts(batch, "model")?);
        let amount = amounts(batch.column_by_name("billed").ok_or_else(|| EngineError::Plan("no billed".into()))?)?;
        for (i, amount) in amount.into_iter().enumerate() {
            // Lines always carry an amount: a sum without one is a fault to report, never zero.
            let amount = amount.ok_or_else(|| EngineError::Plan("a day's bill summed to no amount".into()))?;
            *billed.entry(charge(&day, &provider, &model, i)).or_insert(Decimal::ZERO) += amount;
        }
    }
    let mut asked = Vec::new();
    for batch in requests {
        let (day, provider, model) = (days(batch)?, texts(batch, "provider_name")?, texts(batch, "model")?);
        let [customer, feature, team, user_id, service] =
            ["customer", "feature", "team", "user_id", "service"].map(|n| texts(batch, n));
        let (customer, feature, team, user_id, service) = (customer?, feature?, team?, user_id?, service?);
        let n = column(batch, "requests", &DataType::Int64)?;
        let n = n.as_primitive::<Int64Type>();
        let computed =
            amounts(batch.column_by_name("computed").ok_or_else(|| EngineError::Plan("no computed".into()))?)?;
        for i in 0..batch.num_rows() {
            let who = Who {
                customer: customer[i].clone(),
                feature: feature[i].clone(),
                team: team[i].clone(),
                user_id: user_id[i].clone(),
                service: service[i].clone(),
            };
            asked.push((charge(&day, &provider, &model, i), who, n.value(i), computed[i]));
        }
    }
    Ok(attribute(billed, asked))
}

impl crate::SqlSession {
    /// The attribution of the days from `from` up to (not including) `to`.
    pub async fn attribution(&self, from: NaiveDate, to: NaiveDate) -> Result<Attribution, EngineError> {
        let days = Some((from, to));
        let billed = self.collect_built(|ctx| async move { bills(&ctx, days).await }).await?;
        let asked = self.collect_built(|ctx| async move { requests(&ctx, days).await }).await?;
        decode(&billed, &asked)
    }
}

/// The SQL table's name.
pub const TABLE: &str = "attributed_costs";

/// `attributed_costs`: the attribution of every day, computed from the query's own `costs` and
/// `requests` when a query reads it. A row per day, provider, model and who (`unattributed`
/// false), and per charge the part no request explains (`unattributed` true, who null), so its
/// `attributed_cost` sums to the bill.
#[derive(Debug)]
pub(crate) struct AttributedCosts {
    schema: SchemaRef,
}

impl AttributedCosts {
    pub(crate) fn new() -> Self {
        let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
        Self {
            schema: Arc::new(Schema::new(vec![
                Field::new("charge_day", DataType::Date32, false),
                text("provider_name", false),
                text("model", false),
                text("customer", true),
                text("feature", true),
                text("team", true),
                text("user_id", true),
                text("service", true),
                Field::new("requests", DataType::Int64, true),
                Field::new("computed_cost", DataType::Decimal128(38, 18), true),
                Field::new("attributed_cost", DataType::Decimal128(38, SCALE as i8), false),
                Field::new("unattributed", DataType::Boolean, false),
            ])),
        }
    }

    fn batch(&self, a: &Attribution) -> datafusion::common::Result<RecordBatch> {
        let epoch = NaiveDate::default();
        let unexplained: Vec<&Billed> = a.billed.iter().filter(|b| !b.unattributed.is_zero()).collect();
        let charges = a.attributed.iter().map(|r| &r.charge).chain(unexplained.iter().map(|b| &b.charge));
        let who = |f: fn(&Who) -> Option<&str>| -> ArrayRef {
            Arc::new(
                a.attributed.iter().map(|r| f(&r.who)).chain(unexplained.iter().map(|_| None)).collect::<StringArray>(),
            )
        };
        let fixed = |d: Decimal, scale: u32| {
            let mut d = d;
            d.rescale(scale);
            d.mantissa()
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(charges.clone().map(|c| (c.day - epoch).num_days() as i32).collect::<Vec<_>>())),
            Arc::new(charges.clone().map(|c| Some(c.provider.as_str())).collect::<StringArray>()),
            Arc::new(charges.map(|c| Some(c.model.as_str())).collect::<StringArray>()),
            who(|w| w.customer.as_deref()),
            who(|w| w.feature.as_deref()),
            who(|w| w.team.as_deref()),
            who(|w| w.user_id.as_deref()),
            who(|w| w.service.as_deref()),
            Arc::new(
                a.attributed
                    .iter()
                    .map(|r| Some(r.requests))
                    .chain(unexplained.iter().map(|_| None))
                    .collect::<Int64Array>(),
            ),
            Arc::new(
                a.attributed
                    .iter()
                    .map(|r| r.computed_cost.map(|c| fixed(c, 18)))
                    .chain(unexplained.iter().map(|_| None))
                    .collect::<Decimal128Array>()
                    .with_precision_and_scale(38, 18)?,
            ),
            Arc::new(
                a.attributed
                    .iter()
                    .map(|r| Some(fixed(r.attributed_cost, SCALE)))
                    .chain(unexplained.iter().map(|b| Some(fixed(b.unattributed, SCALE))))
                    .collect::<Decimal128Array>()
                    .with_precision_and_scale(38, SCALE as i8)?,
            ),
            Arc::new(
                a.attributed
                    .iter()
                    .map(|_| Some(false))
                    .chain(unexplained.iter().map(|_| Some(true)))
                    .collect::<BooleanArray>(),
            ),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

#[async_trait::async_trait]
impl TableProvider for AttributedCosts {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let external = |e: EngineError| DataFusionError::External(Box::new(e));
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| DataFusionError::Internal("attributed_costs read outside a session".into()))?;
        // The query's own tables: the live files its statement started with.
        let ctx = SessionContext::new_with_state(state.clone());
        let billed = bills(&ctx, None).await.map_err(external)?.collect().await?;
        let asked = requests(&ctx, None).await.map_err(external)?.collect().await?;
        let batch = self.batch(&decode(&billed, &asked).map_err(external)?)?;
        let plan: Arc<dyn ExecutionPlan> =
            MemorySourceConfig::try_new_exec(&[vec![batch]], Arc::clone(&self.schema), projection.cloned())?;
        Ok(plan)
    }
}

impl crate::Engine {
    /// The attribution of `org`'s days from `from` up to (not including) `to`, read as a member
    /// reads it.
    pub async fn attribution(
        &self,
        org: burnrate_store::OrgScope,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Attribution, EngineError> {
        self.connect(org, crate::Reader::Member, "attribution")?.attribution(from, to).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_to_the_total_exactly_in_proportion() {
        assert_eq!(shares(10, &[1, 1, 1]), [4, 3, 3]);
        assert_eq!(shares(10, &[0, 0]), [0, 0]);
        // 666,666,667.33… and 333,333,333.66…: the odd nano-dollar goes to the larger fraction.
        assert_eq!(shares(1_000_000_001, &[2, 1]), [666_666_667, 333_333_334]);
        let weights = [7_919, 104_729, 1, 0, 1_299_709];
        for total in [0, 1, 999_999_999_999, 123_456_789_012_345_678] {
            let s = shares(total, &weights);
            assert_eq!(s.iter().sum::<i128>(), total);
            for (share, w) in s.iter().zip(weights) {
                let exact = total as f64 * w as f64 / weights.iter().sum::<i128>() as f64;
                assert!((*share as f64 - exact).abs() <= 1.0 + exact * 1e-12, "{share} vs {exact}");
            }
        }
    }

    fn charge(model: &str) -> Charge {
        Charge { day: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(), provider: "OpenAI".into(), model: model.into() }
    }

    fn who(customer: &str) -> Who {
        Who { customer: Some(customer.into()), ..Who::default() }
    }

    #[test]
    fn a_bill_is_explained_up_to_its_requests_cost_and_the_rest_stays_unattributed() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let bills = BTreeMap::from([
            (charge("partly"), d("10.000000001")),
            (charge("over"), d("1.000000000")),
            (charge("unseen"), d("3")),
            (charge("unpriced"), d("2")),
        ]);
        let requests = vec![
            (charge("partly"), who("acme"), 2, Some(d("4"))),
            (charge("partly"), who("globex"), 1, Some(d("2.5"))),
            (charge("over"), who("acme"), 1, Some(d("2"))),
            (charge("over"), who("globex"), 1, Some(d("1"))),
            (charge("unpriced"), who("acme"), 1, None),
            (charge("no-bill"), who("acme"), 1, Some(d("1"))),
        ];
        let a = attribute(bills.clone(), requests);
        let got = |model: &str, customer: &str| {
            a.attributed
                .iter()
                .find(|r| r.charge.model == model && r.who.customer.as_deref() == Some(customer))
                .unwrap()
                .attributed_cost
        };
        // Partial coverage: each request its computed cost, the rest unattributed.
        assert_eq!((got("partly", "acme"), got("partly", "globex")), (d("4"), d("2.5")));
        // Requests costing more than the bill share the whole bill, in proportion, to the nano.
        assert_eq!((got("over", "acme"), got("over", "globex")), (d("0.666666667"), d("0.333333333")));
        assert_eq!(got("unpriced", "acme"), d("0"));
        assert_eq!(got("no-bill", "acme"), d("0"), "nothing billed yet: nothing to share");
        for (charge, bill) in &bills {
            let attributed: Decimal =
                a.attributed.iter().filter(|r| &r.charge == charge).map(|r| r.attributed_cost).sum();
            let billed = a.billed.iter().find(|b| &b.charge == charge).unwrap();
            assert_eq!(billed.billed_cost, *bill);
            assert_eq!(attributed + billed.unattributed, *bill, "{charge:?}");
        }
        let unattributed = |m: &str| a.billed.iter().find(|b| b.charge.model == m).unwrap().unattributed;
        assert_eq!(
            [unattributed("partly"), unattributed("over"), unattributed("unseen"), unattributed("unpriced")],
            [d("3.500000001"), d("0"), d("3"), d("2")]
        );
    }
}

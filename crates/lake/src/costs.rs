//! The `costs` table's Parquet encoding.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use burnrate_core::{ChargeCategory, CostRecord, Currency, MONEY_SCALE, Money};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rust_decimal::Decimal;

use crate::{LakeError, column, opt, strings};

const MONEY: DataType = DataType::Decimal128(38, MONEY_SCALE as i8);

pub(crate) fn schema() -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("charge_period_start", ts.clone(), false),
        Field::new("charge_period_end", ts, false),
        Field::new("charge_day", DataType::Date32, false),
        Field::new("billed_cost", MONEY, false),
        Field::new("effective_cost", MONEY, false),
        Field::new("list_cost", MONEY, false),
        Field::new("x_list_cost_estimated", DataType::Boolean, false),
        Field::new("billing_currency", DataType::Utf8, false),
        Field::new("provider_name", DataType::Utf8, false),
        Field::new("service_name", DataType::Utf8, false),
        Field::new("sub_account_id", DataType::Utf8, true),
        Field::new("sku_id", DataType::Utf8, true),
        Field::new("model", DataType::Utf8, true),
        Field::new("charge_category", DataType::Utf8, false),
        Field::new("charge_description", DataType::Utf8, true),
        Field::new("consumed_quantity", MONEY, true),
        Field::new("consumed_unit", DataType::Utf8, true),
        Field::new("api_key_id", DataType::Utf8, true),
        // The provider's tags or labels as a JSON object (`{"team":"search"}`); null when none.
        // Files written before the column existed read it as null.
        Field::new("tags", DataType::Utf8, true),
        Field::new("source_id", DataType::Utf8, false),
    ]))
}

/// The columns of the `cost_rollup` table: what the overview, budgets and the explorer's views
/// that do not look at SKUs, API keys or tags read. Everything else of a line is summed away.
pub(crate) const ROLLUP_COLUMNS: [&str; 13] = [
    "charge_period_start",
    "charge_period_end",
    "charge_day",
    "billed_cost",
    "effective_cost",
    "list_cost",
    "billing_currency",
    "provider_name",
    "service_name",
    "sub_account_id",
    "model",
    "charge_category",
    "source_id",
];

/// `rows` summed by period and the roll-up's columns, in time order: one batch of the
/// `cost_rollup` schema. The sums are exact (decimals), so any total over the roll-up equals the
/// same total over the lines.
pub(crate) fn rollup(rows: &[&CostRecord], source: &str) -> Result<RecordBatch, LakeError> {
    type Key<'a> =
        (DateTime<Utc>, DateTime<Utc>, Currency, &'a str, &'a str, Option<&'a str>, Option<&'a str>, ChargeCategory);
    let mut sums: std::collections::BTreeMap<Key<'_>, (&CostRecord, Decimal, Decimal, Decimal)> = Default::default();
    for r in rows {
        let key = (
            r.charge_period_start,
            r.charge_period_end,
            r.billed_cost.currency(),
            r.provider_name.as_str(),
            r.service_name.as_str(),
            r.sub_account_id.as_deref(),
            r.model.as_deref(),
            r.charge_category,
        );
        let sum = sums.entry(key).or_insert((r, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO));
        sum.1 += r.billed_cost.amount();
        sum.2 += r.effective_cost.amount();
        sum.3 += r.list_cost.amount();
    }
    let money = |amount: Decimal, of: &Money| {
        Money::new(amount, of.currency()).map_err(|e| LakeError::Format(format!("a roll-up sum: {e}")))
    };
    let summed = sums
        .into_values()
        .map(|(first, billed, effective, list)| {
            Ok(CostRecord {
                billed_cost: money(billed, &first.billed_cost)?,
                effective_cost: money(effective, &first.effective_cost)?,
                list_cost: money(list, &first.list_cost)?,
                list_cost_estimated: false,
                sku_id: None,
                charge_description: None,
                consumed_quantity: None,
                consumed_unit: None,
                api_key_id: None,
                tags: Default::default(),
                ..first.clone()
            })
        })
        .collect::<Result<Vec<_>, LakeError>>()?;
    let refs: Vec<&CostRecord> = summed.iter().collect();
    Ok(batch(&refs, source)?.project(&crate::COST_ROLLUP.indices())?)
}

/// An amount as the 128-bit integer of its value × 10^9.
fn scaled(d: Decimal) -> Result<i128, LakeError> {
    let mut v = d;
    v.rescale(MONEY_SCALE);
    if v != d {
        return Err(LakeError::Format(format!("{d} has more than {MONEY_SCALE} decimals")));
    }
    Ok(v.mantissa())
}

fn money_array(values: impl Iterator<Item = Result<Option<i128>, LakeError>>) -> Result<ArrayRef, LakeError> {
    let v: Vec<Option<i128>> = values.collect::<Result<_, _>>()?;
    Ok(Arc::new(Decimal128Array::from(v).with_precision_and_scale(38, MONEY_SCALE as i8)?))
}

/// `rows` as one record batch of the `costs` schema.
pub(crate) fn batch(rows: &[&CostRecord], source: &str) -> Result<RecordBatch, LakeError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let tags: Vec<Option<String>> = rows
        .iter()
        .map(|r| (!r.tags.is_empty()).then(|| serde_json::to_string(&r.tags).expect("a map of strings")))
        .collect();
    let micros = |t: &DateTime<Utc>| t.timestamp_micros();
    let currencies: Vec<String> = rows.iter().map(|r| r.billed_cost.currency().to_string()).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| micros(&r.charge_period_start)).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| micros(&r.charge_period_end)).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(Date32Array::from(
            rows.iter().map(|r| (r.charge_period_start.date_naive() - epoch).num_days() as i32).collect::<Vec<_>>(),
        )),
        money_array(rows.iter().map(|r| scaled(r.billed_cost.amount()).map(Some)))?,
        money_array(rows.iter().map(|r| scaled(r.effective_cost.amount()).map(Some)))?,
        money_array(rows.iter().map(|r| scaled(r.list_cost.amount()).map(Some)))?,
        Arc::new(rows.iter().map(|r| Some(r.list_cost_estimated)).collect::<BooleanArray>()),
        strings(currencies.iter().map(|c| Some(c.as_str()))),
        strings(rows.iter().map(|r| Some(r.provider_name.as_str()))),
        strings(rows.iter().map(|r| Some(r.service_name.as_str()))),
        strings(rows.iter().map(|r| r.sub_account_id.as_deref())),
        strings(rows.iter().map(|r| r.sku_id.as_deref())),
        strings(rows.iter().map(|r| r.model.as_deref())),
        strings(rows.iter().map(|r| Some(r.charge_category.as_str()))),
        strings(rows.iter().map(|r| r.charge_description.as_deref())),
        money_array(rows.iter().map(|r| r.consumed_quantity.map(scaled).transpose()))?,
        strings(rows.iter().map(|r| r.consumed_unit.as_deref())),
        strings(rows.iter().map(|r| r.api_key_id.as_deref())),
        strings(tags.iter().map(|t| t.as_deref())),
        strings(rows.iter().map(|_| Some(source))),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// The columns of a cost row that readers of the lake need today (totals by day and dimension).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostRow {
    pub charge_day: NaiveDate,
    pub billed_cost: Decimal,
    pub billing_currency: String,
    pub provider_name: String,
    pub sub_account_id: Option<String>,
    pub model: Option<String>,
}

pub(crate) fn decode(bytes: Bytes) -> Result<Vec<CostRow>, LakeError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut out = Vec::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
        let batch = batch?;
        let day = column::<Date32Array>(&batch, "charge_day")?;
        let billed = column::<Decimal128Array>(&batch, "billed_cost")?;
        let currency = column::<StringArray>(&batch, "billing_currency")?;
        let provider = column::<StringArray>(&batch, "provider_name")?;
        let sub = column::<StringArray>(&batch, "sub_account_id")?;
        let model = column::<StringArray>(&batch, "model")?;
        for i in 0..batch.num_rows() {
            out.push(CostRow {
                charge_day: epoch + chrono::Duration::days(i64::from(day.value(i))),
                billed_cost: Decimal::from_i128_with_scale(billed.value(i), MONEY_SCALE),
                billing_currency: currency.value(i).to_owned(),
                provider_name: provider.value(i).to_owned(),
                sub_account_id: opt(sub, i),
                model: opt(model, i),
            });
        }
    }
    Ok(out)
}

/// Every row of a file as the record it was written from: what a sync carries into the new version of a month for days the provider no longer
/// reports. Only rows whose day is in `days` are kept.
pub(crate) fn decode_records(bytes: Bytes, days: std::ops::Range<NaiveDate>) -> Result<Vec<CostRecord>, LakeError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut out = Vec::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
        let batch = batch?;
        let [start, end] =
            ["charge_period_start", "charge_period_end"].map(|n| column::<TimestampMicrosecondArray>(&batch, n));
        let (start, end) = (start?, end?);
        let day = column::<Date32Array>(&batch, "charge_day")?;
        let [billed, effective, list, quantity] = ["billed_cost", "effective_cost", "list_cost", "consumed_quantity"]
            .map(|n| column::<Decimal128Array>(&batch, n));
        let (billed, effective, list, quantity) = (billed?, effective?, list?, quantity?);
        let estimated = column::<BooleanArray>(&batch, "x_list_cost_estimated")?;
        let [currency, provider, service, sub, sku, model, category, description, unit, api_key] = [
            "billing_currency",
            "provider_name",
            "service_name",
            "sub_account_id",
            "sku_id",
            "model",
            "charge_category",
            "charge_description",
            "consumed_unit",
            "api_key_id",
        ]
        .map(|n| column::<StringArray>(&batch, n));
        let (currency, provider, service, sub, sku, model, category, description, unit, api_key) =
            (currency?, provider?, service?, sub?, sku?, model?, category?, description?, unit?, api_key?);
        // Absent from files written before tags were kept.
        let tags = batch.column_by_name("tags").and_then(|c| c.as_any().downcast_ref::<StringArray>());
        let decimal = |a: &Decimal128Array, i: usize| Decimal::from_i128_with_scale(a.value(i), MONEY_SCALE);
        for i in 0..batch.num_rows() {
            let charge_day = epoch + chrono::Duration::days(i64::from(day.value(i)));
            if !days.contains(&charge_day) {
                continue;
            }
            let currency = Currency::parse(currency.value(i)).map_err(|e| LakeError::Format(e.to_string()))?;
            let money =
                |a: &Decimal128Array| Money::new(decimal(a, i), currency).map_err(|e| LakeError::Format(e.to_string()));
            out.push(CostRecord {
                charge_period_start: crate::time_at(start, i)?,
                charge_period_end: crate::time_at(end, i)?,
                billed_cost: money(billed)?,
                effective_cost: money(effective)?,
                list_cost: money(list)?,
                list_cost_estimated: estimated.value(i),
                provider_name: provider.value(i).to_owned(),
                service_name: service.value(i).to_owned(),
                sub_account_id: opt(sub, i),
                sku_id: opt(sku, i),
                model: opt(model, i),
                charge_category: ChargeCategory::parse(category.value(i)).ok_or_else(|| {
                    LakeError::Format(format!("charge category {:?} is not a FOCUS category", category.value(i)))
                })?,
                charge_description: opt(description, i),
                consumed_quantity: (!quantity.is_null(i)).then(|| decimal(quantity, i)),
                consumed_unit: opt(unit, i),
                api_key_id: opt(api_key, i),
                tags: match tags.and_then(|t| opt(t, i)) {
                    Some(json) => serde_json::from_str(&json)
                        .map_err(|e| LakeError::Format(format!("tags is not a JSON object of strings: {e}")))?,
                    None => Default::default(),
                },
            });
        }
    }
    Ok(out)
}

//! The `usage` table's Parquet encoding: token counts per bucket, the three input classes
//! disjoint, provider-specific counters kept as JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use burnrate_core::UsageRecord;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rust_decimal::Decimal;

use crate::{LakeError, column, opt, strings};

pub(crate) fn schema() -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("bucket_start", ts.clone(), false),
        Field::new("bucket_end", ts, false),
        Field::new("charge_day", DataType::Date32, false),
        Field::new("source_id", DataType::Utf8, false),
        Field::new("provider_name", DataType::Utf8, false),
        Field::new("usage_type", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, true),
        Field::new("project_id", DataType::Utf8, true),
        Field::new("api_key_id", DataType::Utf8, true),
        Field::new("service_tier", DataType::Utf8, true),
        Field::new("input_uncached_tokens", DataType::Int64, false),
        Field::new("input_cached_tokens", DataType::Int64, false),
        Field::new("input_cache_write_tokens", DataType::Int64, false),
        Field::new("output_tokens", DataType::Int64, false),
        Field::new("requests", DataType::Int64, true),
        Field::new("x_extra", DataType::Utf8, false),
        // Added after the first files: absent from older files, read there as NULL.
        Field::new("input_cache_write_1h_tokens", DataType::Int64, true),
        Field::new("computed_cost", COMPUTED, true),
        Field::new("price_ref", DataType::Utf8, true),
    ]))
}

/// A computed cost: rates per million tokens with a few decimals, divided by a million, keep
/// up to 18 decimals exactly.
pub(crate) const COMPUTED_SCALE: u32 = 18;
pub(crate) const COMPUTED: DataType = DataType::Decimal128(38, COMPUTED_SCALE as i8);

/// `d` at the computed costs' scale, if it fits without rounding.
pub(crate) fn computed(d: Decimal) -> Result<i128, LakeError> {
    let mut v = d;
    v.rescale(COMPUTED_SCALE);
    if v != d {
        return Err(LakeError::Format(format!("computed cost {d} has more than {COMPUTED_SCALE} decimals")));
    }
    Ok(v.mantissa())
}

pub(crate) fn ints(v: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(v.collect::<Int64Array>())
}

/// `rows` as one record batch of the `usage` schema.
pub(crate) fn batch(rows: &[&UsageRecord], source: &str) -> Result<RecordBatch, LakeError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let extra: Vec<String> =
        rows.iter().map(|r| serde_json::to_string(&r.extra).unwrap_or_else(|_| "{}".into())).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| r.bucket_start.timestamp_micros()).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| r.bucket_end.timestamp_micros()).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(Date32Array::from(
            rows.iter().map(|r| (r.bucket_start.date_naive() - epoch).num_days() as i32).collect::<Vec<_>>(),
        )),
        strings(rows.iter().map(|_| Some(source))),
        strings(rows.iter().map(|r| Some(r.provider_name.as_str()))),
        strings(rows.iter().map(|r| Some(r.usage_type.as_str()))),
        strings(rows.iter().map(|r| r.model.as_deref())),
        strings(rows.iter().map(|r| r.project_id.as_deref())),
        strings(rows.iter().map(|r| r.api_key_id.as_deref())),
        strings(rows.iter().map(|r| r.service_tier.as_deref())),
        ints(rows.iter().map(|r| Some(r.input_uncached_tokens))),
        ints(rows.iter().map(|r| Some(r.input_cached_tokens))),
        ints(rows.iter().map(|r| Some(r.input_cache_write_tokens))),
        ints(rows.iter().map(|r| Some(r.output_tokens))),
        ints(rows.iter().map(|r| r.requests)),
        strings(extra.iter().map(|e| Some(e.as_str()))),
        ints(rows.iter().map(|r| Some(r.input_cache_write_1h_tokens))),
        Arc::new(
            rows.iter()
                .map(|r| r.computed_cost.map(computed).transpose())
                .collect::<Result<Decimal128Array, LakeError>>()?
                .with_precision_and_scale(38, COMPUTED_SCALE as i8)?,
        ),
        strings(rows.iter().map(|r| r.price_ref.as_deref())),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// The columns of the `usage_rollup` table; API keys, provider counters and price references
/// are summed away.
pub(crate) const ROLLUP_COLUMNS: [&str; 16] = [
    "bucket_start",
    "bucket_end",
    "charge_day",
    "source_id",
    "provider_name",
    "usage_type",
    "model",
    "project_id",
    "service_tier",
    "input_uncached_tokens",
    "input_cached_tokens",
    "input_cache_write_tokens",
    "output_tokens",
    "requests",
    "input_cache_write_1h_tokens",
    "computed_cost",
];

/// `rows` summed by bucket and the roll-up's columns, in time order, with the rows each sums
/// and how many of them are priced: one batch of the `usage_rollup` schema. A sum's computed
/// cost is its priced rows' (null when none is); the counts say whether every row was.
pub(crate) fn rollup(rows: &[&UsageRecord], source: &str) -> Result<RecordBatch, LakeError> {
    type Key<'a> = (DateTime<Utc>, DateTime<Utc>, &'a str, &'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
    let mut sums: BTreeMap<Key<'_>, (UsageRecord, i64, i64)> = BTreeMap::new();
    let too_many = || LakeError::Format("a usage roll-up sum is beyond a 64-bit count".into());
    for r in rows {
        let key = (
            r.bucket_start,
            r.bucket_end,
            r.provider_name.as_str(),
            r.usage_type.as_str(),
            r.model.as_deref(),
            r.project_id.as_deref(),
            r.service_tier.as_deref(),
        );
        let (sum, count, priced) = sums.entry(key).or_insert_with(|| {
            let first = UsageRecord {
                input_uncached_tokens: 0,
                input_cached_tokens: 0,
                input_cache_write_tokens: 0,
                input_cache_write_1h_tokens: 0,
                output_tokens: 0,
                requests: None,
                computed_cost: None,
                api_key_id: None,
                extra: Default::default(),
                price_ref: None,
                ..(*r).clone()
            };
            (first, 0, 0)
        });
        let add = |a: i64, b: i64| a.checked_add(b).ok_or_else(too_many);
        sum.input_uncached_tokens = add(sum.input_uncached_tokens, r.input_uncached_tokens)?;
        sum.input_cached_tokens = add(sum.input_cached_tokens, r.input_cached_tokens)?;
        sum.input_cache_write_tokens = add(sum.input_cache_write_tokens, r.input_cache_write_tokens)?;
        sum.input_cache_write_1h_tokens = add(sum.input_cache_write_1h_tokens, r.input_cache_write_1h_tokens)?;
        sum.output_tokens = add(sum.output_tokens, r.output_tokens)?;
        sum.requests = match (sum.requests, r.requests) {
            (Some(a), Some(b)) => Some(add(a, b)?),
            (a, b) => a.or(b),
        };
        if let Some(cost) = r.computed_cost {
            // The first priced row starts the sum; the unpriced ones are counted, not summed.
            sum.computed_cost = Some(match sum.computed_cost {
                None => cost,
                Some(total) => {
                    total.checked_add(cost).ok_or_else(|| LakeError::Format("a usage roll-up cost overflows".into()))?
                }
            });
            *priced += 1;
        }
        *count += 1;
    }
    let (summed, counts): (Vec<UsageRecord>, Vec<(i64, i64)>) =
        sums.into_values().map(|(sum, count, priced)| (sum, (count, priced))).unzip();
    let refs: Vec<&UsageRecord> = summed.iter().collect();
    let mut columns = batch(&refs, source)?.project(&crate::USAGE_ROLLUP.indices())?.columns().to_vec();
    columns.push(ints(counts.iter().map(|c| Some(c.0))));
    columns.push(ints(counts.iter().map(|c| Some(c.1))));
    Ok(RecordBatch::try_new(crate::USAGE_ROLLUP.schema(), columns)?)
}

/// The usage columns readers need today.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRow {
    pub charge_day: NaiveDate,
    pub provider_name: String,
    pub usage_type: String,
    pub project_id: Option<String>,
    pub model: Option<String>,
    pub input_uncached_tokens: i64,
    pub input_cached_tokens: i64,
    pub input_cache_write_tokens: i64,
    pub output_tokens: i64,
    pub requests: Option<i64>,
    /// `None`: unpriced (or written before usage was priced).
    pub computed_cost: Option<Decimal>,
    pub price_ref: Option<String>,
}

/// The optional columns of a file that later files have: absent from older files.
pub(crate) fn optional<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Option<&'a T> {
    batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<T>())
}

/// A computed cost cell.
pub(crate) fn computed_at(a: Option<&Decimal128Array>, i: usize) -> Result<Option<Decimal>, LakeError> {
    a.filter(|a| !a.is_null(i))
        .map(|a| Decimal::try_from_i128_with_scale(a.value(i), COMPUTED_SCALE))
        .transpose()
        .map_err(|e| LakeError::Format(format!("computed_cost does not read: {e}")))
}

pub(crate) fn decode(bytes: Bytes) -> Result<Vec<UsageRow>, LakeError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut out = Vec::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
        let batch = batch?;
        let day = column::<Date32Array>(&batch, "charge_day")?;
        let provider = column::<StringArray>(&batch, "provider_name")?;
        let usage_type = column::<StringArray>(&batch, "usage_type")?;
        let project = column::<StringArray>(&batch, "project_id")?;
        let model = column::<StringArray>(&batch, "model")?;
        let [uncached, cached, write, output, requests] =
            ["input_uncached_tokens", "input_cached_tokens", "input_cache_write_tokens", "output_tokens", "requests"]
                .map(|n| column::<Int64Array>(&batch, n));
        let (uncached, cached, write, output, requests) = (uncached?, cached?, write?, output?, requests?);
        let cost = optional::<Decimal128Array>(&batch, "computed_cost");
        let price_ref = optional::<StringArray>(&batch, "price_ref");
        for i in 0..batch.num_rows() {
            out.push(UsageRow {
                charge_day: epoch + chrono::Duration::days(i64::from(day.value(i))),
                provider_name: provider.value(i).to_owned(),
                usage_type: usage_type.value(i).to_owned(),
                project_id: opt(project, i),
                model: opt(model, i),
                input_uncached_tokens: uncached.value(i),
                input_cached_tokens: cached.value(i),
                input_cache_write_tokens: write.value(i),
                output_tokens: output.value(i),
                requests: (!requests.is_null(i)).then(|| requests.value(i)),
                computed_cost: computed_at(cost, i)?,
                price_ref: price_ref.and_then(|a| opt(a, i)),
            });
        }
    }
    Ok(out)
}

/// Every row of a file whose day is in `days`, as the record it was written from (see
/// `costs::decode_records`).
pub(crate) fn decode_records(bytes: Bytes, days: std::ops::Range<NaiveDate>) -> Result<Vec<UsageRecord>, LakeError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut out = Vec::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
        let batch = batch?;
        let [start, end] = ["bucket_start", "bucket_end"].map(|n| column::<TimestampMicrosecondArray>(&batch, n));
        let (start, end) = (start?, end?);
        let day = column::<Date32Array>(&batch, "charge_day")?;
        let [provider, usage_type, model, project, api_key, tier, extra] =
            ["provider_name", "usage_type", "model", "project_id", "api_key_id", "service_tier", "x_extra"]
                .map(|n| column::<StringArray>(&batch, n));
        let (provider, usage_type, model, project, api_key, tier, extra) =
            (provider?, usage_type?, model?, project?, api_key?, tier?, extra?);
        let [uncached, cached, write, output, requests] =
            ["input_uncached_tokens", "input_cached_tokens", "input_cache_write_tokens", "output_tokens", "requests"]
                .map(|n| column::<Int64Array>(&batch, n));
        let (uncached, cached, write, output, requests) = (uncached?, cached?, write?, output?, requests?);
        // Columns older files lack.
        let write_1h = optional::<Int64Array>(&batch, "input_cache_write_1h_tokens");
        let cost = optional::<Decimal128Array>(&batch, "computed_cost");
        let price_ref = optional::<StringArray>(&batch, "price_ref");
        for i in 0..batch.num_rows() {
            let charge_day = epoch + chrono::Duration::days(i64::from(day.value(i)));
            if !days.contains(&charge_day) {
                continue;
            }
            out.push(UsageRecord {
                bucket_start: crate::time_at(start, i)?,
                bucket_end: crate::time_at(end, i)?,
                provider_name: provider.value(i).to_owned(),
                usage_type: usage_type.value(i).to_owned(),
                model: opt(model, i),
                project_id: opt(project, i),
                api_key_id: opt(api_key, i),
                service_tier: opt(tier, i),
                input_uncached_tokens: uncached.value(i),
                input_cached_tokens: cached.value(i),
                input_cache_write_tokens: write.value(i),
                input_cache_write_1h_tokens: write_1h.filter(|a| !a.is_null(i)).map_or(0, |a| a.value(i)),
                output_tokens: output.value(i),
                requests: (!requests.is_null(i)).then(|| requests.value(i)),
                extra: serde_json::from_str(extra.value(i))
                    .map_err(|e| LakeError::Format(format!("x_extra is not a JSON object of counts: {e}")))?,
                computed_cost: computed_at(cost, i)?,
                price_ref: price_ref.and_then(|a| opt(a, i)).map(Arc::from),
            });
        }
    }
    Ok(out)
}

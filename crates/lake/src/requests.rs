//! The `requests` table's Parquet encoding: one row per model call an application reported,
//! ids in hex as trace viewers show them, the input classes disjoint as in `usage`, tags as JSON.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use burnrate_core::{RequestRecord, SpanKey};
use bytes::Bytes;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::usage::{COMPUTED, COMPUTED_SCALE, computed, computed_at, ints};
use crate::{LakeError, column, opt, strings};

/// The attribution columns, in the order of the schema.
const WHO: [&str; 8] = ["customer", "feature", "team", "user_id", "session_id", "conversation_id", "agent", "service"];
const TOKENS: [&str; 5] =
    ["input_uncached_tokens", "input_cached_tokens", "input_cache_write_tokens", "output_tokens", "reasoning_tokens"];

pub(crate) fn schema() -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let mut fields = vec![
        Field::new("started_at", ts.clone(), false),
        Field::new("ended_at", ts, false),
        Field::new("charge_day", DataType::Date32, false),
        Field::new("trace_id", DataType::Utf8, false),
        Field::new("span_id", DataType::Utf8, false),
        text("operation"),
        text("gen_ai_provider"),
        text("provider_name"),
        text("request_model"),
        text("model"),
    ];
    fields.extend(TOKENS.map(|n| Field::new(n, DataType::Int64, false)));
    fields.extend(WHO.map(text));
    fields.push(Field::new("tags", DataType::Utf8, false));
    fields.push(Field::new("computed_cost", COMPUTED, true));
    fields.push(text("price_ref"));
    Arc::new(Schema::new(fields))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Result<[u8; N], LakeError> {
    let bad = || LakeError::Format(format!("{text:?} is not {N} bytes in hex"));
    if text.len() != 2 * N {
        return Err(bad());
    }
    let mut out = [0; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn who(r: &RequestRecord) -> [Option<&str>; 8] {
    [
        r.customer.as_deref(),
        r.feature.as_deref(),
        r.team.as_deref(),
        r.user_id.as_deref(),
        r.session_id.as_deref(),
        r.conversation_id.as_deref(),
        r.agent.as_deref(),
        r.service.as_deref(),
    ]
}

fn tokens(r: &RequestRecord) -> [i64; 5] {
    [r.input_uncached_tokens, r.input_cached_tokens, r.input_cache_write_tokens, r.output_tokens, r.reasoning_tokens]
}

/// `rows` as one record batch of the `requests` schema.
pub(crate) fn batch(rows: &[&RequestRecord]) -> Result<RecordBatch, LakeError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let micros = |f: fn(&RequestRecord) -> i64| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|r| f(r)).collect::<Vec<_>>()).with_timezone("UTC"))
    };
    let tags: Vec<String> =
        rows.iter().map(|r| serde_json::to_string(&r.tags).unwrap_or_else(|_| "{}".into())).collect();
    let mut columns: Vec<ArrayRef> = vec![
        micros(|r| r.started_at.timestamp_micros()),
        micros(|r| r.ended_at.timestamp_micros()),
        Arc::new(Date32Array::from(
            rows.iter().map(|r| (r.started_at.date_naive() - epoch).num_days() as i32).collect::<Vec<_>>(),
        )),
        Arc::new(rows.iter().map(|r| Some(hex(&r.key.trace_id))).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(hex(&r.key.span_id))).collect::<StringArray>()),
        strings(rows.iter().map(|r| r.operation.as_deref())),
        strings(rows.iter().map(|r| r.gen_ai_provider.as_deref())),
        strings(rows.iter().map(|r| r.provider.as_deref())),
        strings(rows.iter().map(|r| r.request_model.as_deref())),
        strings(rows.iter().map(|r| r.model.as_deref())),
    ];
    for i in 0..TOKENS.len() {
        columns.push(ints(rows.iter().map(|r| Some(tokens(r)[i]))));
    }
    for i in 0..WHO.len() {
        columns.push(strings(rows.iter().map(|r| who(r)[i])));
    }
    columns.push(strings(tags.iter().map(|t| Some(t.as_str()))));
    columns.push(Arc::new(
        rows.iter()
            .map(|r| r.computed_cost.map(computed).transpose())
            .collect::<Result<Decimal128Array, LakeError>>()?
            .with_precision_and_scale(38, COMPUTED_SCALE as i8)?,
    ));
    columns.push(strings(rows.iter().map(|r| r.price_ref.as_deref())));
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Every row of a file whose day is in `days`, as the record it was written from.
pub(crate) fn decode_records(bytes: Bytes, days: std::ops::Range<NaiveDate>) -> Result<Vec<RequestRecord>, LakeError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut out = Vec::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
        let batch = batch?;
        let [start, end] = ["started_at", "ended_at"].map(|n| column::<TimestampMicrosecondArray>(&batch, n));
        let (start, end) = (start?, end?);
        let day = column::<Date32Array>(&batch, "charge_day")?;
        let text = |n: &str| column::<StringArray>(&batch, n);
        let (trace, span, operation, gen_ai_provider, provider, request_model, model, tags, price_ref) = (
            text("trace_id")?,
            text("span_id")?,
            text("operation")?,
            text("gen_ai_provider")?,
            text("provider_name")?,
            text("request_model")?,
            text("model")?,
            text("tags")?,
            text("price_ref")?,
        );
        let tokens = TOKENS.map(|n| column::<Int64Array>(&batch, n));
        let who = WHO.map(|n| column::<StringArray>(&batch, n));
        let cost = column::<Decimal128Array>(&batch, "computed_cost")?;
        for i in 0..batch.num_rows() {
            let charge_day = epoch + chrono::Duration::days(i64::from(day.value(i)));
            if !days.contains(&charge_day) {
                continue;
            }
            let count = |k: usize| tokens[k].as_ref().map(|a| a.value(i)).map_err(|e| LakeError::Format(e.to_string()));
            let said = |k: usize| who[k].as_ref().map(|a| opt(a, i)).map_err(|e| LakeError::Format(e.to_string()));
            out.push(RequestRecord {
                key: SpanKey { trace_id: unhex(trace.value(i))?, span_id: unhex(span.value(i))? },
                started_at: crate::time_at(start, i)?,
                ended_at: crate::time_at(end, i)?,
                operation: opt(operation, i),
                gen_ai_provider: opt(gen_ai_provider, i),
                provider: opt(provider, i),
                request_model: opt(request_model, i),
                model: opt(model, i),
                input_uncached_tokens: count(0)?,
                input_cached_tokens: count(1)?,
                input_cache_write_tokens: count(2)?,
                output_tokens: count(3)?,
                reasoning_tokens: count(4)?,
                customer: said(0)?,
                feature: said(1)?,
                team: said(2)?,
                user_id: said(3)?,
                session_id: said(4)?,
                conversation_id: said(5)?,
                agent: said(6)?,
                service: said(7)?,
                tags: serde_json::from_str(tags.value(i))
                    .map_err(|e| LakeError::Format(format!("tags is not a JSON object of strings: {e}")))?,
                computed_cost: computed_at(Some(cost), i)?,
                price_ref: opt(price_ref, i).map(Arc::from),
            });
        }
    }
    Ok(out)
}

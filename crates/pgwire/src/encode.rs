//! Arrow columns to Postgres values, in the text or binary format the client asked for.
//!
//! Each Arrow type maps to the Postgres type a client expects of such a column: decimals stay
//! `numeric` (money is never a float), timestamps with a zone are `timestamptz` in UTC, dates are
//! `date`. Types without a natural Postgres counterpart (intervals, structs, …) go out as text.

use std::sync::Arc;

use burnrate_engine::postgres_type;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use rust_decimal::Decimal;

/// The Arrow type a column is converted to before encoding, and the Postgres type it goes out as.
fn wire_type(dt: &DataType) -> (DataType, Type) {
    let pg = postgres_type(dt);
    let ty = Type::from_oid(pg.oid).expect("postgres_type names built-in types");
    (pg.wire, ty)
}

/// The Postgres type a column of `dt` is described as.
pub fn pg_type(dt: &DataType) -> Type {
    wire_type(dt).1
}

/// A timestamp as PostgreSQL writes it in text (ISO style): seconds' fraction only when there
/// is one, without trailing zeros (`2025-03-02 10:30:00`, `… 10:30:00.25`), and `+00` for a
/// zoned one, which burnrate keeps in UTC.
fn timestamp_text(t: DateTime<Utc>, zoned: bool) -> String {
    let mut text = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = t.timestamp_subsec_micros();
    if micros > 0 {
        text.push('.');
        text.push_str(format!("{micros:06}").trim_end_matches('0'));
    }
    if zoned {
        text.push_str("+00");
    }
    text
}

/// Row descriptions for `schema`, each column in the format `formats` asks for.
pub fn fields(schema: &Schema, formats: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let format = if formats.is_binary(i) { FieldFormat::Binary } else { FieldFormat::Text };
            FieldInfo::new(f.name().clone(), None, None, pg_type(f.data_type()), format)
        })
        .collect()
}

/// Encodes every row of `batch`.
pub fn rows(batch: &RecordBatch, fields: &Arc<Vec<FieldInfo>>) -> PgWireResult<Vec<DataRow>> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| {
            let (target, _) = wire_type(c.data_type());
            if c.data_type() == &target { Ok(Arc::clone(c)) } else { cast(c, &target).map_err(api_error) }
        })
        .collect::<PgWireResult<Vec<ArrayRef>>>()?;
    let mut out = Vec::with_capacity(batch.num_rows());
    let mut encoder = DataRowEncoder::new(Arc::clone(fields));
    let binary: Vec<bool> = fields.iter().map(|f| f.format() == FieldFormat::Binary).collect();
    for row in 0..batch.num_rows() {
        for (column, binary) in columns.iter().zip(&binary) {
            encode_value(&mut encoder, column, row, *binary)?;
        }
        out.push(encoder.take_row());
    }
    Ok(out)
}

fn encode_value(e: &mut DataRowEncoder, column: &ArrayRef, row: usize, binary: bool) -> PgWireResult<()> {
    let null = column.is_null(row);
    macro_rules! put {
        ($array:ty, $value:expr) => {{
            let a = column.as_any().downcast_ref::<$array>().expect("cast to the wire type");
            let v = if null { None } else { Some($value(a.value(row))) };
            e.encode_field(&v)
        }};
    }
    // For conversions that can fail (beyond rust_decimal's or chrono's range): an error naming
    // the value, never a NULL or a rounded value in its place.
    macro_rules! put_checked {
        ($array:ty, $value:expr, $what:literal) => {{
            let a = column.as_any().downcast_ref::<$array>().expect("cast to the wire type");
            let v = if null {
                None
            } else {
                let raw = a.value(row);
                Some($value(raw).ok_or_else(|| {
                    api_error(format!(concat!($what, " {} cannot be sent to a Postgres client"), raw))
                })?)
            };
            e.encode_field(&v)
        }};
    }
    match column.data_type() {
        DataType::Boolean => put!(BooleanArray, |v| v),
        DataType::Int16 => put!(Int16Array, |v| v),
        DataType::Int32 => put!(Int32Array, |v| v),
        DataType::Int64 => put!(Int64Array, |v| v),
        DataType::Float32 => put!(Float32Array, |v| v),
        DataType::Float64 => put!(Float64Array, |v| v),
        DataType::Utf8 => put!(StringArray, |v: &str| v.to_owned()),
        DataType::Binary => put!(BinaryArray, |v: &[u8]| v.to_vec()),
        DataType::Date32 => put_checked!(Date32Array, date_from_days, "the date (days since 1970)"),
        DataType::Decimal128(_, s) => {
            let scale = u32::try_from(*s).expect("wire_type keeps scales in 0..=28");
            put_checked!(
                Decimal128Array,
                |v: i128| Decimal::try_from_i128_with_scale(v, scale).ok(),
                "the numeric value (unscaled)"
            )
        }
        DataType::Timestamp(_, Some(_)) if binary => {
            put_checked!(TimestampMicrosecondArray, DateTime::<Utc>::from_timestamp_micros, "the timestamp (µs)")
        }
        DataType::Timestamp(_, None) if binary => put_checked!(
            TimestampMicrosecondArray,
            |v: i64| DateTime::<Utc>::from_timestamp_micros(v).map(|t| t.naive_utc()),
            "the timestamp (µs)"
        ),
        DataType::Timestamp(_, zone) => put_checked!(
            TimestampMicrosecondArray,
            |v: i64| DateTime::<Utc>::from_timestamp_micros(v).map(|t| timestamp_text(t, zone.is_some())),
            "the timestamp (µs)"
        ),
        DataType::List(item) => {
            let list = column.as_any().downcast_ref::<ListArray>().expect("list");
            if null {
                return e.encode_field(&None::<Vec<Option<String>>>);
            }
            let values = list.value(row);
            match item.data_type() {
                DataType::Int64 => {
                    let a = values.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                    e.encode_field(&a.iter().collect::<Vec<Option<i64>>>())
                }
                DataType::Boolean => e.encode_field(&values.as_boolean().iter().collect::<Vec<Option<bool>>>()),
                _ => {
                    let a = values.as_string::<i32>();
                    e.encode_field(&a.iter().map(|v| v.map(str::to_owned)).collect::<Vec<Option<String>>>())
                }
            }
        }
        other => Err(api_error(format!("no Postgres encoding for {other}"))),
    }
}

/// Days from 0001-01-01 to 1970-01-01, chrono's and Arrow's day counts apart.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Arrow's `Date32` (days since 1970-01-01) as a date.
pub(crate) fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_DAYS_FROM_CE)?)
}

/// A date as Arrow's `Date32`.
pub(crate) fn days_from_date(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

fn api_error(e: impl std::fmt::Display) -> PgWireError {
    PgWireError::ApiError(e.to_string().into())
}

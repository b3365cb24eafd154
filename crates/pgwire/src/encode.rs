//! Arrow columns to Postgres values, in the text or binary format the client asked for.
//!
//! Each Arrow type maps to the Postgres type a client expects of such a column: decimals stay
//! `numeric` (money is never a float), timestamps with a zone are `timestamptz` in UTC, dates are
//! `date`. Types without a natural Postgres counterpart (intervals, structs, …) go out as text.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use rust_decimal::Decimal;

/// The Arrow type a column is converted to before encoding, and the Postgres type it goes out as.
fn wire_type(dt: &DataType) -> (DataType, Type) {
    match dt {
        DataType::Null | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => (DataType::Utf8, Type::TEXT),
        DataType::Boolean => (DataType::Boolean, Type::BOOL),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => (DataType::Int16, Type::INT2),
        DataType::Int32 | DataType::UInt16 => (DataType::Int32, Type::INT4),
        DataType::Int64 | DataType::UInt32 => (DataType::Int64, Type::INT8),
        DataType::UInt64 => (DataType::Decimal128(20, 0), Type::NUMERIC),
        DataType::Float16 | DataType::Float32 => (DataType::Float32, Type::FLOAT4),
        DataType::Float64 => (DataType::Float64, Type::FLOAT8),
        // Encoded value by value through rust_decimal (96-bit mantissa, scale up to 28), which
        // holds every amount the lake stores (Decimal128(38, 9)) short of 79 billion billion; a
        // larger value is an error, never a rounded number. What rust_decimal cannot scale goes
        // out as text, typed text: a numeric column must encode in binary too.
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s)
            if (0..=MAX_NUMERIC_SCALE).contains(s) =>
        {
            (DataType::Decimal128(*p, *s), Type::NUMERIC)
        }
        DataType::Date32 | DataType::Date64 => (DataType::Date32, Type::DATE),
        DataType::Timestamp(_, Some(_)) => {
            (DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), Type::TIMESTAMPTZ)
        }
        DataType::Timestamp(_, None) => (DataType::Timestamp(TimeUnit::Microsecond, None), Type::TIMESTAMP),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            (DataType::Binary, Type::BYTEA)
        }
        DataType::Dictionary(_, value) => wire_type(value),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::FixedSizeList(f, _) => {
            match wire_type(f.data_type()).1 {
                Type::INT2 | Type::INT4 | Type::INT8 => (list_of(DataType::Int64), Type::INT8_ARRAY),
                Type::BOOL => (list_of(DataType::Boolean), Type::BOOL_ARRAY),
                _ => (list_of(DataType::Utf8), Type::TEXT_ARRAY),
            }
        }
        _ => (DataType::Utf8, Type::TEXT),
    }
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new("item", item, true)))
}

/// The Postgres type a column of `dt` is described as.
pub fn pg_type(dt: &DataType) -> Type {
    wire_type(dt).1
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
    for row in 0..batch.num_rows() {
        for column in &columns {
            encode_value(&mut encoder, column, row)?;
        }
        out.push(encoder.take_row());
    }
    Ok(out)
}

fn encode_value(e: &mut DataRowEncoder, column: &ArrayRef, row: usize) -> PgWireResult<()> {
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
        DataType::Timestamp(_, Some(_)) => {
            put_checked!(TimestampMicrosecondArray, DateTime::<Utc>::from_timestamp_micros, "the timestamp (µs)")
        }
        DataType::Timestamp(_, None) => put_checked!(
            TimestampMicrosecondArray,
            |v: i64| DateTime::<Utc>::from_timestamp_micros(v).map(|t| t.naive_utc()),
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

/// The largest scale rust_decimal (and so this encoding) holds.
const MAX_NUMERIC_SCALE: i8 = 28;

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

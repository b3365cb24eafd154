//! How a column of each Arrow type looks to a PostgreSQL client: the type it is described as on
//! the wire, named in `information_schema`, and the Arrow type its values are converted to before
//! they are encoded. One table, so the wire and the catalog never disagree.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

/// A PostgreSQL type as a client sees a column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgType {
    /// The type's oid in `pg_type`.
    pub oid: u32,
    /// Its name in `pg_type` (`information_schema.columns.udt_name`): `int8`, `timestamptz`.
    pub udt_name: &'static str,
    /// Its SQL name (`information_schema.columns.data_type`): `bigint`, `timestamp with time zone`.
    pub sql_name: &'static str,
    /// The Arrow type values are converted to before encoding.
    pub wire: DataType,
}

/// The largest numeric scale the wire encoding holds (rust_decimal's).
pub const MAX_NUMERIC_SCALE: i8 = 28;

const fn pg(oid: u32, udt_name: &'static str, sql_name: &'static str, wire: DataType) -> PgType {
    PgType { oid, udt_name, sql_name, wire }
}

/// The PostgreSQL type a column of `dt` is served as.
pub fn postgres_type(dt: &DataType) -> PgType {
    match dt {
        DataType::Null | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            pg(25, "text", "text", DataType::Utf8)
        }
        DataType::Boolean => pg(16, "bool", "boolean", DataType::Boolean),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => pg(21, "int2", "smallint", DataType::Int16),
        DataType::Int32 | DataType::UInt16 => pg(23, "int4", "integer", DataType::Int32),
        DataType::Int64 | DataType::UInt32 => pg(20, "int8", "bigint", DataType::Int64),
        DataType::UInt64 => pg(1700, "numeric", "numeric", DataType::Decimal128(20, 0)),
        DataType::Float16 | DataType::Float32 => pg(700, "float4", "real", DataType::Float32),
        DataType::Float64 => pg(701, "float8", "double precision", DataType::Float64),
        // Encoded value by value through rust_decimal (96-bit mantissa, scale up to 28), which
        // holds every amount the lake stores (Decimal128(38, 9)) short of 79 billion billion; a
        // larger value is an error, never a rounded number. What rust_decimal cannot scale goes
        // out as text, typed text: a numeric column must encode in binary too.
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s)
            if (0..=MAX_NUMERIC_SCALE).contains(s) =>
        {
            pg(1700, "numeric", "numeric", DataType::Decimal128(*p, *s))
        }
        DataType::Date32 | DataType::Date64 => pg(1082, "date", "date", DataType::Date32),
        DataType::Timestamp(_, Some(_)) => pg(
            1184,
            "timestamptz",
            "timestamp with time zone",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        DataType::Timestamp(_, None) => {
            pg(1114, "timestamp", "timestamp without time zone", DataType::Timestamp(TimeUnit::Microsecond, None))
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            pg(17, "bytea", "bytea", DataType::Binary)
        }
        DataType::Dictionary(_, value) => postgres_type(value),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::FixedSizeList(f, _) => {
            match postgres_type(f.data_type()).oid {
                21 | 23 | 20 => pg(1016, "_int8", "ARRAY", list_of(DataType::Int64)),
                16 => pg(1000, "_bool", "ARRAY", list_of(DataType::Boolean)),
                _ => pg(1009, "_text", "ARRAY", list_of(DataType::Utf8)),
            }
        }
        _ => pg(25, "text", "text", DataType::Utf8),
    }
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

//! What differs between PostgreSQL and MySQL/MariaDB: quoting, placeholders, the columns query,
//! casts, and how a remote column's type maps to Arrow.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

use super::table::Bound;

/// The largest decimal scale a remote numeric column keeps (Arrow's Decimal128 holds 38 digits).
pub(super) const MAX_SCALE: i64 = 28;

/// The database a source speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Driver {
    Postgres,
    MySql,
}

impl Driver {
    pub(super) fn of(kind: &str) -> Option<Self> {
        match kind {
            "postgres" => Some(Driver::Postgres),
            "mysql" => Some(Driver::MySql),
            _ => None,
        }
    }

    /// An identifier quoted, inner quotes doubled.
    pub(super) fn quote(self, name: &str) -> String {
        match self {
            Driver::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Driver::MySql => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// The placeholder of the `n`th bound value (from 1), `value`. PostgreSQL's is cast to the
    /// value's type: the server would otherwise take the column's, which the value may not be
    /// (an `int4` column compared with a 64-bit integer).
    pub(super) fn placeholder(self, n: usize, value: &Bound) -> String {
        match self {
            Driver::Postgres => {
                let cast = match value {
                    Bound::Int(_) => "int8",
                    Bound::Float(_) => "float8",
                    Bound::Bool(_) => "bool",
                    Bound::Text(_) => "text",
                    Bound::Date(_) => "date",
                };
                format!("${n}::{cast}")
            }
            Driver::MySql => "?".to_owned(),
        }
    }

    /// The columns of `schema.table` (name, type, precision, scale, nullable), one query.
    pub(super) fn columns_query(self) -> &'static str {
        match self {
            Driver::Postgres => {
                "SELECT column_name::text, data_type::text, numeric_precision::int8, numeric_scale::int8, is_nullable::text \
                 FROM information_schema.columns WHERE table_schema = $1::text AND table_name = $2::text ORDER BY ordinal_position"
            }
            Driver::MySql => {
                "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR), CAST(numeric_precision AS SIGNED), \
                 CAST(numeric_scale AS SIGNED), CAST(is_nullable AS CHAR) \
                 FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position"
            }
        }
    }

    /// The select-list expression reading column `quoted` as `kind` decodes it.
    pub(super) fn select(self, kind: Kind, quoted: &str) -> String {
        match (self, kind) {
            (Driver::Postgres, Kind::Int) => format!("{quoted}::int8"),
            (Driver::Postgres, Kind::Float) => format!("{quoted}::float8"),
            (Driver::Postgres, Kind::Decimal(_) | Kind::Text) => format!("{quoted}::text"),
            (Driver::MySql, Kind::Int) => format!("CAST({quoted} AS SIGNED)"),
            (Driver::MySql, Kind::Float) => format!("CAST({quoted} AS DOUBLE)"),
            (Driver::MySql, Kind::Decimal(_) | Kind::Text) => format!("CAST({quoted} AS CHAR)"),
            (_, Kind::Bool | Kind::Date | Kind::Timestamp | Kind::TimestampTz) => quoted.to_owned(),
        }
    }
}

/// How a remote column is read and what Arrow type it becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Int,
    Float,
    Bool,
    Date,
    Timestamp,
    TimestampTz,
    /// An exact decimal of this scale, read as text so no digit is lost.
    Decimal(i8),
    Text,
}

impl Kind {
    /// From `information_schema.columns`: `data_type`, `numeric_precision`, `numeric_scale`
    /// (PostgreSQL's and MySQL's type names).
    pub(super) fn of(data_type: &str, precision: Option<i64>, scale: Option<i64>) -> Self {
        match data_type.to_ascii_lowercase().as_str() {
            "smallint" | "integer" | "bigint" | "tinyint" | "mediumint" | "int" | "year" => Kind::Int,
            "real" | "double precision" | "float" | "double" => Kind::Float,
            "boolean" => Kind::Bool,
            "date" => Kind::Date,
            "timestamp without time zone" | "datetime" => Kind::Timestamp,
            "timestamp with time zone" | "timestamp" => Kind::TimestampTz,
            // numeric(p, s) with room in Decimal128; an unconstrained numeric stays exact as text.
            "numeric" | "decimal" => match (precision, scale) {
                (Some(p), Some(s)) if p <= 38 && (0..=MAX_SCALE).contains(&s) => Kind::Decimal(s as i8),
                _ => Kind::Text,
            },
            _ => Kind::Text,
        }
    }

    pub(super) fn arrow(self) -> DataType {
        match self {
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Decimal(s) => DataType::Decimal128(38, s),
            Kind::Text => DataType::Utf8,
        }
    }
}

//! An organization's own databases (PostgreSQL, MySQL/MariaDB) as schemas of its session
//! (`ext_<source name>`), read at query time (S6: rows live only as long as the query that
//! pulled them).
//!
//! ```text
//!   ext_shop.teams ──table()──▶ connect, read the table's columns from information_schema
//!                  ──scan()───▶ SELECT <projected columns> FROM "public"."teams"
//!                               WHERE <pushed comparisons, values bound> LIMIT <n>
//! ```
//!
//! The two dialects differ in quoting (`"x"`, `` `x` ``), placeholders (`$1`, `?`), casts and
//! type names; `dialect::Driver` holds each difference in one place.
//!
//! The password is opened from the vault at the moment of connecting (S2) and goes nowhere but
//! the connection: errors name the source, never the options. The host is resolved and checked
//! by the egress guard (S14), and the address it approved is what is dialled.
//!
//! One stage a file: `dialect` (what differs between the two), `connect` (reaching a source),
//! `table` (the schema, its tables and what is pushed down), `scan` (the query and its rows as
//! Arrow batches).

// Defined before the modules that use it (macros are scoped by text).
/// Binds `bound` to a query of either driver, in order.
macro_rules! bind_all {
    ($query:expr, $bound:expr) => {{
        let mut query = $query;
        for value in $bound {
            query = match value {
                Bound::Int(v) => query.bind(v),
                Bound::Float(v) => query.bind(v),
                Bound::Bool(v) => query.bind(v),
                Bound::Text(v) => query.bind(v),
                Bound::Date(v) => query.bind(v),
            };
        }
        query
    }};
}

mod connect;
mod dialect;
mod scan;
mod table;

pub(crate) use connect::RemoteSource;
pub(crate) use table::RemoteSchema;

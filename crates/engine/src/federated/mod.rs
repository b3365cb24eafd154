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
//! One stage a file: `dialect` (what differs between the two), `connect` (reaching a source;
//! `tls`: its TLS; `postgres` and `mysql`: each driver's login and reads),
//! `table` (the schema, its tables and what is pushed down), `scan` (the query and its rows as
//! Arrow batches).

mod connect;
mod dialect;
mod mysql;
mod postgres;
mod scan;
mod table;
mod tls;

pub(crate) use connect::RemoteSource;
pub(crate) use table::RemoteSchema;

/// Values bound to a PostgreSQL query, in order (each placeholder is cast to its value's type,
/// so the server takes the type of the value, not of the column).
fn postgres_values(bound: &[table::Bound]) -> Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> {
    bound
        .iter()
        .map(|value| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
            match value.clone() {
                table::Bound::Int(v) => Box::new(v),
                table::Bound::Float(v) => Box::new(v),
                table::Bound::Bool(v) => Box::new(v),
                table::Bound::Text(v) => Box::new(v),
                table::Bound::Date(v) => Box::new(v),
            }
        })
        .collect()
}

/// Whether `pem` holds certificates of a certificate authority a database source can be
/// checked against; why not, in words.
pub fn check_certificate_authority(pem: &str) -> Result<(), String> {
    tls::certificate_authority(pem).map(|_| ())
}

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
//! type names; [`Driver`] holds each difference in one place.
//!
//! The password is opened from the vault at the moment of connecting (S2) and goes nowhere but
//! the connection: errors name the source, never the options. The host is resolved and checked
//! by the egress guard (S14), and the address it approved is what is dialled.

use std::fmt;
use std::sync::Arc;

use burnrate_core::{DatabaseConfig, DatabaseTls};
use burnrate_net::EgressGuard;
use burnrate_store::{OrgScope, SourceRecord, Store, Vault};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use futures::StreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlRow, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgRow, PgSslMode};
use sqlx::{Connection, Row};

/// The largest decimal scale a remote numeric column keeps (Arrow's Decimal128 holds 38 digits).
const MAX_SCALE: i64 = 28;

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

/// The database a source speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Driver {
    Postgres,
    MySql,
}

impl Driver {
    fn of(kind: &str) -> Option<Self> {
        match kind {
            "postgres" => Some(Driver::Postgres),
            "mysql" => Some(Driver::MySql),
            _ => None,
        }
    }

    /// An identifier quoted, inner quotes doubled.
    fn quote(self, name: &str) -> String {
        match self {
            Driver::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Driver::MySql => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// The placeholder of the `n`th bound value (from 1).
    fn placeholder(self, n: usize) -> String {
        match self {
            Driver::Postgres => format!("${n}"),
            Driver::MySql => "?".to_owned(),
        }
    }

    /// The columns of `schema.table` (name, type, precision, scale, nullable), one query.
    fn columns_query(self) -> &'static str {
        match self {
            Driver::Postgres => {
                "SELECT column_name::text, data_type::text, numeric_precision::int8, numeric_scale::int8, is_nullable::text \
                 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position"
            }
            Driver::MySql => {
                "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR), CAST(numeric_precision AS SIGNED), \
                 CAST(numeric_scale AS SIGNED), CAST(is_nullable AS CHAR) \
                 FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position"
            }
        }
    }

    /// The select-list expression reading column `quoted` as `kind` decodes it.
    fn select(self, kind: Kind, quoted: &str) -> String {
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

/// A connection to a source, of its driver.
enum Remote {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
}

/// What a session needs to reach one database source.
pub(crate) struct RemoteSource {
    pub(crate) name: String,
    driver: Driver,
    id: uuid::Uuid,
    config: DatabaseConfig,
    scope: OrgScope,
    store: Store,
    vault: Arc<Vault>,
    guard: EgressGuard,
}

impl fmt::Debug for RemoteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSource").field("name", &self.name).field("config", &self.config).finish()
    }
}

impl RemoteSource {
    pub(crate) fn new(
        source: &SourceRecord,
        scope: OrgScope,
        store: Store,
        vault: Arc<Vault>,
        guard: EgressGuard,
    ) -> std::result::Result<Self, String> {
        let config: DatabaseConfig = serde_json::from_str(&source.config)
            .map_err(|e| format!("database source {:?}: its settings do not read: {e}", source.name))?;
        let driver =
            Driver::of(&source.kind).ok_or_else(|| format!("database source {:?}: unknown kind", source.name))?;
        Ok(Self { name: source.name.clone(), driver, id: source.id, config, scope, store, vault, guard })
    }

    fn error(&self, what: impl fmt::Display) -> DataFusionError {
        DataFusionError::Execution(format!("database source {:?}: {what}", self.name))
    }

    /// A connection of its own, to the address the egress guard approved.
    async fn connect(&self) -> Result<Remote> {
        let addr = self.guard.resolve(&self.config.host, self.config.port).await.map_err(|e| self.error(e))?;
        let mut tx = self.store.read_tenant(self.scope).await.map_err(|e| self.error(e))?;
        let password = tx.open_source_secret(&self.vault, self.id).await.map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        let (host, port, user, database) =
            (addr.ip().to_string(), addr.port(), &self.config.user, &self.config.database);
        let connecting = async {
            match self.driver {
                Driver::Postgres => {
                    let options = PgConnectOptions::new_without_pgpass()
                        .host(&host)
                        .port(port)
                        .username(user)
                        .password(&password)
                        .database(database)
                        .ssl_mode(match self.config.tls {
                            DatabaseTls::Prefer => PgSslMode::Prefer,
                            DatabaseTls::Require => PgSslMode::Require,
                        })
                        .application_name("burnrate");
                    sqlx::PgConnection::connect_with(&options).await.map(Remote::Postgres)
                }
                Driver::MySql => {
                    // sqlx sets the session's time zone to UTC, so TIMESTAMP columns read as UTC.
                    let options = MySqlConnectOptions::new()
                        .host(&host)
                        .port(port)
                        .username(user)
                        .password(&password)
                        .database(database)
                        .ssl_mode(match self.config.tls {
                            DatabaseTls::Prefer => MySqlSslMode::Preferred,
                            DatabaseTls::Require => MySqlSslMode::Required,
                        });
                    sqlx::MySqlConnection::connect_with(&options).await.map(Remote::MySql)
                }
            }
        };
        let connected = tokio::time::timeout(std::time::Duration::from_secs(10), connecting).await;
        drop(password);
        match connected {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.error(format!("cannot connect: {}", describe(&e)))),
            Err(_) => Err(self.error(format!("{}:{} did not answer within 10 s", self.config.host, self.config.port))),
        }
    }

    /// The schema the source's tables are read from: the configured one in PostgreSQL; in
    /// MySQL a schema is the database.
    fn remote_schema(&self) -> &str {
        match self.driver {
            Driver::Postgres => &self.config.schema,
            Driver::MySql => &self.config.database,
        }
    }
}

/// A driver error in words that hold no connection option: the server's own message for what
/// it refused, the kind of failure otherwise.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::Protocol(p) => format!("protocol error: {p}"),
        sqlx::Error::ColumnDecode { index, .. } => format!("column {index} does not decode"),
        _ => "the connection failed".to_owned(),
    }
}

/// `ext_<name>`: the remote schema's tables, each looked up when a query names it. A listing
/// (`\dt`, information_schema) would mean connecting for every catalog query, so the schema lists
/// no tables; a query names them.
#[derive(Debug)]
pub(crate) struct RemoteSchema {
    source: Arc<RemoteSource>,
}

impl RemoteSchema {
    pub(crate) fn new(source: RemoteSource) -> Self {
        Self { source: Arc::new(source) }
    }
}

#[async_trait::async_trait]
impl SchemaProvider for RemoteSchema {
    fn table_names(&self) -> Vec<String> {
        Vec::new()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = RemoteTable::look_up(&self.source, name).await?;
        Ok(table.map(|t| Arc::new(t) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, _name: &str) -> bool {
        false
    }
}

/// How a remote column is read and what Arrow type it becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
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
    fn of(data_type: &str, precision: Option<i64>, scale: Option<i64>) -> Self {
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

    fn arrow(self) -> DataType {
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

#[derive(Debug)]
struct RemoteTable {
    source: Arc<RemoteSource>,
    /// `"schema"."table"`.
    relation: String,
    columns: Vec<(String, Kind)>,
    schema: SchemaRef,
}

impl RemoteTable {
    /// The table's columns as the remote catalog lists them now; `None` if there is no such table.
    async fn look_up(source: &Arc<RemoteSource>, table: &str) -> Result<Option<Self>> {
        let mut conn = source.connect().await?;
        let names = vec![Bound::Text(source.remote_schema().to_owned()), Bound::Text(table.to_owned())];
        let failed = |e: sqlx::Error| source.error(format!("cannot read the columns of {table:?}: {}", describe(&e)));
        let rows: Vec<Box<dyn Cells>> = match &mut conn {
            Remote::Postgres(c) => {
                let query = bind_all!(sqlx::query::<sqlx::Postgres>(source.driver.columns_query()), names);
                query.fetch_all(c).await.map_err(failed)?.into_iter().map(|r| Box::new(r) as Box<dyn Cells>).collect()
            }
            Remote::MySql(c) => {
                let query = bind_all!(sqlx::query::<sqlx::MySql>(source.driver.columns_query()), names);
                query.fetch_all(c).await.map_err(failed)?.into_iter().map(|r| Box::new(r) as Box<dyn Cells>).collect()
            }
        };
        if rows.is_empty() {
            return Ok(None);
        }
        let mut columns = Vec::new();
        let mut fields = Vec::new();
        let decode = |e: sqlx::Error| source.error(describe(&e));
        for row in rows {
            let name = row.text(0).map_err(decode)?.unwrap_or_default();
            let data_type = row.text(1).map_err(decode)?.unwrap_or_default();
            let kind = Kind::of(&data_type, row.int(2).map_err(decode)?, row.int(3).map_err(decode)?);
            let nullable = row.text(4).map_err(decode)?.is_none_or(|n| n != "NO");
            fields.push(Field::new(&name, kind.arrow(), nullable));
            columns.push((name, kind));
        }
        let quote = |n: &str| source.driver.quote(n);
        let relation = format!("{}.{}", quote(source.remote_schema()), quote(table));
        Ok(Some(Self { source: Arc::clone(source), relation, columns, schema: Arc::new(Schema::new(fields)) }))
    }

    /// `filter` as a remote condition with its value bound, if it is one this table can push:
    /// a column compared with a literal of the column's own type, or a NULL test.
    fn pushable(&self, filter: &Expr) -> Option<(String, Option<Bound>)> {
        let quote = |n: &str| self.source.driver.quote(n);
        let column = |e: &Expr| match e {
            Expr::Column(c) => self.columns.iter().find(|(name, _)| *name == c.name).cloned(),
            _ => None,
        };
        match filter {
            Expr::IsNull(e) => column(e).map(|(name, _)| (format!("{} IS NULL", quote(&name)), None)),
            Expr::IsNotNull(e) => column(e).map(|(name, _)| (format!("{} IS NOT NULL", quote(&name)), None)),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (col, value, op) = match (column(left), column(right)) {
                    (Some(c), None) => (c, right.as_ref(), *op),
                    (None, Some(c)) => (c, left.as_ref(), op.swap()?),
                    _ => return None,
                };
                let sql_op = match op {
                    Operator::Eq => "=",
                    Operator::NotEq => "<>",
                    Operator::Lt => "<",
                    Operator::LtEq => "<=",
                    Operator::Gt => ">",
                    Operator::GtEq => ">=",
                    _ => return None,
                };
                let Expr::Literal(value, _) = value else { return None };
                let bound = Bound::of(col.1, value)?;
                Some((format!("{} {sql_op} ", quote(&col.0)), Some(bound)))
            }
            _ => None,
        }
    }
}

/// A value bound to a pushed comparison.
#[derive(Clone, Debug)]
enum Bound {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Date(NaiveDate),
}

impl Bound {
    /// `value` for a column of `kind`, if it is of that kind (NULL comparisons are not pushed).
    fn of(kind: Kind, value: &ScalarValue) -> Option<Self> {
        match (kind, value) {
            (Kind::Int, ScalarValue::Int64(Some(v))) => Some(Bound::Int(*v)),
            (Kind::Float, ScalarValue::Float64(Some(v))) => Some(Bound::Float(*v)),
            (Kind::Bool, ScalarValue::Boolean(Some(v))) => Some(Bound::Bool(*v)),
            (Kind::Text, ScalarValue::Utf8(Some(v)) | ScalarValue::Utf8View(Some(v))) => Some(Bound::Text(v.clone())),
            (Kind::Date, ScalarValue::Date32(Some(d))) => {
                NaiveDate::from_num_days_from_ce_opt(*d + 719_163).map(Bound::Date)
            }
            _ => None,
        }
    }
}

#[async_trait::async_trait]
impl TableProvider for RemoteTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Inexact: the engine filters again, so a comparison the remote side orders differently
        // (collations) can only send more rows, never lose one.
        Ok(filters
            .iter()
            .map(|f| {
                if self.pushable(f).is_some() {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let picked: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.columns.len()).collect());
        let kinds: Vec<Kind> = picked.iter().map(|&i| self.columns[i].1).collect();
        let select = if picked.is_empty() {
            "1".to_owned()
        } else {
            let driver = self.source.driver;
            picked
                .iter()
                .map(|&i| driver.select(self.columns[i].1, &driver.quote(&self.columns[i].0)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut sql = format!("SELECT {select} FROM {}", self.relation);
        let mut bound = Vec::new();
        let conditions: Vec<String> = filters
            .iter()
            .filter_map(|f| self.pushable(f))
            .map(|(condition, value)| match value {
                Some(v) => {
                    bound.push(v);
                    format!("{condition}{}", self.source.driver.placeholder(bound.len()))
                }
                None => condition,
            })
            .collect();
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        if let Some(n) = limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let schema = Arc::new(self.schema.project(&picked)?);
        Ok(Arc::new(RemoteScan::new(Arc::clone(&self.source), sql, bound, kinds, schema)))
    }
}

/// Reads one remote query's rows as batches.
#[derive(Debug)]
struct RemoteScan {
    source: Arc<RemoteSource>,
    sql: String,
    bound: Vec<Bound>,
    kinds: Vec<Kind>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl RemoteScan {
    fn new(source: Arc<RemoteSource>, sql: String, bound: Vec<Bound>, kinds: Vec<Kind>, schema: SchemaRef) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self { source, sql, bound, kinds, schema, properties }
    }
}

impl DisplayAs for RemoteScan {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RemoteScan: source={:?}, sql={}", self.source.name, self.sql)
    }
}

impl ExecutionPlan for RemoteScan {
    fn name(&self) -> &'static str {
        "RemoteScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, _partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let batch_size = context.session_config().batch_size();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
        let (source, sql, bound, kinds, schema) = (
            Arc::clone(&self.source),
            self.sql.clone(),
            self.bound.clone(),
            self.kinds.clone(),
            Arc::clone(&self.schema),
        );
        // The reading task ends when the query does: its sends fail once the stream is dropped,
        // and the connection (with every row it held) goes with it.
        tokio::spawn(async move {
            if let Err(e) = read(&source, &sql, bound, &kinds, &schema, batch_size, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|batch| (batch, rx)) });
        Ok(Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), stream)))
    }
}

async fn read(
    source: &RemoteSource,
    sql: &str,
    bound: Vec<Bound>,
    kinds: &[Kind],
    schema: &SchemaRef,
    batch_size: usize,
    tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let mut conn = source.connect().await?;
    let mut batch = Batch::new(kinds, batch_size);
    // Identifiers quoted, values bound: nothing of the text comes from the client unquoted.
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &mut conn {
        Remote::Postgres(c) => {
            let query = bind_all!(sqlx::query::<sqlx::Postgres>(sql), bound);
            pump(query.fetch(c), source, &mut batch, schema, tx).await
        }
        Remote::MySql(c) => {
            let query = bind_all!(sqlx::query::<sqlx::MySql>(sql), bound);
            pump(query.fetch(c), source, &mut batch, schema, tx).await
        }
    }
}

/// Moves rows from `rows` into batches and the batches into `tx`, until the rows end or the
/// query stops listening.
async fn pump<R: Cells>(
    mut rows: impl futures::Stream<Item = std::result::Result<R, sqlx::Error>> + Unpin,
    source: &RemoteSource,
    batch: &mut Batch,
    schema: &SchemaRef,
    tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    while let Some(row) = rows.next().await {
        let row = row.map_err(|e| source.error(format!("query failed: {}", describe(&e))))?;
        batch.push(&row).map_err(|e| source.error(e))?;
        if batch.rows == batch.capacity && tx.send(batch.finish(schema)).await.is_err() {
            return Ok(());
        }
    }
    if batch.rows > 0 {
        let _ = tx.send(batch.finish(schema)).await;
    }
    Ok(())
}

/// A row's values by kind, whichever driver read it.
trait Cells: Send {
    fn int(&self, i: usize) -> std::result::Result<Option<i64>, sqlx::Error>;
    fn float(&self, i: usize) -> std::result::Result<Option<f64>, sqlx::Error>;
    fn boolean(&self, i: usize) -> std::result::Result<Option<bool>, sqlx::Error>;
    fn date(&self, i: usize) -> std::result::Result<Option<NaiveDate>, sqlx::Error>;
    fn naive(&self, i: usize) -> std::result::Result<Option<NaiveDateTime>, sqlx::Error>;
    fn utc(&self, i: usize) -> std::result::Result<Option<DateTime<Utc>>, sqlx::Error>;
    fn text(&self, i: usize) -> std::result::Result<Option<String>, sqlx::Error>;
}

macro_rules! cells {
    ($row:ty) => {
        impl Cells for $row {
            fn int(&self, i: usize) -> std::result::Result<Option<i64>, sqlx::Error> {
                self.try_get(i)
            }
            fn float(&self, i: usize) -> std::result::Result<Option<f64>, sqlx::Error> {
                self.try_get(i)
            }
            fn boolean(&self, i: usize) -> std::result::Result<Option<bool>, sqlx::Error> {
                self.try_get(i)
            }
            fn date(&self, i: usize) -> std::result::Result<Option<NaiveDate>, sqlx::Error> {
                self.try_get(i)
            }
            fn naive(&self, i: usize) -> std::result::Result<Option<NaiveDateTime>, sqlx::Error> {
                self.try_get(i)
            }
            fn utc(&self, i: usize) -> std::result::Result<Option<DateTime<Utc>>, sqlx::Error> {
                self.try_get(i)
            }
            fn text(&self, i: usize) -> std::result::Result<Option<String>, sqlx::Error> {
                self.try_get(i)
            }
        }
    };
}
cells!(PgRow);
cells!(MySqlRow);

/// Rows being gathered into one batch, a builder per column.
struct Batch {
    kinds: Vec<Kind>,
    builders: Vec<Box<dyn ArrayBuilder>>,
    rows: usize,
    capacity: usize,
}

impl Batch {
    fn new(kinds: &[Kind], capacity: usize) -> Self {
        let mut batch = Self { kinds: kinds.to_vec(), builders: Vec::new(), rows: 0, capacity };
        batch.builders = batch.fresh();
        batch
    }

    fn fresh(&self) -> Vec<Box<dyn ArrayBuilder>> {
        let n = self.capacity;
        self.kinds
            .iter()
            .map(|k| -> Box<dyn ArrayBuilder> {
                match k {
                    Kind::Int => Box::new(Int64Builder::with_capacity(n)),
                    Kind::Float => Box::new(Float64Builder::with_capacity(n)),
                    Kind::Bool => Box::new(BooleanBuilder::with_capacity(n)),
                    Kind::Date => Box::new(Date32Builder::with_capacity(n)),
                    Kind::Timestamp => Box::new(TimestampMicrosecondBuilder::with_capacity(n)),
                    Kind::TimestampTz => Box::new(TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC")),
                    Kind::Decimal(s) => Box::new(
                        Decimal128Builder::with_capacity(n).with_precision_and_scale(38, *s).expect("scale <= 28"),
                    ),
                    Kind::Text => Box::new(StringBuilder::with_capacity(n, n * 16)),
                }
            })
            .collect()
    }

    fn push(&mut self, row: &dyn Cells) -> std::result::Result<(), String> {
        let column = |i: usize, e: sqlx::Error| format!("column {i} does not decode: {}", describe(&e));
        for (i, (kind, builder)) in self.kinds.iter().zip(self.builders.iter_mut()).enumerate() {
            let any = builder.as_any_mut();
            match kind {
                Kind::Int => {
                    let v = row.int(i).map_err(|e| column(i, e))?;
                    any.downcast_mut::<Int64Builder>().expect("int builder").append_option(v);
                }
                Kind::Float => {
                    let v = row.float(i).map_err(|e| column(i, e))?;
                    any.downcast_mut::<Float64Builder>().expect("float builder").append_option(v);
                }
                Kind::Bool => {
                    let v = row.boolean(i).map_err(|e| column(i, e))?;
                    any.downcast_mut::<BooleanBuilder>().expect("bool builder").append_option(v);
                }
                Kind::Date => {
                    let v = row.date(i).map_err(|e| column(i, e))?;
                    let days = v.map(|d| d.signed_duration_since(NaiveDate::default()).num_days() as i32);
                    any.downcast_mut::<Date32Builder>().expect("date builder").append_option(days);
                }
                Kind::Timestamp => {
                    let v = row.naive(i).map_err(|e| column(i, e))?;
                    let micros = v.map(|t| t.and_utc().timestamp_micros());
                    any.downcast_mut::<TimestampMicrosecondBuilder>().expect("timestamp builder").append_option(micros);
                }
                Kind::TimestampTz => {
                    let v = row.utc(i).map_err(|e| column(i, e))?;
                    let micros = v.map(|t| t.timestamp_micros());
                    any.downcast_mut::<TimestampMicrosecondBuilder>().expect("timestamp builder").append_option(micros);
                }
                Kind::Decimal(scale) => {
                    let v = row.text(i).map_err(|e| column(i, e))?;
                    let v = v
                        .map(|text| {
                            scaled(&text, *scale).ok_or_else(|| format!("{text} is not a numeric of scale {scale}"))
                        })
                        .transpose()?;
                    any.downcast_mut::<Decimal128Builder>().expect("decimal builder").append_option(v);
                }
                Kind::Text => {
                    let v = row.text(i).map_err(|e| column(i, e))?;
                    any.downcast_mut::<StringBuilder>().expect("text builder").append_option(v);
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        let fresh = self.fresh();
        let arrays: Vec<ArrayRef> =
            std::mem::replace(&mut self.builders, fresh).iter_mut().map(|b| b.finish()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(Arc::clone(schema), arrays, &options)?)
    }
}

/// A numeric's text as the integer of its value × 10^scale, if it has no more decimals.
fn scaled(text: &str, scale: i8) -> Option<i128> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > scale as usize || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (negative, digits) = match whole.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, whole),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{digits}{fraction:0<width$}", width = scale as usize);
    let magnitude: i128 = padded.parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

//! A SQL client's connection: its organization, the settings it has set, and the statements it
//! sends, each answered either by the engine or — for the session statements clients send on
//! their own (`SET`, `SHOW`, `BEGIN`, `DISCARD`) — from an allow-list.
//!
//! Statements are parsed in PostgreSQL's dialect and rewritten for DataFusion where clients use
//! PostgreSQL idioms (`OPERATOR(pg_catalog.~)`, `::regclass`, `COLLATE pg_catalog.default`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::ScalarValue;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, Value};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use std::sync::LazyLock;

use burnrate_store::OrgScope;

use crate::org_tables::{Records, StoreTable};
use crate::{Engine, EngineError, QueryStream};

/// The version clients are told, in `server_version` and `version()`: PostgreSQL 16's catalog
/// is what the session serves.
pub const SERVER_VERSION: &str = "16.6";

static PARSER: LazyLock<PostgresCompatibilityParser> = LazyLock::new(PostgresCompatibilityParser::new);

/// One client connection of one organization.
pub struct SqlSession {
    engine: Engine,
    scope: OrgScope,
    base: SessionContext,
    settings: Settings,
    /// Statements parsed before, by their text: drivers and pools send the same ones again.
    parsed: Remembered<Vec<SqlStatement>>,
    /// The answers of constant statements ([`is_constant`]), by statement.
    constants: Remembered<(SchemaRef, Vec<RecordBatch>)>,
    /// Where its queries come from, for the operator's metrics.
    front_end: crate::FrontEnd,
}

/// The settings a connection has set, by name; the rest have their defaults.
type Settings = Arc<Mutex<BTreeMap<&'static str, String>>>;

/// A parsed statement, ready to describe or run (any number of times).
#[derive(Clone, Debug)]
pub struct SqlStatement {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Planned and run by the engine.
    Query(Box<Statement>),
    /// `SET name = value` of a setting on the allow-list.
    Set { name: &'static str, value: String },
    /// `SHOW name` of a setting clients read.
    Show(&'static str),
    /// `BEGIN` / `START TRANSACTION`. Transactions are trivially serializable over read-only
    /// data, so they are acknowledged and nothing more.
    Begin,
    /// `COMMIT` / `ROLLBACK`, with that tag.
    End(&'static str),
    /// `DISCARD ALL`: the settings this connection made go back to their defaults.
    Discard,
    /// `DEALLOCATE name` (`None`: `DEALLOCATE ALL`), which drivers send to free what they
    /// prepared (psycopg, on rollback).
    Deallocate(Option<String>),
    /// A statement answered with its command tag alone (`SET SESSION CHARACTERISTICS …`).
    Acknowledge(&'static str),
}

/// What a statement produced.
pub enum Outcome {
    Rows(QueryStream),
    /// A command tag (`SET`, `BEGIN`, …).
    Command(&'static str),
    /// `BEGIN` / `START TRANSACTION`: the client now believes it is in a transaction.
    Begin,
    /// `COMMIT` / `ROLLBACK`.
    End(&'static str),
    /// The client's prepared statement of that name is to be forgotten (`None`: all of them).
    Deallocate(Option<String>),
}

/// A statement's parameter types (in `$n` order; `None` where the engine cannot infer one) and
/// the schema of its rows (empty for commands).
pub struct Description {
    pub parameters: Vec<Option<DataType>>,
    pub schema: SchemaRef,
}

/// Settings a client may set and read back. Values only echo: none changes how the engine runs
/// (memory, spill, files), which stays the operator's.
const SETTINGS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_read_only", "on"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("lc_messages", "C"),
    ("lc_monetary", "C"),
    ("lc_numeric", "C"),
    ("lc_time", "C"),
    ("max_identifier_length", "63"),
    ("max_index_keys", "32"),
    ("search_path", "public"),
    ("server_encoding", "UTF8"),
    ("server_version", SERVER_VERSION),
    ("server_version_num", "160006"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "on"),
];

/// Settings whose value clients may not change because burnrate answers in exactly one way.
const FIXED: &[&str] = &[
    "integer_datetimes",
    "max_identifier_length",
    "max_index_keys",
    "server_encoding",
    "server_version",
    "server_version_num",
    "standard_conforming_strings",
    "transaction_read_only",
    "default_transaction_read_only",
];

/// Statements that would change something: refused by name even where they do not parse.
const WRITES: &[&str] = &[
    "ALTER", "COPY", "CREATE", "DELETE", "DROP", "GRANT", "INSERT", "MERGE", "REVOKE", "TRUNCATE", "UPDATE", "VACUUM",
];

/// Refuses `sql` by name if it starts with a statement that would change something.
fn refuse_writes(sql: &str) -> Result<(), EngineError> {
    let first = sql.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
    if WRITES.contains(&first.as_str()) {
        return Err(EngineError::Refused(format!("{first} statements")));
    }
    Ok(())
}

/// The value of setting `name` in `settings`, or its default; `None` for a setting burnrate
/// does not know.
fn setting_value(settings: &Settings, name: &str) -> Option<String> {
    let name = setting_name(name)?;
    Some(value_in(&settings.lock().expect("settings lock"), name))
}

/// The value of the setting `name` (a name from [`SETTINGS`]) in a connection's `set` values.
fn value_in(set: &BTreeMap<&'static str, String>, name: &str) -> String {
    set.get(name).cloned().unwrap_or_else(|| setting_default(name))
}

/// `current_setting(name)`: a setting as this connection sees it (Grafana reads `search_path`).
fn current_setting_udf(settings: Settings) -> ScalarUDF {
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let value = |name: Option<&str>| -> datafusion::error::Result<Option<String>> {
                let Some(name) = name else { return Ok(None) };
                setting_value(&settings, name).map(Some).ok_or_else(|| {
                    datafusion::error::DataFusionError::Plan(format!("unrecognized configuration parameter \"{name}\""))
                })
            };
            match &args[0] {
                ColumnarValue::Scalar(ScalarValue::Utf8(name)) => {
                    Ok(ColumnarValue::Scalar(ScalarValue::Utf8(value(name.as_deref())?)))
                }
                other => {
                    let names = other.to_array(1)?;
                    let names = datafusion::common::cast::as_string_array(&names)?;
                    let values = names.iter().map(value).collect::<datafusion::error::Result<StringArray>>()?;
                    Ok(ColumnarValue::Array(Arc::new(values)))
                }
            }
        }),
    )
}

fn setting_name(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let lower = match lower.as_str() {
        "time zone" | "time_zone" => "timezone",
        "transaction isolation level" => "transaction_isolation",
        other => other,
    };
    SETTINGS.iter().find(|(n, _)| *n == lower).map(|(n, _)| *n)
}

/// Who reads through a session: what the organization's tables show depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// An organization admin (and every SQL credential, which only admins create): the audit log
    /// is there too.
    Admin,
    /// A member: the organization's spend and sources, no audit log.
    Member,
}

impl Engine {
    /// A connection for `scope`'s organization, read by `reader`, logged in as `user` (what
    /// `session_user` and `current_user` answer: the SQL credential's id on the wire).
    pub fn connect(&self, scope: OrgScope, reader: Reader, user: &str) -> Result<SqlSession, EngineError> {
        let settings = Settings::default();
        let pg_settings = Arc::new(SettingsView::table(Arc::clone(&settings))?);
        let base = self.base_context(pg_settings)?;
        base.register_udf(current_setting_udf(Arc::clone(&settings)));
        base.register_udf(session_user_udf(user));
        let store = self.store().clone();
        base.register_table("sources", Arc::new(StoreTable::new(Records::Sources, store.clone(), scope)))?;
        base.register_table("budgets", Arc::new(StoreTable::new(Records::Budgets, store.clone(), scope)))?;
        if reader == Reader::Admin {
            base.register_table("audit_log", Arc::new(StoreTable::new(Records::AuditLog, store, scope)))?;
        }
        Ok(SqlSession {
            engine: self.clone(),
            scope,
            base,
            settings,
            parsed: Remembered::default(),
            constants: Remembered::default(),
            front_end: "app",
        })
    }
}

/// `session_user` (and `current_user`, `user`, which the parser turns into it): who logged in.
fn session_user_udf(user: &str) -> datafusion::logical_expr::ScalarUDF {
    let user = user.to_owned();
    datafusion::logical_expr::create_udf(
        "session_user",
        vec![],
        datafusion::arrow::datatypes::DataType::Utf8,
        datafusion::logical_expr::Volatility::Stable,
        Arc::new(move |_| {
            Ok(datafusion::logical_expr::ColumnarValue::Scalar(datafusion::common::ScalarValue::Utf8(Some(
                user.clone(),
            ))))
        }),
    )
}

/// `pg_catalog` holds the session's catalog list, which holds `pg_catalog`: the session would
/// never be freed unless the loop is cut when the connection ends.
impl Drop for SqlSession {
    fn drop(&mut self) {
        if let Some(catalog) = self.base.catalog("burnrate") {
            let _ = catalog.deregister_schema("pg_catalog", true);
        }
    }
}

/// The longest statement a client may send (1 MiB).
pub const MAX_STATEMENT_BYTES: usize = 1 << 20;

impl SqlSession {
    /// The same session, its queries counted as coming from `front_end` (`wire`, `sql`).
    #[must_use]
    pub fn from_front_end(mut self, front_end: crate::FrontEnd) -> Self {
        self.front_end = front_end;
        self
    }

    /// How long one statement of this session may run (the engine's setting).
    pub fn statement_timeout(&self) -> std::time::Duration {
        self.engine.statement_timeout()
    }

    pub fn scope(&self) -> OrgScope {
        self.scope
    }

    /// The value of a setting as this connection sees it.
    pub fn setting(&self, name: &str) -> Option<String> {
        setting_value(&self.settings, name)
    }

    /// Splits `sql` into statements, refusing at once what is never allowed.
    pub fn parse(&self, sql: &str) -> Result<Vec<SqlStatement>, EngineError> {
        // Planning copies a statement's text and constants around: a huge one costs memory
        // before any limit of the query's own applies.
        if sql.len() > MAX_STATEMENT_BYTES {
            return Err(EngineError::TooLarge(format!(
                "a statement of {} bytes; at most {MAX_STATEMENT_BYTES} bytes",
                sql.len()
            )));
        }
        if let Some(statements) = self.parsed.get(sql) {
            return Ok(statements);
        }
        crate::depth::check(sql)?;
        let statements = self.parse_anew(sql)?;
        self.parsed.keep(sql.to_owned(), statements.clone());
        Ok(statements)
    }

    fn parse_anew(&self, sql: &str) -> Result<Vec<SqlStatement>, EngineError> {
        // The parser swaps a few client queries it cannot plan for canned stand-ins, among them
        // Grafana's search-path subquery (for `''`, as if no schema were on the path), for want
        // of `current_setting()`. burnrate has that function, so such statements skip the swap
        // and get the real answer.
        let parsed = if sql.to_ascii_lowercase().contains("current_setting(") {
            datafusion::sql::sqlparser::parser::Parser::parse_sql(&PostgreSqlDialect {}, sql)
                .map(|statements| statements.into_iter().map(|s| PARSER.rewrite(s)).collect())
        } else {
            PARSER.parse(sql)
        };
        let mut statements = parsed.map_err(|e| {
            // DataFusion's own DDL (`CREATE EXTERNAL TABLE`) is not even PostgreSQL syntax; say
            // what is refused rather than where the parser stumbled.
            refuse_writes(sql).err().unwrap_or_else(|| EngineError::Syntax(e.to_string()))
        })?;
        for s in &mut statements {
            crate::rewrite::postgres_idioms(s);
        }
        statements.into_iter().map(classify).collect()
    }

    /// Runs `sql`, one query, and returns its stream (for callers other than the wire
    /// endpoint: the console, tests).
    pub async fn query(&self, sql: &str) -> Result<QueryStream, EngineError> {
        match self.execute(&self.single(sql)?, Vec::new()).await? {
            Outcome::Rows(q) => Ok(q),
            _ => Err(EngineError::Plan(format!("not a query: {sql}"))),
        }
    }

    /// Runs `sql`, one query, to the end within the statement timeout and returns every batch.
    /// A run that runs out of memory is tried once more the frugal way.
    pub async fn collect(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
        let statement = self.single(sql)?;
        let Kind::Query(s) = &statement.kind else {
            return Err(EngineError::Plan(format!("not a query: {sql}")));
        };
        let run = crate::fast_then_frugal(|plan| {
            self.engine.collect_statement(&self.base, self.scope, s, (plan, self.front_end))
        });
        let timeout = self.engine.statement_timeout();
        tokio::time::timeout(timeout, run).await.map_err(|_| EngineError::Timeout(timeout))?
    }

    /// Runs the plan `build` makes on a context holding this session's tables as they are now, to
    /// the end and within the statement timeout; retried the frugal way if it runs out of memory.
    pub(crate) async fn collect_built<F, Fut>(&self, build: F) -> Result<Vec<RecordBatch>, EngineError>
    where
        F: Fn(datafusion::prelude::SessionContext) -> Fut,
        Fut: std::future::Future<Output = Result<datafusion::dataframe::DataFrame, EngineError>>,
    {
        let build = &build;
        let run = crate::fast_then_frugal(move |plan| async move {
            let ctx = self.engine.query_context(&self.base, self.scope, plan, self.front_end).await?;
            Ok(build(ctx).await?.collect().await?)
        });
        let timeout = self.engine.statement_timeout();
        tokio::time::timeout(timeout, run).await.map_err(|_| EngineError::Timeout(timeout))?
    }

    fn single(&self, sql: &str) -> Result<SqlStatement, EngineError> {
        let mut statements = self.parse(sql)?;
        match statements.len() {
            1 => Ok(statements.remove(0)),
            0 => Err(EngineError::Syntax("an empty statement".into())),
            n => Err(EngineError::Syntax(format!("{n} statements where one was expected"))),
        }
    }

    /// The parameters and row schema of `statement`, without running it.
    pub async fn describe(&self, statement: &SqlStatement) -> Result<Description, EngineError> {
        match &statement.kind {
            // Planned on the long-lived context: the tables' schemas are all a description needs,
            // not their files or a runtime.
            Kind::Query(s) => {
                let plan = crate::plan_locked(&self.base, s).await?;
                let mut by_name = plan.get_parameter_types()?;
                let mut parameters = Vec::with_capacity(by_name.len());
                for n in 1..=by_name.len() {
                    parameters.push(by_name.remove(&format!("${n}")).flatten());
                }
                Ok(Description { parameters, schema: Arc::new(plan.schema().as_arrow().clone()) })
            }
            Kind::Show(name) => Ok(Description { parameters: vec![], schema: show_schema(name) }),
            Kind::Set { .. }
            | Kind::Begin
            | Kind::End(_)
            | Kind::Discard
            | Kind::Deallocate(_)
            | Kind::Acknowledge(_) => Ok(Description { parameters: vec![], schema: Arc::new(Schema::empty()) }),
        }
    }

    /// Runs `statement` with `parameters` bound to `$1…`.
    pub async fn execute(
        &self,
        statement: &SqlStatement,
        parameters: Vec<ScalarValue>,
    ) -> Result<Outcome, EngineError> {
        match &statement.kind {
            Kind::Query(s) if parameters.is_empty() && is_constant(s) => {
                let key = s.to_string();
                let (schema, batches) = match self.constants.get(&key) {
                    Some(result) => result,
                    None => {
                        let plan = (crate::Plan::Fast, self.front_end);
                        let result = self.engine.collect_statement(&self.base, self.scope, s, plan).await?;
                        self.constants.keep(key, result.clone());
                        result
                    }
                };
                let stream = MemoryStream::try_new(batches, Arc::clone(&schema), None)?;
                Ok(Outcome::Rows(QueryStream { schema, stream: Box::pin(stream) }))
            }
            Kind::Query(s) => Ok(Outcome::Rows(
                self.engine.query_statement(&self.base, self.scope, s, parameters, self.front_end).await?,
            )),
            Kind::Set { name, value } => {
                self.settings.lock().expect("settings lock").insert(name, value.clone());
                Ok(Outcome::Command("SET"))
            }
            Kind::Show(name) => {
                let value = self.setting(name).unwrap_or_default();
                let schema = show_schema(name);
                let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(StringArray::from(vec![value]))])
                    .map_err(|e| EngineError::Execution(e.to_string()))?;
                let stream = MemoryStream::try_new(vec![batch], Arc::clone(&schema), None)?;
                Ok(Outcome::Rows(QueryStream { schema, stream: Box::pin(stream) }))
            }
            Kind::Begin => Ok(Outcome::Begin),
            Kind::End(tag) => Ok(Outcome::End(tag)),
            Kind::Discard => {
                self.settings.lock().expect("settings lock").clear();
                Ok(Outcome::Command("DISCARD ALL"))
            }
            Kind::Deallocate(name) => Ok(Outcome::Deallocate(name.clone())),
            Kind::Acknowledge(tag) => Ok(Outcome::Command(tag)),
        }
    }
}

/// What a session remembers by statement text (parsed statements, constant answers): at most
/// [`Remembered::CAPACITY`] entries, forgotten all at once when full — a client cycling through
/// more distinct statements than that gains nothing from remembering them.
struct Remembered<V> {
    entries: Mutex<HashMap<String, V>>,
}

impl<V> Default for Remembered<V> {
    fn default() -> Self {
        Self { entries: Mutex::default() }
    }
}

impl<V: Clone> Remembered<V> {
    const CAPACITY: usize = 256;

    fn get(&self, key: &str) -> Option<V> {
        self.entries.lock().expect("remembered statements").get(key).cloned()
    }

    fn keep(&self, key: String, value: V) {
        let mut entries = self.entries.lock().expect("remembered statements");
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert(key, value);
    }
}

/// Whether `statement` is a `SELECT` of literals only (`SELECT 1`, `SELECT 'ok' AS status`):
/// what connection pools send to check a connection, many times a second. Its answer never
/// changes, so a session plans it once and answers from memory after that.
fn is_constant(statement: &Statement) -> bool {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
    fn literal(e: &Expr) -> bool {
        match e {
            Expr::Value(v) => !matches!(v.value, Value::Placeholder(_)),
            Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => literal(expr),
            _ => false,
        }
    }
    let Statement::Query(q) = statement else { return false };
    let SetExpr::Select(select) = q.body.as_ref() else { return false };
    q.with.is_none()
        && select.from.is_empty()
        && select.selection.is_none()
        && select.having.is_none()
        && !select.projection.is_empty()
        && select.projection.iter().all(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => literal(e),
            _ => false,
        })
}

/// `pg_catalog.pg_settings` as one connection sees it: each setting on the allow-list with its
/// current value (pgJDBC reads `max_index_keys` here; DBeaver and others list it).
#[derive(Debug)]
struct SettingsView {
    settings: Settings,
    schema: SchemaRef,
}

impl SettingsView {
    fn table(settings: Settings) -> Result<StreamingTable, EngineError> {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let schema = Arc::new(Schema::new(vec![
            text("name"),
            text("setting"),
            text("unit"),
            text("category"),
            text("short_desc"),
            text("extra_desc"),
            text("context"),
            text("vartype"),
            text("source"),
            text("min_val"),
            text("max_val"),
            text("enumvals"),
            text("boot_val"),
            text("reset_val"),
            text("sourcefile"),
            Field::new("sourceline", DataType::Int32, true),
            Field::new("pending_restart", DataType::Boolean, true),
        ]));
        let view = Arc::new(Self { settings, schema: Arc::clone(&schema) });
        Ok(StreamingTable::try_new(schema, vec![view])?)
    }

    fn batch(&self) -> datafusion::error::Result<RecordBatch> {
        let set = self.settings.lock().expect("settings lock").clone();
        let names: Vec<&str> = SETTINGS.iter().map(|(n, _)| *n).collect();
        let current: Vec<String> = names.iter().map(|n| value_in(&set, n)).collect();
        let defaults: Vec<&str> = SETTINGS.iter().map(|(_, v)| *v).collect();
        let context: Vec<&str> = names.iter().map(|n| if FIXED.contains(n) { "internal" } else { "user" }).collect();
        let source: Vec<&str> = names.iter().map(|n| if set.contains_key(n) { "session" } else { "default" }).collect();
        let nulls = || Arc::new(StringArray::new_null(names.len())) as ArrayRef;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(names.clone())),
            Arc::new(StringArray::from(current)),
            nulls(),
            nulls(),
            nulls(),
            nulls(),
            Arc::new(StringArray::from(context)),
            Arc::new(StringArray::from(vec!["string"; names.len()])),
            Arc::new(StringArray::from(source)),
            nulls(),
            nulls(),
            nulls(),
            Arc::new(StringArray::from(defaults.clone())),
            Arc::new(StringArray::from(defaults)),
            nulls(),
            Arc::new(Int32Array::new_null(names.len())),
            Arc::new(BooleanArray::from(vec![false; names.len()])),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

impl PartitionStream for SettingsView {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batch = self.batch();
        Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), futures::stream::once(async { batch })))
    }
}

fn show_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]))
}

fn classify(statement: Statement) -> Result<SqlStatement, EngineError> {
    let kind = match statement {
        Statement::Query(_) | Statement::Explain { .. } => Kind::Query(Box::new(statement)),
        Statement::Set(set) => classify_set(set)?,
        Statement::ShowVariable { variable } => {
            let name = variable.iter().map(|i| i.value.as_str()).collect::<Vec<_>>().join(" ");
            match setting_name(&name) {
                Some(name) => Kind::Show(name),
                None if name.eq_ignore_ascii_case("all") => {
                    return Err(EngineError::Refused("SHOW ALL: ask pg_catalog.pg_settings instead".into()));
                }
                None => return Err(EngineError::Plan(format!("unrecognized configuration parameter \"{name}\""))),
            }
        }
        Statement::StartTransaction { .. } => Kind::Begin,
        Statement::Commit { .. } => Kind::End("COMMIT"),
        Statement::Rollback { savepoint: None, .. } => Kind::End("ROLLBACK"),
        Statement::Discard { .. } => Kind::Discard,
        Statement::Deallocate { name, .. } => {
            let all = name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all");
            Kind::Deallocate((!all).then_some(name.value))
        }
        other => {
            refuse_writes(&other.to_string())?;
            // Everything else goes to the planner, whose lock refuses DDL, DML and statements
            // with an error naming them.
            Kind::Query(Box::new(other))
        }
    };
    Ok(SqlStatement { kind })
}

fn classify_set(set: Set) -> Result<Kind, EngineError> {
    match set {
        Set::SingleAssignment { variable, values, .. } => {
            let name = variable.to_string();
            let Some(setting) = setting_name(&name) else {
                return Err(EngineError::Refused(format!(
                    "SET {name}: only client settings (application_name, search_path, timezone, …) can be set; engine settings are the operator's"
                )));
            };
            let value = values.iter().map(literal_text).collect::<Vec<_>>().join(", ");
            set_value(setting, value)
        }
        Set::SetTimeZone { value, .. } => set_value("timezone", literal_text(&value)),
        Set::SetNames { charset_name, .. } => set_value("client_encoding", charset_name.value),
        // SET SESSION CHARACTERISTICS AS TRANSACTION …: every transaction reads a snapshot of
        // read-only data, whatever level the client asks for.
        Set::SetTransaction { .. } => Ok(Kind::Acknowledge("SET")),
        other => Err(EngineError::Refused(format!("{other}"))),
    }
}

fn set_value(name: &'static str, value: String) -> Result<Kind, EngineError> {
    if FIXED.contains(&name) && !value.eq_ignore_ascii_case(&setting_default(name)) {
        return Err(EngineError::Refused(format!("SET {name}: burnrate always uses {}", setting_default(name))));
    }
    if name == "client_encoding" && !matches!(value.to_ascii_uppercase().as_str(), "UTF8" | "UTF-8" | "UNICODE") {
        return Err(EngineError::Refused(format!("SET client_encoding = {value}: burnrate speaks UTF8 only")));
    }
    Ok(Kind::Set { name, value })
}

fn setting_default(name: &str) -> String {
    SETTINGS.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()).unwrap_or_default()
}

/// The text of a SET value: `'UTC'` → `UTC`, `3` → `3`, `DEFAULT` → the default's text.
fn literal_text(e: &Expr) -> String {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

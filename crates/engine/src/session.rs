//! A SQL client's connection: its organization, the settings it has set, and the statements it
//! sends, each answered either by the engine or — for the session statements clients send on
//! their own (`SET`, `SHOW`, `BEGIN`, `DISCARD`) — from an allow-list.
//!
//! Statements are parsed in PostgreSQL's dialect and rewritten for DataFusion where clients use
//! PostgreSQL idioms (`OPERATOR(pg_catalog.~)`, `::regclass`, `COLLATE pg_catalog.default`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, Value};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use std::sync::LazyLock;

use burnrate_store::OrgScope;

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
    settings: Mutex<BTreeMap<&'static str, String>>,
}

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
    /// A statement answered with its command tag alone: `BEGIN`, `COMMIT`, `DISCARD ALL`, `SET
    /// SESSION CHARACTERISTICS …` — transactions are trivially serializable over read-only data.
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

fn setting_name(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let lower = match lower.as_str() {
        "time zone" | "time_zone" => "timezone",
        "transaction isolation level" => "transaction_isolation",
        other => other,
    };
    SETTINGS.iter().find(|(n, _)| *n == lower).map(|(n, _)| *n)
}

impl Engine {
    /// A connection for `scope`'s organization.
    pub fn connect(&self, scope: OrgScope) -> Result<SqlSession, EngineError> {
        Ok(SqlSession {
            engine: self.clone(),
            scope,
            base: self.base_context()?,
            settings: Mutex::new(BTreeMap::new()),
        })
    }
}

impl SqlSession {
    pub fn scope(&self) -> OrgScope {
        self.scope
    }

    /// The value of a setting as this connection sees it.
    pub fn setting(&self, name: &str) -> Option<String> {
        let name = setting_name(name)?;
        let set = self.settings.lock().expect("settings lock").get(name).cloned();
        set.or_else(|| SETTINGS.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
    }

    /// Splits `sql` into statements, refusing at once what is never allowed.
    pub fn parse(&self, sql: &str) -> Result<Vec<SqlStatement>, EngineError> {
        let statements = PARSER.parse(sql).map_err(|e| {
            // DataFusion's own DDL (`CREATE EXTERNAL TABLE`) is not even PostgreSQL syntax; say
            // what is refused rather than where the parser stumbled.
            let first = sql.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
            if WRITES.contains(&first.as_str()) {
                EngineError::Refused(format!("{first} statements"))
            } else {
                EngineError::Plan(format!("syntax error: {e}"))
            }
        })?;
        statements.into_iter().map(classify).collect()
    }

    /// The parameters and row schema of `statement`, without running it.
    pub async fn describe(&self, statement: &SqlStatement) -> Result<Description, EngineError> {
        match &statement.kind {
            Kind::Query(s) => {
                let ctx = self.engine.query_context(&self.base, self.scope, crate::Plan::Fast).await?;
                let plan = crate::plan_locked(&ctx, s).await?;
                let mut by_name = plan.get_parameter_types()?;
                let mut parameters = Vec::with_capacity(by_name.len());
                for n in 1..=by_name.len() {
                    parameters.push(by_name.remove(&format!("${n}")).flatten());
                }
                Ok(Description { parameters, schema: Arc::new(plan.schema().as_arrow().clone()) })
            }
            Kind::Show(name) => Ok(Description { parameters: vec![], schema: show_schema(name) }),
            Kind::Set { .. } | Kind::Acknowledge(_) => {
                Ok(Description { parameters: vec![], schema: Arc::new(Schema::empty()) })
            }
        }
    }

    /// Runs `statement` with `parameters` bound to `$1…`.
    pub async fn execute(
        &self,
        statement: &SqlStatement,
        parameters: Vec<ScalarValue>,
    ) -> Result<Outcome, EngineError> {
        match &statement.kind {
            Kind::Query(s) => {
                Ok(Outcome::Rows(self.engine.query_statement(&self.base, self.scope, s, parameters).await?))
            }
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
            Kind::Acknowledge("BEGIN") => Ok(Outcome::Begin),
            Kind::Acknowledge(tag @ ("COMMIT" | "ROLLBACK")) => Ok(Outcome::End(tag)),
            Kind::Acknowledge("DISCARD ALL") => {
                self.settings.lock().expect("settings lock").clear();
                Ok(Outcome::Command("DISCARD ALL"))
            }
            Kind::Acknowledge(tag) => Ok(Outcome::Command(tag)),
        }
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
        Statement::StartTransaction { .. } => Kind::Acknowledge("BEGIN"),
        Statement::Commit { .. } => Kind::Acknowledge("COMMIT"),
        Statement::Rollback { savepoint: None, .. } => Kind::Acknowledge("ROLLBACK"),
        Statement::Discard { .. } => Kind::Acknowledge("DISCARD ALL"),
        other => {
            let text = other.to_string();
            let first = text.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
            if WRITES.contains(&first.as_str()) {
                return Err(EngineError::Refused(format!("{first} statements")));
            }
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

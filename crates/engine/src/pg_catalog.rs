//! The PostgreSQL catalog clients introspect (`pg_catalog`, and functions such as
//! `pg_table_is_visible`, `format_type`, `current_schema`), served by `datafusion-pg-catalog`
//! over the session's own catalog — so `\dt` lists this organization's tables and nothing else.
//!
//! Its static tables (a snapshot of a real PostgreSQL's `pg_type`, `pg_proc`, …) are decoded
//! once per process, not once per query.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{AsArray, BooleanArray, Int32Array, RecordBatch, StructArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::datasource::empty::EmptyTable;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::{self as pg, PgCatalogSchemaProvider, PgCatalogStaticTables};

use crate::EngineError;
use crate::session::SERVER_VERSION;

const CATALOG: &str = "burnrate";

static STATIC_TABLES: OnceLock<Arc<PgCatalogStaticTables>> = OnceLock::new();

fn static_tables() -> Result<Arc<PgCatalogStaticTables>, EngineError> {
    if let Some(t) = STATIC_TABLES.get() {
        return Ok(Arc::clone(t));
    }
    let tables =
        Arc::new(PgCatalogStaticTables::try_new().map_err(|e| EngineError::Setup(format!("pg_catalog: {e}")))?);
    Ok(Arc::clone(STATIC_TABLES.get_or_init(|| tables)))
}

/// Installs `pg_catalog` in `ctx`, with `pg_settings` (the connection's own) in it.
pub(crate) fn install(ctx: &SessionContext, pg_settings: Arc<dyn TableProvider>) -> Result<(), EngineError> {
    let statics = static_tables()?;
    let schema = PgCatalogSchemaProvider::try_new(
        Arc::clone(ctx.state().catalog_list()),
        Arc::clone(&statics),
        EmptyContextProvider,
    )?;
    let schema = PgCatalog {
        inner: Arc::new(schema),
        constraints: empty_pg_constraint(&statics),
        types: pg_type(&statics)?,
        pg_settings,
    };
    ctx.catalog(CATALOG)
        .ok_or_else(|| EngineError::Setup("the session has no burnrate catalog".into()))?
        .register_schema("pg_catalog", Arc::new(schema))?;

    use datafusion_pg_catalog::pg_catalog::{array_bounds_udf, format_type, pg_get_expr_udf, quote_ident_udf};
    for udf in [
        pg::create_current_database_udf(CATALOG),
        pg::create_current_schema_udf(),
        pg::create_current_schemas_udf(),
        pg::create_pg_get_userbyid_udf(),
        HasPrivilege::udf("has_table_privilege"),
        HasPrivilege::udf("has_schema_privilege"),
        HasPrivilege::udf("has_database_privilege"),
        HasPrivilege::udf("has_any_column_privilege"),
        HasPrivilege::udf("has_column_privilege"),
        pg::create_pg_table_is_visible(),
        format_type::create_format_type_udf(),
        pg::create_session_user_udf(),
        pg_get_expr_udf::create_pg_get_expr_udf(),
        pg::create_pg_get_partkeydef_udf(),
        pg::create_pg_relation_is_publishable_udf(),
        pg::create_pg_get_statisticsobjdef_columns_udf(),
        pg::create_pg_encoding_to_char_udf(),
        pg::create_pg_backend_pid_udf(),
        pg::create_pg_relation_size_udf(),
        pg::create_pg_total_relation_size_udf(),
        pg::create_pg_stat_get_numscans(),
        pg::create_pg_get_constraintdef(),
        pg::create_pg_get_partition_ancestors_udf(),
        quote_ident_udf::create_quote_ident_udf(),
        quote_ident_udf::create_parse_ident_udf(),
        array_bounds_udf::create_array_upper_udf(),
        array_bounds_udf::create_array_lower_udf(),
        version_udf(),
        expandarray_udf(),
        datafusion::logical_expr::ScalarUDF::new_from_impl(Format::default()),
        // burnrate's tables have no indexes (Metabase asks for each index's first column).
        Nothing::udf("pg_get_indexdef"),
    ] {
        ctx.register_udf(udf);
    }
    ctx.register_udtf("pg_get_keywords", statics.pg_get_keywords.clone());

    // `regclass`, `regtype`, … as type names, and int4 arguments to `generate_series`.
    let state = ctx.state_ref();
    let existing = state.read().clone();
    *state.write() = SessionStateBuilder::new_from_existing(existing)
        .with_type_planner(Arc::new(datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner))
        .build();
    datafusion_pg_catalog::pg_catalog::generate_series_arg_coercion::CoerceIntArgsToBigInt::widen(ctx);
    Ok(())
}

/// `pg_catalog` as datafusion-pg-catalog serves it, but for two tables:
/// - `pg_constraint`: empty, with PostgreSQL's column types. burnrate's tables have no
///   constraints, and drivers index the key arrays (pgJDBC's `getImportedKeys`:
///   `con.confkey[pos.n]`), which the snapshot holds as text.
/// - `pg_type`: its function columns (`typinput`, `typreceive`, …) as oids, as PostgreSQL
///   stores them (`regproc`), not the snapshot's function names.
/// - `pg_settings`: the connection's settings, not a fixed list.
#[derive(Debug)]
struct PgCatalog {
    inner: Arc<dyn SchemaProvider>,
    constraints: Arc<dyn TableProvider>,
    types: Arc<dyn TableProvider>,
    pg_settings: Arc<dyn TableProvider>,
}

#[async_trait::async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        match name {
            "pg_constraint" => Ok(Some(Arc::clone(&self.constraints))),
            "pg_settings" => Ok(Some(Arc::clone(&self.pg_settings))),
            "pg_type" => Ok(Some(Arc::clone(&self.types))),
            _ => self.inner.table(name).await,
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

static PG_TYPE: OnceLock<Arc<MemTable>> = OnceLock::new();

/// `pg_type`'s `regproc` columns: function oids in PostgreSQL, function names in the snapshot.
/// Drivers join them to `pg_proc.oid` (npgsql: `typreceive`; pgJDBC's type cache: `typinput`).
const REGPROC_COLUMNS: &[&str] =
    &["typinput", "typoutput", "typreceive", "typsend", "typmodin", "typmodout", "typanalyze", "typsubscript"];

fn pg_type(statics: &PgCatalogStaticTables) -> Result<Arc<dyn TableProvider>, EngineError> {
    if let Some(t) = PG_TYPE.get() {
        return Ok(Arc::clone(t) as Arc<dyn TableProvider>);
    }
    let setup = |e: datafusion::error::DataFusionError| EngineError::Setup(format!("pg_catalog.pg_type: {e}"));
    let mut oid_of = std::collections::HashMap::new();
    for batch in statics.pg_proc.data() {
        let (Some(names), Some(oids)) = (batch.column_by_name("proname"), batch.column_by_name("oid")) else {
            return Err(EngineError::Setup("pg_catalog.pg_proc has no proname or oid".into()));
        };
        let oids = cast(oids, &DataType::Int32).map_err(|e| setup(e.into()))?;
        let names = cast(names, &DataType::Utf8).map_err(|e| setup(e.into()))?;
        for (name, oid) in names.as_string::<i32>().iter().zip(oids.as_primitive::<Int32Type>().iter()) {
            if let (Some(name), Some(oid)) = (name, oid) {
                oid_of.entry(name.to_owned()).or_insert(oid);
            }
        }
    }
    let source = statics.pg_type.schema();
    let regprocs: Vec<usize> =
        REGPROC_COLUMNS.iter().filter_map(|name| source.column_with_name(name).map(|(at, _)| at)).collect();
    let mut fields: Vec<Field> = source.fields().iter().map(|f| f.as_ref().clone()).collect();
    for &at in &regprocs {
        fields[at] = Field::new(fields[at].name(), DataType::Int32, false);
    }
    let schema = Arc::new(Schema::new(fields));
    let mut batches = Vec::new();
    for batch in statics.pg_type.data() {
        let mut columns = batch.columns().to_vec();
        for &at in &regprocs {
            let names = cast(batch.column(at), &DataType::Utf8).map_err(|e| setup(e.into()))?;
            // No function ("-") is oid 0, as in PostgreSQL.
            let oids: Int32Array = names
                .as_string::<i32>()
                .iter()
                .map(|n| Some(n.and_then(|n| oid_of.get(n).copied()).unwrap_or(0)))
                .collect();
            columns[at] = Arc::new(oids);
        }
        batches.push(RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| setup(e.into()))?);
    }
    let table = Arc::new(MemTable::try_new(schema, vec![batches]).map_err(setup)?);
    Ok(Arc::clone(PG_TYPE.get_or_init(|| table)) as Arc<dyn TableProvider>)
}

fn empty_pg_constraint(statics: &PgCatalogStaticTables) -> Arc<dyn TableProvider> {
    let fields: Vec<Field> = statics
        .pg_constraint
        .schema()
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "conkey" | "confkey" => {
                Field::new(f.name(), DataType::List(Arc::new(Field::new("item", DataType::Int16, true))), true)
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(EmptyTable::new(Arc::new(Schema::new(fields))))
}

/// `information_schema._pg_expandarray(array)`, which pgJDBC's `getPrimaryKeys` and
/// `getIndexInfo` call on `pg_index.indkey`. In PostgreSQL it returns a row `(x, n)` per array
/// element; burnrate's tables have no indexes, so it answers "no key": a NULL `(x, n)`, which no
/// attribute number equals.
fn expandarray_udf() -> datafusion::logical_expr::ScalarUDF {
    let fields = Fields::from(vec![Field::new("x", DataType::Int64, true), Field::new("n", DataType::Int64, true)]);
    let row = DataType::Struct(fields.clone());
    create_udf(
        "_pg_expandarray",
        vec![DataType::Utf8],
        row,
        Volatility::Immutable,
        Arc::new(move |_| {
            Ok(ColumnarValue::Scalar(ScalarValue::Struct(Arc::new(StructArray::new_null(fields.clone(), 1)))))
        }),
    )
}

/// `version()` in PostgreSQL's words, which drivers parse for the server's major version.
fn version_udf() -> datafusion::logical_expr::ScalarUDF {
    let text = format!("PostgreSQL {SERVER_VERSION} (burnrate {})", env!("CARGO_PKG_VERSION"));
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))),
    )
}

/// `has_table_privilege([user,] object, privileges)` and its kin, answered as the endpoint is:
/// read-only. A connection may read (`SELECT`), look up schemas (`USAGE`) and connect; it may not
/// write, create or grant. Clients ask before offering an action (Metabase syncs only tables it
/// may select and offers editing only where it may update), so "always true" would mislead them.
#[derive(Debug, PartialEq, Eq, Hash)]
struct HasPrivilege {
    name: &'static str,
    signature: Signature,
}

/// What a read-only connection holds.
const HELD: &[&str] = &["SELECT", "USAGE", "CONNECT"];

impl HasPrivilege {
    fn udf(name: &'static str) -> datafusion::logical_expr::ScalarUDF {
        let signature = Signature::one_of(
            vec![TypeSignature::Any(2), TypeSignature::Any(3), TypeSignature::Any(4)],
            Volatility::Stable,
        );
        datafusion::logical_expr::ScalarUDF::new_from_impl(Self { name, signature })
    }
}

/// Whether `privileges` (PostgreSQL's list: `'SELECT, INSERT'`, any one suffices) names one held.
fn holds_any(privileges: &str) -> bool {
    privileges.split(',').map(str::trim).any(|p| HELD.iter().any(|h| p.eq_ignore_ascii_case(h)))
}

impl ScalarUDFImpl for HasPrivilege {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let Some(privileges) = args.args.last() else {
            return datafusion::common::plan_err!("{} needs a privilege argument", self.name);
        };
        let privileges = privileges.to_array(args.number_rows)?;
        let privileges = cast(&privileges, &DataType::Utf8)?;
        let held: BooleanArray = privileges.as_string::<i32>().iter().map(|p| p.map(holds_any)).collect();
        Ok(ColumnarValue::Array(Arc::new(held)))
    }
}

/// `format(template, args…)`, PostgreSQL's: `%s` a value as text (NULL as nothing), `%I` an
/// identifier quoted if it needs it, `%L` a literal quoted (NULL as `NULL`), `%%` a percent sign.
/// Metabase names a table for `::regclass` with `format('%I.%I', schema, table)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Format {
    signature: Signature,
}

impl Default for Format {
    fn default() -> Self {
        Self { signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for Format {
    fn name(&self) -> &str {
        "format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let columns = args
            .args
            .iter()
            .map(|a| Ok(cast(&a.to_array(args.number_rows)?, &DataType::Utf8)?))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let Some((template, values)) = columns.split_first() else {
            return datafusion::common::plan_err!("format needs a template");
        };
        let mut out = datafusion::arrow::array::StringBuilder::new();
        for row in 0..args.number_rows {
            if template.is_null(row) {
                out.append_null();
                continue;
            }
            let arg = |i: usize| values.get(i).filter(|v| !v.is_null(row)).map(|v| v.as_string::<i32>().value(row));
            out.append_value(format_row(template.as_string::<i32>().value(row), arg)?);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn format_row<'a>(template: &str, arg: impl Fn(usize) -> Option<&'a str>) -> datafusion::error::Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next();
        if spec == Some('%') {
            out.push('%');
            continue;
        }
        let value = arg(next);
        next += 1;
        match spec {
            Some('s') => out.push_str(value.unwrap_or("")),
            Some('I') => match value {
                Some(v) => out.push_str(&quote_identifier(v)),
                None => return datafusion::common::exec_err!("format: a NULL cannot be an identifier (%I)"),
            },
            Some('L') => match value {
                Some(v) => out.push_str(&format!("'{}'", v.replace('\'', "''"))),
                None => out.push_str("NULL"),
            },
            other => {
                return datafusion::common::exec_err!(
                    "format: unsupported conversion %{} (supported: %s, %I, %L, %%)",
                    other.map(String::from).unwrap_or_default()
                );
            }
        }
    }
    Ok(out)
}

/// An identifier as PostgreSQL's `quote_ident` writes it: bare if it is lower case letters,
/// digits and underscores not starting with a digit, quoted otherwise.
fn quote_identifier(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_owned() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// A function about something burnrate's tables never have (indexes, …): NULL text for any
/// arguments, as PostgreSQL answers for an object that does not exist.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Nothing {
    name: &'static str,
    signature: Signature,
}

impl Nothing {
    fn udf(name: &'static str) -> datafusion::logical_expr::ScalarUDF {
        let signature = Signature::variadic_any(Volatility::Stable);
        datafusion::logical_expr::ScalarUDF::new_from_impl(Self { name, signature })
    }
}

impl ScalarUDFImpl for Nothing {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))
    }
}

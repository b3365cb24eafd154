//! `information_schema` as PostgreSQL clients read it. DataFusion's own names column types the
//! Arrow way (`Timestamp(µs, "UTC")`), and clients look for PostgreSQL's names (Grafana finds a
//! query's time column by `data_type = 'timestamp with time zone'`), so `columns` is served here
//! with PostgreSQL's names from [`postgres_type`]. burnrate's tables have no constraints, and
//! `table_constraints` and `key_column_usage` (Metabase looks for primary keys there) are empty
//! with PostgreSQL's columns. The other tables are DataFusion's.

use std::sync::{Arc, Weak};

use datafusion::arrow::array::{ArrayRef, Int32Builder, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::MemTable;
use datafusion::datasource::empty::EmptyTable;

use crate::pg_types::postgres_type;

pub(crate) const INFORMATION_SCHEMA: &str = "information_schema";

/// The schema, over the session's catalogs. It holds them weakly: it lives inside one of them.
#[derive(Debug)]
pub(crate) struct InformationSchema {
    catalogs: Weak<dyn CatalogProviderList>,
}

impl InformationSchema {
    pub(crate) fn new(catalogs: &Arc<dyn CatalogProviderList>) -> Self {
        Self { catalogs: Arc::downgrade(catalogs) }
    }

    fn catalogs(&self) -> Result<Arc<dyn CatalogProviderList>> {
        self.catalogs.upgrade().ok_or_else(|| DataFusionError::Internal("the session has ended".into()))
    }

    fn datafusion(&self) -> Option<InformationSchemaProvider> {
        self.catalogs.upgrade().map(InformationSchemaProvider::new)
    }
}

#[async_trait::async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.datafusion().map(|s| s.table_names()).unwrap_or_default();
        names.extend(EMPTY_TABLES.iter().map(|(name, ..)| (*name).to_owned()));
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let name = name.to_ascii_lowercase();
        if name == "columns" {
            return Ok(Some(columns(self.catalogs()?.as_ref()).await?));
        }
        if let Some((_, columns, integers)) = EMPTY_TABLES.iter().find(|(n, ..)| *n == name) {
            return Ok(Some(empty(columns, integers)));
        }
        match self.datafusion() {
            Some(schema) => schema.table(&name).await,
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        EMPTY_TABLES.iter().any(|(n, ..)| *n == name) || self.datafusion().is_some_and(|s| s.table_exist(name))
    }
}

/// Tables served empty, with PostgreSQL's columns (name, columns, the integer ones).
const EMPTY_TABLES: &[(&str, &[&str], &[&str])] = &[
    ("table_constraints", TABLE_CONSTRAINTS, &[]),
    ("key_column_usage", KEY_COLUMN_USAGE, &["ordinal_position", "position_in_unique_constraint"]),
];

const TABLE_CONSTRAINTS: &[&str] = &[
    "constraint_catalog",
    "constraint_schema",
    "constraint_name",
    "table_catalog",
    "table_schema",
    "table_name",
    "constraint_type",
    "is_deferrable",
    "initially_deferred",
    "enforced",
    "nulls_distinct",
];

const KEY_COLUMN_USAGE: &[&str] = &[
    "constraint_catalog",
    "constraint_schema",
    "constraint_name",
    "table_catalog",
    "table_schema",
    "table_name",
    "column_name",
    "ordinal_position",
    "position_in_unique_constraint",
];

/// An empty table of text `columns`, but for `integers`.
fn empty(columns: &[&str], integers: &[&str]) -> Arc<dyn TableProvider> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(*c, if integers.contains(c) { DataType::Int32 } else { DataType::Utf8 }, true))
        .collect();
    Arc::new(EmptyTable::new(Arc::new(Schema::new(fields))))
}

fn columns_schema() -> SchemaRef {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    let int = |name: &str| Field::new(name, DataType::Int32, true);
    Arc::new(Schema::new(vec![
        text("table_catalog", false),
        text("table_schema", false),
        text("table_name", false),
        text("column_name", false),
        Field::new("ordinal_position", DataType::Int32, false),
        text("column_default", true),
        text("is_nullable", false),
        text("data_type", false),
        int("character_maximum_length"),
        int("numeric_precision"),
        int("numeric_precision_radix"),
        int("numeric_scale"),
        int("datetime_precision"),
        text("udt_catalog", false),
        text("udt_schema", false),
        text("udt_name", false),
        text("is_identity", false),
        text("is_generated", false),
    ]))
}

/// Every column of every table the session can see, as of now.
async fn columns(catalogs: &dyn CatalogProviderList) -> Result<Arc<dyn TableProvider>> {
    let mut names: [StringBuilder; 4] = Default::default();
    let [mut position, mut char_len, mut precision, mut radix, mut scale, mut datetime] =
        std::array::from_fn(|_| Int32Builder::new());
    let [mut default, mut nullable, mut data_type, mut udt_catalog, mut udt]: [StringBuilder; 5] = Default::default();
    let mut catalog_names = catalogs.catalog_names();
    catalog_names.sort();
    for catalog_name in catalog_names {
        let Some(catalog) = catalogs.catalog(&catalog_name) else { continue };
        let mut schema_names = catalog.schema_names();
        schema_names.sort();
        for schema_name in schema_names {
            let Some(schema) = catalog.schema(&schema_name).filter(|_| schema_name != INFORMATION_SCHEMA) else {
                continue;
            };
            let mut table_names = schema.table_names();
            table_names.sort();
            for table_name in table_names {
                let Some(table) = schema.table(&table_name).await? else { continue };
                for (i, field) in table.schema().fields().iter().enumerate() {
                    for (builder, value) in
                        names.iter_mut().zip([&catalog_name, &schema_name, &table_name, field.name()])
                    {
                        builder.append_value(value);
                    }
                    position.append_value(i32::try_from(i + 1).unwrap_or(i32::MAX));
                    default.append_null();
                    nullable.append_value(if field.is_nullable() { "YES" } else { "NO" });
                    let pg = postgres_type(field.data_type());
                    data_type.append_value(pg.sql_name);
                    udt.append_value(pg.udt_name);
                    udt_catalog.append_value(&catalog_name);
                    char_len.append_null();
                    let (p, r, s) = match (pg.udt_name, &pg.wire) {
                        ("int2", _) => (Some(16), Some(2), Some(0)),
                        ("int4", _) => (Some(32), Some(2), Some(0)),
                        ("int8", _) => (Some(64), Some(2), Some(0)),
                        ("float4", _) => (Some(24), Some(2), None),
                        ("float8", _) => (Some(53), Some(2), None),
                        (_, DataType::Decimal128(p, s)) => (Some(i32::from(*p)), Some(10), Some(i32::from(*s))),
                        _ => (None, None, None),
                    };
                    precision.append_option(p);
                    radix.append_option(r);
                    scale.append_option(s);
                    datetime.append_option(match pg.udt_name {
                        "date" => Some(0),
                        "timestamp" | "timestamptz" => Some(6),
                        _ => None,
                    });
                }
            }
        }
    }
    let [mut catalog, mut schema, mut table, mut column] = names;
    let rows = position.values_slice().len();
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(catalog.finish()),
        Arc::new(schema.finish()),
        Arc::new(table.finish()),
        Arc::new(column.finish()),
        Arc::new(position.finish()),
        Arc::new(default.finish()),
        Arc::new(nullable.finish()),
        Arc::new(data_type.finish()),
        Arc::new(char_len.finish()),
        Arc::new(precision.finish()),
        Arc::new(radix.finish()),
        Arc::new(scale.finish()),
        Arc::new(datetime.finish()),
        Arc::new(udt_catalog.finish()),
        constant("pg_catalog", rows),
        Arc::new(udt.finish()),
        constant("NO", rows),
        constant("NEVER", rows),
    ];
    let schema = columns_schema();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn constant(value: &str, rows: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![value; rows]))
}

//! `ext_<name>` and its tables: a table is looked up (its columns read from information_schema)
//! when a query names it, and the comparisons a remote can answer are pushed down to it.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use futures::TryStreamExt;

use super::connect::{Remote, RemoteSource};
use super::dialect::Kind;
use super::scan::{Cells, Failure, RemoteScan};

/// `ext_<name>`: the remote schema's tables, each looked up when a query names it. A listing
/// (`\dt`, information_schema) would mean connecting for every catalog query, so the schema lists
/// no tables; a query names them.
#[derive(Debug)]
pub(crate) struct RemoteSchema {
    pub(super) source: Arc<RemoteSource>,
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

#[derive(Debug)]
pub(super) struct RemoteTable {
    pub(super) source: Arc<RemoteSource>,
    /// `"schema"."table"`.
    pub(super) relation: String,
    pub(super) columns: Vec<(String, Kind)>,
    pub(super) schema: SchemaRef,
}

impl RemoteTable {
    /// The table's columns as the remote catalog lists them now; `None` if there is no such table.
    pub(super) async fn look_up(source: &Arc<RemoteSource>, table: &str) -> Result<Option<Self>> {
        let mut conn = source.connect().await?;
        let names = vec![Bound::Text(source.remote_schema().to_owned()), Bound::Text(table.to_owned())];
        let failed = |e: &dyn Failure| source.error(format!("cannot read the columns of {table:?}: {}", e.words()));
        let rows: Vec<Box<dyn Cells>> = match &mut conn {
            Remote::Postgres(pg) => {
                let values = super::postgres_values(&names);
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    values.iter().map(|v| v.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                let rows = pg.client.query(source.driver.columns_query(), &params).await.map_err(|e| failed(&e))?;
                rows.into_iter().map(|r| Box::new(r) as Box<dyn Cells>).collect()
            }
            Remote::MySql(c) => {
                let rows: Vec<_> =
                    c.rows(source.driver.columns_query(), &names).try_collect().await.map_err(|e| failed(&e))?;
                rows.into_iter().map(|r| Box::new(r) as Box<dyn Cells>).collect()
            }
        };
        if rows.is_empty() {
            return Ok(None);
        }
        let mut columns = Vec::new();
        let mut fields = Vec::new();
        let decode = |e: String| source.error(e);
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
    pub(super) fn pushable(&self, filter: &Expr) -> Option<(String, Option<Bound>)> {
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
pub(super) enum Bound {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Date(NaiveDate),
}

impl Bound {
    /// `value` for a column of `kind`, if it is of that kind (NULL comparisons are not pushed).
    pub(super) fn of(kind: Kind, value: &ScalarValue) -> Option<Self> {
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
                    let placeholder = self.source.driver.placeholder(bound.len() + 1, &v);
                    bound.push(v);
                    format!("{condition}{placeholder}")
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

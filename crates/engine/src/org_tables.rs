//! The organization's own records as tables: `sources` (what is connected, without secrets or
//! settings), `budgets`, and, for admins, `audit_log`. Each is read from the store, through the
//! organization's scope, when a query scans it, so it is as current as the query.

use std::sync::Arc;

use burnrate_core::MONEY_SCALE;
use burnrate_core::{DATABASE_KINDS, schema_name};
use burnrate_store::{OrgScope, Store};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// Which records a table shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Records {
    Sources,
    AuditLog,
    Budgets,
}

#[derive(Debug)]
pub(crate) struct StoreTable {
    records: Records,
    store: Store,
    scope: OrgScope,
    schema: SchemaRef,
}

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

impl StoreTable {
    pub(crate) fn new(records: Records, store: Store, scope: OrgScope) -> Self {
        let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
        let fields = match records {
            Records::Sources => vec![
                text("id", false),
                text("kind", false),
                text("name", false),
                // The schema a database source's tables appear under; NULL for a provider.
                text("schema_name", true),
                Field::new("paused", DataType::Boolean, false),
                Field::new("created_at", utc(), false),
                Field::new("last_attempt_at", utc(), true),
                Field::new("last_success_at", utc(), true),
                text("last_error", true),
            ],
            Records::Budgets => vec![
                text("id", false),
                text("name", false),
                // Exact, as the lake's money columns.
                Field::new("amount", DataType::Decimal128(38, MONEY_SCALE as i8), false),
                text("currency", false),
                text("period", false),
                // JSON: {"provider": …, "model": …}; an absent field counts all.
                text("scope", false),
                text("thresholds", false),
                Field::new("forecast_alert", DataType::Boolean, false),
                Field::new("created_at", utc(), false),
            ],
            // The columns of the audit CSV export.
            Records::AuditLog => vec![
                Field::new("seq", DataType::Int64, false),
                Field::new("at", utc(), false),
                text("actor_type", false),
                text("actor_id", true),
                text("actor_label", false),
                text("action", false),
                text("target_type", true),
                text("target_id", true),
                text("details", false),
                text("ip", true),
                text("user_agent", true),
                text("prev_hash", false),
                text("hash", false),
            ],
        };
        Self { records, store, scope, schema: Arc::new(Schema::new(fields)) }
    }

    async fn read(&self) -> std::result::Result<Vec<ArrayRef>, burnrate_store::StoreError> {
        let mut tx = self.store.read_tenant(self.scope).await?;
        let columns = match self.records {
            Records::Sources => {
                let rows = tx.sources().await?;
                let database = |kind: &str| DATABASE_KINDS.contains(&kind);
                vec![
                    texts(rows.iter().map(|s| Some(s.id.to_string()))),
                    texts(rows.iter().map(|s| Some(s.kind.clone()))),
                    texts(rows.iter().map(|s| Some(s.name.clone()))),
                    texts(rows.iter().map(|s| database(&s.kind).then(|| schema_name(&s.name)))),
                    Arc::new(rows.iter().map(|s| Some(s.paused)).collect::<BooleanArray>()) as ArrayRef,
                    times(rows.iter().map(|s| Some(s.created_at))),
                    times(rows.iter().map(|s| s.last_attempt_at)),
                    times(rows.iter().map(|s| s.last_success_at)),
                    texts(rows.iter().map(|s| s.last_error.clone())),
                ]
            }
            Records::Budgets => {
                let rows = tx.budgets().await?;
                let amounts = rows
                    .iter()
                    .map(|b| {
                        let mut a = b.amount.amount();
                        a.rescale(MONEY_SCALE);
                        a.mantissa()
                    })
                    .collect::<Decimal128Array>()
                    .with_precision_and_scale(38, MONEY_SCALE as i8)
                    .map_err(|e| burnrate_store::StoreError::Corrupt(e.to_string()))?;
                vec![
                    texts(rows.iter().map(|b| Some(b.id.to_string()))),
                    texts(rows.iter().map(|b| Some(b.name.clone()))),
                    Arc::new(amounts) as ArrayRef,
                    texts(rows.iter().map(|b| Some(b.amount.currency().to_string()))),
                    texts(rows.iter().map(|b| Some(b.period.as_str().to_owned()))),
                    texts(rows.iter().map(|b| serde_json::to_string(&b.scope).ok())),
                    texts(rows.iter().map(|b| serde_json::to_string(&b.thresholds).ok())),
                    Arc::new(rows.iter().map(|b| Some(b.forecast_alert)).collect::<BooleanArray>()) as ArrayRef,
                    times(rows.iter().map(|b| Some(b.created_at))),
                ]
            }
            Records::AuditLog => {
                let mut rows = tx.audit_entries(i64::MAX).await?;
                rows.reverse();
                vec![
                    Arc::new(rows.iter().map(|r| r.seq).collect::<Int64Array>()) as ArrayRef,
                    times(rows.iter().map(|r| Some(r.at))),
                    texts(rows.iter().map(|r| Some(r.actor_type.clone()))),
                    texts(rows.iter().map(|r| r.actor_id.clone())),
                    texts(rows.iter().map(|r| Some(r.actor_label.clone()))),
                    texts(rows.iter().map(|r| Some(r.action.clone()))),
                    texts(rows.iter().map(|r| r.target_type.clone())),
                    texts(rows.iter().map(|r| r.target_id.clone())),
                    texts(rows.iter().map(|r| Some(r.details.clone()))),
                    texts(rows.iter().map(|r| r.ip.clone())),
                    texts(rows.iter().map(|r| r.user_agent.clone())),
                    texts(rows.iter().map(|r| Some(r.prev_hash.clone()))),
                    texts(rows.iter().map(|r| Some(r.hash.clone()))),
                ]
            }
        };
        tx.commit().await?;
        Ok(columns)
    }
}

fn texts(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn times(values: impl Iterator<Item = Option<DateTime<Utc>>>) -> ArrayRef {
    Arc::new(
        values.map(|t| t.map(|t| t.timestamp_micros())).collect::<TimestampMicrosecondArray>().with_timezone("UTC"),
    )
}

#[async_trait::async_trait]
impl TableProvider for StoreTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let columns = self.read().await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let plan: Arc<dyn ExecutionPlan> =
            MemorySourceConfig::try_new_exec(&[vec![batch]], Arc::clone(&self.schema), projection.cloned())?;
        Ok(plan)
    }
}

//! The scan of a remote table: the query sent with its values bound, its rows read into Arrow
//! batches as they arrive.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::Result;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use futures::StreamExt;
use sqlx::Row;
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;

use super::connect::{Remote, RemoteSource, describe};
use super::dialect::Kind;
use super::table::Bound;

/// Reads one remote query's rows as batches.
#[derive(Debug)]
pub(super) struct RemoteScan {
    pub(super) source: Arc<RemoteSource>,
    pub(super) sql: String,
    pub(super) bound: Vec<Bound>,
    pub(super) kinds: Vec<Kind>,
    pub(super) schema: SchemaRef,
    pub(super) properties: Arc<PlanProperties>,
}

impl RemoteScan {
    pub(super) fn new(
        source: Arc<RemoteSource>,
        sql: String,
        bound: Vec<Bound>,
        kinds: Vec<Kind>,
        schema: SchemaRef,
    ) -> Self {
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

pub(super) async fn read(
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
pub(super) async fn pump<R: Cells>(
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
pub(super) trait Cells: Send {
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
pub(super) struct Batch {
    pub(super) kinds: Vec<Kind>,
    pub(super) builders: Vec<Box<dyn ArrayBuilder>>,
    pub(super) rows: usize,
    pub(super) capacity: usize,
}

impl Batch {
    pub(super) fn new(kinds: &[Kind], capacity: usize) -> Self {
        let mut batch = Self { kinds: kinds.to_vec(), builders: Vec::new(), rows: 0, capacity };
        batch.builders = batch.fresh();
        batch
    }

    pub(super) fn fresh(&self) -> Vec<Box<dyn ArrayBuilder>> {
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

    pub(super) fn push(&mut self, row: &dyn Cells) -> std::result::Result<(), String> {
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

    pub(super) fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        let fresh = self.fresh();
        let arrays: Vec<ArrayRef> =
            std::mem::replace(&mut self.builders, fresh).iter_mut().map(|b| b.finish()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(Arc::clone(schema), arrays, &options)?)
    }
}

/// A numeric's text as the integer of its value × 10^scale, if it has no more decimals.
pub(super) fn scaled(text: &str, scale: i8) -> Option<i128> {
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

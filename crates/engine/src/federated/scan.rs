//! The scan of a remote table: the query sent with its values bound, its rows read into Arrow
//! batches as they arrive.

use std::fmt;
use std::sync::Arc;

use super::connect::{Remote, RemoteSource};
use super::dialect::Kind;
use super::table::Bound;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use futures::StreamExt;

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
        // Rows read count against the query's pool from the moment they are read until the
        // batch holding them is taken from the channel (what keeps them after that counts its own).
        let reservation =
            MemoryConsumer::new(format!("RemoteScan[{}]", self.source.name)).register(context.memory_pool());
        let (tx, rx) = tokio::sync::mpsc::channel::<Read>(2);
        let (source, sql, bound, kinds, schema) = (
            Arc::clone(&self.source),
            self.sql.clone(),
            self.bound.clone(),
            self.kinds.clone(),
            Arc::clone(&self.schema),
        );
        // The reading task ends when the query does — finished, failed, cancelled or timed
        // out: once the stream is dropped the read stops, even while the database is silent,
        // and the connection goes with it.
        tokio::spawn(async move {
            let reading = read(&source, &sql, bound, &kinds, &schema, batch_size, reservation, &tx);
            let failed = tokio::select! {
                r = reading => r.err(),
                () = tx.closed() => None,
            };
            if let Some(e) = failed {
                let _ = tx.send(Err(e)).await;
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            // The batch's reservation ends here, as it is handed on.
            rx.recv().await.map(|read| (read.map(|(batch, _held)| batch), rx))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), stream)))
    }
}

/// A batch read, with the reservation of its memory; or why reading stopped.
type Read = Result<(RecordBatch, MemoryReservation)>;

#[expect(clippy::too_many_arguments, reason = "one read's parts, each used once")]
pub(super) async fn read(
    source: &RemoteSource,
    sql: &str,
    bound: Vec<Bound>,
    kinds: &[Kind],
    schema: &SchemaRef,
    batch_size: usize,
    reservation: MemoryReservation,
    tx: &tokio::sync::mpsc::Sender<Read>,
) -> Result<()> {
    let mut conn = source.connect().await?;
    let mut batch = Batch::new(kinds, batch_size);
    let mut reading = Reading { source, batch: &mut batch, reservation, schema, tx };
    // Identifiers quoted, values bound: nothing of the text comes from the client unquoted.
    match &mut conn {
        Remote::Postgres(pg) => {
            let values = super::postgres_values(&bound);
            let rows = pg
                .client
                .query_raw(sql, values.iter().map(|v| v.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync)))
                .await
                .map_err(|e| source.error(format!("query failed: {}", super::postgres::describe(&e))))?;
            reading.pump(Box::pin(rows)).await
        }
        Remote::MySql(c) => reading.pump(Box::pin(c.rows(sql, &bound))).await,
    }
}

/// One remote read in progress: rows gathered into a batch, their memory reserved.
pub(super) struct Reading<'a> {
    pub(super) source: &'a RemoteSource,
    pub(super) batch: &'a mut Batch,
    /// What the rows of the batch being built take.
    pub(super) reservation: MemoryReservation,
    pub(super) schema: &'a SchemaRef,
    pub(super) tx: &'a tokio::sync::mpsc::Sender<Read>,
}

impl Reading<'_> {
    /// Moves rows into batches and the batches into the channel, until the rows end or the
    /// query stops listening.
    pub(super) async fn pump<R: Cells, E: Failure>(
        &mut self,
        mut rows: impl futures::Stream<Item = std::result::Result<R, E>> + Unpin,
    ) -> Result<()> {
        while let Some(row) = rows.next().await {
            let row = row.map_err(|e| self.source.error(format!("query failed: {}", e.words())))?;
            let bytes = self.batch.push(&row).map_err(|e| self.source.error(e))?;
            self.reservation.try_grow(bytes).map_err(|_| {
                DataFusionError::ResourcesExhausted(format!(
                    "database source {:?}: its rows need more memory than the query has left",
                    self.source.name
                ))
            })?;
            if self.batch.rows == self.batch.capacity && !self.send().await? {
                return Ok(());
            }
        }
        if self.batch.rows > 0 {
            self.send().await?;
        }
        Ok(())
    }

    /// Hands the batch on with its reservation; false when nobody listens any more.
    async fn send(&mut self) -> Result<bool> {
        let batch = self.batch.finish(self.schema)?;
        let held = self.reservation.take();
        Ok(self.tx.send(Ok((batch, held))).await.is_ok())
    }
}

/// A driver's error in words that hold no connection option.
pub(super) trait Failure {
    fn words(&self) -> String;
}

impl Failure for tokio_postgres::Error {
    fn words(&self) -> String {
        super::postgres::describe(self)
    }
}

/// A row's values by kind, whichever driver read it; a value that does not decode, in words.
pub(super) trait Cells: Send {
    fn int(&self, i: usize) -> std::result::Result<Option<i64>, String>;
    fn float(&self, i: usize) -> std::result::Result<Option<f64>, String>;
    fn boolean(&self, i: usize) -> std::result::Result<Option<bool>, String>;
    fn date(&self, i: usize) -> std::result::Result<Option<NaiveDate>, String>;
    fn naive(&self, i: usize) -> std::result::Result<Option<NaiveDateTime>, String>;
    fn utc(&self, i: usize) -> std::result::Result<Option<DateTime<Utc>>, String>;
    fn text(&self, i: usize) -> std::result::Result<Option<String>, String>;
}

impl Cells for tokio_postgres::Row {
    fn int(&self, i: usize) -> std::result::Result<Option<i64>, String> {
        self.try_get(i).map_err(|e| e.to_string())
    }
    fn float(&self, i: usize) -> std::result::Result<Option<f64>, String> {
        self.try_get(i).map_err(|e| e.to_string())
    }
    fn boolean(&self, i: usize) -> std::result::Result<Option<bool>, String> {
        self.try_get(i).map_err(|e| e.to_string())
    }
    fn date(&self, i: usize) -> std::result::Result<Option<NaiveDate>, String> {
        self.try_get(i).map_err(|e| e.to_string())
    }
    fn naive(&self, i: usize) -> std::result::Result<Option<NaiveDateTime>, String> {
        self.try_get(i).map_err(|e| e.to_string())
    }
    fn utc(&self, i: usize) -> std::result::Result<Option<DateTime<Utc>>, String> {
        self.try_get(i).map_err(|e| e.to_string())
    }
    fn text(&self, i: usize) -> std::result::Result<Option<String>, String> {
        self.try_get(i).map_err(|e| e.to_string())
    }
}

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

    /// Appends `row`; returns about how many bytes its values take in the batch.
    pub(super) fn push(&mut self, row: &dyn Cells) -> std::result::Result<usize, String> {
        let column = |i: usize, e: String| format!("column {i} does not decode: {e}");
        // Fixed-width values take their width; text its bytes and an offset.
        let mut bytes = 0;
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
                    bytes += v.as_ref().map_or(0, String::len);
                    any.downcast_mut::<StringBuilder>().expect("text builder").append_option(v);
                }
            }
            bytes += match kind {
                Kind::Decimal(_) => 16,
                Kind::Bool => 1,
                Kind::Date => 4,
                _ => 8,
            };
        }
        self.rows += 1;
        Ok(bytes)
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

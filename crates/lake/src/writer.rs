//! Writing a sync's rows as they arrive, page by page, with memory bounded whatever the size of
//! the window.
//!
//! Rows are buffered per month and written as sorted batches. A month's file stays open while the
//! rows keep arriving in time order; rows that would break the order (the next usage endpoint
//! starting again at the beginning of the window) go to a new file of the same month, so every
//! file is sorted by time and never spans two months. Small remainders are written together at the
//! end: a provider with one report per table gives one file per month.

use std::collections::BTreeMap;

use burnrate_core::{SourceId, SyncWindow};
use burnrate_store::{LakeFile, OrgScope, Store};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use parquet::arrow::AsyncArrowWriter;
use uuid::Uuid;

use crate::{Lake, LakeError, LakeRow, next_month};

/// Rows held in memory before the largest month's buffer is written out. With usage rows of a few
/// hundred bytes this keeps a writer's buffers to tens of megabytes.
const BUFFERED_ROWS: usize = 64 * 1024;
/// Files open at once; the least recently written is closed to open another.
const OPEN_FILES: usize = 2;
/// Rows per row group, as measured in ARCHITECTURE.md ("Performance facts").
const ROW_GROUP_ROWS: usize = 1024 * 1024;
/// What the object store buffers before a multipart upload (S3 parts are at least 5 MiB).
const UPLOAD_BUFFER: usize = 8 << 20;

/// One file being written.
struct OpenFile {
    file: LakeFile,
    month: NaiveDate,
    writer: AsyncArrowWriter<BufWriter>,
    /// The roll-up written beside it, for a table that has one.
    rollup: Option<AsyncArrowWriter<BufWriter>>,
    /// The start time of the last row written: later rows may only be as late or later.
    last: DateTime<Utc>,
}

/// Writes the rows of one table, window and source as pending lake files; see the module docs.
pub struct TableWriter<T: LakeRow> {
    lake: Lake,
    db: Store,
    scope: OrgScope,
    source: SourceId,
    source_text: String,
    window: SyncWindow,
    buffers: BTreeMap<NaiveDate, Vec<T>>,
    buffered: usize,
    /// Least recently written first.
    open: Vec<OpenFile>,
    written: Vec<LakeFile>,
    rows: usize,
}

fn month_of(t: DateTime<Utc>) -> NaiveDate {
    let d = t.date_naive();
    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).expect("first of a month")
}

impl<T: LakeRow> TableWriter<T> {
    pub(crate) fn new(
        lake: Lake,
        db: Store,
        scope: OrgScope,
        source: SourceId,
        window: SyncWindow,
    ) -> Result<Self, LakeError> {
        if !window.is_whole_months() {
            // Superseding replaces whole files; a partial month would drop the rest of that month.
            return Err(LakeError::Format(format!(
                "sync window {window} must cover whole months ({})",
                window.whole_months()
            )));
        }
        Ok(Self {
            lake,
            db,
            scope,
            source,
            source_text: source.to_string(),
            window,
            buffers: BTreeMap::new(),
            buffered: 0,
            open: Vec::new(),
            written: Vec::new(),
            rows: 0,
        })
    }

    /// Rows accepted so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Takes one page of rows. A row outside the window is refused, and nothing of the page is
    /// kept.
    pub async fn push(&mut self, rows: Vec<T>) -> Result<(), LakeError> {
        if let Some(r) = rows.iter().find(|r| !self.window.contains(r.starts_at())) {
            return Err(LakeError::Format(format!(
                "a record of {} lies outside the sync window {}",
                r.starts_at(),
                self.window
            )));
        }
        self.rows += rows.len();
        self.buffered += rows.len();
        for row in rows {
            self.buffers.entry(month_of(row.starts_at())).or_default().push(row);
        }
        while self.buffered > BUFFERED_ROWS {
            let month = self.buffers.iter().max_by_key(|(_, rows)| rows.len()).map(|(m, _)| *m).expect("a buffer");
            self.write_month(month).await?;
        }
        Ok(())
    }

    /// Keeps the live rows of this source from the start of the window up to (not including)
    /// `before`: for a provider that reports only recent days (OpenRouter's 30), the older days of
    /// a month being replaced are carried into the new version instead of being dropped with it.
    /// Returns how many rows were carried. Call it before pushing the pulled rows.
    pub async fn carry_over(&mut self, before: NaiveDate) -> Result<usize, LakeError> {
        let days = self.window.start()..before.min(self.window.end());
        if days.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db.tenant(self.scope).await?;
        let files = tx.live_lake_files(T::TABLE).await?;
        tx.commit().await?;
        let mut carried = 0;
        let source = self.source;
        for file in files.iter().filter(|f| f.source_id == source) {
            if file.window_end <= days.start || file.window_start >= days.end {
                continue;
            }
            let bytes = self.lake.objects.get(&self.lake.object(&file.path)).await?.bytes().await?;
            let rows = T::decode(bytes, days.clone())?;
            carried += rows.len();
            self.push(rows).await?;
        }
        Ok(carried)
    }

    /// Writes what is buffered for `month`, sorted, to the month's open file when the order
    /// allows, else to a new file.
    async fn write_month(&mut self, month: NaiveDate) -> Result<(), LakeError> {
        let Some(mut rows) = self.buffers.remove(&month) else { return Ok(()) };
        if rows.is_empty() {
            return Ok(());
        }
        self.buffered -= rows.len();
        rows.sort_by_key(|r| r.starts_at());
        let first = rows[0].starts_at();
        // Bound first: a temporary in a `match` scrutinee would live across the awaits below.
        let appendable = self.open.iter().position(|f| f.month == month && f.last <= first);
        let at = match appendable {
            Some(i) => i,
            None => {
                if self.open.len() >= OPEN_FILES {
                    let oldest = self.open.remove(0);
                    self.close(oldest).await?;
                }
                let file = self.create(month).await?;
                self.open.push(file);
                self.open.len() - 1
            }
        };
        // Most recently written goes last.
        let mut file = self.open.remove(at);
        let refs: Vec<&T> = rows.iter().collect();
        file.writer.write(&T::batch(&refs, &self.source_text)?).await?;
        if let (Some(writer), Some(rollup)) = (&mut file.rollup, T::ROLLUP) {
            // Summed batch by batch: a roll-up file may hold a key more than once (its readers
            // sum anyway), and the writer's memory stays that of one batch.
            writer.write(&(rollup.sum)(&refs, &self.source_text)?).await?;
        }
        file.last = rows.last().expect("rows").starts_at();
        let last_day = file.last.date_naive();
        file.file.rows += rows.len() as i64;
        file.file.max_day = Some(file.file.max_day.map_or(last_day, |d| d.max(last_day)));
        self.open.push(file);
        Ok(())
    }

    /// Records a new file as pending (before it exists, so a crash leaves a trace to clean up)
    /// and opens it.
    async fn create(&mut self, month: NaiveDate) -> Result<OpenFile, LakeError> {
        let id = Uuid::now_v7();
        let month_end = next_month(month);
        let path_in = |dir: &str| {
            format!("org={}/{dir}/source={}/{month}_{month_end}_{id}.parquet", self.scope.org_id(), self.source)
        };
        let path = path_in(T::TABLE.as_str());
        let rollup_path = T::ROLLUP.map(|r| path_in(r.name));
        let file = LakeFile {
            id,
            source_id: self.source,
            window_start: month,
            window_end: month_end,
            path: path.clone(),
            rows: 0,
            bytes: 0,
            created_at: Utc::now(),
            max_day: None,
            rollup_path: rollup_path.clone(),
        };
        let mut tx = self.db.tenant(self.scope).await?;
        tx.add_pending_lake_file(T::TABLE, &file).await?;
        tx.commit().await?;
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let upload = |path: &str| {
            BufWriter::with_capacity(std::sync::Arc::clone(&self.lake.objects), self.lake.object(path), UPLOAD_BUFFER)
        };
        let writer = AsyncArrowWriter::try_new(upload(&path), T::schema(), Some(props.clone()))?;
        let rollup = match (T::ROLLUP, rollup_path) {
            (Some(r), Some(path)) => Some(AsyncArrowWriter::try_new(upload(&path), r.schema(), Some(props))?),
            _ => None,
        };
        Ok(OpenFile { file, month, writer, rollup, last: DateTime::<Utc>::MIN_UTC })
    }

    /// Finishes the file and records its size on its (still pending) manifest row.
    async fn close(&mut self, mut open: OpenFile) -> Result<(), LakeError> {
        open.writer.finish().await?;
        if let Some(mut rollup) = open.rollup.take() {
            rollup.finish().await?;
        }
        open.file.bytes = open.writer.bytes_written() as i64;
        let mut tx = self.db.tenant(self.scope).await?;
        tx.seal_pending_lake_file(open.file.id, open.file.rows, open.file.bytes, open.file.max_day).await?;
        tx.commit().await?;
        self.written.push(open.file);
        Ok(())
    }

    /// Writes what is left and closes every file: the pending files, ready for [`Lake::commit`].
    pub async fn finish(mut self) -> Result<Vec<LakeFile>, LakeError> {
        let months: Vec<NaiveDate> = self.buffers.keys().copied().collect();
        for month in months {
            self.write_month(month).await?;
        }
        for open in std::mem::take(&mut self.open) {
            self.close(open).await?;
        }
        self.written.sort_by(|a, b| (a.window_start, &a.path).cmp(&(b.window_start, &b.path)));
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow_array::{Int64Array, TimestampMicrosecondArray};
    use burnrate_core::{OrgName, UsageRecord};
    use burnrate_store::LakeTable;
    use chrono::Duration;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::column;

    fn record(day: NaiveDate, n: i64) -> UsageRecord {
        let start = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
        UsageRecord {
            bucket_start: start,
            bucket_end: start + Duration::days(1),
            provider_name: "OpenAI".into(),
            usage_type: "completions".into(),
            model: Some(format!("model-{}", n % 7)),
            project_id: None,
            api_key_id: Some(format!("key_{n}")),
            service_tier: None,
            input_uncached_tokens: n,
            input_cached_tokens: 0,
            input_cache_write_tokens: 0,
            input_cache_write_1h_tokens: 0,
            output_tokens: 1,
            requests: Some(1),
            extra: Default::default(),
            computed_cost: None,
            price_ref: None,
        }
    }

    /// A SQLite manifest with one organization and a lake, in a temporary directory.
    async fn lake_of_one_org() -> (tempfile::TempDir, Store, OrgScope, Lake) {
        let dir = tempfile::tempdir().unwrap();
        let db = Store::connect(&format!("sqlite://{}/db.sqlite?mode=rwc", dir.path().display())).await.unwrap();
        burnrate_store::migrate_sqlite(&db).await.unwrap();
        let mut tx = db.instance().await.unwrap();
        let scope = tx.create_org(&OrgName::parse("Org").unwrap()).await.unwrap();
        tx.commit().await.unwrap();
        let lake = Lake::from_url(&dir.path().join("lake").display().to_string()).unwrap();
        (dir, db, scope, lake)
    }

    /// `per_day` rows a day over `days`, in pages of one day, in time order.
    fn stream(first: NaiveDate, days: i64, per_day: i64) -> Vec<Vec<UsageRecord>> {
        (0..days).map(|d| (0..per_day).map(|n| record(first + Duration::days(d), n)).collect()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streamed_pages_become_sorted_files_that_never_span_a_month() {
        let (dir, db, scope, lake) = lake_of_one_org().await;
        let jan = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let window = SyncWindow::new(jan, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()).unwrap();
        let mut writer = lake.writer::<UsageRecord>(&db, scope, SourceId::generate(), window).unwrap();

        // A big report over both months, then a small one starting again on 1 January: more rows
        // than the writer buffers, and a second report that breaks the time order.
        let mut expected: BTreeMap<i32, i64> = BTreeMap::new();
        for page in stream(jan, 59, 2_000).into_iter().chain(stream(jan, 59, 10)) {
            for r in &page {
                *expected.entry((r.bucket_start.date_naive() - NaiveDate::default()).num_days() as i32).or_default() +=
                    r.input_uncached_tokens;
            }
            writer.push(page).await.unwrap();
        }
        assert_eq!(writer.rows(), 59 * 2_010);
        let files = writer.finish().await.unwrap();

        let mut seen: BTreeMap<i32, i64> = BTreeMap::new();
        let mut per_month: BTreeMap<NaiveDate, usize> = BTreeMap::new();
        for f in &files {
            *per_month.entry(f.window_start).or_default() += 1;
            let bytes = std::fs::read(dir.path().join("lake").join(&f.path)).unwrap();
            let mut rows = 0;
            let mut last = i64::MIN;
            for batch in ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap().build().unwrap() {
                let batch = batch.unwrap();
                let start = column::<TimestampMicrosecondArray>(&batch, "bucket_start").unwrap();
                let days = column::<arrow_array::Date32Array>(&batch, "charge_day").unwrap();
                let tokens = column::<Int64Array>(&batch, "input_uncached_tokens").unwrap();
                for i in 0..batch.num_rows() {
                    assert!(start.value(i) >= last, "{} is sorted by time", f.path);
                    last = start.value(i);
                    let day = NaiveDate::default() + Duration::days(i64::from(days.value(i)));
                    assert_eq!(month_of(day.and_hms_opt(0, 0, 0).unwrap().and_utc()), f.window_start, "one month");
                    *seen.entry(days.value(i)).or_default() += tokens.value(i);
                }
                rows += batch.num_rows();
            }
            assert_eq!(rows as i64, f.rows, "the manifest row count is the file's");
        }
        assert_eq!(seen, expected, "every row once");
        assert!(per_month.values().all(|n| *n <= 3), "a few files a month, not a file a page: {per_month:?}");
        let mut tx = db.tenant(scope).await.unwrap();
        assert!(tx.live_lake_files(LakeTable::Usage).await.unwrap().is_empty(), "pending until committed");
        tx.commit().await.unwrap();
    }

    fn cost(day: NaiveDate, cents: i64, model: &str) -> burnrate_core::CostRecord {
        use burnrate_core::{ChargeCategory, Currency, Money};
        let start = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
        let money = Money::new(rust_decimal::Decimal::new(cents, 9), Currency::USD).unwrap();
        burnrate_core::CostRecord {
            charge_period_start: start,
            charge_period_end: start + Duration::days(1),
            billed_cost: money,
            effective_cost: money,
            list_cost: money,
            list_cost_estimated: true,
            provider_name: "OpenRouter".into(),
            service_name: "OpenRouter".into(),
            sub_account_id: None,
            sku_id: Some(format!("{model}-2025")),
            model: Some(model.into()),
            charge_category: ChargeCategory::Usage,
            charge_description: Some(format!("{model} via Anthropic")),
            consumed_quantity: Some(rust_decimal::Decimal::from(cents % 1000)),
            consumed_unit: Some("Tokens".into()),
            api_key_id: None,
            tags: [("team".to_owned(), format!("t{}", cents % 3))].into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn carrying_over_keeps_the_older_days_of_a_replaced_month_exactly_and_only_this_sources() {
        use burnrate_core::CostRecord;
        let (dir, db, scope, lake) = lake_of_one_org().await;
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 1, d).unwrap();
        let window = SyncWindow::new(day(1), NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()).unwrap();
        let (source, other) = (SourceId::generate(), SourceId::generate());
        let first: Vec<CostRecord> = (1..=31).map(|d| cost(day(d), 1_000_000_007 * i64::from(d), "m")).collect();
        lake.replace(&db, scope, source, window, &first).await.unwrap();
        lake.replace(&db, scope, other, window, &[cost(day(2), 5, "other")]).await.unwrap();

        // The provider now reports 20 January onwards only, with new values.
        let mut writer = lake.writer::<CostRecord>(&db, scope, source, window).unwrap();
        assert_eq!(writer.carry_over(day(20)).await.unwrap(), 19, "1 to 19 January, this source only");
        let second: Vec<CostRecord> = (20..=31).map(|d| cost(day(d), 3, "m")).collect();
        writer.push(second.clone()).await.unwrap();
        let files = writer.finish().await.unwrap();
        lake.commit(&db, scope, LakeTable::Costs, source, window, &files).await.unwrap();

        let mut tx = db.tenant(scope).await.unwrap();
        let live = tx.live_lake_files(LakeTable::Costs).await.unwrap();
        tx.commit().await.unwrap();
        let mut mine = Vec::new();
        for f in live.iter().filter(|f| f.source_id == source) {
            let bytes = std::fs::read(dir.path().join("lake").join(&f.path)).unwrap();
            mine.extend(CostRecord::decode(bytes::Bytes::from(bytes), window.start()..window.end()).unwrap());
        }
        mine.sort_by_key(|r| r.charge_period_start);
        let want: Vec<CostRecord> = first[..19].iter().cloned().chain(second).collect();
        assert_eq!(mine, want, "older days as they were, field for field; newer days replaced");
        assert_eq!(live.iter().filter(|f| f.source_id == other).count(), 1, "the other source is untouched");

        // Nothing to carry when the provider reaches back to the window's start.
        let mut writer = lake.writer::<CostRecord>(&db, scope, source, window).unwrap();
        assert_eq!(writer.carry_over(day(1)).await.unwrap(), 0);
    }
}

//! The cost lake: FOCUS-shaped Parquet files per organization on object storage, with the list of
//! live files kept in SQL (the store's manifest).
//!
//! ```text
//!   sync ──► write files (pending in manifest) ──► one SQL transaction: old files superseded,
//!                                                   new files live
//!   query ─► live files taken at its start ──► Parquet
//! ```
//!
//! Layout: `org=<org>/<table>/source=<source>/<window start>_<window end>_<file id>.parquet`,
//! rows sorted by `charge_period_start`, no file spanning two months, a `charge_day` (Date32)
//! column beside the timestamps, money as `Decimal128(38, 9)` — choices measured in
//! ARCHITECTURE.md. Any Parquet reader (DuckDB, pandas, Spark) reads the files as they are.
//!
//! This crate never decides *what* data is right; it makes a new version visible atomically or not
//! at all, so a sync that dies half-way leaves the previous version in place.

mod costs;
mod requests;
mod usage;
mod writer;

use std::sync::Arc;

use burnrate_core::{CostRecord, RequestRecord, SourceId, SyncWindow, UsageRecord};
use burnrate_store::{LakeFile, LakeTable, OrgScope, Store, StoreError};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use uuid::Uuid;

pub use costs::CostRow;
pub use usage::UsageRow;
pub use writer::TableWriter;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("BURNRATE_LAKE_URL: {0}")]
    Url(String),
    #[error("lake storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("lake file format: {0}")]
    Format(String),
    #[error("lake manifest: {0}")]
    Manifest(#[from] StoreError),
    /// What was read changed before it was written back (a sync committed meanwhile).
    #[error("{0}")]
    Changed(String),
}

impl From<parquet::errors::ParquetError> for LakeError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        LakeError::Format(e.to_string())
    }
}

impl From<arrow_schema::ArrowError> for LakeError {
    fn from(e: arrow_schema::ArrowError) -> Self {
        LakeError::Format(e.to_string())
    }
}

/// The first day of the month after `month`.
pub(crate) fn next_month(month: chrono::NaiveDate) -> chrono::NaiveDate {
    use chrono::Datelike;
    let (y, m) = if month.month() == 12 { (month.year() + 1, 1) } else { (month.year(), month.month() + 1) };
    chrono::NaiveDate::from_ymd_opt(y, m, 1).expect("first of a month")
}

/// A row type of a lake table: its table, its time, and its Arrow encoding.
pub trait LakeRow: Send + Sync + 'static {
    const TABLE: LakeTable;
    /// The start of the period the row covers: files are sorted by it and split by its month.
    fn starts_at(&self) -> chrono::DateTime<chrono::Utc>;
    fn schema() -> Arc<arrow_schema::Schema>;
    fn batch(rows: &[&Self], source: &str) -> Result<arrow_array::RecordBatch, LakeError>;
    /// The rows of a file of this table whose day is in `days`, as they were written.
    fn decode(bytes: bytes::Bytes, days: std::ops::Range<chrono::NaiveDate>) -> Result<Vec<Self>, LakeError>
    where
        Self: Sized;
    /// The table's roll-up, when it has one: written beside each of its files, batch by batch.
    const ROLLUP: Option<Rollup<Self>> = None;
}

/// A table's roll-up: where its files go, which of the table's columns it keeps, and how a batch
/// of the table's rows is summed into a batch of it.
pub struct Rollup<T: ?Sized> {
    /// The directory beside the table's (`org=…/<name>/source=…/`), and the name queries use.
    pub name: &'static str,
    /// Columns of the table; its rows are the table's summed over everything else.
    pub columns: &'static [&'static str],
    /// Columns of its own after those: how many of the table's rows a row sums (Int64, null
    /// where a file of the table stands in for its roll-up: one row each).
    pub counts: &'static [&'static str],
    pub sum: fn(&[&T], &str) -> Result<arrow_array::RecordBatch, LakeError>,
}

impl<T: LakeRow + ?Sized> Rollup<T> {
    /// Where its columns are in the table's schema.
    pub(crate) fn indices(&self) -> Vec<usize> {
        let table = T::schema();
        self.columns.iter().map(|c| table.index_of(c).expect("a roll-up column is a column of its table")).collect()
    }

    /// Its schema: the table's, projected to its columns, then its counts — so a file of the
    /// table reads as one.
    pub fn schema(&self) -> Arc<arrow_schema::Schema> {
        let table = T::schema().project(&self.indices()).expect("roll-up columns are columns of its table");
        let counts = self.counts.iter().map(|c| arrow_schema::Field::new(*c, arrow_schema::DataType::Int64, true));
        Arc::new(arrow_schema::Schema::new(
            table.fields().iter().map(|f| f.as_ref().clone()).chain(counts).collect::<Vec<_>>(),
        ))
    }
}

impl LakeRow for CostRecord {
    const TABLE: LakeTable = LakeTable::Costs;
    fn starts_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.charge_period_start
    }
    fn schema() -> Arc<arrow_schema::Schema> {
        costs::schema()
    }
    fn batch(rows: &[&Self], source: &str) -> Result<arrow_array::RecordBatch, LakeError> {
        costs::batch(rows, source)
    }
    fn decode(bytes: bytes::Bytes, days: std::ops::Range<chrono::NaiveDate>) -> Result<Vec<Self>, LakeError> {
        costs::decode_records(bytes, days)
    }
    const ROLLUP: Option<Rollup<Self>> = Some(COST_ROLLUP);
}

/// `cost_rollup`: the costs summed by period, provider, service, project, model, charge category
/// and source — the same totals as `costs` for those dimensions, from far fewer rows.
pub const COST_ROLLUP: Rollup<CostRecord> =
    Rollup { name: "cost_rollup", columns: &costs::ROLLUP_COLUMNS, counts: &[], sum: costs::rollup };

impl LakeRow for UsageRecord {
    const TABLE: LakeTable = LakeTable::Usage;
    fn starts_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.bucket_start
    }
    fn schema() -> Arc<arrow_schema::Schema> {
        usage::schema()
    }
    fn batch(rows: &[&Self], source: &str) -> Result<arrow_array::RecordBatch, LakeError> {
        usage::batch(rows, source)
    }
    fn decode(bytes: bytes::Bytes, days: std::ops::Range<chrono::NaiveDate>) -> Result<Vec<Self>, LakeError> {
        usage::decode_records(bytes, days)
    }
    const ROLLUP: Option<Rollup<Self>> = Some(USAGE_ROLLUP);
}

impl LakeRow for RequestRecord {
    const TABLE: LakeTable = LakeTable::Requests;
    fn starts_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.started_at
    }
    fn schema() -> Arc<arrow_schema::Schema> {
        requests::schema()
    }
    fn batch(rows: &[&Self], _source: &str) -> Result<arrow_array::RecordBatch, LakeError> {
        requests::batch(rows)
    }
    fn decode(bytes: bytes::Bytes, days: std::ops::Range<chrono::NaiveDate>) -> Result<Vec<Self>, LakeError> {
        requests::decode_records(bytes, days)
    }
}

/// The manifest's source of request files: requests come from applications, not from a source.
pub fn requests_source() -> SourceId {
    SourceId::from_uuid(Uuid::nil())
}

/// What storing a batch of requests did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// Requests stored now.
    pub stored: usize,
    /// Requests already stored (an exporter's retry), not stored again.
    pub repeated: usize,
    pub files: usize,
    /// The days a file was written for.
    pub days: Vec<chrono::NaiveDate>,
    /// Of those, the days whose spans are no longer claimed: their files are merged at once.
    pub late_days: Vec<chrono::NaiveDate>,
}

/// How many days after its day a span stays claimed (one row each in the database): an exporter
/// retries within minutes, so a week covers every retry; a span of an older day is stored
/// unclaimed and its day's files merged at once, which keeps one of each span, so the claims
/// stay a week's worth however long requests are kept.
pub const CLAIMED_DAYS: i64 = 7;

/// A day's small request files are merged once there are this many.
pub const COMPACT_FROM: usize = 16;

/// The most rows one merge of small files writes (a merge holds them in memory, a few hundred
/// bytes each): larger files are left as they are.
pub const MERGED_ROWS: i64 = 1 << 18;

/// Which of a day's request files a merge takes; see [`Lake::compact_requests`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    Small,
    All,
}

/// Attempts at storing a batch when another instance stores some of the same spans meanwhile.
const APPEND_ATTEMPTS: usize = 3;

/// `usage_rollup`: the usage summed by bucket, provider, report, model, project and service
/// tier — token counts, requests and computed cost — with how many rows each sums
/// (`x_rows`) and how many of those were priced (`x_priced_rows`): reconciliation reads it.
pub const USAGE_ROLLUP: Rollup<UsageRecord> = Rollup {
    name: "usage_rollup",
    columns: &usage::ROLLUP_COLUMNS,
    counts: &["x_rows", "x_priced_rows"],
    sum: usage::rollup,
};

/// A string column.
pub(crate) fn strings<'a>(v: impl Iterator<Item = Option<&'a str>>) -> arrow_array::ArrayRef {
    Arc::new(v.collect::<arrow_array::StringArray>())
}

/// A column of a decoded batch, of the type the schema gives it.
pub(crate) fn column<'a, T: 'static>(batch: &'a arrow_array::RecordBatch, name: &str) -> Result<&'a T, LakeError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| LakeError::Format(format!("column {name} is missing or of another type")))
}

/// A timestamp cell.
pub(crate) fn time_at(
    a: &arrow_array::TimestampMicrosecondArray,
    i: usize,
) -> Result<chrono::DateTime<chrono::Utc>, LakeError> {
    chrono::DateTime::from_timestamp_micros(a.value(i))
        .ok_or_else(|| LakeError::Format(format!("timestamp {} is out of range", a.value(i))))
}

/// A nullable string cell.
pub(crate) fn opt(a: &arrow_array::StringArray, i: usize) -> Option<String> {
    use arrow_array::Array;
    (!a.is_null(i)).then(|| a.value(i).to_owned())
}

#[derive(Clone)]
pub struct Lake {
    /// The directory or bucket holding the lake.
    objects: Arc<dyn ObjectStore>,
    /// Where the lake begins in it: `""`, or `prefix/` of an `s3://bucket/prefix` lake. A
    /// manifest path `p` is the object `{root}{p}`. (Not object_store's `PrefixStore`: what its
    /// `head` returns keeps the prefix, and DataFusion compares that with the path it asked for.)
    root: String,
}

/// What a replace wrote and what it made live.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replaced {
    pub files: usize,
    pub rows: usize,
    pub superseded: u64,
}

impl Lake {
    /// `file:///…` (or a plain path), or `s3://bucket[/prefix]` for S3 and S3-compatible stores.
    /// An S3 lake takes its credentials, region and endpoint from the standard `AWS_*`
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`;
    /// `AWS_ENDPOINT_URL` for an S3-compatible store, `AWS_ALLOW_HTTP=true` for one reached
    /// without TLS), as every S3 tool does, so no secret sits in the URL or the TOML file.
    pub fn from_url(url: &str) -> Result<Self, LakeError> {
        if url.starts_with("s3://") {
            return Self::s3(url);
        }
        let dir = match url.strip_prefix("file://") {
            Some(path) => path.to_owned(),
            None if !url.contains("://") => url.to_owned(),
            None => return Err(LakeError::Url(format!("{url:?}: a lake is a file:// or s3:// URL"))),
        };
        std::fs::create_dir_all(&dir).map_err(|e| LakeError::Url(format!("cannot create {dir}: {e}")))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| LakeError::Url(format!("{dir}: {e}")))?;
        Ok(Self { objects: Arc::new(fs), root: String::new() })
    }

    fn s3(url: &str) -> Result<Self, LakeError> {
        let rest = url.strip_prefix("s3://").unwrap_or(url);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || url.contains(['?', '#', '@']) {
            return Err(LakeError::Url(format!("{url:?} is not s3://bucket or s3://bucket/prefix")));
        }
        let bucket = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| LakeError::Url(format!("{url}: {e}")))?;
        let prefix = prefix.trim_matches('/');
        let root = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(Self { objects: Arc::new(bucket), root })
    }

    /// Reaches the store once (a listing of at most one object), so a wrong bucket, endpoint or
    /// credential is reported at start rather than by the first sync.
    pub async fn probe(&self) -> Result<(), LakeError> {
        use futures::StreamExt;
        let root = (!self.root.is_empty()).then(|| Path::from(self.root.as_str()));
        let mut listing = self.objects.list(root.as_ref());
        match listing.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// The directory or bucket holding the lake, for readers that address its objects by URL
    /// (the SQL engine), with [`Lake::root`].
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Where the lake begins in [`Lake::objects`]: a manifest path `p` is the object `{root}{p}`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The object of manifest path `path`.
    pub(crate) fn object(&self, path: &str) -> Path {
        Path::from(format!("{}{path}", self.root))
    }

    /// A writer of `T` rows for `window` of `source`: rows stream in page by page, files are
    /// written as pending, and [`Lake::commit`] makes them the data.
    pub fn writer<T: LakeRow>(
        &self,
        db: &Store,
        scope: OrgScope,
        source: SourceId,
        window: SyncWindow,
    ) -> Result<TableWriter<T>, LakeError> {
        TableWriter::new(self.clone(), db.clone(), scope, source, window)
    }

    /// Writes the cost records of `window` as pending files (one per month touched).
    pub async fn write_costs(
        &self,
        db: &Store,
        scope: OrgScope,
        source: SourceId,
        window: SyncWindow,
        records: &[CostRecord],
    ) -> Result<Vec<LakeFile>, LakeError> {
        let mut writer = self.writer(db, scope, source, window)?;
        writer.push(records.to_vec()).await?;
        writer.finish().await
    }

    /// Makes `files` the live data of `window` for `source`, superseding what was there.
    pub async fn commit(
        &self,
        db: &Store,
        scope: OrgScope,
        table: LakeTable,
        source: SourceId,
        window: SyncWindow,
        files: &[LakeFile],
    ) -> Result<u64, LakeError> {
        self.commit_checked(db, scope, (table, source, window), files, None).await
    }

    /// The live records of `source` on `days`, and the ids of the files they came from.
    pub async fn source_records<T: LakeRow>(
        &self,
        db: &Store,
        scope: OrgScope,
        source: SourceId,
        days: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<(Vec<T>, Vec<Uuid>), LakeError> {
        let mut tx = db.tenant(scope).await?;
        let files = tx.live_lake_files(T::TABLE).await?;
        tx.commit().await?;
        let (mut records, mut ids) = (Vec::new(), Vec::new());
        for file in
            files.iter().filter(|f| f.source_id == source && f.window_start < days.end && days.start < f.window_end)
        {
            let bytes = self.objects.get(&self.object(&file.path)).await?.bytes().await?;
            records.extend(T::decode(bytes, days.clone())?);
            ids.push(file.id);
        }
        Ok((records, ids))
    }

    /// Commits as [`Lake::commit`] does, provided the live files of `source` in `window` are
    /// still `read` — the files its rows were read from; [`LakeError::Changed`] when a sync
    /// committed meanwhile, and nothing is committed.
    #[expect(clippy::too_many_arguments, reason = "a commit's parts and what it was read from")]
    pub async fn commit_unchanged(
        &self,
        db: &Store,
        scope: OrgScope,
        table: LakeTable,
        source: SourceId,
        window: SyncWindow,
        files: &[LakeFile],
        read: &[Uuid],
    ) -> Result<u64, LakeError> {
        self.commit_checked(db, scope, (table, source, window), files, Some(read)).await
    }

    /// Makes `files` the data of the table, source and window, superseding what was; with
    /// `read`, only if the live files there are still those.
    async fn commit_checked(
        &self,
        db: &Store,
        scope: OrgScope,
        (table, source, window): (LakeTable, SourceId, SyncWindow),
        files: &[LakeFile],
        read: Option<&[Uuid]>,
    ) -> Result<u64, LakeError> {
        let ids: Vec<Uuid> = files.iter().map(|f| f.id).collect();
        let mut tx = db.tenant(scope).await?;
        if let Some(read) = read {
            let mut live: Vec<Uuid> = tx
                .live_lake_files(table)
                .await?
                .into_iter()
                .filter(|f| f.source_id == source && f.window_start < window.end() && window.start() < f.window_end)
                .map(|f| f.id)
                .collect();
            let mut was = read.to_vec();
            live.sort();
            was.sort();
            if live != was {
                return Err(LakeError::Changed(format!(
                    "source {source}'s {} changed while it was read (a sync ran); nothing was written, try again",
                    table.as_str()
                )));
            }
        }
        let superseded = tx.commit_lake_files(table, source, window.start(), window.end(), &ids).await?;
        tx.commit().await?;
        let name = table.as_str();
        metrics::counter!("burnrate_lake_files_written_total", "table" => name).increment(files.len() as u64);
        let bytes: i64 = files.iter().map(|f| f.bytes).sum();
        metrics::counter!("burnrate_lake_bytes_written_total", "table" => name).increment(bytes.unsigned_abs());
        Ok(superseded)
    }

    /// Writes `records` and makes them the data of `window`: what a sync does, in one call.
    pub async fn replace<T: LakeRow + Clone>(
        &self,
        db: &Store,
        scope: OrgScope,
        source: SourceId,
        window: SyncWindow,
        records: &[T],
    ) -> Result<Replaced, LakeError> {
        let mut writer = self.writer(db, scope, source, window)?;
        writer.push(records.to_vec()).await?;
        let files = writer.finish().await?;
        let superseded = self.commit(db, scope, T::TABLE, source, window, &files).await?;
        Ok(Replaced { files: files.len(), rows: records.len(), superseded })
    }

    async fn live_bytes(&self, db: &Store, scope: OrgScope, table: LakeTable) -> Result<Vec<bytes::Bytes>, LakeError> {
        let mut tx = db.tenant(scope).await?;
        let files = tx.live_lake_files(table).await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            out.push(self.objects.get(&self.object(&f.path)).await?.bytes().await?);
        }
        Ok(out)
    }

    /// Deletes files that no query reads any more: superseded longer ago than `grace` (a query
    /// that started before the switch may still be reading them) and pending files older than
    /// `stale` (their sync died). The object goes first, then the manifest row, so a crash between
    /// the two only leaves a row the next pass removes. Returns how many files went.
    pub async fn collect_garbage(
        &self,
        db: &Store,
        scope: OrgScope,
        grace: chrono::Duration,
        stale: chrono::Duration,
    ) -> Result<usize, LakeError> {
        let now = chrono::Utc::now();
        let mut tx = db.tenant(scope).await?;
        let files = tx.collectable_lake_files(now - grace, now - stale).await?;
        tx.commit().await?;
        for (id, paths) in &files {
            for path in paths {
                match self.objects.delete(&self.object(path)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let mut tx = db.tenant(scope).await?;
            tx.forget_lake_file(*id).await?;
            tx.commit().await?;
        }
        Ok(files.len())
    }

    /// Stores `records` (each span once: those stored before are left out) as one file per day,
    /// made live with the claim of their spans in one transaction, so a retried export neither
    /// loses nor doubles a span. Files are encoded before the transaction, which only records.
    pub async fn append_requests(
        &self,
        db: &Store,
        scope: OrgScope,
        mut records: Vec<RequestRecord>,
    ) -> Result<Appended, LakeError> {
        let sent = records.len();
        // A span sent twice in one batch (two exports stored together) is one request.
        records.sort_by_key(|r| r.key);
        records.dedup_by_key(|r| r.key);
        let claimed_from = chrono::Utc::now().date_naive() - chrono::Duration::days(CLAIMED_DAYS);
        for _ in 0..APPEND_ATTEMPTS {
            if records.is_empty() {
                return Ok(Appended { stored: 0, repeated: sent, files: 0, days: Vec::new(), late_days: Vec::new() });
            }
            records.sort_by_key(|r| r.started_at);
            let mut days: std::collections::BTreeMap<chrono::NaiveDate, Vec<&RequestRecord>> = Default::default();
            for r in &records {
                days.entry(r.started_at.date_naive()).or_default().push(r);
            }
            let mut files = Vec::with_capacity(days.len());
            for (day, rows) in &days {
                files.push(self.write_day_of_requests(db, scope, *day, rows).await?);
            }
            // Spans of recent days are claimed; an older day's are kept apart by merging its
            // files at once (see `CLAIMED_DAYS`).
            let claims: Vec<(burnrate_core::SpanKey, chrono::NaiveDate)> = records
                .iter()
                .map(|r| (r.key, r.started_at.date_naive()))
                .filter(|(_, day)| *day >= claimed_from)
                .collect();
            let mut tx = db.tenant(scope).await?;
            let fresh = tx.claim_spans(&claims).await?;
            if fresh.len() == claims.len() {
                tx.commit_appended_lake_files(&files.iter().map(|f| f.id).collect::<Vec<_>>()).await?;
                tx.commit().await?;
                let name = LakeTable::Requests.as_str();
                metrics::counter!("burnrate_lake_files_written_total", "table" => name).increment(files.len() as u64);
                let bytes: i64 = files.iter().map(|f| f.bytes).sum();
                metrics::counter!("burnrate_lake_bytes_written_total", "table" => name).increment(bytes.unsigned_abs());
                return Ok(Appended {
                    stored: records.len(),
                    repeated: sent - records.len(),
                    files: files.len(),
                    days: days.keys().copied().collect(),
                    late_days: days.keys().copied().filter(|d| *d < claimed_from).collect(),
                });
            }
            // Some were stored before: nothing of this attempt is kept, and the files are
            // written again without them.
            drop(tx);
            for file in &files {
                self.forget_pending(db, scope, file).await?;
            }
            let fresh: std::collections::HashSet<_> = fresh.into_iter().collect();
            records.retain(|r| r.started_at.date_naive() < claimed_from || fresh.contains(&r.key));
        }
        Err(LakeError::Changed(
            "the same spans kept arriving while they were stored; nothing was stored, try again".into(),
        ))
    }

    /// Forgets the claims of spans of days before the claimed ones (see [`CLAIMED_DAYS`]).
    pub async fn forget_old_claims(&self, db: &Store, scope: OrgScope) -> Result<u64, LakeError> {
        let claimed_from = chrono::Utc::now().date_naive() - chrono::Duration::days(CLAIMED_DAYS);
        let mut tx = db.tenant(scope).await?;
        let forgotten = tx.forget_claims_before(claimed_from).await?;
        tx.commit().await?;
        Ok(forgotten)
    }

    /// Merges `day`'s request files, each span once: read, written as one pending file sorted by
    /// time, then made live in place of exactly those files — or not at all, when another merge
    /// got there first. [`Merge::Small`]: the day's small files, once there are [`COMPACT_FROM`]
    /// of them (a busy receiver writes one per group commit), up to [`MERGED_ROWS`] rows — files
    /// grow in tiers, so no row is rewritten more than a few times; [`Merge::All`]: every file
    /// of the day, when there are two or more (a day no longer claimed, whose repeats the merge
    /// drops). Returns how many files were merged (0: nothing to do).
    pub async fn compact_requests(
        &self,
        db: &Store,
        scope: OrgScope,
        day: chrono::NaiveDate,
        merge: Merge,
    ) -> Result<usize, LakeError> {
        let mut tx = db.tenant(scope).await?;
        let mut files = tx.live_lake_files_of_day(LakeTable::Requests, day).await?;
        tx.commit().await?;
        match merge {
            Merge::All if files.len() < 2 => return Ok(0),
            Merge::All => {}
            Merge::Small => {
                files.retain(|f| f.rows < MERGED_ROWS);
                files.sort_by_key(|f| f.rows);
                let mut rows = 0;
                files.retain(|f| {
                    rows += f.rows;
                    rows <= MERGED_ROWS
                });
                if files.len() < COMPACT_FROM {
                    return Ok(0);
                }
            }
        }
        let mut rows = Vec::new();
        for file in &files {
            let bytes = self.objects.get(&self.object(&file.path)).await?.bytes().await?;
            rows.extend(requests::decode_records(bytes, day..day.succ_opt().unwrap_or(day))?);
        }
        // A span of a day no longer claimed may have been sent twice: merged, it is one request.
        rows.sort_by_key(|r| r.key);
        rows.dedup_by_key(|r| r.key);
        rows.sort_by_key(|r| (r.started_at, r.key));
        let merged = self.write_day_of_requests(db, scope, day, &rows.iter().collect::<Vec<_>>()).await?;
        let mut tx = db.tenant(scope).await?;
        match tx.replace_lake_files(&files.iter().map(|f| f.id).collect::<Vec<_>>(), merged.id).await {
            Ok(()) => {
                tx.commit().await?;
                Ok(files.len())
            }
            Err(burnrate_store::StoreError::Conflict(_)) => {
                drop(tx);
                self.forget_pending(db, scope, &merged).await?;
                Ok(0)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One day's requests as a pending file: recorded, then written.
    async fn write_day_of_requests(
        &self,
        db: &Store,
        scope: OrgScope,
        day: chrono::NaiveDate,
        rows: &[&RequestRecord],
    ) -> Result<LakeFile, LakeError> {
        let batch = requests::batch(rows)?;
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let mut writer = parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props))?;
        writer.write(&batch)?;
        let encoded = writer.into_inner()?;
        let id = Uuid::now_v7();
        let file = LakeFile {
            id,
            source_id: requests_source(),
            window_start: day,
            window_end: day.succ_opt().unwrap_or(day),
            path: format!("org={}/{}/day={day}/{id}.parquet", scope.org_id(), LakeTable::Requests.as_str()),
            rows: rows.len() as i64,
            bytes: encoded.len() as i64,
            created_at: chrono::Utc::now(),
            max_day: Some(day),
            rollup_path: None,
        };
        // Recorded before it exists, so a crash leaves a row that collection cleans up.
        let mut tx = db.tenant(scope).await?;
        tx.add_pending_lake_file(LakeTable::Requests, &file).await?;
        tx.commit().await?;
        self.objects.put(&self.object(&file.path), encoded.into()).await?;
        Ok(file)
    }

    /// Removes a pending file that will not be committed: its object, then its row.
    async fn forget_pending(&self, db: &Store, scope: OrgScope, file: &LakeFile) -> Result<(), LakeError> {
        match self.objects.delete(&self.object(&file.path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let mut tx = db.tenant(scope).await?;
        tx.forget_lake_file(file.id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every live usage row of the organization.
    pub async fn read_usage(&self, db: &Store, scope: OrgScope) -> Result<Vec<UsageRow>, LakeError> {
        let mut rows = Vec::new();
        for bytes in self.live_bytes(db, scope, LakeTable::Usage).await? {
            rows.extend(usage::decode(bytes)?);
        }
        Ok(rows)
    }

    /// Every live cost row of the organization (the reader the SQL engine will replace).
    pub async fn read_costs(&self, db: &Store, scope: OrgScope) -> Result<Vec<CostRow>, LakeError> {
        let mut rows = Vec::new();
        for bytes in self.live_bytes(db, scope, LakeTable::Costs).await? {
            rows.extend(costs::decode(bytes)?);
        }
        Ok(rows)
    }
}

//! Provider connectors. Each turns a credential and a [`SyncWindow`] into FOCUS-shaped cost and
//! usage records, following `providers.md` exactly: the documented endpoints and parameters,
//! money parsed from the raw JSON token text, pagination followed until the provider says there
//! is no more. Records go out a page at a time ([`RecordSender`]), so a pull of any size holds
//! about a page in memory.
//!
//! Connectors never store anything and never log a credential: the key is exposed only to build
//! the request header, and errors carry the provider, endpoint, window and what went wrong — never
//! the key, and never a provider message that might echo it unredacted.

mod anthropic;
pub mod aws;
pub mod azure;
mod error;
pub mod gcp;
mod oauth;
mod openai;
pub mod openrouter;
mod provider;
mod setting;
mod settings;

use burnrate_core::SyncWindow;

pub use error::{SourceError, SourceErrorKind};
pub use provider::{Connector, Provider, Schedule, SourceKind};
pub use settings::{ProviderSettings, SettingsError, SourceConfig, SourceSpec};
pub use {
    anthropic::Anthropic, aws::CostExplorer, azure::CostManagement, gcp::BigQueryBilling, openai::OpenAi,
    openrouter::OpenRouter,
};

/// Where a connector sends each page's records as soon as the page is read, so a pull of any
/// size holds about a page in memory. The receiver (the lake writer) applies back-pressure.
pub type RecordSender<T> = tokio::sync::mpsc::Sender<Vec<T>>;

/// What a streamed pull did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PullStats {
    /// Pages fetched (for progress and the request budget).
    pub pages: u32,
    pub rows: usize,
    /// Amounts that had more than 9 decimals and were rounded half-even.
    pub rounded_values: u32,
}

impl PullStats {
    fn add(&mut self, other: PullStats) {
        self.pages += other.pages;
        self.rows += other.rows;
        self.rounded_values += other.rounded_values;
    }
}

/// A whole pull collected in memory: for tests, and for a connection test's single day.
#[derive(Debug, Default)]
pub struct Pulled<T> {
    pub records: Vec<T>,
    pub pages: u32,
    pub rounded_values: u32,
}

/// Runs a streamed pull and collects what it sends.
pub(crate) async fn collect<T, F>(pull: impl FnOnce(RecordSender<T>) -> F) -> Result<Pulled<T>, SourceError>
where
    F: std::future::Future<Output = Result<PullStats, SourceError>>,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let gather = async move {
        let mut records = Vec::new();
        while let Some(page) = rx.recv().await {
            records.extend(page);
        }
        records
    };
    let (stats, records) = tokio::join!(pull(tx), gather);
    let stats = stats?;
    Ok(Pulled { records, pages: stats.pages, rounded_values: stats.rounded_values })
}

/// Stops a provider that keeps saying "more" from looping forever.
const MAX_PAGES: u32 = 10_000;

/// The endpoint a connector is calling, for errors.
#[derive(Clone, Copy)]
pub(crate) struct Call {
    pub provider: &'static str,
    pub endpoint: &'static str,
    pub window: SyncWindow,
}

impl Call {
    pub fn error(&self, kind: SourceErrorKind) -> SourceError {
        SourceError { provider: self.provider, endpoint: self.endpoint, window: self.window, kind }
    }

    /// GETs one page and returns its body if the provider answered 2xx; `detail` extracts the
    /// provider's own error message from an error body.
    pub async fn get(
        &self,
        http: &burnrate_net::HttpClient,
        url: &url::Url,
        headers: &[(&str, &str)],
        detail: fn(&[u8]) -> Option<String>,
    ) -> Result<bytes::Bytes, SourceError> {
        let reply = http.get(url, headers).await.map_err(|e| self.error(error::fetch_error(e)))?;
        if (200..300).contains(&reply.status) {
            return Ok(reply.body);
        }
        let text = detail(&reply.body).map(|m| error::sanitize(&m)).unwrap_or_else(|| "no error message".into());
        Err(self.error(error::classify(reply.status, reply.attempts, text)))
    }

    /// Refuses a cursor seen before (a provider stuck on one page) and runaway paging.
    pub fn next_cursor(
        &self,
        seen: &mut Vec<String>,
        next: Option<String>,
        pages: u32,
    ) -> Result<Option<String>, SourceError> {
        let Some(cursor) = next.filter(|c| !c.is_empty()) else { return Ok(None) };
        if seen.contains(&cursor) || pages >= MAX_PAGES {
            return Err(self.error(SourceErrorKind::Malformed(format!(
                "paging does not end (cursor {cursor:?} repeated or over {MAX_PAGES} pages)"
            ))));
        }
        seen.push(cursor.clone());
        Ok(Some(cursor))
    }
}

/// The provider's own message from an error body: OpenAI, Anthropic and OpenRouter answer
/// `{"error": {"message": …, …}, …}`.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        message: String,
    }
    serde_json::from_slice::<Body>(body).ok().map(|b| b.error.message)
}

/// A report request: `path` under the base URL (which may carry a proxy's path prefix), the
/// window's parameters in the provider's spelling, daily buckets, `group_by[]` for each dimension
/// (the bracket spelling both providers' own clients send) and the cursor of the page wanted.
pub(crate) fn report_url(
    base: &url::Url,
    path: &str,
    window: [(&str, String); 2],
    (limit, bucket): (u32, BucketWidth),
    group_by: &[&str],
    page: Option<&str>,
) -> url::Url {
    let mut url = base.clone();
    let full = format!("{}{path}", url.path().trim_end_matches('/'));
    url.set_path(&full);
    {
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &window {
            q.append_pair(k, v);
        }
        q.append_pair("bucket_width", bucket.width()).append_pair("limit", &limit.to_string());
        for g in group_by {
            q.append_pair("group_by[]", g);
        }
        if let Some(p) = page {
            q.append_pair("page", p);
        }
    }
    url
}

/// A page of a provider report that says whether another follows.
pub(crate) trait Paged {
    /// The cursor of the next page, `None` when the provider says there is no more.
    fn cursor(&self) -> Option<String>;
    /// The end of the last bucket on this page: how far through the window it reached.
    fn reached(&self) -> Option<chrono::DateTime<chrono::Utc>>;
}

/// How far a pull has come, reported after every page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// `costs` or `usage`.
    pub report: &'static str,
    pub pages: u32,
    pub window: SyncWindow,
    /// The last day covered so far.
    pub reached: Option<chrono::NaiveDate>,
}

impl Progress {
    /// For people: "costs: 3 pages, through 2026-09-14 (45 of 122 days)".
    pub fn describe(&self) -> String {
        match self.reached {
            Some(day) => {
                let done = (day - self.window.start()).num_days().clamp(0, self.window.days());
                format!(
                    "{}: {} page{}, through {day} ({done} of {} days)",
                    self.report,
                    self.pages,
                    if self.pages == 1 { "" } else { "s" },
                    self.window.days()
                )
            }
            None => format!("{}: {} page{}", self.report, self.pages, if self.pages == 1 { "" } else { "s" }),
        }
    }
}

/// Where progress goes; `&|_| {}` when nobody is watching.
pub type ProgressSink<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// One report request: the part of the window still to fetch, buckets per page and their width,
/// and the cursor.
pub(crate) struct Ask<'a> {
    pub window: SyncWindow,
    pub limit: u32,
    pub bucket: BucketWidth,
    pub page: Option<&'a str>,
}

/// How long a report's buckets are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BucketWidth {
    Day,
    Hour,
}

impl BucketWidth {
    /// `bucket_width` as OpenAI's and Anthropic's reports spell it.
    pub fn width(self) -> &'static str {
        match self {
            BucketWidth::Day => "1d",
            BucketWidth::Hour => "1h",
        }
    }

    /// The fewest buckets a page may hold: a whole day, so that a page always ends at a midnight.
    fn min_limit(self) -> u32 {
        match self {
            BucketWidth::Day => 1,
            BucketWidth::Hour => 24,
        }
    }
}

/// `window` as its parts pulled by the day and by the hour (see [`hourly_from`]); the hours
/// stop at tomorrow, later ones having no usage yet.
pub(crate) fn by_bucket(window: SyncWindow) -> Vec<(SyncWindow, BucketWidth)> {
    let from = hourly_from();
    let (daily, hourly) = window.split_at(from);
    let tomorrow = from + chrono::Duration::days(2);
    let hourly = hourly.and_then(|h| SyncWindow::new(h.start(), h.end().min(tomorrow)).ok());
    let mut parts: Vec<(SyncWindow, BucketWidth)> = daily.map(|d| (d, BucketWidth::Day)).into_iter().collect();
    parts.extend(hourly.map(|h| (h, BucketWidth::Hour)));
    parts
}

/// The day from which usage is pulled by the hour: yesterday (UTC), whose cost report may not
/// have arrived yet, and today. Hours place recent usage in every organization's own days.
pub(crate) fn hourly_from() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive() - chrono::Duration::days(1)
}

/// Walks the pages of one report over a window. Pages hold `limit` daily buckets; a page larger
/// than the response cap makes the pager ask again from the first day not yet handed over with
/// half the buckets, down to one day, and keep the smaller size for the rest of the window.
pub(crate) struct Pager<'a, U> {
    call: Call,
    http: &'a burnrate_net::HttpClient,
    headers: &'a [(&'a str, &'a str)],
    detail: fn(&[u8]) -> Option<String>,
    url: U,
    report: &'static str,
    progress: ProgressSink<'a>,
    limit: u32,
    bucket: BucketWidth,
    /// The window of the current run of pages (a cursor is only valid with the same parameters);
    /// `None` when the provider said there is no more.
    asked: Option<SyncWindow>,
    /// The first day not handed over yet.
    resume: chrono::NaiveDate,
    cursor: Option<String>,
    seen: Vec<String>,
    pages: u32,
}

impl<'a, U: Fn(&Ask<'_>) -> url::Url> Pager<'a, U> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        call: Call,
        http: &'a burnrate_net::HttpClient,
        headers: &'a [(&'a str, &'a str)],
        detail: fn(&[u8]) -> Option<String>,
        url: U,
        report: &'static str,
        progress: ProgressSink<'a>,
        limit: u32,
    ) -> Self {
        let (asked, resume) = (Some(call.window), call.window.start());
        Self {
            call,
            http,
            headers,
            detail,
            url,
            report,
            progress,
            limit,
            bucket: BucketWidth::Day,
            asked,
            resume,
            cursor: None,
            seen: Vec::new(),
            pages: 0,
        }
    }

    /// Hourly buckets, `limit` of them a page (at least a day's).
    pub fn hourly(mut self, limit: u32) -> Self {
        self.bucket = BucketWidth::Hour;
        self.limit = limit.max(BucketWidth::Hour.min_limit());
        self
    }

    /// The next page, or `None` after the last.
    async fn next<P: serde::de::DeserializeOwned + Paged>(&mut self) -> Result<Option<P>, SourceError> {
        let body = loop {
            let Some(asked) = self.asked else { return Ok(None) };
            let ask = Ask { window: asked, limit: self.limit, bucket: self.bucket, page: self.cursor.as_deref() };
            let least = self.bucket.min_limit();
            match self.call.get(self.http, &(self.url)(&ask), self.headers, self.detail).await {
                Err(SourceError { kind: SourceErrorKind::TooLarge(_), .. }) if self.limit > least => {
                    // Ask again from the first day not handed over, without the cursor (it
                    // belonged to the larger page size).
                    self.limit = (self.limit / 2).max(least);
                    self.cursor = None;
                    self.seen.clear();
                    self.asked = SyncWindow::new(self.resume, asked.end()).ok();
                }
                reply => break reply?,
            }
        };
        let page: P =
            serde_json::from_slice(&body).map_err(|e| self.call.error(SourceErrorKind::Malformed(e.to_string())))?;
        drop(body);
        self.pages += 1;
        // A bucket ending at midnight covers the day before it.
        let reached = page.reached().map(|end| (end - chrono::Duration::seconds(1)).date_naive());
        (self.progress)(Progress { report: self.report, pages: self.pages, window: self.call.window, reached });
        if let Some(day) = reached {
            self.resume = self.resume.max(day + chrono::Duration::days(1));
        }
        self.cursor = self.call.next_cursor(&mut self.seen, page.cursor(), self.pages)?;
        if self.cursor.is_none() {
            self.asked = None;
        }
        Ok(Some(page))
    }

    /// Fetches every page, turns each into records with `convert` (which may count in the stats,
    /// rounded amounts say) and sends them to `out` before fetching the next.
    pub async fn stream<P, T>(
        mut self,
        out: &RecordSender<T>,
        mut convert: impl FnMut(P, &mut PullStats) -> Result<Vec<T>, SourceError>,
    ) -> Result<PullStats, SourceError>
    where
        P: serde::de::DeserializeOwned + Paged,
    {
        let mut stats = PullStats::default();
        while let Some(page) = self.next::<P>().await? {
            let records = convert(page, &mut stats)?;
            stats.rows += records.len();
            hand_over(&self.call, out, records).await?;
        }
        stats.pages = self.pages;
        Ok(stats)
    }
}

/// Throttled requests are tried this many times in all, waiting longer each time.
const THROTTLE_ATTEMPTS: u32 = 5;
const THROTTLE_FIRST_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// What one try of a request came to, for a provider that throttles in its own words (AWS's
/// `LimitExceededException` in a 400, BigQuery's `rateLimitExceeded` in a 403) rather than with a
/// 429 the HTTP client already waits out.
pub(crate) enum Try<T> {
    Done(T),
    Throttled,
}

/// Sends a request until the provider stops throttling it, waiting longer each time.
// A closure returning a future rather than an async closure: the futures of async closures are not
// yet known to be `Send`, and syncs run on spawned tasks.
pub(crate) async fn until_not_throttled<T, F>(call: &Call, mut send: impl FnMut() -> F) -> Result<T, SourceError>
where
    F: std::future::Future<Output = Result<Try<T>, SourceError>>,
{
    let mut wait = THROTTLE_FIRST_WAIT;
    for attempt in 1..=THROTTLE_ATTEMPTS {
        match send().await? {
            Try::Done(answer) => return Ok(answer),
            Try::Throttled if attempt < THROTTLE_ATTEMPTS => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Try::Throttled => {}
        }
    }
    Err(call.error(SourceErrorKind::Throttled { attempts: THROTTLE_ATTEMPTS }))
}

/// Hands a page's records to the lake writer, which applies back-pressure.
pub(crate) async fn hand_over<T>(call: &Call, out: &RecordSender<T>, records: Vec<T>) -> Result<(), SourceError> {
    out.send(records)
        .await
        .map_err(|_| call.error(SourceErrorKind::Network("the lake writer stopped before the pull ended".into())))
}

/// A token count that must not be negative.
pub(crate) fn tokens(call: &Call, field: &str, n: i64) -> Result<i64, SourceError> {
    if n < 0 {
        return Err(call.error(SourceErrorKind::Malformed(format!("{field} is negative ({n})"))));
    }
    Ok(n)
}

/// Parses a money token, counting values rounded to 9 decimals.
pub(crate) fn money(
    call: &Call,
    raw: &str,
    currency: &str,
    rounded: &mut u32,
) -> Result<burnrate_core::Money, SourceError> {
    let currency =
        burnrate_core::Currency::parse(currency).map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))?;
    let (m, r) = burnrate_core::Money::parse(raw, currency)
        .map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))?;
    if r == burnrate_core::Rounding::Rounded {
        *rounded += 1;
    }
    Ok(m)
}

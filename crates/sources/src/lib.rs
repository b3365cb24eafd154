//! Provider connectors. Each turns a credential and a [`SyncWindow`] into FOCUS-shaped
//! [`CostRecord`]s, following `providers.md` exactly: the documented endpoints and parameters,
//! money parsed from the raw JSON token text, pagination followed until the provider says there
//! is no more.
//!
//! Connectors never store anything and never log a credential: the key is exposed only to build
//! the request header, and errors carry the provider, endpoint, window and what went wrong — never
//! the key, and never a provider message that might echo it unredacted.

mod anthropic;
mod error;
mod openai;

use burnrate_core::{CostRecord, SyncWindow};

pub use error::{SourceError, SourceErrorKind};
pub use {anthropic::Anthropic, openai::OpenAi};

/// What one pull of a window returned.
#[derive(Debug, Default)]
pub struct CostPull {
    pub records: Vec<CostRecord>,
    /// Pages fetched (for progress and the request budget).
    pub pages: u32,
    /// Amounts that had more than 9 decimals and were rounded half-even.
    pub rounded_values: u32,
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

/// A report request: `path` under the base URL (which may carry a proxy's path prefix), the
/// window's parameters in the provider's spelling, daily buckets, `group_by[]` for each dimension
/// (the bracket spelling both providers' own clients send) and the cursor of the page wanted.
pub(crate) fn report_url(
    base: &url::Url,
    path: &str,
    window: [(&str, String); 2],
    limit: u32,
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
        q.append_pair("bucket_width", "1d").append_pair("limit", &limit.to_string());
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

/// Fetches every page of a report: `url` builds the request for a cursor.
pub(crate) async fn fetch_all<P: serde::de::DeserializeOwned + Paged>(
    call: &Call,
    http: &burnrate_net::HttpClient,
    headers: &[(&str, &str)],
    detail: fn(&[u8]) -> Option<String>,
    url: impl Fn(Option<&str>) -> url::Url,
    report: &'static str,
    progress: ProgressSink<'_>,
) -> Result<Vec<P>, SourceError> {
    let mut pages = Vec::new();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let body = call.get(http, &url(cursor.as_deref()), headers, detail).await?;
        let page: P =
            serde_json::from_slice(&body).map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))?;
        let next = page.cursor();
        // A bucket ending at midnight covers the day before it.
        let reached = page.reached().map(|end| (end - chrono::Duration::seconds(1)).date_naive());
        pages.push(page);
        progress(Progress { report, pages: pages.len() as u32, window: call.window, reached });
        match call.next_cursor(&mut seen, next, pages.len() as u32)? {
            Some(c) => cursor = Some(c),
            None => return Ok(pages),
        }
    }
}

/// A token count that must not be negative.
pub(crate) fn tokens(call: &Call, field: &str, n: i64) -> Result<i64, SourceError> {
    if n < 0 {
        return Err(call.error(SourceErrorKind::Malformed(format!("{field} is negative ({n})"))));
    }
    Ok(n)
}

/// What one pull of a usage window returned.
#[derive(Debug, Default)]
pub struct UsagePull {
    pub records: Vec<burnrate_core::UsageRecord>,
    pub pages: u32,
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

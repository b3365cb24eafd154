//! What a provider's billing data becomes: FOCUS-shaped cost records over a sync window.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::Money;

/// A half-open range of whole UTC days, `[start, end)`: what one sync asks a provider for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SyncWindow {
    start: NaiveDate,
    end: NaiveDate,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a sync window must end after it starts ({start}..{end})")]
pub struct WindowError {
    start: NaiveDate,
    end: NaiveDate,
}

impl SyncWindow {
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Self, WindowError> {
        if end > start { Ok(Self { start, end }) } else { Err(WindowError { start, end }) }
    }

    /// The `days` whole days before `today` (exclusive of today, which is not over yet).
    pub fn trailing_days(today: NaiveDate, days: u32) -> Result<Self, WindowError> {
        Self::new(today - Duration::days(i64::from(days)), today)
    }

    /// The smallest window of whole calendar months that contains this one. The lake keeps one
    /// file per source and month, so a sync always replaces whole months.
    pub fn whole_months(&self) -> SyncWindow {
        let first = |d: NaiveDate| NaiveDate::from_ymd_opt(d.year(), d.month(), 1).expect("first of a month");
        let last_day = self.end - Duration::days(1);
        let end_month = first(last_day);
        let end = if end_month.month() == 12 {
            NaiveDate::from_ymd_opt(end_month.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(end_month.year(), end_month.month() + 1, 1)
        }
        .expect("first of a month");
        SyncWindow { start: first(self.start), end }
    }

    /// The window cut at month boundaries, in order: for providers that are queried (and bill
    /// their queries) a month at a time.
    pub fn months(&self) -> impl Iterator<Item = SyncWindow> {
        let (mut start, end) = (self.start, self.end);
        std::iter::from_fn(move || {
            (start < end).then(|| {
                let next = NaiveDate::from_ymd_opt(start.year(), start.month(), 1).expect("first of a month")
                    + chrono::Months::new(1);
                let part = SyncWindow { start, end: next.min(end) };
                start = part.end;
                part
            })
        })
    }

    pub fn is_whole_months(&self) -> bool {
        *self == self.whole_months()
    }

    /// The part of the window before `day` and the part from `day` on (either may be empty).
    pub fn split_at(&self, day: NaiveDate) -> (Option<SyncWindow>, Option<SyncWindow>) {
        let day = day.clamp(self.start, self.end);
        (SyncWindow::new(self.start, day).ok(), SyncWindow::new(day, self.end).ok())
    }

    pub fn start(&self) -> NaiveDate {
        self.start
    }

    pub fn end(&self) -> NaiveDate {
        self.end
    }

    pub fn start_time(&self) -> DateTime<Utc> {
        self.start.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
    }

    pub fn end_time(&self) -> DateTime<Utc> {
        self.end.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
    }

    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.start_time() && t < self.end_time()
    }
}

impl fmt::Display for SyncWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// FOCUS `ChargeCategory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ChargeCategory {
    Usage,
    Purchase,
    Tax,
    Credit,
    Adjustment,
}

impl ChargeCategory {
    pub const ALL: [ChargeCategory; 5] = [
        ChargeCategory::Usage,
        ChargeCategory::Purchase,
        ChargeCategory::Tax,
        ChargeCategory::Credit,
        ChargeCategory::Adjustment,
    ];

    /// The FOCUS spelling, as stored in the lake.
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeCategory::Usage => "Usage",
            ChargeCategory::Purchase => "Purchase",
            ChargeCategory::Tax => "Tax",
            ChargeCategory::Credit => "Credit",
            ChargeCategory::Adjustment => "Adjustment",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One FOCUS-shaped cost row as a connector produces it (column names follow FOCUS 1.2 in
/// snake case; `model` and `api_key_id` are burnrate's own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostRecord {
    pub charge_period_start: DateTime<Utc>,
    pub charge_period_end: DateTime<Utc>,
    pub billed_cost: Money,
    pub effective_cost: Money,
    /// What the provider does not expose is estimated as the billed cost, and flagged.
    pub list_cost: Money,
    pub list_cost_estimated: bool,
    pub provider_name: String,
    pub service_name: String,
    /// Project, workspace or account; `None` where the provider reports none (a default workspace).
    pub sub_account_id: Option<String>,
    pub sku_id: Option<String>,
    pub model: Option<String>,
    pub charge_category: ChargeCategory,
    pub charge_description: Option<String>,
    pub consumed_quantity: Option<Decimal>,
    pub consumed_unit: Option<String>,
    pub api_key_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_days_and_never_empty() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let w = SyncWindow::new(d("2026-01-30"), d("2026-02-02")).unwrap();
        assert_eq!(w.days(), 3);
        assert_eq!(w.to_string(), "2026-01-30..2026-02-02");
        assert!(w.contains("2026-02-01T23:59:59Z".parse().unwrap()));
        assert!(!w.contains("2026-02-02T00:00:00Z".parse().unwrap()), "the end is exclusive");
        assert!(SyncWindow::new(d("2026-01-02"), d("2026-01-02")).is_err());
        assert_eq!(SyncWindow::trailing_days(d("2026-03-01"), 3).unwrap().start(), d("2026-02-26"));
        let months = SyncWindow::new(d("2026-01-30"), d("2026-02-02")).unwrap().whole_months();
        assert_eq!((months.start(), months.end()), (d("2026-01-01"), d("2026-03-01")));
        assert!(months.is_whole_months() && !w.is_whole_months());
        let parts: Vec<String> =
            SyncWindow::new(d("2026-01-30"), d("2026-03-02")).unwrap().months().map(|m| m.to_string()).collect();
        assert_eq!(parts, ["2026-01-30..2026-02-01", "2026-02-01..2026-03-01", "2026-03-01..2026-03-02"]);
        assert_eq!(w.months().count(), 2);
        let december = SyncWindow::new(d("2026-12-05"), d("2027-01-01")).unwrap().whole_months();
        assert_eq!((december.start(), december.end()), (d("2026-12-01"), d("2027-01-01")));
    }
}

/// Token usage in one bucket, as the usage APIs report it. The three input classes are disjoint
/// for every provider — their sum is all input — so nothing is counted twice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub bucket_start: DateTime<Utc>,
    pub bucket_end: DateTime<Utc>,
    pub provider_name: String,
    /// Which report it came from: `completions`, `embeddings`, `images`, … (OpenAI), `messages`
    /// (Anthropic).
    pub usage_type: String,
    pub model: Option<String>,
    /// OpenAI project or Anthropic workspace.
    pub project_id: Option<String>,
    pub api_key_id: Option<String>,
    pub service_tier: Option<String>,
    pub input_uncached_tokens: i64,
    pub input_cached_tokens: i64,
    pub input_cache_write_tokens: i64,
    /// The part of `input_cache_write_tokens` cached for an hour, which costs more than the
    /// five-minute rest (Anthropic); 0 where the provider reports no such split.
    pub input_cache_write_1h_tokens: i64,
    pub output_tokens: i64,
    /// `None` where the provider does not report it (Anthropic's messages report).
    pub requests: Option<i64>,
    /// Provider-specific counters (web search requests, …), kept rather than dropped.
    pub extra: BTreeMap<String, i64>,
    /// What the usage costs at the price book's rates in force at `bucket_start`, in US
    /// dollars; `None` when no rate prices its model (unpriced — never zero).
    pub computed_cost: Option<Decimal>,
    /// The rates that priced it: the catalogue and its version, provider and model
    /// (`genai-prices 0.2.3 anthropic/claude-sonnet-4-5`), shared by the records priced alike.
    pub price_ref: Option<std::sync::Arc<str>>,
}

//! The organization's reporting time zone, and the budget periods and days it divides time into.
//!
//! Storage is UTC; a person's "this month" is not. A period is a run of local dates, and its
//! bounds in UTC are the instants its first and last local midnights happen — so a month in
//! Tokyo starts nine hours before the UTC month does.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::BudgetPeriod;

/// A time zone known to the IANA database, by its name (`Europe/Berlin`, `UTC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportingZone(Tz);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time zone: {0:?} is not an IANA time zone name such as UTC, Europe/Berlin or America/New_York")]
pub struct ZoneError(pub String);

impl ReportingZone {
    pub const UTC: ReportingZone = ReportingZone(Tz::UTC);

    pub fn parse(name: &str) -> Result<Self, ZoneError> {
        name.trim().parse::<Tz>().map(Self).map_err(|_| ZoneError(name.to_owned()))
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The local date of `instant`.
    pub fn date_of(&self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.0).date_naive()
    }

    /// The instant local `date` begins. Where a zone skips midnight (a daylight-saving change at
    /// 00:00) the day begins at its first local time that exists.
    pub fn start_of(&self, date: NaiveDate) -> DateTime<Utc> {
        let mut time = date.and_hms_opt(0, 0, 0).expect("midnight");
        for _ in 0..4 {
            if let Some(t) = self.0.from_local_datetime(&time).earliest() {
                return t.with_timezone(&Utc);
            }
            time += chrono::Duration::minutes(30);
        }
        // No zone skips two hours; UTC midnight is the only sensible answer left.
        date.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
    }
}

impl Default for ReportingZone {
    fn default() -> Self {
        Self::UTC
    }
}

/// A run of local dates, `start` included, `end` excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    /// The month, quarter or year that holds `day`.
    pub fn containing(kind: BudgetPeriod, day: NaiveDate) -> Self {
        let months = match kind {
            BudgetPeriod::Month => 1,
            BudgetPeriod::Quarter => 3,
            BudgetPeriod::Year => 12,
        };
        let first_month = (day.month0() / months) * months;
        let start = NaiveDate::from_ymd_opt(day.year(), first_month + 1, 1).expect("first of a month");
        let end = start.checked_add_months(chrono::Months::new(months)).expect("a date within range");
        Self { start, end }
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day < self.end
    }

    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn periods_are_whole_months_quarters_and_years() {
        let p = Period::containing(BudgetPeriod::Month, d("2026-02-14"));
        assert_eq!((p.start, p.end, p.days()), (d("2026-02-01"), d("2026-03-01"), 28));
        let q = Period::containing(BudgetPeriod::Quarter, d("2026-12-31"));
        assert_eq!((q.start, q.end), (d("2026-10-01"), d("2027-01-01")));
        let y = Period::containing(BudgetPeriod::Year, d("2026-07-01"));
        assert_eq!((y.start, y.end), (d("2026-01-01"), d("2027-01-01")));
    }

    #[test]
    fn a_local_month_starts_at_the_local_midnight() {
        let tokyo = ReportingZone::parse("Asia/Tokyo").unwrap();
        assert_eq!(tokyo.start_of(d("2026-12-01")), "2026-11-30T15:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(tokyo.date_of("2026-11-30T15:30:00Z".parse().unwrap()), d("2026-12-01"));
        let ny = ReportingZone::parse("America/New_York").unwrap();
        // Winter (EST, UTC-5) and summer (EDT, UTC-4).
        assert_eq!(ny.start_of(d("2026-12-01")), "2026-12-01T05:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(ny.start_of(d("2026-07-01")), "2026-07-01T04:00:00Z".parse::<DateTime<Utc>>().unwrap());
        // Santiago skips local midnight when its clocks go forward (2026-09-06).
        let santiago = ReportingZone::parse("America/Santiago").unwrap();
        assert_eq!(santiago.date_of(santiago.start_of(d("2026-09-06"))), d("2026-09-06"));
        assert!(ReportingZone::parse("Mars/Olympus").unwrap_err().to_string().contains("IANA"));
    }
}

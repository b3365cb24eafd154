//! Where a cost line `c` falls in an organization's days, as SQL over `costs` or `cost_rollup`:
//! one rule for the overview, the explorer, budgets and digests, so their numbers agree.
//!
//! A line shorter than a day falls on the local day (hour, week, month) its start falls in. A line
//! a provider reports as a whole UTC day has no hours to place: it stays on its UTC day. In UTC,
//! both rules are the line's `charge_day`, which the queries then read alone.

use burnrate_core::ReportingZone;
use chrono::NaiveDate;

/// Lines shorter than a day. In seconds: an interval of 24 hours does not compare as one day.
const SHORT_LINE: &str = "date_part('epoch', c.charge_period_end) - date_part('epoch', c.charge_period_start) < 86400";

/// The `granularity` (`day`, `week`, `month`) period a line falls in, as a date (its first day).
pub fn period(zone: ReportingZone, granularity: &str) -> String {
    if zone == ReportingZone::UTC {
        return match granularity {
            "day" => "c.charge_day".into(),
            g => format!("CAST(date_trunc('{g}', c.charge_day) AS DATE)"),
        };
    }
    format!(
        "CASE WHEN {SHORT_LINE} THEN CAST(date_trunc('{granularity}', c.charge_period_start AT TIME ZONE '{}') AS DATE) \
         ELSE CAST(date_trunc('{granularity}', c.charge_period_start) AS DATE) END",
        zone.name()
    )
}

/// The hour a line falls in, as text (`2026-01-31 16:00`). A whole-day line shows as its day
/// (`2026-01-31 (whole day)`), which sorts before that day's hours.
pub fn hour(zone: ReportingZone) -> String {
    format!(
        "CASE WHEN {SHORT_LINE} \
         THEN to_char(date_trunc('hour', c.charge_period_start AT TIME ZONE '{}'), '%Y-%m-%d %H:00') \
         ELSE concat(to_char(c.charge_day, '%Y-%m-%d'), ' (whole day)') END",
        zone.name()
    )
}

/// A condition that holds for the lines of the local days `from` (inclusive) to `to`
/// (exclusive). Whole days around the range come first: the lake's files are pruned by them.
pub fn in_days(zone: ReportingZone, from: NaiveDate, to: NaiveDate) -> String {
    if zone == ReportingZone::UTC {
        return format!("c.charge_day >= DATE '{from}' AND c.charge_day < DATE '{to}'");
    }
    let instant = |d: NaiveDate| zone.start_of(d).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    format!(
        "c.charge_day >= DATE '{}' AND c.charge_day < DATE '{}' AND \
         (({SHORT_LINE} AND c.charge_period_start >= TIMESTAMP '{}' AND c.charge_period_start < TIMESTAMP '{}') \
         OR (NOT ({SHORT_LINE}) AND c.charge_day >= DATE '{from}' AND c.charge_day < DATE '{to}'))",
        from - chrono::Duration::days(1),
        to + chrono::Duration::days(1),
        instant(from),
        instant(to),
    )
}

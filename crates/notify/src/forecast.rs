//! What a scope's spend is heading for, and which days are out of the ordinary. Spend follows a
//! weekly rhythm (weekdays busy, weekends quiet), so both compare a day with the same weekday of
//! recent weeks, never with yesterday.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

/// How many trailing weeks the norms are taken over.
const WEEKS: usize = 4;

/// One day's spend in a scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaySpend {
    pub day: NaiveDate,
    pub amount: Decimal,
}

/// The spend of `day` in `history` (a day without an entry spent nothing).
fn on(history: &[DaySpend], day: NaiveDate) -> Decimal {
    history.iter().filter(|d| d.day == day).map(|d| d.amount).sum()
}

/// Spend at the end of the period `[start, end)`, forecast on the morning after `last` (the last
/// complete day): what the period has spent so far, plus, for each day still to come, the
/// recent level of spending (the last 7 days' mean) shaped by its weekday (that weekday's share
/// of its week over the trailing weeks). A history shorter than a week is taken as flat.
pub fn forecast_period_end(history: &[DaySpend], start: NaiveDate, end: NaiveDate, last: NaiveDate) -> Decimal {
    let spent: Decimal = history.iter().filter(|d| d.day >= start && d.day <= last).map(|d| d.amount).sum();
    let week: Vec<Decimal> = (0..7).map(|back| on(history, last - chrono::Duration::days(back))).collect();
    let level = week.iter().sum::<Decimal>() / Decimal::from(7);
    let mut ahead = Decimal::ZERO;
    let mut day = last.succ_opt().expect("a day after");
    while day < end {
        ahead += level * weekday_factor(history, day.weekday(), last);
        day = day.succ_opt().expect("a day after");
    }
    spent + ahead
}

/// How `weekday` compares with the mean day of its week, over the trailing weeks that end on
/// `last` (the median of those weeks' ratios; 1 without history or spend).
fn weekday_factor(history: &[DaySpend], weekday: chrono::Weekday, last: NaiveDate) -> Decimal {
    let mut ratios = Vec::new();
    for w in 0..WEEKS {
        let week_end = last - chrono::Duration::days(7 * w as i64);
        let days: Vec<NaiveDate> = (0..7).map(|back| week_end - chrono::Duration::days(back)).collect();
        if days.iter().any(|d| !history.iter().any(|h| h.day == *d)) {
            continue;
        }
        let mean = days.iter().map(|d| on(history, *d)).sum::<Decimal>() / Decimal::from(7);
        if mean.is_zero() {
            continue;
        }
        let same = days.iter().find(|d| d.weekday() == weekday).expect("a week has every weekday");
        ratios.push(on(history, *same) / mean);
    }
    median(&mut ratios).unwrap_or(Decimal::ONE)
}

fn median(values: &mut [Decimal]) -> Option<Decimal> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let n = values.len();
    Some(if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / Decimal::from(2) })
}

/// Why a day's spend is out of the ordinary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    pub day: NaiveDate,
    pub amount: Decimal,
    /// The median spend of the same weekday over the trailing weeks.
    pub usual: Decimal,
}

/// Whether `day`'s spend is far outside its norm: the same weekday over the trailing weeks,
/// by median and median absolute deviation (robust to the one odd day they may hold). Far is
/// more than 5 scaled deviations above the median and more than `floor` above it, so that
/// cents on a quiet scope never alert. `None` without at least three weeks of history.
pub fn anomaly(history: &[DaySpend], day: NaiveDate, floor: Decimal) -> Option<Anomaly> {
    let mut same: Vec<Decimal> = (1..=WEEKS as i64)
        .map(|w| day - chrono::Duration::days(7 * w))
        .filter(|d| history.iter().any(|h| h.day == *d))
        .map(|d| on(history, d))
        .collect();
    if same.len() < 3 {
        return None;
    }
    let usual = median(&mut same)?;
    let mut deviations: Vec<Decimal> = same.iter().map(|v| (*v - usual).abs()).collect();
    let mad = median(&mut deviations)?;
    // 1.4826 × MAD estimates the standard deviation of normally distributed spend; a flat history
    // (MAD 0) falls back to a tenth of the usual spend.
    let spread = (mad * Decimal::new(14826, 4)).max(usual / Decimal::from(10));
    let amount = on(history, day);
    let excess = amount - usual;
    (excess > floor && excess > spread * Decimal::from(5)).then_some(Anomaly { day, amount, usual })
}

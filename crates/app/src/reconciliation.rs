//! Is the bill right? Per day, provider and model, what the provider billed against what the
//! organization's usage costs at the price book's rates, the difference classified.

use burnrate_engine::reconciliation::Sides;
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;

use crate::{Actor, App, Error, Result};

/// Why billed and computed differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapKind {
    /// Within the tolerance.
    None,
    /// One side has no quantity at all: billed without usage, or usage never billed.
    Quantity,
    /// Both sides have quantities and their costs differ beyond the tolerance.
    Price,
    /// Some usage has no rate: its cost cannot be computed.
    Unpriced,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::None => "none",
            GapKind::Quantity => "quantity",
            GapKind::Price => "price",
            GapKind::Unpriced => "unpriced",
        }
    }
}

/// One day, provider and model.
#[derive(Clone, Debug)]
pub struct Row {
    pub sides: Sides,
    /// Billed minus computed; `None` when either is unknown.
    pub difference: Option<Decimal>,
    pub gap_kind: GapKind,
    /// The share of the billed cost that priced usage explains (computed ÷ billed).
    pub coverage: Option<Decimal>,
}

pub struct Reconciliation {
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
    pub rows: Vec<Row>,
    /// `(provider, model)` with usage no rate prices, in order.
    pub unpriced_models: Vec<(String, String)>,
}

/// How `sides` differ, with a tolerance of `percent` of the billed cost (at least a cent).
pub fn classify(sides: &Sides, percent: Decimal) -> (Option<Decimal>, GapKind, Option<Decimal>) {
    // No cost line naming the model that day: nothing was billed for it.
    let billed = sides.billed.unwrap_or_default();
    let coverage = match (sides.billed, sides.computed) {
        (Some(b), Some(c)) if !b.is_zero() => Some((c / b).round_dp(4).normalize()),
        _ => None,
    };
    if sides.unpriced_rows > 0 {
        return (None, GapKind::Unpriced, coverage);
    }
    // Every usage row is priced here (unpriced ones returned above): no sum means no usage.
    let computed = sides.computed.unwrap_or_default();
    let difference = billed - computed;
    let tolerance = (billed.abs() * percent / Decimal::ONE_HUNDRED).max(Decimal::new(1, 2));
    let kind = if difference.abs() <= tolerance {
        GapKind::None
    } else if sides.usage_rows == 0 || sides.billed.is_none() {
        GapKind::Quantity
    } else {
        GapKind::Price
    };
    (Some(difference.normalize()), kind, coverage)
}

impl App {
    /// Billed against computed cost for the days `from` through `to` (by default the last 30
    /// complete UTC days), every member may read it.
    pub async fn reconciliation(&self, actor: &Actor, from: Option<&str>, to: Option<&str>) -> Result<Reconciliation> {
        let day = crate::parse_day;
        let yesterday = self.clock.now().date_naive() - Duration::days(1);
        let to = to.map(|t| day("to", t)).transpose()?.unwrap_or(yesterday);
        let from = from.map(|f| day("from", f)).transpose()?.unwrap_or(to - Duration::days(29));
        if to < from {
            return Err(Error::invalid("to", "to: before from"));
        }
        if (to - from).num_days() > 731 {
            return Err(Error::invalid("to", "to: at most two years at a time"));
        }
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let stored = tx.reconciliation_tolerance().await?;
        tx.commit().await?;
        // An unreadable setting is an error, never a default.
        let percent = Decimal::from_str_exact(&stored)
            .map_err(|_| Error::internal(format!("the reconciliation tolerance {stored:?} does not read")))?;
        let engine = self.engine.as_ref().ok_or(Error::NotFound)?;
        let sides =
            engine.reconciliation_sides(actor.scope, from, to + Duration::days(1)).await.map_err(Error::internal)?;
        let mut unpriced_models: Vec<(String, String)> =
            sides.iter().filter(|s| s.unpriced_rows > 0).map(|s| (s.provider.clone(), s.model.clone())).collect();
        unpriced_models.sort();
        unpriced_models.dedup();
        let rows = sides
            .into_iter()
            .map(|sides| {
                let (difference, gap_kind, coverage) = classify(&sides, percent);
                Row { sides, difference, gap_kind, coverage }
            })
            .collect();
        Ok(Reconciliation { from, to, rows, unpriced_models })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sides(billed: Option<&str>, computed: Option<&str>, rows: i64, unpriced: i64) -> Sides {
        Sides {
            day: NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
            provider: "Anthropic".into(),
            model: "claude-sonnet-4-5".into(),
            billed: billed.map(|b| b.parse().unwrap()),
            computed: computed.map(|c| c.parse().unwrap()),
            usage_rows: rows,
            unpriced_rows: unpriced,
        }
    }

    #[test]
    fn differences_are_classified_by_what_is_missing_and_how_far_apart_the_sides_are() {
        let kind = |s: Sides| classify(&s, Decimal::ONE).1;
        assert_eq!(kind(sides(Some("100"), Some("99.5"), 3, 0)), GapKind::None, "within 1 %");
        assert_eq!(kind(sides(Some("0.004"), Some("0"), 1, 0)), GapKind::None, "within a cent");
        assert_eq!(kind(sides(Some("100"), Some("90"), 3, 0)), GapKind::Price);
        assert_eq!(kind(sides(Some("100"), None, 0, 0)), GapKind::Quantity, "billed, no usage");
        assert_eq!(kind(sides(None, Some("12"), 2, 0)), GapKind::Quantity, "usage never billed");
        assert_eq!(kind(sides(Some("100"), Some("60"), 3, 1)), GapKind::Unpriced);
        let (difference, _, coverage) = classify(&sides(Some("100"), Some("90"), 3, 0), Decimal::ONE);
        assert_eq!((difference.unwrap().to_string(), coverage.unwrap().to_string()), ("10".into(), "0.9".into()));
        assert_eq!(
            classify(&sides(Some("100"), Some("60"), 3, 1), Decimal::ONE).0,
            None,
            "no difference of an unknown"
        );
        assert_eq!(classify(&sides(Some("100"), Some("90"), 3, 0), Decimal::TEN).1, GapKind::None, "its own tolerance");
    }
}

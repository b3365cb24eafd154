//! Who caused the bill: billed cost attributed to the requests applications reported, grouped
//! by customer, feature, team, user or service, with what no request explains (the engine's
//! `attribution` does the sharing; see there).

pub use burnrate_engine::attribution::{Attributed, Attribution, Billed};
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;

use crate::{Actor, App, Error, Result};

/// What attributed spend is grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributionKey {
    Customer,
    Feature,
    Team,
    User,
    Service,
}

impl AttributionKey {
    pub const ALL: [AttributionKey; 5] = [Self::Customer, Self::Feature, Self::Team, Self::User, Self::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Feature => "feature",
            Self::Team => "team",
            Self::User => "user",
            Self::Service => "service",
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text).ok_or_else(|| {
            Error::invalid(
                "group_by",
                format!("group_by: {text:?} is not one of customer, feature, team, user, service"),
            )
        })
    }

    fn of(self, row: &Attributed) -> Option<&str> {
        match self {
            Self::Customer => row.who.customer.as_deref(),
            Self::Feature => row.who.feature.as_deref(),
            Self::Team => row.who.team.as_deref(),
            Self::User => row.who.user_id.as_deref(),
            Self::Service => row.who.service.as_deref(),
        }
    }
}

/// Attributed spend of a range of days, by one key.
pub struct AttributedSpend {
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
    /// Each value of the key (`None`: requests that did not say) and its share of the bill,
    /// largest first.
    pub rows: Vec<(Option<String>, Decimal)>,
    /// What no request explains.
    pub unattributed: Decimal,
    /// Everything billed: the rows and the unattributed part sum to it exactly.
    pub billed_total: Decimal,
}

impl AttributedSpend {
    /// `attribution`'s shares summed by `key`, largest first.
    pub fn of(attribution: &Attribution, key: AttributionKey, (from, to): (NaiveDate, NaiveDate)) -> Self {
        let mut sums: std::collections::BTreeMap<Option<String>, Decimal> = Default::default();
        for row in &attribution.attributed {
            *sums.entry(key.of(row).map(str::to_owned)).or_default() += row.attributed_cost;
        }
        let mut rows: Vec<(Option<String>, Decimal)> = sums.into_iter().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Self {
            from,
            to,
            rows,
            unattributed: attribution.billed.iter().map(|b| b.unattributed).sum(),
            billed_total: attribution.billed.iter().map(|b| b.billed_cost).sum(),
        }
    }
}

impl App {
    /// The attribution of the UTC days `from` through `to` (by default the last 30 complete
    /// days); every member may read it.
    pub async fn attribution(
        &self,
        actor: &Actor,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<((NaiveDate, NaiveDate), Attribution)> {
        let (from, to) = self.report_days(actor, from, to).await?;
        let engine = self.engine.as_ref().ok_or(Error::NotFound)?;
        let attribution =
            engine.attribution(actor.scope, from, to + Duration::days(1)).await.map_err(Error::internal)?;
        Ok(((from, to), attribution))
    }

    /// [`App::attribution`] summed by `group_by`.
    pub async fn attributed_spend(
        &self,
        actor: &Actor,
        group_by: AttributionKey,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<AttributedSpend> {
        let (days, attribution) = self.attribution(actor, from, to).await?;
        Ok(AttributedSpend::of(&attribution, group_by, days))
    }
}

//! Is the bill right? Per day, provider, model and project, what the provider billed against
//! what the organization's usage costs at the price book's rates, the difference classified (by
//! the engine's `reconciliation`, the same table SQL reads).

pub use burnrate_engine::reconciliation::{GapKind, Row};
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;

use crate::{Actor, App, Error, Result};

pub struct Reconciliation {
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
    pub rows: Vec<Row>,
    /// `(provider, model)` with usage no rate prices, in order.
    pub unpriced_models: Vec<(String, String)>,
}

impl App {
    /// Billed against computed cost for the UTC days `from` through `to` (by default the last 30
    /// days complete in the organization's reporting zone); every member may read it.
    pub async fn reconciliation(&self, actor: &Actor, from: Option<&str>, to: Option<&str>) -> Result<Reconciliation> {
        let (from, to) = self.report_days(actor, from, to).await?;
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let stored = tx.reconciliation_tolerance().await?;
        tx.commit().await?;
        // An unreadable setting is an error, never a default.
        let percent = Decimal::from_str_exact(&stored)
            .map_err(|_| Error::internal(format!("the reconciliation tolerance {stored:?} does not read")))?;
        let engine = self.engine.as_ref().ok_or(Error::NotFound)?;
        let rows =
            engine.reconciliation(actor.scope, from, to + Duration::days(1), percent).await.map_err(Error::internal)?;
        let mut unpriced_models: Vec<(String, String)> =
            rows.iter().filter(|r| r.unpriced_rows > 0).map(|r| (r.provider.clone(), r.model.clone())).collect();
        unpriced_models.sort();
        unpriced_models.dedup();
        Ok(Reconciliation { from, to, rows, unpriced_models })
    }

    /// The UTC days `from` through `to` of a report asked for as text: by default the last 30
    /// days complete in the organization's reporting zone, at most two years.
    pub(crate) async fn report_days(
        &self,
        actor: &Actor,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(NaiveDate, NaiveDate)> {
        let day = crate::parse_day;
        let zone = self.reporting_zone(actor).await?;
        let yesterday = zone.date_of(self.clock.now()) - Duration::days(1);
        let to = to.map(|t| day("to", t)).transpose()?.unwrap_or(yesterday);
        let from = from.map(|f| day("from", f)).transpose()?.unwrap_or(to - Duration::days(29));
        if to < from {
            return Err(Error::invalid("to", "to: before from"));
        }
        if (to - from).num_days() > 731 {
            return Err(Error::invalid("to", "to: at most two years at a time"));
        }
        Ok((from, to))
    }
}

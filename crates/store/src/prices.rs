//! An organization's own prices (negotiated rates, discounts): effective-dated, for one
//! provider's model, winning over the instance's catalogue when its usage is priced.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::accounts::now;
use crate::{Result, TenantTx, on};

/// An override as stored: a discount in percent, or rates by price key (JSON), never both.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PriceOverrideRecord {
    pub id: Uuid,
    pub provider: String,
    pub model: String,
    pub effective_from: NaiveDate,
    /// The last day it holds; open-ended when `None`.
    pub effective_to: Option<NaiveDate>,
    pub discount_percent: Option<String>,
    /// `{"input_mtok": "2.5", …}`.
    pub rates: Option<String>,
    pub note: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// A new override (its id and time are given here).
pub struct NewPriceOverride<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    pub effective_from: NaiveDate,
    pub effective_to: Option<NaiveDate>,
    pub discount_percent: Option<&'a str>,
    pub rates: Option<&'a str>,
    pub note: &'a str,
    pub created_by: Uuid,
}

impl TenantTx {
    /// The organization's overrides, oldest first.
    pub async fn price_overrides(&mut self) -> Result<Vec<PriceOverrideRecord>> {
        Ok(
            on!(&mut self.inner.tx, c => sqlx::query_as("SELECT id, provider, model, effective_from, effective_to, discount_percent, rates, note, created_by, created_at FROM price_overrides WHERE org_id = $1 ORDER BY created_at, id")
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?,
        )
    }

    pub async fn create_price_override(&mut self, new: &NewPriceOverride<'_>) -> Result<Uuid> {
        let id = Uuid::now_v7();
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO price_overrides (id, org_id, provider, model, effective_from, effective_to, discount_percent, rates, note, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(id).bind(self.scope.org_id().as_uuid()).bind(new.provider).bind(new.model).bind(new.effective_from)
            .bind(new.effective_to).bind(new.discount_percent).bind(new.rates).bind(new.note).bind(new.created_by).bind(now())
            .execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    /// Removes an override; false when there is none of that id.
    pub async fn delete_price_override(&mut self, id: Uuid) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("DELETE FROM price_overrides WHERE org_id = $1 AND id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

impl TenantTx {
    /// How far a day's bill may differ from its priced usage before it is a gap, in percent
    /// (decimal text).
    pub async fn reconciliation_tolerance(&mut self) -> Result<String> {
        Ok(
            on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT reconciliation_tolerance_percent FROM organizations WHERE id = $1")
            .bind(self.scope.org_id().as_uuid()).fetch_one(c).await)?,
        )
    }

    /// Sets the tolerance; the caller has checked it is a percentage.
    pub async fn set_reconciliation_tolerance(&mut self, percent: &str) -> Result<()> {
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE organizations SET reconciliation_tolerance_percent = $1 WHERE id = $2")
            .bind(percent).bind(self.scope.org_id().as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }
}

impl TenantTx {
    /// Records that the reconciliation gap of `day` and `provider` was raised; false when it was
    /// before (a gap is raised once).
    pub async fn record_reconciliation_gap(&mut self, day: NaiveDate, provider: &str) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO reconciliation_gaps (org_id, day, provider, raised_at) VALUES ($1, $2, $3, $4) ON CONFLICT (org_id, day, provider) DO NOTHING")
            .bind(self.scope.org_id().as_uuid()).bind(day).bind(provider).bind(now())
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

//! Budgets of an organization. Amounts are kept as exact decimal text.

use burnrate_core::{BudgetId, BudgetPeriod, BudgetScope, Currency, Money, Thresholds, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::accounts::now;
use crate::{Result, StoreError, TenantTx, on};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetRecord {
    pub id: BudgetId,
    pub name: String,
    pub amount: Money,
    pub period: BudgetPeriod,
    pub scope: BudgetScope,
    pub thresholds: Thresholds,
    pub forecast_alert: bool,
    /// Members who get this budget's alerts by email.
    pub email_members: Vec<UserId>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

pub struct NewBudget<'a> {
    pub name: &'a str,
    pub amount: Money,
    pub period: BudgetPeriod,
    pub scope: &'a BudgetScope,
    pub thresholds: &'a Thresholds,
    pub forecast_alert: bool,
    pub email_members: &'a [UserId],
    pub created_by: UserId,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    amount: String,
    currency: String,
    period: String,
    scope: String,
    thresholds: String,
    forecast_alert: bool,
    email_members: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for BudgetRecord {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("budget {}: {what}", r.id));
        let currency = Currency::parse(&r.currency).map_err(|_| corrupt("currency"))?;
        let (amount, _) = Money::parse(&r.amount, currency).map_err(|_| corrupt("amount"))?;
        Ok(Self {
            id: BudgetId::from_uuid(r.id),
            period: BudgetPeriod::parse(&r.period).ok_or_else(|| corrupt("period"))?,
            scope: serde_json::from_str(&r.scope).map_err(|_| corrupt("scope"))?,
            thresholds: serde_json::from_str(&r.thresholds).map_err(|_| corrupt("thresholds"))?,
            name: r.name,
            amount,
            forecast_alert: r.forecast_alert,
            email_members: serde_json::from_str::<Vec<Uuid>>(&r.email_members)
                .map_err(|_| corrupt("email members"))?
                .into_iter()
                .map(UserId::from_uuid)
                .collect(),
            created_by: UserId::from_uuid(r.created_by),
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str =
    "id, name, amount, currency, period, scope, thresholds, forecast_alert, email_members, created_by, created_at";

impl TenantTx {
    pub async fn create_budget(&mut self, new: &NewBudget<'_>) -> Result<BudgetId> {
        let id = BudgetId::generate();
        let scope = serde_json::to_string(new.scope).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let thresholds = serde_json::to_string(new.thresholds).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let members: Vec<Uuid> = new.email_members.iter().map(|m| m.as_uuid()).collect();
        let members = serde_json::to_string(&members).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let res = on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO budgets (id, org_id, name, amount, currency, period, scope, thresholds, forecast_alert, email_members, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(id.as_uuid()).bind(self.scope.org_id().as_uuid()).bind(new.name).bind(new.amount.amount().to_string())
            .bind(new.amount.currency().to_string()).bind(new.period.as_str()).bind(&scope).bind(&thresholds)
            .bind(new.forecast_alert).bind(&members).bind(new.created_by.as_uuid()).bind(now()).execute(c).await.map(|_| ()));
        match res {
            Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::Conflict("a budget with this name")),
            other => Ok(other.map(|_| id)?),
        }
    }

    /// This organization's budgets by name.
    pub async fn budgets(&mut self) -> Result<Vec<BudgetRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM budgets WHERE org_id = $1 ORDER BY name");
        let rows: Vec<Row> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    pub async fn budget(&mut self, id: BudgetId) -> Result<Option<BudgetRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM budgets WHERE org_id = $1 AND id = $2");
        let row: Option<Row> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).fetch_optional(c).await)?;
        row.map(TryInto::try_into).transpose()
    }

    /// Changes a budget's amount (same currency), percentages and forecast alert; false when it
    /// no longer exists.
    pub async fn update_budget(
        &mut self,
        id: BudgetId,
        amount: Money,
        thresholds: &Thresholds,
        forecast_alert: bool,
    ) -> Result<bool> {
        let thresholds = serde_json::to_string(thresholds).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE budgets SET amount = $1, thresholds = $2, forecast_alert = $3 WHERE org_id = $4 AND id = $5 AND currency = $6")
            .bind(amount.amount().to_string()).bind(&thresholds).bind(forecast_alert).bind(self.scope.org_id().as_uuid())
            .bind(id.as_uuid()).bind(amount.currency().to_string()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn delete_budget(&mut self, id: BudgetId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("DELETE FROM budgets WHERE org_id = $1 AND id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}

//! Budgets (soft: burnrate tells people, it cannot stop a provider's calls). Setting and lowering
//! apply at once; raising the amount, alerting later or dropping the forecast alert is a
//! `budget_raise` under the approval policy (S17).

use burnrate_core::{
    BudgetId, BudgetPeriod, BudgetScope, Currency, Money, ReportingZone, Rounding, Thresholds, UserId,
};
pub use burnrate_notify::BudgetStatus;
pub use burnrate_store::{AlertEvent, AlertKind, BudgetRecord};
use burnrate_store::{AuditAction, NewBudget};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::{Actor, App, Change, Error, Result, Submitted};

/// A new budget, as the API takes it and the page's form is read into.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBudgetInput {
    pub name: String,
    /// Decimal text, `"1500.00"`: money never travels as a float.
    pub amount: String,
    /// A three-letter code such as `USD`.
    pub currency: String,
    /// month, quarter or year.
    pub period: String,
    /// What spend counts (all of it by default): any of `provider`, `source_id`, `project`,
    /// `model` (a family with `*`, such as `gpt-4o*`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub scope: BudgetScope,
    pub thresholds: Option<Vec<u32>>,
    #[serde(default = "yes")]
    pub forecast_alert: bool,
    /// Members (user ids) who get this budget's alerts by email.
    #[serde(default)]
    pub email_members: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A change to a budget: any of its amount (same currency), percentages and forecast alert.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetChange {
    pub amount: Option<String>,
    pub thresholds: Option<Vec<u32>>,
    pub forecast_alert: Option<bool>,
}

fn positive_amount(raw: &str, currency: Currency) -> Result<Money> {
    match Money::parse(raw, currency) {
        Ok((m, Rounding::Exact)) if m.amount() > rust_decimal::Decimal::ZERO => Ok(m),
        _ => Err(Error::invalid("amount", "amount: a positive decimal such as \"1500.00\", at most 9 decimals")),
    }
}

fn thresholds(raw: Option<Vec<u32>>) -> Result<Option<Thresholds>> {
    raw.map(|t| Thresholds::new(t).map_err(|e| Error::invalid("thresholds", e.to_string()))).transpose()
}

/// Whether `new` alerts later than `old` anywhere: some old percentage has no new one at or
/// below it.
fn alerts_later(old: &Thresholds, new: &Thresholds) -> bool {
    old.percents().iter().any(|p| !new.percents().iter().any(|q| q <= p))
}

impl App {
    /// Validates and stores a budget, audited; returns it as stored.
    pub async fn create_budget(&self, actor: &Actor, input: NewBudgetInput) -> Result<BudgetRecord> {
        actor.require_admin()?;
        let name = crate::api_keys::label(&input.name)?;
        let currency = Currency::parse(&input.currency)
            .map_err(|_| Error::invalid("currency", "currency: a three-letter code such as USD"))?;
        let amount = positive_amount(&input.amount, currency)?;
        let period = BudgetPeriod::parse(&input.period)
            .ok_or_else(|| Error::invalid("period", "period: month, quarter or year"))?;
        input.scope.validate().map_err(|m| Error::invalid("scope", m))?;
        let thresholds = thresholds(input.thresholds)?.unwrap_or_default();
        let mut tx = self.store.tenant(actor.scope).await?;
        let members = tx.members(&self.vault).await?;
        let mut email_members: Vec<UserId> = Vec::with_capacity(input.email_members.len());
        for raw in &input.email_members {
            let member = members.iter().find(|m| m.user_id.to_string() == raw.trim()).ok_or_else(|| {
                Error::invalid("email_members", format!("email_members: {raw:?} is not a member of this organization"))
            })?;
            email_members.push(member.user_id);
        }
        let new = NewBudget {
            name: &name,
            amount,
            period,
            scope: &input.scope,
            thresholds: &thresholds,
            forecast_alert: input.forecast_alert,
            email_members: &email_members,
            created_by: actor.member,
        };
        let id = tx.create_budget(&new).await?;
        let details = json!({ "name": name, "amount": amount.amount().to_string(), "currency": currency.to_string(), "period": period.as_str() });
        tx.audit(actor.entry(AuditAction::BudgetCreated, "budget", id.to_string(), details)).await?;
        let created = tx.budget(id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(created)
    }

    /// Changes a budget. Lowering applies at once; raising goes through the approval policy.
    pub async fn change_budget(&self, actor: &Actor, id: BudgetId, change: BudgetChange) -> Result<Submitted> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let budget = tx.budget(id).await?.ok_or(Error::NotFound)?;
        let currency = budget.amount.currency();
        let amount = match &change.amount {
            None => budget.amount,
            Some(raw) => positive_amount(raw, currency)?,
        };
        let thresholds = thresholds(change.thresholds)?.unwrap_or_else(|| budget.thresholds.clone());
        let forecast_alert = change.forecast_alert.unwrap_or(budget.forecast_alert);
        let before = json!({ "amount": budget.amount.amount().to_string(), "currency": currency.as_str(),
                             "thresholds": budget.thresholds, "forecast_alert": budget.forecast_alert });
        let raise = amount.amount() > budget.amount.amount()
            || alerts_later(&budget.thresholds, &thresholds)
            || (budget.forecast_alert && !forecast_alert);
        if raise {
            drop(tx);
            let change = Change::BudgetRaise {
                budget: id,
                name: budget.name.clone(),
                amount: amount.amount().to_string(),
                currency: currency.as_str().to_owned(),
                thresholds: thresholds.percents().to_vec(),
                forecast_alert,
            };
            return self.submit(actor, change, Some(before)).await;
        }
        if !tx.update_budget(id, amount, &thresholds, forecast_alert).await? {
            return Err(Error::NotFound);
        }
        let after = json!({ "amount": amount.amount().to_string(), "thresholds": thresholds, "forecast_alert": forecast_alert });
        let details = json!({ "change": { "before": before, "after": after } });
        tx.audit(actor.entry(AuditAction::BudgetUpdated, "budget", id.to_string(), details)).await?;
        tx.commit().await?;
        Ok(Submitted::Applied(id.as_uuid()))
    }

    /// One budget of the actor's organization.
    pub async fn budget(&self, actor: &Actor, id: BudgetId) -> Result<BudgetRecord> {
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let budget = tx.budget(id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(budget)
    }

    pub async fn delete_budget(&self, actor: &Actor, id: BudgetId) -> Result<()> {
        self.admin_change(actor, ("budget", id.to_string()), AuditAction::BudgetDeleted, async |tx| {
            Ok(tx.delete_budget(id).await?)
        })
        .await
    }
}

impl App {
    /// The organization's latest `limit` alerts, newest first.
    pub async fn alerts(&self, actor: &Actor, limit: i64) -> Result<Vec<AlertEvent>> {
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let alerts = tx.alert_events(limit).await?;
        tx.commit().await?;
        Ok(alerts)
    }

    /// The organization's reporting time zone, as stored (an IANA name).
    pub async fn reporting_time_zone(&self, actor: &Actor) -> Result<String> {
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let zone = tx.reporting_tz().await?;
        tx.commit().await?;
        Ok(zone)
    }

    /// The organization's reporting time zone, for computing periods and days.
    pub async fn reporting_zone(&self, actor: &Actor) -> Result<ReportingZone> {
        let name = self.reporting_time_zone(actor).await?;
        // Stored only after it parsed; one that no longer does is the store's fault, not the reader's.
        ReportingZone::parse(&name).map_err(|e| Error::internal(format!("stored reporting time zone: {e}")))
    }

    /// Where each of the organization's budgets stands now: spent, forecast and the thresholds passed.
    pub async fn budget_statuses(&self, actor: &Actor) -> Result<Vec<BudgetStatus>> {
        self.notifier()?.statuses(actor.scope, self.clock.now()).await.map_err(Error::internal)
    }
}

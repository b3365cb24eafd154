//! Alert events and webhook deliveries of an organization, and its reporting time zone.
//!
//! An alert event is keyed by budget × kind × threshold × period: recording one that exists
//! already does nothing, which is how an alert fires once per period however often the budgets
//! are evaluated, and why a restatement that lowers spend never makes it fire twice.

use burnrate_core::{BudgetId, DeliveryId, WebhookId};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::accounts::now;
use crate::{Result, StoreError, TenantTx, on};

/// What made an alert fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    /// Actual spend reached a percentage of the budget.
    Threshold,
    /// The period-end forecast reached the budget.
    Forecast,
    /// A day's spend was far outside its recent norm.
    Anomaly,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Threshold => "threshold",
            AlertKind::Forecast => "forecast",
            AlertKind::Anomaly => "anomaly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "threshold" => Some(AlertKind::Threshold),
            "forecast" => Some(AlertKind::Forecast),
            "anomaly" => Some(AlertKind::Anomaly),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertEvent {
    pub id: Uuid,
    pub budget_id: BudgetId,
    pub kind: AlertKind,
    /// The percentage crossed (threshold), 100 (forecast) or 0 (anomaly).
    pub threshold: u32,
    /// The budget period (threshold, forecast) or the day (anomaly), local dates, end exclusive.
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    /// Exact decimal text in `currency`: spend so far in the period, or the day's spend.
    pub spend: String,
    /// The period-end forecast (forecast alerts), or the day's usual spend (anomalies).
    pub forecast: Option<String>,
    pub currency: String,
    pub fired_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: Uuid,
    budget_id: Uuid,
    kind: String,
    threshold: i32,
    period_start: NaiveDate,
    period_end: NaiveDate,
    spend: String,
    forecast: Option<String>,
    currency: String,
    fired_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for AlertEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self> {
        Ok(Self {
            kind: AlertKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("alert event {}: kind", r.id)))?,
            id: r.id,
            budget_id: BudgetId::from_uuid(r.budget_id),
            threshold: u32::try_from(r.threshold).unwrap_or_default(),
            period_start: r.period_start,
            period_end: r.period_end,
            spend: r.spend,
            forecast: r.forecast,
            currency: r.currency,
            fired_at: r.fired_at,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Queued, or waiting for its next attempt.
    Pending,
    Delivered,
    /// Every attempt failed: in the dead-letter list until someone redelivers it.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_type: String,
    /// The event's JSON, exactly as signed and sent.
    pub payload: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    /// When the change that caused the event was committed (for the end-to-end delay).
    pub committed_at_ms: i64,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    webhook_id: Uuid,
    event_type: String,
    payload: String,
    state: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    committed_at_ms: i64,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        Ok(Self {
            state: DeliveryState::parse(&r.state)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery {}: state", r.id)))?,
            id: DeliveryId::from_uuid(r.id),
            webhook_id: WebhookId::from_uuid(r.webhook_id),
            event_type: r.event_type,
            payload: r.payload,
            attempts: u32::try_from(r.attempts).unwrap_or_default(),
            created_at: r.created_at,
            committed_at_ms: r.committed_at_ms,
            finished_at: r.finished_at,
        })
    }
}

/// One try at sending a delivery: what the receiver answered (or why there was no answer).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    pub status: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

const EVENT_COLUMNS: &str =
    "id, budget_id, kind, threshold, period_start, period_end, spend, forecast, currency, fired_at";
const DELIVERY_COLUMNS: &str =
    "id, webhook_id, event_type, payload, state, attempts, created_at, committed_at_ms, finished_at";

impl TenantTx {
    /// The IANA name of the time zone this organization's periods and days follow.
    pub async fn reporting_tz(&mut self) -> Result<String> {
        let tz: String = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT reporting_tz FROM organizations WHERE id = $1")
            .bind(self.scope.org_id().as_uuid()).fetch_one(c).await)?;
        Ok(tz)
    }

    /// Sets the reporting time zone; the caller has checked that `tz` is a known IANA name.
    pub async fn set_reporting_tz(&mut self, tz: &str) -> Result<()> {
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE organizations SET reporting_tz = $1 WHERE id = $2")
            .bind(tz).bind(self.scope.org_id().as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Records `event` unless its budget × kind × threshold × period has fired already; returns
    /// whether it is new.
    pub async fn record_alert(&mut self, event: &AlertEvent) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO alert_events (id, org_id, budget_id, kind, threshold, period_start, period_end, spend, forecast, currency, fired_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (org_id, budget_id, kind, threshold, period_start) DO NOTHING")
            .bind(event.id).bind(self.scope.org_id().as_uuid()).bind(event.budget_id.as_uuid()).bind(event.kind.as_str())
            .bind(i32::try_from(event.threshold).unwrap_or(i32::MAX)).bind(event.period_start).bind(event.period_end)
            .bind(&event.spend).bind(&event.forecast).bind(&event.currency).bind(event.fired_at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The organization's alert events, newest first.
    pub async fn alert_events(&mut self, limit: i64) -> Result<Vec<AlertEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM alert_events WHERE org_id = $1 ORDER BY fired_at DESC, id DESC LIMIT $2"
        );
        let rows: Vec<EventRow> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).bind(limit).fetch_all(c).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Adds a pending delivery of `payload` to `webhook`.
    pub async fn create_delivery(
        &mut self,
        webhook: WebhookId,
        event_type: &str,
        payload: &str,
        committed_at_ms: i64,
    ) -> Result<DeliveryId> {
        let id = DeliveryId::generate();
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO deliveries (id, org_id, webhook_id, event_type, payload, state, attempts, created_at, committed_at_ms) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7)")
            .bind(id.as_uuid()).bind(self.scope.org_id().as_uuid()).bind(webhook.as_uuid()).bind(event_type).bind(payload)
            .bind(now()).bind(committed_at_ms).execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    pub async fn delivery(&mut self, id: DeliveryId) -> Result<Option<Delivery>> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE org_id = $1 AND id = $2");
        let row: Option<DeliveryRow> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).fetch_optional(c).await)?;
        row.map(TryInto::try_into).transpose()
    }

    /// A webhook's deliveries, newest first; `state` picks one kind (the dead-letter list).
    pub async fn deliveries(
        &mut self,
        webhook: WebhookId,
        state: Option<DeliveryState>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE org_id = $1 AND webhook_id = $2 AND ($3 IS NULL OR state = $3) ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let rows: Vec<DeliveryRow> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).bind(webhook.as_uuid()).bind(state.map(DeliveryState::as_str)).bind(limit)
            .fetch_all(c).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// How many of the organization's deliveries are dead, by webhook.
    pub async fn dead_letter_counts(&mut self) -> Result<Vec<(WebhookId, i64)>> {
        let rows: Vec<(Uuid, i64)> = on!(&mut self.inner.tx, c => sqlx::query_as("SELECT webhook_id, COUNT(*) FROM deliveries WHERE org_id = $1 AND state = 'dead' GROUP BY webhook_id")
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        Ok(rows.into_iter().map(|(webhook, n)| (WebhookId::from_uuid(webhook), n)).collect())
    }

    /// Logs one attempt and moves the delivery to `state` (`Pending` while retries remain).
    pub async fn record_delivery_attempt(
        &mut self,
        delivery: DeliveryId,
        attempt: &DeliveryAttempt,
        state: DeliveryState,
    ) -> Result<()> {
        let (org, delivery) = (self.scope.org_id().as_uuid(), delivery.as_uuid());
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO delivery_attempts (id, org_id, delivery_id, at, status, latency_ms, error) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(Uuid::now_v7()).bind(org).bind(delivery).bind(attempt.at).bind(attempt.status)
            .bind(attempt.latency_ms).bind(&attempt.error).execute(c).await.map(|_| ()))?;
        let finished = (state != DeliveryState::Pending).then_some(attempt.at);
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE deliveries SET state = $1, attempts = attempts + 1, finished_at = $2 WHERE org_id = $3 AND id = $4")
            .bind(state.as_str()).bind(finished).bind(org).bind(delivery).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Puts a dead delivery back in the queue; false when it is not dead.
    pub async fn revive_delivery(&mut self, delivery: DeliveryId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE deliveries SET state = 'pending', finished_at = NULL WHERE org_id = $1 AND id = $2 AND state = 'dead'")
            .bind(self.scope.org_id().as_uuid()).bind(delivery.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// A delivery's attempts, oldest first.
    pub async fn delivery_attempts(&mut self, delivery: DeliveryId) -> Result<Vec<DeliveryAttempt>> {
        let rows: Vec<DeliveryAttempt> = on!(&mut self.inner.tx, c => sqlx::query_as("SELECT at, status, latency_ms, error FROM delivery_attempts WHERE org_id = $1 AND delivery_id = $2 ORDER BY at, id")
            .bind(self.scope.org_id().as_uuid()).bind(delivery.as_uuid()).fetch_all(c).await)?;
        Ok(rows)
    }
}

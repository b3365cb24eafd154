//! Telling people about spend: where each budget stands ([`evaluate`]), the alerts that fire from
//! it — once per budget × threshold × period — and their delivery by email ([`mail`]) and signed
//! webhooks ([`delivery`], [`webhook`]); gaps between bills and priced usage, once per day and
//! provider ([`reconciliation`]); and the weekly digest to admins ([`digest`]).
//!
//! Evaluation runs after every sync and hourly, as a job; an alert that fires is recorded, and its
//! deliveries and mail are queued, in one transaction. Deliveries are jobs too, so a restart, a
//! crash or a receiver that is down loses nothing: the queue retries with backoff until the
//! attempts run out, then the delivery waits in the dead-letter list for someone to redeliver it.

pub mod delivery;
pub mod digest;
pub mod evaluate;
pub mod forecast;
pub mod mail;
pub mod reconciliation;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use burnrate_core::{Money, ReportingZone};
use burnrate_engine::{Engine, EngineError};
use burnrate_net::HttpClient;
use burnrate_store::{
    AlertEvent, AlertKind, BudgetRecord, EVALUATE_JOB, OrgScope, OutboxMessage, RateLimiter, Store, StoreError, Vault,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

pub use delivery::DeliveryPolicy;
pub use digest::Digest;
pub use evaluate::{Alert, BudgetStatus, Call, PeriodSpend, budget_status, period_spend};
pub use forecast::{Anomaly, DaySpend, anomaly, forecast_period_end};
pub use mail::Mailer;
pub use webhook::{SignedWebhook, WebhookSecret, WebhookSecretError};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("reading spend: {0}")]
    Engine(#[from] EngineError),
    #[error("reading spend: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("{0}")]
    Data(String),
}

/// The job kind of one webhook delivery.
pub const DELIVER_JOB: &str = "deliver";
/// How long a claimed evaluation or digest may take before another worker may take it over.
const JOB_LEASE: Duration = Duration::from_secs(10 * 60);
/// How often an idle worker looks for jobs queued by another instance.
const POLL: Duration = Duration::from_millis(500);

/// How alerts link and pace themselves.
#[derive(Clone)]
pub struct NotifierConfig {
    /// Where links in alerts point: the origin users reach.
    pub public_url: url::Url,
    pub policy: DeliveryPolicy,
    /// The application's one limiter (S15: per destination and per organization).
    pub limiter: RateLimiter,
}

/// The jobs that work for one organization at a time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OrgJob {
    Evaluate,
    Digest,
    SyncFailed,
}

impl OrgJob {
    /// The job kind, and the wait before a failed one is tried again.
    fn kind_and_retry(self) -> (&'static str, Duration) {
        match self {
            // The next hour's evaluation covers what a failed one missed.
            OrgJob::Evaluate => (EVALUATE_JOB, Duration::from_secs(60)),
            OrgJob::Digest => (digest::DIGEST_JOB, Duration::from_secs(15 * 60)),
            OrgJob::SyncFailed => (burnrate_store::SYNC_FAILED_JOB, Duration::from_secs(60)),
        }
    }
}

/// Everything alerts need; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    vault: Arc<Vault>,
    engine: Engine,
    http: HttpClient,
    /// Where links in alerts point: the origin users reach.
    public_url: url::Url,
    policy: DeliveryPolicy,
    limiter: RateLimiter,
    mailer: Mailer,
    worker: String,
}

impl Notifier {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        engine: Engine,
        http: HttpClient,
        mailer: Mailer,
        config: NotifierConfig,
    ) -> Self {
        let NotifierConfig { public_url, policy, limiter } = config;
        let worker = burnrate_store::worker_name("notify");
        Self { inner: Arc::new(Inner { store, vault, engine, http, public_url, policy, limiter, mailer, worker }) }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The organization's reporting time zone (UTC if the stored name is no longer known).
    pub async fn zone(&self, org: OrgScope) -> Result<ReportingZone, NotifyError> {
        let mut tx = self.inner.store.read_tenant(org).await?;
        let name = tx.reporting_tz().await?;
        tx.commit().await?;
        Ok(ReportingZone::parse(&name).unwrap_or_default())
    }

    /// Where each of the organization's budgets stands at `now`.
    pub async fn statuses(&self, org: OrgScope, now: DateTime<Utc>) -> Result<Vec<BudgetStatus>, NotifyError> {
        let mut tx = self.inner.store.read_tenant(org).await?;
        let zone = ReportingZone::parse(&tx.reporting_tz().await?).unwrap_or_default();
        let budgets = tx.budgets().await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(budgets.len());
        for budget in &budgets {
            out.push(budget_status(&self.inner.engine, org, zone, budget, now).await?);
        }
        Ok(out)
    }

    /// Evaluates every budget of `org` at `now`, records the alerts that fire for the first time
    /// in their period, and queues their webhook deliveries and mail, all in one transaction.
    /// Returns the alerts recorded now.
    pub async fn evaluate(
        &self,
        org: OrgScope,
        now: DateTime<Utc>,
        committed_at_ms: i64,
    ) -> Result<Vec<AlertEvent>, NotifyError> {
        let statuses = self.statuses(org, now).await?;
        let mut tx = self.inner.store.tenant(org).await?;
        let webhooks = tx.webhooks().await?;
        let mut members = None;
        let mut fired = Vec::new();
        for status in &statuses {
            for alert in status.alerts() {
                let event = AlertEvent {
                    id: Uuid::now_v7(),
                    budget_id: status.budget.id,
                    kind: alert.call.kind(),
                    threshold: alert.call.threshold(),
                    period_start: alert.period.start,
                    period_end: alert.period.end,
                    spend: alert.amount.to_string(),
                    forecast: alert.call.reference().map(|f| f.round_dp(9).to_string()),
                    currency: status.budget.amount.currency().as_str().to_owned(),
                    fired_at: now,
                };
                if !tx.record_alert(&event).await? {
                    continue;
                }
                let message = AlertMessage::new(org, status, &alert, &event, &self.inner.public_url);
                delivery::queue_to_all(&mut tx, org, &webhooks, &message.event(), committed_at_ms).await?;
                if !status.budget.email_members.is_empty() {
                    if members.is_none() {
                        members = Some(tx.members(&self.inner.vault).await?);
                    }
                    let (subject, body) = message.email();
                    for member in members.iter().flatten().filter(|m| status.budget.email_members.contains(&m.user_id))
                    {
                        let mail = OutboxMessage {
                            to: member.email.as_str().to_owned(),
                            subject: subject.clone(),
                            body: body.clone(),
                            org: Some(org.org_id().as_uuid()),
                        };
                        tx.enqueue_mail(&self.inner.vault, &mail).await?;
                    }
                }
                fired.push(event);
            }
        }
        tx.commit().await?;
        if !fired.is_empty() {
            self.inner.store.jobs_queued();
            self.inner.mailer.wake();
            tracing::info!(org = %org.org_id(), alerts = fired.len(), "alerts fired");
        }
        Ok(fired)
    }

    /// Queues this hour's evaluation of every organization (once per hour, whichever instance
    /// gets there first).
    pub async fn queue_hourly(&self, now: DateTime<Utc>) -> Result<usize, NotifyError> {
        let mut tx = self.inner.store.instance().await?;
        let orgs = tx.list_org_ids().await?;
        let hour = now.timestamp() / 3600;
        let mut queued = 0;
        for org in orgs {
            let key = format!("evaluate:{org}:{hour}");
            if tx.queue_evaluation(org.as_uuid(), Some(&key), now.timestamp_millis()).await? {
                queued += 1;
            }
        }
        tx.commit().await?;
        if queued > 0 {
            self.inner.store.jobs_queued();
        }
        Ok(queued)
    }

    /// Runs queued evaluations until none is due; returns how many ran.
    pub async fn evaluate_due(&self) -> Result<usize, NotifyError> {
        let evaluated = self.run_org_jobs(OrgJob::Evaluate).await?;
        Ok(evaluated + self.run_org_jobs(OrgJob::SyncFailed).await?)
    }

    /// Tells the organization that a source stopped syncing: a `source.sync_failed` event to
    /// every webhook, and mail to owners and admins.
    pub async fn announce_sync_failed(
        &self,
        org: OrgScope,
        failed: &burnrate_store::SyncFailedJob,
    ) -> Result<(), NotifyError> {
        let now = Utc::now();
        let mut tx = self.inner.store.tenant(org).await?;
        let Some(source) = tx.source(failed.source).await? else {
            // Removed since: nobody needs to hear about it.
            return Ok(tx.commit().await?);
        };
        let link = self.inner.public_url.join("/sources").map(|u| u.to_string()).unwrap_or_default();
        let headline = format!("Source \"{}\" stopped syncing: {}", source.name, failed.error);
        let event = delivery::Event {
            event_type: "source.sync_failed",
            timestamp: now,
            data: json!({
                "organization_id": org.org_id().as_uuid(),
                "source": { "id": source.id, "name": source.name, "kind": source.kind },
                "error": failed.error,
                "last_success_at": source.last_success_at,
                "summary": headline,
                "links": { "sources": link },
            }),
            text: format!("{headline} <{link}|Open sources>"),
        };
        let webhooks = tx.webhooks().await?;
        delivery::queue_to_all(&mut tx, org, &webhooks, &event, now.timestamp_millis()).await?;
        let body = format!(
            "{headline}\n\nSpend from this source is not up to date until it syncs again. Check its credential and settings: {link}\n"
        );
        for admin in tx.members(&self.inner.vault).await?.into_iter().filter(|m| m.role.is_admin()) {
            let mail = OutboxMessage {
                to: admin.email.as_str().to_owned(),
                subject: format!("[burnrate] {}: sync failed", source.name),
                body: body.clone(),
                org: Some(org.org_id().as_uuid()),
            };
            tx.enqueue_mail(&self.inner.vault, &mail).await?;
        }
        tx.commit().await?;
        self.inner.store.jobs_queued();
        self.inner.mailer.wake();
        Ok(())
    }

    /// Runs one claimed job of `which` for `org`.
    async fn run_org_job(&self, which: OrgJob, org: OrgScope, job: &burnrate_store::Job) -> Result<(), NotifyError> {
        match which {
            OrgJob::Evaluate => {
                let spec: burnrate_store::EvaluateJob = serde_json::from_str(&job.payload)
                    .map_err(|e| NotifyError::Data(format!("evaluation job {}: {e}", job.id)))?;
                self.evaluate(org, Utc::now(), spec.committed_at_ms).await?;
                self.raise_reconciliation_gaps(org, Utc::now()).await.map(|_| ())
            }
            OrgJob::Digest => self.send_digest(org, Utc::now()).await.map(|_| ()),
            OrgJob::SyncFailed => {
                let failed: burnrate_store::SyncFailedJob = serde_json::from_str(&job.payload)
                    .map_err(|e| NotifyError::Data(format!("sync-failed job {}: {e}", job.id)))?;
                self.announce_sync_failed(org, &failed).await
            }
        }
    }

    /// Claims due jobs of `which`, one organization's each, and runs them until none is left:
    /// done when it succeeds, tried again later when it fails (three times). Returns how many ran.
    pub(crate) async fn run_org_jobs(&self, which: OrgJob) -> Result<usize, NotifyError> {
        let (kind, retry) = which.kind_and_retry();
        let mut ran = 0;
        loop {
            let now_ms = Utc::now().timestamp_millis();
            let mut tx = self.inner.store.instance().await?;
            // One at a time an organization: a tenant whose syncs queue many evaluations holds
            // one evaluator, and the others' go on beside it.
            let lease = JOB_LEASE.as_millis() as i64;
            let job = tx.claim_job_fairly(kind, &self.inner.worker, now_ms, lease, 1).await?;
            tx.commit().await?;
            let Some(job) = job else { return Ok(ran) };
            ran += 1;
            let result = match job.org_id {
                Some(org) => {
                    self.run_org_job(which, OrgScope::trusted(burnrate_core::OrgId::from_uuid(org)), &job).await
                }
                None => Err(NotifyError::Data(format!("{kind} job {} names no organization", job.id))),
            };
            let mut tx = self.inner.store.instance().await?;
            match result {
                Ok(()) => tx.complete_job(job.id).await?,
                Err(e) => {
                    tracing::warn!(job = %job.id, kind, error = %e, "a notification job failed");
                    let at = Utc::now().timestamp_millis() + retry.as_millis() as i64;
                    tx.fail_job(job.id, &e.to_string(), at, job.attempts >= 3).await?
                }
            }
            tx.commit().await?;
        }
    }

    /// How long until the next job of `kind` is due, at most [`POLL`].
    async fn until_next(&self, kind: &str) -> Result<Duration, NotifyError> {
        let mut tx = self.inner.store.read_instance().await?;
        let next = tx.next_job_due(kind).await?;
        tx.commit().await?;
        let now = Utc::now().timestamp_millis();
        // A few milliseconds at least: a job due now that another worker just claimed is not
        // worth spinning for.
        Ok(next.map_or(POLL, |at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0).max(5)).min(POLL)))
    }

    /// Runs the evaluation and delivery workers of this instance until the task is dropped:
    /// `deliverers` deliveries in flight at once.
    pub fn spawn(&self, deliverers: usize) -> tokio::task::JoinHandle<()> {
        let notifier = self.clone();
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..deliverers.max(1) {
                notifier.keep_running(&mut tasks, Worker::Deliver);
            }
            // Two evaluators: evaluations after a burst of syncs use both cores.
            for _ in 0..2 {
                notifier.keep_running(&mut tasks, Worker::Evaluate);
            }
            // Once an hour: every organization's evaluation and, on Mondays, digests (each queued
            // once per hour or week whichever instance gets there first).
            let mut queued_hour = None;
            loop {
                let now = Utc::now();
                if queued_hour != Some(now.timestamp() / 3600) {
                    queued_hour = Some(now.timestamp() / 3600);
                    logged(notifier.queue_hourly(now).await, "queueing the hourly budget evaluation");
                    logged(notifier.queue_digests(now).await, "queueing the weekly digests");
                }
                logged(notifier.digests_due().await, "weekly digest pass");
                notifier.inner.store.wait_for_jobs(POLL).await;
            }
        })
    }

    /// Runs `worker`'s pass in `tasks` again and again, waiting after each as long as it says (or
    /// until jobs are queued in this instance).
    fn keep_running(&self, tasks: &mut tokio::task::JoinSet<()>, worker: Worker) {
        let n = self.clone();
        tasks.spawn(async move {
            loop {
                let wait = match worker {
                    Worker::Deliver => {
                        logged(n.deliver_due().await, "webhook delivery pass");
                        // Until the next retry is due, a job is queued here, or the poll interval.
                        n.until_next(DELIVER_JOB).await.unwrap_or(POLL)
                    }
                    Worker::Evaluate => {
                        logged(n.evaluate_due().await, "budget evaluation pass");
                        POLL
                    }
                };
                n.inner.store.wait_for_jobs(wait).await;
            }
        });
    }
}

/// The background workers of [`Notifier::spawn`] that run as many copies.
#[derive(Clone, Copy)]
enum Worker {
    Deliver,
    Evaluate,
}

/// Logs a failed background pass; the next pass tries again.
fn logged<T>(result: Result<T, NotifyError>, what: &str) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "{what} failed");
    }
}

/// An alert, worded for each channel.
struct AlertMessage {
    kind: AlertKind,
    threshold: u32,
    data: serde_json::Value,
    budget: BudgetRecord,
    headline: String,
    link: String,
    timestamp: DateTime<Utc>,
}

/// `520.00 USD`: cents for people; the exact amount travels in the event's data.
fn money(amount: rust_decimal::Decimal, like: &Money) -> String {
    format!("{:.2} {}", amount, like.currency())
}

impl AlertMessage {
    fn new(org: OrgScope, status: &BudgetStatus, alert: &Alert, event: &AlertEvent, public_url: &url::Url) -> Self {
        let budget = &status.budget;
        let link = public_url.join("/budgets").map(|u| u.to_string()).unwrap_or_default();
        let amount = &budget.amount;
        let headline = match alert.call {
            Call::Threshold { percent } => format!(
                "Budget \"{}\" reached {} %: {} of {} this {}.",
                budget.name,
                percent,
                money(alert.amount, amount),
                money(amount.amount(), amount),
                budget.period.as_str()
            ),
            Call::Forecast { forecast } => format!(
                "Budget \"{}\" is forecast to reach {} by {} (spent {} so far).",
                budget.name,
                money(forecast, amount),
                status.period.end.pred_opt().unwrap_or(status.period.end),
                money(alert.amount, amount)
            ),
            Call::Anomaly { usual } => format!(
                "Unusual spend in budget \"{}\": {} on {}, where that weekday usually sees {}.",
                budget.name,
                money(alert.amount, amount),
                alert.period.start,
                money(usual, amount)
            ),
        };
        // Spend known from usage before the provider bills it: an alert on it says so.
        let estimated = match alert.call {
            Call::Anomaly { .. } => rust_decimal::Decimal::ZERO,
            _ => status.estimated,
        };
        let headline = match estimated.is_zero() {
            true => headline,
            false => format!(
                "{headline} Of this, {} is estimated from usage the provider has not billed yet.",
                money(estimated, amount)
            ),
        };
        let data = json!({
            "organization_id": org.org_id().as_uuid(),
            "alert_id": event.id,
            "budget": {
                "id": budget.id,
                "name": budget.name,
                "amount": amount.amount().to_string(),
                "currency": amount.currency().as_str(),
                "period": budget.period.as_str(),
            },
            "scope": budget.scope,
            "period": {
                "start": alert.period.start,
                "end": alert.period.end,
                "time_zone": status.zone.name(),
                "resets_at": status.resets_at,
            },
            "spend": alert.amount.to_string(),
            "estimated": estimated.to_string(),
            "threshold_percent": (!matches!(alert.call, Call::Anomaly { .. })).then_some(alert.call.threshold()),
            "forecast": status.forecast.round_dp(9).to_string(),
            "usual": match alert.call {
                Call::Anomaly { usual } => Some(usual.to_string()),
                _ => None,
            },
            "summary": headline,
            "links": { "budgets": link },
        });
        Self {
            kind: alert.call.kind(),
            threshold: alert.call.threshold(),
            data,
            budget: budget.clone(),
            headline,
            link,
            timestamp: event.fired_at,
        }
    }

    fn event_type(&self) -> &'static str {
        match self.kind {
            AlertKind::Threshold => "budget.threshold_crossed",
            AlertKind::Forecast => "budget.forecast_exceeded",
            AlertKind::Anomaly => "spend.anomaly",
        }
    }

    fn event(&self) -> delivery::Event {
        delivery::Event {
            event_type: self.event_type(),
            timestamp: self.timestamp,
            data: self.data.clone(),
            text: format!("{} <{}|Open budgets>", self.headline, self.link),
        }
    }

    fn email(&self) -> (String, String) {
        // Short enough to stay on one header line.
        let subject = match self.kind {
            AlertKind::Threshold => format!("[burnrate] {}: {} % of budget reached", self.budget.name, self.threshold),
            AlertKind::Forecast => format!("[burnrate] {}: forecast over budget", self.budget.name),
            AlertKind::Anomaly => format!("[burnrate] {}: unusual spend", self.budget.name),
        };
        let body = format!(
            "{}\n\nBudget: {} ({} per {})\nSee every budget: {}\n\nburnrate cannot stop provider calls: budgets are soft, and alert you only.\n",
            self.headline,
            self.budget.name,
            self.budget.amount,
            self.budget.period.as_str(),
            self.link
        );
        (subject, body)
    }
}

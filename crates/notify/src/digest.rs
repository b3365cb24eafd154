//! The weekly digest to an organization's owners and admins: last week's spend by provider
//! against the week before, the biggest movers by model, and the budgets at risk. It reads
//! spend through the engine like everything else, and says so plainly when there is none.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use burnrate_core::ReportingZone;
use burnrate_engine::spend::{Dimension, SpendQuery};
use burnrate_store::{OrgScope, OutboxMessage};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::{Notifier, NotifyError};

/// The job kind of one organization's weekly digest.
pub const DIGEST_JOB: &str = "digest";
/// Movers listed.
const MOVERS: usize = 5;

/// A digest, worded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    pub subject: String,
    pub body: String,
}

/// (group, currency) → spend.
type Totals = BTreeMap<(String, String), Decimal>;

fn change(now: Decimal, before: Decimal) -> String {
    let delta = now - before;
    let sign = if delta >= Decimal::ZERO { "+" } else { "−" };
    if before.is_zero() {
        return format!("{sign}{:.2}", delta.abs());
    }
    format!("{sign}{:.2} ({sign}{:.0} %)", delta.abs(), (delta.abs() * Decimal::ONE_HUNDRED / before))
}

impl Notifier {
    /// Spend by `group` and currency over local days `[from, to)`; lines without one under `(none)`.
    async fn totals_by(
        &self,
        org: OrgScope,
        zone: ReportingZone,
        group: Dimension,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Totals, NotifyError> {
        let query = SpendQuery::new(zone, from, to).grouped_by(group);
        let mut out = Totals::new();
        for row in self.inner.engine.spend(org, &query).await? {
            let name = row.groups.into_iter().next().flatten().unwrap_or_else(|| "(none)".to_owned());
            *out.entry((name, row.currency)).or_default() += row.amount;
        }
        Ok(out)
    }

    /// The digest of the seven local days before `now`'s day.
    pub async fn digest(&self, org: OrgScope, now: DateTime<Utc>) -> Result<Digest, NotifyError> {
        let zone = self.zone(org).await?;
        let mut tx = self.inner.store.instance().await?;
        let name = tx.org(org.org_id()).await?.map(|o| o.name).unwrap_or_default();
        tx.commit().await?;
        let end = zone.date_of(now);
        let start = end - chrono::Duration::days(7);
        let before = start - chrono::Duration::days(7);
        let week = self.totals_by(org, zone, Dimension::Provider, start, end).await?;
        let last_week = self.totals_by(org, zone, Dimension::Provider, before, start).await?;
        let models = self.totals_by(org, zone, Dimension::Model, start, end).await?;
        let last_models = self.totals_by(org, zone, Dimension::Model, before, start).await?;
        let statuses = self.statuses(org, now).await?;

        let mut body = String::new();
        let last_day = end.pred_opt().unwrap_or(end);
        let _ = writeln!(body, "Spend of {name} from {start} to {last_day} ({}).\n", zone.name());
        if week.is_empty() && last_week.is_empty() {
            let _ = writeln!(
                body,
                "No spend was recorded in these two weeks. Connect a provider under Sources to see it here."
            );
        } else {
            let _ = writeln!(body, "By provider (change on the week before):");
            let mut keys: Vec<_> = week.keys().chain(last_week.keys()).cloned().collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (now_spend, then) =
                    (week.get(&key).copied().unwrap_or_default(), last_week.get(&key).copied().unwrap_or_default());
                let _ = writeln!(body, "  {:<24} {:>12.2} {}   {}", key.0, now_spend, key.1, change(now_spend, then));
            }
            let mut movers: Vec<_> = models
                .keys()
                .chain(last_models.keys())
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|k| {
                    let (a, b) =
                        (models.get(&k).copied().unwrap_or_default(), last_models.get(&k).copied().unwrap_or_default());
                    (k, a, b)
                })
                .filter(|(_, a, b)| a != b)
                .collect();
            movers.sort_by_key(|(_, a, b)| std::cmp::Reverse((*a - *b).abs()));
            if !movers.is_empty() {
                let _ = writeln!(body, "\nTop movers by model:");
                for ((model, currency), a, b) in movers.into_iter().take(MOVERS) {
                    let _ = writeln!(body, "  {:<24} {:>12.2} {currency}   {}", model, a, change(a, b));
                }
            }
        }
        let at_risk: Vec<_> = statuses
            .iter()
            .filter(|s| s.forecast >= s.budget.amount.amount() || s.percent_used() >= Decimal::from(80))
            .collect();
        if statuses.is_empty() {
            let _ = writeln!(body, "\nNo budgets yet: add one to be told before spend runs over.");
        } else if at_risk.is_empty() {
            let _ = writeln!(body, "\nEvery budget is on track.");
        } else {
            let _ = writeln!(body, "\nBudgets at risk:");
            for s in &at_risk {
                let _ = writeln!(
                    body,
                    "  {:<24} {:.2} of {:.2} {} spent ({} %), forecast {:.2} by {}",
                    s.budget.name,
                    s.spend,
                    s.budget.amount.amount(),
                    s.budget.amount.currency(),
                    s.percent_used(),
                    s.forecast,
                    s.period.end.pred_opt().unwrap_or(s.period.end)
                );
            }
        }
        let link = self.inner.public_url.join("/").map(|u| u.to_string()).unwrap_or_default();
        let _ = writeln!(body, "\nOpen burnrate: {link}");
        Ok(Digest { subject: format!("[burnrate] Weekly spend digest: {start} to {last_day}"), body })
    }

    /// Queues the digest for the organization's owners and admins; returns how many it went to.
    pub async fn send_digest(&self, org: OrgScope, now: DateTime<Utc>) -> Result<usize, NotifyError> {
        let digest = self.digest(org, now).await?;
        let mut tx = self.inner.store.tenant(org).await?;
        let admins: Vec<_> = tx.members(&self.inner.vault).await?.into_iter().filter(|m| m.role.is_admin()).collect();
        for member in &admins {
            let mail = OutboxMessage {
                to: member.email.as_str().to_owned(),
                subject: digest.subject.clone(),
                body: digest.body.clone(),
                org: Some(org.org_id().as_uuid()),
            };
            tx.enqueue_mail(&self.inner.vault, &mail).await?;
        }
        tx.commit().await?;
        self.inner.mailer.wake();
        Ok(admins.len())
    }

    /// Queues this week's digest of every organization where it is Monday, 08:00 or later (once
    /// per organization and ISO week, whichever instance gets there first).
    pub async fn queue_digests(&self, now: DateTime<Utc>) -> Result<usize, NotifyError> {
        let mut tx = self.inner.store.instance().await?;
        let orgs = tx.list_org_ids().await?;
        tx.commit().await?;
        let mut queued = 0;
        for org in orgs {
            let scope = OrgScope::trusted(org);
            let zone = self.zone(scope).await?;
            let local = zone.date_of(now);
            // Monday from 08:00 on: the job's key outlives the day (finished jobs keep theirs for a
            // day), so the digest goes once however many passes see Monday.
            if local.weekday() != chrono::Weekday::Mon || now < zone.start_of(local) + chrono::Duration::hours(8) {
                continue;
            }
            let week = local.iso_week();
            let key = format!("digest:{org}:{}-W{:02}", week.year(), week.week());
            let mut tx = self.inner.store.instance().await?;
            let now_ms = now.timestamp_millis();
            if tx.enqueue_job(DIGEST_JOB, Some(org.as_uuid()), "{}", Some(&key), now_ms, now_ms).await? {
                queued += 1;
            }
            tx.commit().await?;
        }
        Ok(queued)
    }

    /// Sends queued digests; returns how many ran.
    pub async fn digests_due(&self) -> Result<usize, NotifyError> {
        self.run_org_jobs(crate::OrgJob::Digest).await
    }
}

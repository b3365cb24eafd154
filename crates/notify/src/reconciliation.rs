//! Telling an organization its bill and its priced usage disagree: each day × provider of the
//! last 30 complete days with a quantity or price gap beyond its tolerance raises a
//! `reconciliation.gap` event (webhooks) and mail to its admins, once. Unpriced usage is not
//! raised: its difference is unknown, and the reconciliation page lists its models.

use std::collections::BTreeMap;

use burnrate_engine::reconciliation::{GapKind, Row};
use burnrate_store::{OrgScope, OutboxMessage};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use crate::{Notifier, NotifyError, delivery};

/// How many complete days back gaps are looked for: reconciliation's default window.
const DAYS: i64 = 30;

impl Notifier {
    /// Raises every gap of `org`'s last 30 complete days not raised before; returns the day and
    /// provider of each raised now.
    pub async fn raise_reconciliation_gaps(
        &self,
        org: OrgScope,
        now: DateTime<Utc>,
    ) -> Result<Vec<(NaiveDate, String)>, NotifyError> {
        let zone = self.zone(org).await?;
        let mut tx = self.inner.store.read_tenant(org).await?;
        let stored = tx.reconciliation_tolerance().await?;
        tx.commit().await?;
        let percent = Decimal::from_str_exact(&stored)
            .map_err(|_| NotifyError::Data(format!("the reconciliation tolerance {stored:?} does not read")))?;
        let today = zone.date_of(now);
        let rows = self.inner.engine.reconciliation(org, today - Duration::days(DAYS), today, percent).await?;
        let mut gaps: BTreeMap<(NaiveDate, String), Vec<Row>> = BTreeMap::new();
        for row in rows.into_iter().filter(|r| matches!(r.gap_kind, GapKind::Quantity | GapKind::Price)) {
            gaps.entry((row.day, row.provider.clone())).or_default().push(row);
        }
        if gaps.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.inner.store.tenant(org).await?;
        let webhooks = tx.webhooks().await?;
        let mut admins = None;
        let mut raised = Vec::new();
        for ((day, provider), rows) in gaps {
            if !tx.record_reconciliation_gap(day, &provider).await? {
                continue;
            }
            let gap = Gap::new(&self.inner.public_url, org, day, &provider, &rows, &stored);
            delivery::queue_to_all(&mut tx, org, &webhooks, &gap.event(now), now.timestamp_millis()).await?;
            if admins.is_none() {
                let members = tx.members(&self.inner.vault).await?;
                admins = Some(members.into_iter().filter(|m| m.role.is_admin()).collect::<Vec<_>>());
            }
            for admin in admins.iter().flatten() {
                let mail = OutboxMessage {
                    to: admin.email.as_str().to_owned(),
                    subject: gap.subject.clone(),
                    body: gap.body.clone(),
                    org: Some(org.org_id().as_uuid()),
                };
                tx.enqueue_mail(&self.inner.vault, &mail).await?;
            }
            raised.push((day, provider));
        }
        tx.commit().await?;
        if !raised.is_empty() {
            self.inner.store.jobs_queued();
            self.inner.mailer.wake();
            tracing::info!(org = %org.org_id(), gaps = raised.len(), "reconciliation gaps raised");
        }
        Ok(raised)
    }
}

/// One day × provider's gap, as webhooks and mail tell it.
struct Gap {
    data: serde_json::Value,
    headline: String,
    link: String,
    subject: String,
    body: String,
}

impl Gap {
    fn new(
        public_url: &url::Url,
        org: OrgScope,
        day: NaiveDate,
        provider: &str,
        rows: &[Row],
        tolerance: &str,
    ) -> Self {
        let billed: Decimal = rows.iter().filter_map(|r| r.billed).sum();
        let computed: Decimal = rows.iter().filter_map(|r| r.computed).sum();
        let difference = (billed - computed).normalize();
        let link =
            public_url.join(&format!("/reconciliation?from={day}&to={day}")).map(|u| u.to_string()).unwrap_or_default();
        let kinds: Vec<String> = rows.iter().map(|r| format!("{} ({})", r.model, r.gap_kind.as_str())).collect();
        let headline = format!(
            "{provider}'s bill for {day} differs from its priced usage by {:.2} USD: {}",
            difference,
            kinds.join(", ")
        );
        let text = |d: Option<Decimal>| d.map(|d| d.normalize().to_string());
        let data = json!({
            "organization_id": org.org_id().as_uuid(),
            "day": day,
            "provider": provider,
            "billed_cost": billed.normalize().to_string(),
            "computed_cost": computed.normalize().to_string(),
            "difference": difference.to_string(),
            "currency": "USD",
            "tolerance_percent": tolerance,
            "rows": rows.iter().map(|r| json!({
                "model": r.model,
                "project_id": r.project,
                "gap_kind": r.gap_kind.as_str(),
                "billed_cost": text(r.billed),
                "computed_cost": text(r.computed),
                "difference": text(r.difference),
                "billed_tokens": r.billed_tokens,
                "usage_tokens": r.usage_tokens,
            })).collect::<Vec<_>>(),
            "summary": headline,
            "links": { "reconciliation": link },
        });
        let subject = format!("[burnrate] {provider} bill for {day}: {difference:.2} USD unexplained");
        let body = format!(
            "{headline}\n\nA quantity gap means the bill counts other tokens than the usage report; a price gap, that the same tokens cost otherwise than the price book says (a rate or a discount of its own). Beyond {tolerance} % of the bill, the organization's tolerance. See the day: {link}\n"
        );
        Gap { data, headline, link, subject, body }
    }

    fn event(&self, now: DateTime<Utc>) -> delivery::Event {
        delivery::Event {
            event_type: "reconciliation.gap",
            timestamp: now,
            data: self.data.clone(),
            text: format!("{} <{}|Open reconciliation>", self.headline, self.link),
        }
    }
}

//! Reading the audit log (S16): the filtered listing and the CSV export, which is itself audited.
//! Admins only; the chain itself is checked by `burnrate audit verify`.

use burnrate_store::{AUDIT_CSV_COLUMNS, AuditAction, AuditPage, OrgScope, Store};
pub use burnrate_store::{AuditFilter, AuditRecord};
use chrono::{DateTime, NaiveDate, Utc};
use futures::Stream;
use serde_json::Value;

use crate::{Actor, App, Error, Result};

/// Entries a listing shows at most.
pub const SHOWN: i64 = 200;
/// Entries read per round trip while exporting.
const EXPORT_PAGE: i64 = 1000;

/// A bound of a period: a day means its first instant (`from`) or the next day's (`to`, with
/// `day_end`), or an RFC 3339 time; empty is no bound. `what` names the field in the error.
pub fn bound(what: &'static str, raw: &str, day_end: bool) -> Result<Option<DateTime<Utc>>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let day = raw.parse::<NaiveDate>().map_err(|_| {
        Error::invalid(what, format!("{what}: a date such as 2026-11-30 or a time such as 2026-11-30T12:00:00Z"))
    })?;
    let day = if day_end { day.succ_opt().unwrap_or(day) } else { day };
    Ok(Some(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()))
}

/// The filter of the page, the API and the command line: exact actor, action and target (empty
/// is any), and a period.
pub fn filter(actor: &str, action: &str, target: &str, from: &str, to: &str) -> Result<AuditFilter> {
    let given = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    Ok(AuditFilter {
        actor: given(actor),
        action: given(action),
        target: given(target),
        from: bound("from", from, false)?,
        to: bound("to", to, true)?,
    })
}

/// Every entry of the organization matching `filter`, oldest first, as RFC 4180 CSV (formulas
/// defused) read a page at a time: the header, then a chunk per page. A failure ends it with a
/// line saying why, rather than a silently short file.
pub fn csv(store: Store, scope: OrgScope, filter: AuditFilter) -> impl Stream<Item = String> + Send + 'static {
    let header = burnrate_core::csv::record(AUDIT_CSV_COLUMNS.iter().map(|c| Some(*c)));
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let (store, filter) = (store.clone(), filter.clone());
        async move {
            let after = after?;
            let page = async {
                let mut tx = store.read_tenant(scope).await?;
                let rows = tx.audit_search(&filter, AuditPage::Oldest { after }, EXPORT_PAGE).await?;
                tx.commit().await?;
                Ok::<_, burnrate_store::StoreError>(rows)
            }
            .await;
            match page {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = (rows.len() as i64 == EXPORT_PAGE).then(|| rows.last().map(|r| r.seq)).flatten();
                    Some((rows.iter().map(AuditRecord::csv_record).collect(), next))
                }
                Err(e) => Some((format!("error: {e}\r\n"), None)),
            }
        }
    });
    futures::StreamExt::chain(futures::stream::once(async move { header }), pages)
}

impl App {
    /// Up to [`SHOWN`] entries matching `filter`, newest first, older than `before` when given.
    pub async fn audit_entries(
        &self,
        actor: &Actor,
        filter: &AuditFilter,
        before: Option<i64>,
    ) -> Result<Vec<AuditRecord>> {
        actor.require_admin()?;
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let entries = tx.audit_search(filter, AuditPage::Newest { before }, SHOWN).await?;
        tx.commit().await?;
        Ok(entries)
    }

    /// The CSV export of the entries matching `filter`, recorded first (exports are audited)
    /// with `details` saying what was asked.
    pub async fn export_audit(
        &self,
        actor: &Actor,
        filter: AuditFilter,
        details: Value,
    ) -> Result<impl Stream<Item = String> + Send + 'static> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let org = actor.scope.org_id().to_string();
        tx.audit(actor.entry(AuditAction::AuditExported, "organization", org, details)).await?;
        tx.commit().await?;
        Ok(csv(self.store.clone(), actor.scope, filter))
    }
}

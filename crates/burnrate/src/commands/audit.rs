//! `burnrate audit export` and `burnrate audit verify` (S16).

use anyhow::{Context, anyhow};
use burnrate_store::{AuditAction, OrgScope};

use super::{Failure, open_admin_store};
use crate::settings::Settings;

/// A bound of `audit export`'s period: a day (its start, or for `to` the next day's) or a time.
fn export_bound(
    flag: &str,
    raw: Option<&str>,
    day_end: bool,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Failure> {
    let Some(raw) = raw else { return Ok(None) };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    let day: chrono::NaiveDate = raw
        .parse()
        .map_err(|_| anyhow!("--{flag}: {raw:?} is neither a day such as 2026-11-30 nor an RFC 3339 time"))?;
    let day = if day_end { day.succ_opt().unwrap_or(day) } else { day };
    Ok(Some(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()))
}

pub(super) async fn audit_export(
    settings: &Settings,
    org: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(), Failure> {
    use std::io::Write as _;
    let filter = burnrate_store::AuditFilter {
        from: export_bound("from", from, false)?,
        to: export_bound("to", to, true)?,
        ..Default::default()
    };
    let store = open_admin_store(settings).await?;
    let mut tx = store.instance().await.context("reading organizations")?;
    let found = tx.find_org(org).await.context("finding the organization")?;
    tx.commit().await.context("reading organizations")?;
    let org = found.ok_or_else(|| anyhow!("no organization named or with id {org:?}"))?.id;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    out.write_all(burnrate_core::csv::record(burnrate_store::AUDIT_CSV_COLUMNS.iter().map(|c| Some(*c))).as_bytes())
        .context("writing")?;
    let mut after = 0;
    loop {
        let mut t = store.tenant(OrgScope::trusted(org)).await.context("reading the audit log")?;
        let page = t
            .audit_search(&filter, burnrate_store::AuditPage::Oldest { after }, 1000)
            .await
            .context("reading the audit log")?;
        t.commit().await.context("reading the audit log")?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            out.write_all(entry.csv_record().as_bytes()).context("writing")?;
        }
    }
    out.flush().context("writing")?;
    // Exports are audited (S16), this one too: by the operator's command line.
    let mut t = store.tenant(OrgScope::trusted(org)).await.context("recording the export")?;
    let entry = burnrate_store::NewAuditEntry {
        actor: burnrate_store::Actor::system("burnrate audit export"),
        action: AuditAction::AuditExported,
        target_type: Some("organization"),
        target_id: Some(org.to_string()),
        details: serde_json::json!({ "format": "csv", "from": from, "to": to }),
        ip: None,
        user_agent: None,
    };
    t.audit(entry).await.context("recording the export")?;
    t.commit().await.context("recording the export")?;
    Ok(())
}

pub(super) async fn audit_verify(settings: &Settings, org: Option<&str>) -> Result<(), Failure> {
    let store = open_admin_store(settings).await?;
    let mut tx = store.instance().await.context("reading organizations")?;
    let orgs = match org {
        Some(o) => vec![
            tx.find_org(o)
                .await
                .context("finding the organization")?
                .ok_or_else(|| anyhow!("no organization named or with id {o:?}"))?
                .id,
        ],
        None => tx.list_org_ids().await.context("listing organizations")?,
    };
    tx.commit().await.context("reading organizations")?;
    let mut broken = 0;
    for org in orgs {
        let mut t = store.tenant(OrgScope::trusted(org)).await.context("reading the audit log")?;
        let (count, brk) = t.verify_audit_chain().await.context("reading the audit log")?;
        t.commit().await.context("reading the audit log")?;
        match brk {
            None => println!("ok: organization {org}: {count} entries verified"),
            Some(b) => {
                println!("FAILED: {b}");
                broken += 1;
            }
        }
    }
    if broken > 0 {
        return Err(anyhow!("the audit log of {broken} organization(s) failed verification").into());
    }
    Ok(())
}

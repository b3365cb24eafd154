//! `burnrate audit export` and `burnrate audit verify` (S16).

use anyhow::{Context, anyhow};
use burnrate_store::{AuditAction, OrgScope};

use super::{Failure, config_error, open_admin_store};
use crate::settings::Settings;

pub(super) async fn audit_export(
    settings: &Settings,
    org: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(), Failure> {
    use std::io::Write as _;
    // The flag names the option in the error, as every command's do.
    let period = |flag: &'static str, raw: Option<&str>, day_end| {
        burnrate_app::audit::bound(flag, raw.unwrap_or(""), day_end).map_err(|e| {
            config_error(&format!("--{flag}"), e.to_string().trim_start_matches(&format!("{flag}: ")).to_owned())
        })
    };
    let filter = burnrate_app::audit::AuditFilter {
        from: period("from", from, false)?,
        to: period("to", to, true)?,
        ..Default::default()
    };
    let store = open_admin_store(settings).await?;
    let mut tx = store.instance().await.context("reading organizations")?;
    let found = tx.find_org(org).await.context("finding the organization")?;
    tx.commit().await.context("reading organizations")?;
    let org = found.ok_or_else(|| anyhow!("no organization named or with id {org:?}"))?.id;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut chunks = std::pin::pin!(burnrate_app::audit::csv(store.clone(), OrgScope::trusted(org), filter));
    while let Some(chunk) = futures::StreamExt::next(&mut chunks).await {
        if let Some(why) = chunk.strip_prefix("error: ") {
            return Err(anyhow!("reading the audit log: {}", why.trim_end()).into());
        }
        out.write_all(chunk.as_bytes()).context("writing")?;
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

//! `burnrate egress grant|revoke|list` (S30): private networks granted to one organization,
//! inside the instance's ceiling (`BURNRATE_EGRESS_ALLOW`), each change in that organization's
//! audit log. A running instance reads the grants at each call, so a change holds at once.

use anyhow::{Context, anyhow};
use burnrate_core::OrgId;
use burnrate_store::{Actor, AuditAction, NewAuditEntry, OrgScope, Store};
use serde_json::json;

use super::{Failure, config_error, open_store};
use crate::cli::EgressCommand;
use crate::settings::Settings;

pub(super) async fn egress(settings: &Settings, command: EgressCommand) -> Result<(), Failure> {
    let ceiling = settings.egress_guard()?;
    let store = open_store(settings).await?;
    match command {
        EgressCommand::Grant { org, network } => {
            let network = ceiling.grantable(&network).map_err(|e| config_error("NETWORK", e.to_string()))?;
            let (id, name) = organization(&store, &org).await?;
            let mut tx = store.tenant(OrgScope::trusted(id)).await.context("opening the organization")?;
            if tx.grant_egress(&network.to_string()).await.context("recording the grant")? {
                tx.audit(entry("burnrate egress grant", AuditAction::EgressGranted, &network.to_string()))
                    .await
                    .context("writing the audit log")?;
                println!("granted {network} to organization {name} ({id})");
            } else {
                println!("{network} was granted to organization {name} ({id}) already");
            }
            tx.commit().await.context("committing")?;
        }
        EgressCommand::Revoke { org, network } => {
            // Taken back as it was written when granted, whether or not the ceiling still holds it.
            let network: burnrate_net::Network =
                network.parse().map_err(|e: burnrate_net::EgressError| config_error("NETWORK", e.to_string()))?;
            let (id, name) = organization(&store, &org).await?;
            let mut tx = store.tenant(OrgScope::trusted(id)).await.context("opening the organization")?;
            if !tx.revoke_egress(&network.to_string()).await.context("removing the grant")? {
                let granted = tx.egress_grants().await.context("reading the grants")?;
                let granted = if granted.is_empty() { "nothing".to_owned() } else { granted.join(", ") };
                return Err(anyhow!("{network} is not granted to organization {name}; it holds {granted}").into());
            }
            tx.audit(entry("burnrate egress revoke", AuditAction::EgressRevoked, &network.to_string()))
                .await
                .context("writing the audit log")?;
            tx.commit().await.context("committing")?;
            println!("revoked {network} from organization {name} ({id})");
        }
        EgressCommand::List { org } => {
            let orgs = match org {
                Some(org) => vec![organization(&store, &org).await?],
                None => {
                    let mut tx = store.instance().await.context("reading organizations")?;
                    let mut all = Vec::new();
                    for id in tx.list_org_ids().await.context("listing organizations")? {
                        let name = tx.find_org(&id.to_string()).await.context("reading organizations")?;
                        all.push((id, name.map(|o| o.name).unwrap_or_default()));
                    }
                    tx.commit().await.context("reading organizations")?;
                    all
                }
            };
            let mut any = false;
            for (id, name) in orgs {
                let mut tx = store.tenant(OrgScope::trusted(id)).await.context("reading the grants")?;
                for network in tx.egress_grants().await.context("reading the grants")? {
                    println!("{name}\t{id}\t{network}");
                    any = true;
                }
                tx.commit().await.context("reading the grants")?;
            }
            if !any {
                println!("no private network is granted (BURNRATE_EGRESS_ALLOW: the most any organization may reach)");
            }
        }
    }
    Ok(())
}

async fn organization(store: &Store, org: &str) -> Result<(OrgId, String), Failure> {
    let mut tx = store.instance().await.context("reading organizations")?;
    let found = tx.find_org(org).await.context("finding the organization")?;
    tx.commit().await.context("reading organizations")?;
    let found = found.ok_or_else(|| config_error("--org", format!("no organization named or with id {org:?}")))?;
    Ok((found.id, found.name))
}

fn entry(command: &str, action: AuditAction, network: &str) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor::system(command),
        action,
        target_type: Some("egress"),
        target_id: Some(network.to_owned()),
        details: json!({ "network": network }),
        ip: None,
        user_agent: None,
    }
}

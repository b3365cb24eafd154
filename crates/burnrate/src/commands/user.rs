//! `burnrate user create`: a first account of an organization, its password from standard input.

use anyhow::{Context, anyhow};
use burnrate_core::{EmailAddress, NewPassword, OrgName, Role};
use burnrate_store::{Actor, AuditAction, NewAuditEntry, OrgScope, Vault};
use serde_json::json;

use super::{Failure, config_error, master_keys, open_store, password_from_stdin, password_hasher};
use crate::settings::Settings;

pub(super) async fn user_create(settings: &Settings, org: &str, email: &str, role: &str) -> Result<(), Failure> {
    let ring = master_keys(settings)?;
    let role: Role = role.parse().map_err(|e| config_error("--role", format!("{e}")))?;
    let email = EmailAddress::parse(email).map_err(|e| config_error("--email", e.to_string()))?;
    let password = password_from_stdin()?;
    let password = NewPassword::parse(&password, &[email.as_str(), org])
        .map_err(|e| config_error("--password-stdin", e.to_string()))?;
    let store = open_store(settings).await?;
    let vault = Vault::new(ring);
    let hash = password_hasher(settings).hash(password.expose()).await.context("hashing the password")?;
    let mut tx = store.instance().await.context("opening a transaction")?;
    let scope = match tx.find_org(org).await.context("finding the organization")? {
        Some(found) => OrgScope::trusted(found.id),
        None if role == Role::Owner => {
            let name = OrgName::parse(org).map_err(|e| config_error("--org", e.to_string()))?;
            tx.create_org(&name).await.context("creating the organization")?
        }
        None => {
            return Err(config_error(
                "--org",
                format!(
                    "no organization named or with id {org:?}; create it by adding its first user with --role owner"
                ),
            ));
        }
    };
    let user = tx.create_user(&vault, &email, &hash, true).await.map_err(|e| anyhow!("{e}"))?;
    let mut t = tx.into_tenant(scope).await.context("entering the organization")?;
    t.add_member(user, role).await.context("adding the membership")?;
    t.audit(NewAuditEntry {
        actor: Actor::system("burnrate user create"),
        action: AuditAction::MemberJoined,
        target_type: Some("user"),
        target_id: Some(user.to_string()),
        details: json!({ "role": role, "via": "cli" }),
        ip: None,
        user_agent: None,
    })
    .await
    .context("writing the audit log")?;
    t.commit().await.context("committing")?;
    println!("created user {user} as {role} of organization {}", scope.org_id());
    Ok(())
}

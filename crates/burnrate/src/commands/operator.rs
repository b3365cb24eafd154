//! `burnrate operator add|remove|reset-totp`: the instance's staff (S18).

use anyhow::{Context, anyhow};
use burnrate_core::{EmailAddress, NewPassword};
use burnrate_store::Vault;

use super::support::support_failure;
use super::{Failure, config_error, master_keys, open_store, password_from_stdin, password_hasher};
use crate::settings::Settings;

pub(super) async fn operator_add(settings: &Settings, email: &str, name: Option<&str>) -> Result<(), Failure> {
    let ring = master_keys(settings)?;
    let email = EmailAddress::parse(email).map_err(|e| config_error("--email", e.to_string()))?;
    let name = name.unwrap_or_else(|| email.as_str().split('@').next().unwrap_or_default()).trim().to_owned();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(config_error("--name", "from 1 to 80 printable characters"));
    }
    let password = password_from_stdin()?;
    let password = NewPassword::parse(&password, &[email.as_str(), &name])
        .map_err(|e| config_error("--password-stdin", e.to_string()))?;
    let store = open_store(settings).await?;
    let vault = Vault::new(ring);
    let hash = password_hasher(settings).hash(password.expose()).await.context("hashing the password")?;
    let totp = burnrate_crypto::TotpSecret::generate();
    let mut tx = store.instance().await.context("opening a transaction")?;
    let id = tx.create_operator(&vault, &name, &email, &hash, &totp).await.map_err(|e| anyhow!("{e}"))?;
    tx.commit().await.context("committing")?;
    println!("added operator {id} ({name})");
    println!();
    println!("Add this key to the operator's authenticator app now; it is not shown again:");
    println!("  secret: {}", totp.base32().as_str());
    println!("  uri:    {}", totp.provisioning_uri("burnrate", email.as_str()).as_str());
    println!();
    println!(
        "The operator logs in at {}/operator with email, password and the app's current code.",
        settings.public_url.as_str().trim_end_matches('/')
    );
    Ok(())
}

pub(super) enum OperatorChange {
    Remove,
    ResetTotp,
}

pub(super) async fn operator_change(settings: &Settings, email: &str, change: OperatorChange) -> Result<(), Failure> {
    let ring = master_keys(settings)?;
    let email = EmailAddress::parse(email).map_err(|e| config_error("--email", e.to_string()))?;
    let store = open_store(settings).await?;
    let vault = Vault::new(ring);
    let mut tx = store.instance().await.context("opening a transaction")?;
    let operator = tx
        .find_operator_by_email(&vault, &email)
        .await
        .context("finding the operator")?
        .ok_or_else(|| config_error("--email", format!("no active operator with the email {email}")))?;
    match change {
        OperatorChange::Remove => {
            tx.disable_operator(operator.id, chrono::Utc::now()).await.context("disabling the operator")?;
            tx.commit().await.context("committing")?;
            let ended = super::support::support_service(settings)
                .await?
                .revoke_all_of(&operator, "burnrate operator remove")
                .await
                .map_err(support_failure)?;
            println!(
                "disabled operator {} ({}): no login from now on, sessions ended, {ended} open grant(s) revoked",
                operator.id, operator.name
            );
        }
        OperatorChange::ResetTotp => {
            let totp = burnrate_crypto::TotpSecret::generate();
            tx.reset_operator_totp(&vault, operator.id, &totp).await.context("storing the new key")?;
            tx.commit().await.context("committing")?;
            println!(
                "new authenticator key for operator {} ({}); the old one no longer works:",
                operator.id, operator.name
            );
            println!("  secret: {}", totp.base32().as_str());
            println!("  uri:    {}", totp.provisioning_uri("burnrate", email.as_str()).as_str());
        }
    }
    Ok(())
}

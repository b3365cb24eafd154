//! `burnrate support request|approve|revoke|list`, for operators who authenticate as they run it (S18).

use anyhow::{Context, anyhow};
use burnrate_store::Vault;

use super::{Failure, config_error, master_keys, open_store, password_from_stdin, password_hasher};
use crate::cli::{OperatorLogin, SupportCommand};
use crate::server::web_config;
use crate::settings::Settings;

/// A refusal of the support rules, as the command line reports it: bad input exits 2 naming the
/// option, anything else 1.
pub(super) fn support_failure(e: burnrate_web::AppError) -> Failure {
    match e {
        burnrate_web::AppError::Validation(m) => match m.split_once(": ") {
            Some((field, why)) => config_error(&format!("--{field}"), why),
            None => config_error("support", m),
        },
        other => Failure::Other(anyhow!("{other}")),
    }
}

pub(super) async fn support(settings: &Settings, command: SupportCommand) -> Result<(), Failure> {
    use burnrate_web::support;
    let login = match &command {
        SupportCommand::Request { login, .. }
        | SupportCommand::Approve { login, .. }
        | SupportCommand::Revoke { login, .. }
        | SupportCommand::List { login } => login,
    };
    let OperatorLogin { email, code, password_stdin: _ } = login;
    let ring = master_keys(settings)?;
    let password = password_from_stdin()?;
    let store = open_store(settings).await?;
    let vault = Vault::new(ring);
    let operator = support::authenticate_operator(&store, &vault, &password_hasher(settings), email, &password, code)
        .await
        .map_err(support_failure)?;
    let grant_id = |raw: &str| raw.parse().map_err(|_| config_error("GRANT", format!("{raw:?} is not a grant id")));
    let now = chrono::Utc::now();
    match command {
        SupportCommand::Request { org, issue, hours, .. } => {
            let ask = support::AccessRequest { org: &org, issue: &issue, hours };
            let page = web_config(settings).link("/support");
            let grant =
                support::request_access(&store, &vault, &operator, &ask, &page, None).await.map_err(support_failure)?;
            println!("requested grant {} for organization {}: {}", grant.id, grant.org_id, grant.status(now).as_str());
            println!("The organization's admins were emailed to consent; a second operator approves with");
            println!("  burnrate support approve {}", grant.id);
        }
        SupportCommand::Approve { grant, .. } => {
            let grant =
                support::approve_access(&store, &operator, grant_id(&grant)?, None).await.map_err(support_failure)?;
            match grant.expires_at {
                Some(until) => println!("approved grant {}: active until {}", grant.id, until.to_rfc3339()),
                None => println!("approved grant {}: waiting for the organization's consent", grant.id),
            }
        }
        SupportCommand::Revoke { grant, .. } => {
            let grant = support::revoke_as_operator(&store, &operator, grant_id(&grant)?, None)
                .await
                .map_err(support_failure)?;
            println!("revoked grant {}", grant.id);
        }
        SupportCommand::List { .. } => {
            let mut tx = store.instance().await.context("reading grants")?;
            let grants = tx.all_support_grants(500).await.context("reading grants")?;
            tx.commit().await.context("reading grants")?;
            for g in &grants {
                let line = serde_json::to_string(&support::SupportGrantView::new(g, now)).context("writing")?;
                println!("{line}");
            }
            if grants.is_empty() {
                eprintln!("no support grants yet");
            }
        }
    }
    Ok(())
}

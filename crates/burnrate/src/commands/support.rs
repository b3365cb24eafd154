//! `burnrate support request|approve|revoke|list`, for operators who authenticate as they run it (S18).

use std::sync::Arc;

use anyhow::{Context, anyhow};
use burnrate_app::support::{self, Operator, Support};
use burnrate_store::Vault;

use super::{Failure, config_error, master_keys, open_store, password_from_stdin, password_hasher};
use crate::cli::{OperatorLogin, SupportCommand};
use crate::settings::Settings;

/// A refusal of the support rules, as the command line reports it: bad input exits 2 naming the
/// option, anything else 1.
pub(super) fn support_failure(e: burnrate_app::Error) -> Failure {
    match e {
        burnrate_app::Error::Invalid { field, message } => {
            let why = message.strip_prefix(&format!("{field}: ")).unwrap_or(&message);
            config_error(&format!("--{field}"), why)
        }
        other => Failure::Other(anyhow!("{other}")),
    }
}

/// The support-access service, for commands run on the server.
pub(super) async fn support_service(settings: &Settings) -> Result<Support, Failure> {
    let vault = Arc::new(Vault::new(master_keys(settings)?));
    let store = open_store(settings).await?;
    Ok(Support::new(store, vault, password_hasher(settings), settings.public_url.clone()))
}

pub(super) async fn support(settings: &Settings, command: SupportCommand) -> Result<(), Failure> {
    let login = match &command {
        SupportCommand::Request { login, .. }
        | SupportCommand::Approve { login, .. }
        | SupportCommand::Revoke { login, .. }
        | SupportCommand::List { login } => login,
    };
    let OperatorLogin { email, code, password_stdin: _ } = login;
    let service = support_service(settings).await?;
    let password = password_from_stdin()?;
    let record = service.authenticate_operator(email, &password, code).await.map_err(support_failure)?;
    let operator = Operator::at_command_line(record);
    let grant_id = |raw: &str| raw.parse().map_err(|_| config_error("GRANT", format!("{raw:?} is not a grant id")));
    let now = chrono::Utc::now();
    match command {
        SupportCommand::Request { org, issue, hours, .. } => {
            let ask = support::AccessRequest { org: &org, issue: &issue, hours };
            let grant = service.request_access(&operator, &ask).await.map_err(support_failure)?;
            println!("requested grant {} for organization {}: {}", grant.id, grant.org_id, grant.status(now).as_str());
            println!("The organization's admins were emailed to consent; a second operator approves with");
            println!("  burnrate support approve {}", grant.id);
        }
        SupportCommand::Approve { grant, .. } => {
            let grant = service.approve_access(&operator, grant_id(&grant)?).await.map_err(support_failure)?;
            match grant.expires_at {
                Some(until) => println!("approved grant {}: active until {}", grant.id, until.to_rfc3339()),
                None => println!("approved grant {}: waiting for the organization's consent", grant.id),
            }
        }
        SupportCommand::Revoke { grant, .. } => {
            let grant = service.revoke_as_operator(&operator, grant_id(&grant)?).await.map_err(support_failure)?;
            println!("revoked grant {}", grant.id);
        }
        SupportCommand::List { .. } => {
            let grants = service.all_grants(500).await.map_err(support_failure)?.grants;
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

//! The commands. Each one loads the settings it needs and fails with a `Config` error (exit 2)
//! when a setting is missing or wrong.

mod audit;
mod demo;
mod egress;
mod keys;
mod migrate;
mod operator;
mod prices;
mod serve;
mod support;
mod user;

use std::io::BufRead;

use anyhow::Context;
use burnrate_crypto::{MasterKey, MasterKeyRing, PasswordHasher, PasswordHasherConfig};
use burnrate_store::Store;
use secrecy::ExposeSecret;

use crate::cli::{AuditCommand, Command, KeysCommand, OperatorCommand, UserCommand};
use crate::settings::{ConfigError, Settings, Sources};

/// Why a command failed: a setting to fix (exit 2) or anything else (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Config(ConfigError),
    #[error("{0:#}")]
    Other(anyhow::Error),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

pub(crate) fn config_error(setting: &str, message: impl Into<String>) -> Failure {
    Failure::Config(ConfigError { setting: setting.into(), message: message.into() })
}

pub async fn run(sources: Sources, command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve { behind_tls_proxy } => {
            let mut settings = Settings::from_sources(&sources, "./burnrate-data")?;
            settings.behind_tls_proxy |= behind_tls_proxy;
            serve::serve(settings).await
        }
        Command::Demo { data_dir } => {
            let mut settings = Settings::from_sources(&sources, "./burnrate-demo")?;
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            demo::demo(settings).await
        }
        Command::Migrate => migrate::migrate(&Settings::from_sources(&sources, "./burnrate-data")?).await,
        Command::Keys { command: KeysCommand::Generate } => {
            let kid = format!("k{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
            println!("{}", MasterKey::generate(&kid).export().as_str());
            Ok(())
        }
        Command::Keys { command: KeysCommand::Rotate } => {
            keys::rotate(&Settings::from_sources(&sources, "./burnrate-data")?).await
        }
        Command::User { command: UserCommand::Create { org, email, role, password_stdin: _ } } => {
            user::user_create(&Settings::from_sources(&sources, "./burnrate-data")?, &org, &email, &role).await
        }
        Command::Audit { command: AuditCommand::Verify { org } } => {
            audit::audit_verify(&Settings::from_sources(&sources, "./burnrate-data")?, org.as_deref()).await
        }
        Command::Audit { command: AuditCommand::Export { org, from, to } } => {
            let settings = Settings::from_sources(&sources, "./burnrate-data")?;
            audit::audit_export(&settings, &org, from.as_deref(), to.as_deref()).await
        }
        Command::Operator { command: OperatorCommand::Add { email, name, password_stdin: _ } } => {
            operator::operator_add(&Settings::from_sources(&sources, "./burnrate-data")?, &email, name.as_deref()).await
        }
        Command::Operator { command: OperatorCommand::Remove { email } } => {
            operator::operator_change(
                &Settings::from_sources(&sources, "./burnrate-data")?,
                &email,
                operator::OperatorChange::Remove,
            )
            .await
        }
        Command::Operator { command: OperatorCommand::ResetTotp { email } } => {
            operator::operator_change(
                &Settings::from_sources(&sources, "./burnrate-data")?,
                &email,
                operator::OperatorChange::ResetTotp,
            )
            .await
        }
        Command::Support { command } => {
            support::support(&Settings::from_sources(&sources, "./burnrate-data")?, command).await
        }
        Command::Egress { command } => {
            egress::egress(&Settings::from_sources(&sources, "./burnrate-data")?, command).await
        }
        Command::Prices { command } => {
            prices::prices(&Settings::from_sources(&sources, "./burnrate-data")?, command).await
        }
    }
}

pub(crate) fn master_keys(settings: &Settings) -> Result<MasterKeyRing, Failure> {
    let Some(keys) = &settings.master_keys else {
        return Err(config_error(
            "BURNRATE_MASTER_KEYS",
            "not set: this command seals or opens secrets and needs a master key (generate one with `burnrate keys generate`)",
        ));
    };
    MasterKeyRing::parse(keys.expose_secret())
        .map_err(|e| config_error("BURNRATE_MASTER_KEYS", e.to_string().trim_start_matches("BURNRATE_MASTER_KEYS: ")))
}

/// Connects as the application and applies migrations where that is this process's job: always
/// for SQLite, for PostgreSQL only when the owner's URL is configured.
pub(crate) async fn open_store(settings: &Settings) -> Result<Store, Failure> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data dir {}", settings.data_dir.display()))?;
    let url = settings.database_url();
    if url.starts_with("sqlite:") {
        let store = Store::connect(&url).await.context("opening the SQLite database")?;
        burnrate_store::migrate_sqlite(&store).await.context("migrating the SQLite database")?;
        return Ok(store);
    }
    if let Some(admin) = &settings.database_admin_url {
        burnrate_store::migrate_postgres(admin.expose_secret(), Some(&url)).await.context("migrating PostgreSQL")?;
    }
    Ok(Store::connect(&url).await.context("connecting to PostgreSQL (BURNRATE_DATABASE_URL)")?)
}

/// For `audit verify` and `keys rotate`: the owner role on PostgreSQL when configured.
pub(crate) async fn open_admin_store(settings: &Settings) -> Result<Store, Failure> {
    let url = settings.database_url();
    match (&settings.database_admin_url, url.starts_with("sqlite:")) {
        (Some(admin), false) => Ok(Store::connect(admin.expose_secret())
            .await
            .context("connecting to PostgreSQL (BURNRATE_DATABASE_ADMIN_URL)")?),
        _ => open_store(settings).await,
    }
}

/// The first line of standard input, without its line ending (a password).
pub(crate) fn password_from_stdin() -> Result<zeroize::Zeroizing<String>, Failure> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

pub(crate) fn password_hasher(settings: &Settings) -> PasswordHasher {
    PasswordHasher::new(PasswordHasherConfig { cost: settings.bcrypt_cost, ..Default::default() })
}

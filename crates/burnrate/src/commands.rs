//! The commands. Each one loads the settings it needs and fails with a `Config` error (exit 2)
//! when a setting is missing or wrong.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use burnrate_core::{ApiScope, EmailAddress, NewPassword, OrgName, Role};
use burnrate_crypto::{MasterKey, MasterKeyRing, PasswordHasher, PasswordHasherConfig, random_token};
use burnrate_store::{Actor, AuditAction, NewAuditEntry, OrgScope, Store, Vault};
use burnrate_web::{AppState, Listeners, Quota, TlsFiles, WebConfig};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::settings::{ConfigError, Settings, Sources};
use crate::{AuditCommand, Command, KeysCommand, OperatorCommand, OperatorLogin, SupportCommand, UserCommand};

pub enum Failure {
    Config(ConfigError),
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

fn config_error(setting: &str, message: impl Into<String>) -> Failure {
    Failure::Config(ConfigError { setting: setting.into(), message: message.into() })
}

pub async fn run(sources: Sources, command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve { behind_tls_proxy } => {
            let mut settings = Settings::from_sources(&sources, "./burnrate-data")?;
            settings.behind_tls_proxy |= behind_tls_proxy;
            serve(settings).await
        }
        Command::Demo { data_dir } => {
            let mut settings = Settings::from_sources(&sources, "./burnrate-demo")?;
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            demo(settings).await
        }
        Command::Migrate => migrate(&Settings::from_sources(&sources, "./burnrate-data")?).await,
        Command::Keys { command: KeysCommand::Generate } => {
            let kid = format!("k{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
            println!("{}", MasterKey::generate(&kid).export().as_str());
            Ok(())
        }
        Command::Keys { command: KeysCommand::Rotate } => {
            rotate(&Settings::from_sources(&sources, "./burnrate-data")?).await
        }
        Command::User { command: UserCommand::Create { org, email, role, password_stdin: _ } } => {
            user_create(&Settings::from_sources(&sources, "./burnrate-data")?, &org, &email, &role).await
        }
        Command::Audit { command: AuditCommand::Verify { org } } => {
            audit_verify(&Settings::from_sources(&sources, "./burnrate-data")?, org.as_deref()).await
        }
        Command::Audit { command: AuditCommand::Export { org, from, to } } => {
            let settings = Settings::from_sources(&sources, "./burnrate-data")?;
            audit_export(&settings, &org, from.as_deref(), to.as_deref()).await
        }
        Command::Operator { command: OperatorCommand::Add { email, name, password_stdin: _ } } => {
            operator_add(&Settings::from_sources(&sources, "./burnrate-data")?, &email, name.as_deref()).await
        }
        Command::Operator { command: OperatorCommand::Remove { email } } => {
            operator_change(&Settings::from_sources(&sources, "./burnrate-data")?, &email, OperatorChange::Remove).await
        }
        Command::Operator { command: OperatorCommand::ResetTotp { email } } => {
            operator_change(&Settings::from_sources(&sources, "./burnrate-data")?, &email, OperatorChange::ResetTotp)
                .await
        }
        Command::Support { command } => support(&Settings::from_sources(&sources, "./burnrate-data")?, command).await,
    }
}

fn master_keys(settings: &Settings) -> Result<MasterKeyRing, Failure> {
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
async fn open_store(settings: &Settings) -> Result<Store, Failure> {
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
async fn open_admin_store(settings: &Settings) -> Result<Store, Failure> {
    let url = settings.database_url();
    match (&settings.database_admin_url, url.starts_with("sqlite:")) {
        (Some(admin), false) => Ok(Store::connect(admin.expose_secret())
            .await
            .context("connecting to PostgreSQL (BURNRATE_DATABASE_ADMIN_URL)")?),
        _ => open_store(settings).await,
    }
}

async fn migrate(settings: &Settings) -> Result<(), Failure> {
    let url = settings.database_url();
    if url.starts_with("sqlite:") {
        open_store(settings).await?.close().await;
        println!("SQLite database migrated: {}", url.trim_start_matches("sqlite://"));
        return Ok(());
    }
    let Some(admin) = &settings.database_admin_url else {
        return Err(config_error(
            "BURNRATE_DATABASE_ADMIN_URL",
            "not set: migrating PostgreSQL needs the owner role's URL",
        ));
    };
    burnrate_store::migrate_postgres(admin.expose_secret(), Some(&url)).await.context("migrating PostgreSQL")?;
    println!("PostgreSQL migrated; the application role has been granted its rights.");
    Ok(())
}

async fn rotate(settings: &Settings) -> Result<(), Failure> {
    let ring = master_keys(settings)?;
    let active = ring.active_kid().to_owned();
    let store = open_admin_store(settings).await?;
    let vault = Vault::new(ring);
    let n = vault.rewrap_all(&store).await.context("re-wrapping data keys")?;
    println!(
        "{n} data key(s) re-wrapped under master key {active}. Keys no longer listed first may now be removed from BURNRATE_MASTER_KEYS."
    );
    Ok(())
}

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

async fn audit_export(settings: &Settings, org: &str, from: Option<&str>, to: Option<&str>) -> Result<(), Failure> {
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

async fn audit_verify(settings: &Settings, org: Option<&str>) -> Result<(), Failure> {
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

/// The first line of standard input, without its line ending (a password).
fn password_from_stdin() -> Result<zeroize::Zeroizing<String>, Failure> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

fn password_hasher(settings: &Settings) -> PasswordHasher {
    PasswordHasher::new(PasswordHasherConfig { cost: settings.bcrypt_cost, ..Default::default() })
}

async fn operator_add(settings: &Settings, email: &str, name: Option<&str>) -> Result<(), Failure> {
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

enum OperatorChange {
    Remove,
    ResetTotp,
}

async fn operator_change(settings: &Settings, email: &str, change: OperatorChange) -> Result<(), Failure> {
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
            let ended = burnrate_web::support::revoke_all_of(&store, &operator, "burnrate operator remove")
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

/// A refusal of the support rules, as the command line reports it: bad input exits 2 naming the
/// option, anything else 1.
fn support_failure(e: burnrate_web::AppError) -> Failure {
    match e {
        burnrate_web::AppError::Validation(m) => match m.split_once(": ") {
            Some((field, why)) => config_error(&format!("--{field}"), why),
            None => config_error("support", m),
        },
        other => Failure::Other(anyhow!("{other}")),
    }
}

async fn support(settings: &Settings, command: SupportCommand) -> Result<(), Failure> {
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

async fn user_create(settings: &Settings, org: &str, email: &str, role: &str) -> Result<(), Failure> {
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

fn web_config(settings: &Settings) -> WebConfig {
    let mut cfg = WebConfig::new(settings.public_url.clone());
    cfg.signup = settings.signup;
    cfg.hsts = settings.https_addr.is_some() || settings.behind_tls_proxy;
    cfg.trust_forwarded_for = settings.behind_tls_proxy;
    cfg.smtp_url = settings.smtp_url.as_ref().map(|s| s.expose_secret().to_owned());
    cfg.mail_from = settings.mail_from.clone();
    cfg.login_per_ip = Quota::per_minute(settings.login_rate_per_ip, settings.login_rate_per_ip);
    cfg.sync_lease = settings.sync_lease;
    cfg.api_per_key = WebConfig::api_per_key(settings.api_rate_per_key);
    cfg.api_per_ip = WebConfig::api_per_ip(settings.api_rate_per_key);
    // Bound to every interface: clients reach it by the public host name.
    let address = if settings.pg_addr.ip().is_unspecified() {
        format!("{}:{}", settings.public_url.host_str().unwrap_or("localhost"), settings.pg_addr.port())
    } else {
        settings.pg_addr.to_string()
    };
    cfg.pg_endpoint = Some(burnrate_web::PgEndpoint { address, tls: settings.pg_tls_cert.is_some() });
    cfg
}

struct Running {
    _server: burnrate_web::RunningServer,
    pg: burnrate_pgwire::PgServer,
    _mail: tokio::task::JoinHandle<()>,
    _scheduler: tokio::task::JoinHandle<()>,
    _alerts: Option<tokio::task::JoinHandle<()>>,
    http: std::net::SocketAddr,
}

/// Webhook deliveries in flight at once per instance.
const DELIVERERS: usize = 8;

/// Everything the server runs, built but not yet listening.
async fn build_state(settings: &Settings, store: Store, vault: Arc<Vault>) -> Result<AppState, Failure> {
    let hasher = password_hasher(settings);
    let lake = burnrate_lake::Lake::from_url(&settings.lake_url())
        .map_err(|e| config_error("BURNRATE_LAKE_URL", e.to_string().trim_start_matches("BURNRATE_LAKE_URL: ")))?;
    // Object storage retries for minutes; a lake that does not answer at start is a setting to fix.
    match tokio::time::timeout(std::time::Duration::from_secs(30), lake.probe()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(config_error("BURNRATE_LAKE_URL", format!("{}: {e}", settings.lake_url()))),
        Err(_) => {
            return Err(config_error("BURNRATE_LAKE_URL", format!("{}: no answer within 30 s", settings.lake_url())));
        }
    }
    let guard = burnrate_net::EgressGuard::new(&settings.egress_allow).map_err(|e| {
        config_error("BURNRATE_EGRESS_ALLOW", e.to_string().trim_start_matches("BURNRATE_EGRESS_ALLOW: "))
    })?;
    let client = burnrate_net::HttpClient::new(guard, burnrate_net::ClientOptions::default());
    // One limiter for every route and dispatch; shared by all instances when Redis is configured.
    let limiter = match &settings.redis_url {
        Some(url) => burnrate_web::RateLimiter::redis(url.expose_secret())
            .await
            .map_err(|e| config_error("BURNRATE_REDIS_URL", e.trim_start_matches("BURNRATE_REDIS_URL: ")))?,
        None => burnrate_web::RateLimiter::new(),
    };
    AppState::new(web_config(settings), store, vault, hasher, lake, client, limiter)
        .map_err(|e| config_error("BURNRATE_SMTP_URL", e))
}

/// The listening sockets, bound before anything else takes a port.
struct Bound {
    http: tokio::net::TcpListener,
    https: Option<(tokio::net::TcpListener, TlsFiles)>,
    pg: tokio::net::TcpListener,
}

/// Binds the configured addresses: first, so that nothing started later (the demo's simulated
/// providers take ephemeral ports) can hold one of them.
async fn bind(settings: &Settings) -> Result<Bound, Failure> {
    let http = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .map_err(|e| config_error("BURNRATE_HTTP_ADDR", format!("cannot listen on {}: {e}", settings.http_addr)))?;
    let https = match (settings.https_addr, &settings.tls_cert, &settings.tls_key) {
        (Some(addr), Some(cert), Some(key)) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| config_error("BURNRATE_HTTPS_ADDR", format!("cannot listen on {addr}: {e}")))?;
            Some((l, TlsFiles { cert: cert.clone(), key: key.clone() }))
        }
        _ => None,
    };
    let pg = tokio::net::TcpListener::bind(settings.pg_addr)
        .await
        .map_err(|e| config_error("BURNRATE_PG_ADDR", format!("cannot listen on {}: {e}", settings.pg_addr)))?;
    Ok(Bound { http, https, pg })
}

/// Serves on the bound listeners and starts the background workers.
async fn start(settings: &Settings, state: AppState, bound: Bound) -> Result<Running, Failure> {
    let Bound { http, https, pg } = bound;
    let engine = build_engine(settings, state.syncer())?;
    let pg = start_pg(settings, pg, engine.clone(), state.app().clone())?;
    let state = state.with_engine(engine);
    let mail = state.mailer().spawn_worker();
    let syncer = state.syncer().clone();
    let scheduler = burnrate_sync::spawn_scheduler(syncer.clone(), std::time::Duration::from_secs(60));
    let alerts = state.notifier().map(|n| n.spawn(DELIVERERS));
    let server = burnrate_web::serve(state, Listeners { http, https }).await.map_err(|e| config_error("TLS", e))?;
    let http = server.http_addr;
    Ok(Running { _server: server, pg, _mail: mail, _scheduler: scheduler, _alerts: alerts, http })
}

/// The SQL engine, under the wire endpoint and the console.
fn build_engine(settings: &Settings, syncer: &burnrate_sync::Syncer) -> Result<burnrate_engine::Engine, Failure> {
    let config = burnrate_engine::EngineConfig {
        memory_limit: usize::try_from(settings.query_memory_limit)
            .map_err(|_| config_error("BURNRATE_QUERY_MEMORY_LIMIT", "too large for this machine"))?,
        spill_dir: settings.spill_dir.clone(),
        max_spill_bytes: settings.spill_max,
        statement_timeout: settings.statement_timeout,
    };
    let engine = burnrate_engine::Engine::new(config, syncer.store.clone(), syncer.lake.clone())
        .map_err(|e| config_error("BURNRATE_SPILL_DIR", e.to_string()))?
        .with_database_sources(Arc::clone(&syncer.vault), syncer.http.guard().clone());
    Ok(engine)
}

/// The Postgres wire endpoint over `engine`.
fn start_pg(
    settings: &Settings,
    listener: tokio::net::TcpListener,
    engine: burnrate_engine::Engine,
    app: burnrate_app::App,
) -> Result<burnrate_pgwire::PgServer, Failure> {
    settings.check_pg_tls()?;
    let tls = match (&settings.pg_tls_cert, &settings.pg_tls_key) {
        (Some(cert), Some(key)) => Some(
            burnrate_net::ServerTls::load(cert, key, "BURNRATE_PG_TLS_CERT", "BURNRATE_PG_TLS_KEY")
                .map_err(|e| config_error("BURNRATE_PG_TLS_CERT", e))?
                .into(),
        ),
        _ => None,
    };
    burnrate_pgwire::PgServer::start(listener, engine, app, tls)
        .map_err(|e| config_error("BURNRATE_PG_ADDR", e.to_string()))
}

async fn wait_for_shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}

async fn serve(settings: Settings) -> Result<(), Failure> {
    let ring = master_keys(&settings)?;
    settings.check_plain_http()?;
    let store = open_store(&settings).await?;
    let state = build_state(&settings, store.clone(), Arc::new(Vault::new(ring))).await?;
    let running = start(&settings, state, bind(&settings).await?).await?;
    match settings.https_addr {
        Some(addr) => {
            tracing::info!(https = %addr, http_redirect = %running.http, "burnrate is serving")
        }
        None => tracing::info!(http = %running.http, "burnrate is serving (plain HTTP)"),
    }
    tracing::info!(postgres = %running.pg.addr, "SQL clients connect here (database burnrate)");
    wait_for_shutdown().await;
    tracing::info!("shutting down");
    store.close().await;
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct DemoFile {
    url: String,
    email: String,
    password: String,
    api_key: String,
    postgres_url: Option<String>,
}

impl DemoFile {
    /// Replaces `path` whole (written beside it, then renamed), so a reader never sees half a file.
    fn write(&self, path: &Path) -> Result<(), Failure> {
        let text = serde_json::to_string_pretty(self).map_err(|e| anyhow!("{e}"))?;
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }
}

const DEMO_EMAIL: &str = "demo@burnrate.example";
const DEMO_ORG: &str = "Demo Org";
/// The simulated providers' keys: not secrets, but stored sealed like real ones.
const DEMO_OPENAI_KEY: &str = "sk-admin-demo-simulated-openai-0001";
const DEMO_ANTHROPIC_KEY: &str = "sk-ant-admin01-demo-simulated-0001";
const DEMO_AWS_KEY_ID: &str = "AKIADEMOSIMULATED001";
const DEMO_AWS_SECRET: &str = "demo/simulated/aws/secret/access/key/0001";
const DEMO_AZURE_TENANT: &str = "2b8e1c4d-5f6a-4b7c-8d9e-0f1a2b3c4d5e";
const DEMO_AZURE_CLIENT: &str = "7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f";
const DEMO_AZURE_SECRET: &str = "Demo8Q~simulated.azure.client.secret.0001";
const DEMO_GCP_PROJECT: &str = "demo-billing";
const DEMO_GCP_TABLE: &str = "demo-billing.billing_export.gcp_billing_export_v1_0D3M0A_51MULA_7ED001";
const DEMO_OPENROUTER_KEY: &str = "sk-or-v1-demo-simulated-management-key-0001";

struct Sims {
    openai: burnrate_sim::SimProvider,
    anthropic: burnrate_sim::SimProvider,
    aws: burnrate_sim::SimProvider,
    azure: burnrate_sim::SimProvider,
    gcp: burnrate_sim::SimProvider,
    openrouter: burnrate_sim::SimProvider,
}

/// Every provider's billing API on loopback, seeded with 90 days up to today.
async fn start_simulated_providers() -> Sims {
    let today = chrono::Utc::now().date_naive();
    let openai = burnrate_sim::SimProvider::openai(DEMO_OPENAI_KEY).await;
    openai.set_lines(burnrate_sim::demo::openai_lines(today, 90));
    openai.set_usage(burnrate_sim::demo::openai_usage(today, 90));
    let anthropic = burnrate_sim::SimProvider::anthropic(DEMO_ANTHROPIC_KEY).await;
    anthropic.set_lines(burnrate_sim::demo::anthropic_lines(today, 90));
    anthropic.set_usage(burnrate_sim::demo::anthropic_usage(today, 90));
    let aws = burnrate_sim::SimProvider::aws(DEMO_AWS_KEY_ID, DEMO_AWS_SECRET).await;
    aws.set_lines(burnrate_sim::demo::aws_lines(today, 90));
    let azure = burnrate_sim::SimProvider::azure(
        DEMO_AZURE_TENANT,
        DEMO_AZURE_CLIENT,
        DEMO_AZURE_SECRET,
        burnrate_sim::demo::DEMO_AZURE_SUBSCRIPTION,
    )
    .await;
    azure.set_lines(burnrate_sim::demo::azure_lines(today, 90));
    let gcp = burnrate_sim::SimProvider::gcp(DEMO_GCP_PROJECT, DEMO_GCP_TABLE).await;
    gcp.set_lines(burnrate_sim::demo::gcp_lines(today, 90));
    let openrouter = burnrate_sim::SimProvider::openrouter(DEMO_OPENROUTER_KEY).await;
    openrouter.set_lines(burnrate_sim::demo::openrouter_lines(today, 90));
    Sims { openai, anthropic, aws, azure, gcp, openrouter }
}

/// Connects the demo organization to the simulated providers (once), points the sources at this
/// run's simulator ports, and syncs them before the UI is announced.
async fn connect_and_sync_demo_sources(
    app: &burnrate_app::App,
    syncer: &burnrate_sync::Syncer,
    sims: &Sims,
) -> Result<String, Failure> {
    use burnrate_app::sources::{NewCredential, NewSourceInput, SettingsChange};
    use burnrate_sync::{SourceKind, Syncer};
    let store = app.store();
    let owner = demo_owner(app).await?;
    let scope = owner.scope;
    let (mut rows, mut usage_rows) = (0, 0);
    // Each run's simulated Google service account has a new key: it replaces the sealed one.
    let gcp_key = sims.gcp.gcp_key();
    for (kind, name, key, sim) in [
        (SourceKind::OpenAi, "OpenAI (simulated)", DEMO_OPENAI_KEY, &sims.openai),
        (SourceKind::Anthropic, "Anthropic (simulated)", DEMO_ANTHROPIC_KEY, &sims.anthropic),
        (SourceKind::Aws, "AWS Bedrock (simulated)", DEMO_AWS_SECRET, &sims.aws),
        (SourceKind::Azure, "Azure OpenAI (simulated)", DEMO_AZURE_SECRET, &sims.azure),
        (SourceKind::Gcp, "Google Vertex AI (simulated)", gcp_key.as_str(), &sims.gcp),
        (SourceKind::OpenRouter, "OpenRouter (simulated)", DEMO_OPENROUTER_KEY, &sims.openrouter),
    ] {
        let azure = kind == SourceKind::Azure;
        let gcp = kind == SourceKind::Gcp;
        let access_key_id = (kind == SourceKind::Aws).then(|| DEMO_AWS_KEY_ID.to_owned());
        let mut t = store.tenant(scope).await.context("opening a transaction")?;
        let existing = t.sources().await.context("listing sources")?.into_iter().find(|s| s.name == name);
        t.commit().await.context("committing")?;
        // As the organization's owner would, through the same rules: validated and audited.
        let submitted = match existing {
            // This run's simulator listens elsewhere (and Google's key is new): the key goes with
            // its new address, as it must (S23).
            Some(existing) => {
                let change = SettingsChange {
                    base_url: Some(sim.base_url()),
                    credential: Some(NewCredential { secret: key.to_owned(), access_key_id }),
                    ..Default::default()
                };
                app.change_source_settings(&owner, existing.id, change).await
            }
            None => {
                let input = NewSourceInput {
                    kind: kind.as_str().to_owned(),
                    name: name.to_owned(),
                    secret: key.to_owned(),
                    access_key_id,
                    tenant_id: azure.then(|| DEMO_AZURE_TENANT.to_owned()),
                    client_id: azure.then(|| DEMO_AZURE_CLIENT.to_owned()),
                    scope: azure.then(|| burnrate_sim::demo::DEMO_AZURE_SUBSCRIPTION.to_owned()),
                    billing_table: gcp.then(|| DEMO_GCP_TABLE.to_owned()),
                    base_url: Some(sim.base_url()),
                    ..Default::default()
                };
                app.connect_source(&owner, input).await
            }
        };
        let id = match submitted.map_err(|e| anyhow!("connecting {name}: {e}"))? {
            burnrate_app::Submitted::Applied(id) => id,
            burnrate_app::Submitted::Queued(_) => {
                return Err(
                    anyhow!("connecting {name} waits for approval: the demo organization has a second admin").into()
                );
            }
        };
        let mut t = store.tenant(scope).await.context("opening a transaction")?;
        let source =
            t.source(id).await.context("reading the demo source")?.ok_or_else(|| anyhow!("demo source vanished"))?;
        t.commit().await.context("committing")?;
        let window = Syncer::next_window(&source, chrono::Utc::now().date_naive());
        let outcome = syncer.sync(scope, id, window).await.map_err(|e| anyhow!("syncing {name}: {e}"))?;
        rows += outcome.rows;
        usage_rows += outcome.usage_rows;
    }
    let budgets = ensure_demo_budgets(app, syncer, &owner).await?;
    Ok(format!(
        "{rows} cost lines and {usage_rows} usage lines synced from simulated OpenAI, Anthropic, AWS Bedrock, Azure OpenAI, Google Vertex AI and OpenRouter (about 90 days; OpenRouter reports 30); {budgets}"
    ))
}

/// Two budgets for the demo organization, sized from its last 30 days so that one is on track and
/// the other already past its first alerts (which the running instance then sends). Set by its
/// owner, as a person would.
async fn ensure_demo_budgets(
    app: &burnrate_app::App,
    syncer: &burnrate_sync::Syncer,
    owner: &burnrate_app::Actor,
) -> Result<String, Failure> {
    use burnrate_app::budgets::NewBudgetInput;
    use burnrate_core::BudgetScope;
    let store = app.store();
    let mut t = store.read_tenant(owner.scope).await.context("opening a transaction")?;
    let existing = t.budgets().await.context("listing budgets")?;
    t.commit().await.context("committing")?;
    if !existing.is_empty() {
        return Ok(format!("{} budgets", existing.len()));
    }
    let since = chrono::Utc::now().date_naive() - chrono::Duration::days(30);
    let rows = syncer.lake.read_costs(store, owner.scope).await.map_err(|e| anyhow!("reading the demo spend: {e}"))?;
    let recent = rows.iter().filter(|r| r.charge_day >= since && r.billing_currency == "USD");
    let all: rust_decimal::Decimal = recent.clone().map(|r| r.billed_cost).sum();
    let gpt4o: rust_decimal::Decimal =
        recent.filter(|r| r.model.as_deref().is_some_and(|m| m.starts_with("gpt-4o"))).map(|r| r.billed_cost).sum();
    for (name, total, scope, factor) in [
        ("All AI spend", all, BudgetScope::default(), rust_decimal::Decimal::new(12, 1)),
        (
            "GPT-4o family",
            gpt4o,
            BudgetScope { model: Some("gpt-4o*".into()), ..Default::default() },
            rust_decimal::Decimal::new(6, 1),
        ),
    ] {
        let input = NewBudgetInput {
            name: name.to_owned(),
            amount: (total * factor).round_dp(0).max(rust_decimal::Decimal::ONE).to_string(),
            currency: "USD".into(),
            period: "month".into(),
            scope,
            thresholds: None,
            forecast_alert: true,
            email_members: vec![owner.member.to_string()],
        };
        app.create_budget(owner, input).await.map_err(|e| anyhow!("creating the demo budget {name}: {e}"))?;
    }
    Ok("2 budgets set".into())
}

/// The demo's throw-away master key, kept in its data dir (S1: never do this in production).
fn demo_master_key(dir: &Path) -> anyhow::Result<MasterKeyRing> {
    let path = dir.join("master.key");
    if !path.exists() {
        let key = MasterKey::generate("demo");
        std::fs::write(&path, key.export().as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(MasterKeyRing::parse(text.trim())?)
}

async fn demo(mut settings: Settings) -> Result<(), Failure> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let ring = demo_master_key(&settings.data_dir)?;
    let url = format!("http://{}", settings.http_addr);
    if settings.public_url.as_str() == "http://127.0.0.1:8080/" {
        settings.public_url = url::Url::parse(&url).map_err(|e| anyhow!("{e}"))?;
    }
    settings.check_plain_http()?;
    // The simulated providers listen on loopback: the demo, and only the demo, allows it.
    settings.egress_allow.push("127.0.0.1/32".into());
    let store = open_store(&settings).await?;
    let vault = Arc::new(Vault::new(ring));
    let bound = bind(&settings).await?;
    let sims = start_simulated_providers().await;
    let state = build_state(&settings, store.clone(), Arc::clone(&vault)).await?;
    let demo_path = settings.data_dir.join("demo.json");
    let mut creds = match std::fs::read_to_string(&demo_path) {
        Ok(text) => serde_json::from_str::<DemoFile>(&text)
            .with_context(|| format!("{} is not a demo file", demo_path.display()))?,
        Err(_) => create_demo_org(state.app(), &settings).await?,
    };
    creds.url = settings.public_url.origin().ascii_serialization();
    // Kept at once: a new organization's password is not lost if the first sync fails.
    creds.write(&demo_path)?;
    // Synced before the listeners open: the first page a person sees already has the spend.
    let synced = connect_and_sync_demo_sources(state.app(), state.syncer(), &sims).await?;
    let app = state.app().clone();
    let running = start(&settings, state, bound).await?;
    creds.postgres_url = match creds.postgres_url.as_deref().map(url::Url::parse) {
        // The same credential; the endpoint may listen elsewhere this run.
        Some(Ok(mut u)) => {
            let _ = u.set_ip_host(running.pg.addr.ip());
            let _ = u.set_port(Some(running.pg.addr.port()));
            Some(u.to_string())
        }
        _ => Some(create_demo_sql_credential(&app, running.pg.addr).await?),
    };
    creds.write(&demo_path)?;
    println!("burnrate demo is running at {}  (listening on {})", creds.url, running.http);
    println!("  spend       {synced}");
    println!("  log in as   {}", creds.email);
    println!("  password    {}", creds.password);
    println!("  API key     {}", creds.api_key);
    println!("  try         curl -H 'Authorization: Bearer {}' {}/api/v1/org", creds.api_key, creds.url);
    if let Some(pg) = &creds.postgres_url {
        println!("  psql        psql '{pg}' -c 'SELECT provider_name, sum(billed_cost) FROM costs GROUP BY 1'");
    }
    println!(
        "Data, the throw-away master key and these credentials are in {} (demo.json).",
        settings.data_dir.display()
    );
    println!("Press Ctrl-C to stop.");
    wait_for_shutdown().await;
    store.close().await;
    Ok(())
}

/// The demo organization's owner, acting as a person would (the audit log says through which
/// command).
async fn demo_owner(app: &burnrate_app::App) -> Result<burnrate_app::Actor, Failure> {
    let mut tx = app.store().read_instance().await.context("opening a transaction")?;
    let org = tx
        .find_org(DEMO_ORG)
        .await
        .context("finding the demo organization")?
        .ok_or_else(|| anyhow!("the demo organization is missing from the data dir"))?;
    let mut t = tx.into_tenant(OrgScope::trusted(org.id)).await.context("entering the organization")?;
    let owner = t
        .members(app.vault())
        .await
        .context("listing members")?
        .into_iter()
        .find(|m| m.role == Role::Owner)
        .ok_or_else(|| anyhow!("the demo organization has no owner"))?;
    t.commit().await.context("committing")?;
    Ok(burnrate_app::Actor {
        scope: OrgScope::trusted(org.id),
        role: Role::Owner,
        member: owner.user_id,
        via: burnrate_app::Via::Command("burnrate demo"),
        ip: None,
        user_agent: None,
    })
}

/// A SQL credential of the demo organization, as a connection string for `addr`.
async fn create_demo_sql_credential(app: &burnrate_app::App, addr: std::net::SocketAddr) -> Result<String, Failure> {
    let owner = demo_owner(app).await?;
    let new =
        app.create_sql_credential(&owner, "demo").await.map_err(|e| anyhow!("creating the SQL credential: {e}"))?;
    Ok(format!("postgresql://{}:{}@{addr}/burnrate", new.id, new.password))
}

/// The demo organization and its owner (what signing up makes), then its API key as the owner
/// makes one.
async fn create_demo_org(app: &burnrate_app::App, settings: &Settings) -> Result<DemoFile, Failure> {
    let password = random_token()[..24].to_owned();
    let hasher = password_hasher(settings);
    let hash = hasher.hash(&password).await.context("hashing the demo password")?;
    let email = EmailAddress::parse(DEMO_EMAIL).map_err(|e| anyhow!("{e}"))?;
    let mut tx = app.store().instance().await.context("opening a transaction")?;
    let scope = tx
        .create_org(&OrgName::parse(DEMO_ORG).map_err(|e| anyhow!("{e}"))?)
        .await
        .context("creating the demo organization")?;
    let user = tx.create_user(app.vault(), &email, &hash, true).await.context("creating the demo user")?;
    let mut t = tx.into_tenant(scope).await.context("entering the organization")?;
    t.add_member(user, Role::Owner).await.context("adding the demo user")?;
    t.audit(NewAuditEntry {
        actor: Actor::system("burnrate demo"),
        action: AuditAction::MemberJoined,
        target_type: Some("user"),
        target_id: Some(user.to_string()),
        details: json!({ "via": "demo" }),
        ip: None,
        user_agent: None,
    })
    .await
    .context("writing the audit log")?;
    t.commit().await.context("committing the demo organization")?;
    let owner = demo_owner(app).await?;
    let key = app
        .create_api_key(&owner, "demo", ApiScope::Admin)
        .await
        .map_err(|e| anyhow!("creating the demo API key: {e}"))?;
    Ok(DemoFile { url: String::new(), email: DEMO_EMAIL.into(), password, api_key: key.key, postgres_url: None })
}

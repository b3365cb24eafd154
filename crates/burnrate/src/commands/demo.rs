//! `burnrate demo`: the newcomer's first run, on simulated providers, seeded through the same
//! services a person uses.

use std::path::Path;

use anyhow::{Context, anyhow};
use burnrate_core::{ApiScope, EmailAddress, OrgName, Role};
use burnrate_crypto::{MasterKey, MasterKeyRing, random_token};
use burnrate_store::{Actor, AuditAction, NewAuditEntry, OrgScope};
use serde_json::json;

use super::{Failure, password_hasher};
use crate::server::{Server, Tuning, bind, wait_for_shutdown};
use crate::settings::Settings;

#[derive(serde::Serialize, serde::Deserialize)]
struct DemoFile {
    url: String,
    email: String,
    password: String,
    api_key: String,
    postgres_url: Option<String>,
    /// The OTLP traces receiver's origin (exporters post to `{otlp_url}/v1/traces`).
    #[serde(default)]
    otlp_url: Option<String>,
    #[serde(default)]
    ingest_key: Option<String>,
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

impl Sims {
    /// The loopback ports they listen on.
    fn ports(&self) -> impl Iterator<Item = u16> {
        [&self.openai, &self.anthropic, &self.aws, &self.azure, &self.gcp, &self.openrouter]
            .map(|sim| sim.addr.port())
            .into_iter()
    }
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
    use burnrate_sync::{SourceConfig, SourceKind};
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
            burnrate_app::Submitted::Applied(id) => burnrate_core::SourceId::from_uuid(id),
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
        let window = SourceConfig::read(&source.name, &source.kind, &source.config)
            .map_err(|e| anyhow!("{e}"))?
            .next_window(source.last_success_at.is_some(), chrono::Utc::now().date_naive());
        let outcome = syncer.sync(scope, id, window).await.map_err(|e| anyhow!("syncing {name}: {e}"))?;
        rows += outcome.rows;
        usage_rows += outcome.usage_rows;
    }
    let budgets = ensure_demo_budgets(app, &owner).await?;
    Ok(format!(
        "{rows} cost lines and {usage_rows} usage lines synced from simulated OpenAI, Anthropic, AWS Bedrock, Azure OpenAI, Google Vertex AI and OpenRouter (about 90 days; OpenRouter reports 30); {budgets}"
    ))
}

/// Two budgets for the demo organization, sized from its last 30 days so that one is on track and
/// the other already past its first alerts (which the running instance then sends). Set by its
/// owner, as a person would.
async fn ensure_demo_budgets(app: &burnrate_app::App, owner: &burnrate_app::Actor) -> Result<String, Failure> {
    use burnrate_app::budgets::NewBudgetInput;
    use burnrate_core::BudgetScope;
    use burnrate_engine::spend::SpendQuery;
    let store = app.store();
    let mut t = store.read_tenant(owner.scope).await.context("opening a transaction")?;
    let existing = t.budgets().await.context("listing budgets")?;
    t.commit().await.context("committing")?;
    if !existing.is_empty() {
        return Ok(format!("{} budgets", existing.len()));
    }
    // Sized from the last 30 days as the budgets themselves will count them: the spend query.
    let zone = app.reporting_zone(owner).await.map_err(|e| anyhow!("reading the reporting time zone: {e}"))?;
    let today = zone.date_of(chrono::Utc::now());
    let spent = async |scope: &BudgetScope| -> Result<rust_decimal::Decimal, Failure> {
        let query = SpendQuery::new(zone, today - chrono::Duration::days(30), today + chrono::Duration::days(1));
        let rows = app.spend(owner, &query.within(scope)).await.map_err(|e| anyhow!("reading the demo spend: {e}"))?;
        Ok(rows.iter().filter(|r| r.currency == "USD").map(|r| r.amount).sum())
    };
    let gpt4o = BudgetScope { model: Some("gpt-4o*".into()), ..Default::default() };
    let (all, family) = (spent(&BudgetScope::default()).await?, spent(&gpt4o).await?);
    for (name, total, scope, factor) in [
        ("All AI spend", all, BudgetScope::default(), rust_decimal::Decimal::new(12, 1)),
        ("GPT-4o family", family, gpt4o, rust_decimal::Decimal::new(6, 1)),
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

/// The demo's throw-away master key, kept in its data dir (S1: never do this in production), as
/// `BURNRATE_MASTER_KEYS` would hold it.
fn demo_master_keys(dir: &Path) -> anyhow::Result<secrecy::SecretString> {
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
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?);
    MasterKeyRing::parse(text.trim()).with_context(|| format!("{} holds no master key", path.display()))?;
    Ok(text.trim().into())
}

pub(super) async fn demo(mut settings: Settings) -> Result<(), Failure> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    settings.master_keys = Some(demo_master_keys(&settings.data_dir)?);
    let url = format!("http://{}", settings.http_addr);
    if settings.public_url.as_str() == "http://127.0.0.1:8080/" {
        settings.public_url = url::Url::parse(&url).map_err(|e| anyhow!("{e}"))?;
    }
    settings.check_plain_http()?;
    let bound = bind(&settings).await?;
    let sims = start_simulated_providers().await;
    // The simulated providers listen on loopback: the demo, and only the demo, allows their ports
    // and no other, to its one organization as to any.
    let granted = settings.egress_allow.clone();
    let simulators: Vec<String> = sims.ports().map(|port| format!("127.0.0.1/32:{port}")).collect();
    settings.egress_allow.extend(simulators.iter().cloned());
    settings.egress_shared.extend(simulators);
    let server = Server::build(&settings, Tuning::default()).await?;
    let demo_path = settings.data_dir.join("demo.json");
    let mut creds = match std::fs::read_to_string(&demo_path) {
        Ok(text) => serde_json::from_str::<DemoFile>(&text)
            .with_context(|| format!("{} is not a demo file", demo_path.display()))?,
        Err(_) => create_demo_org(server.app(), &settings).await?,
    };
    creds.url = settings.public_url.origin().ascii_serialization();
    grant_allow_list(server.app(), &settings, &granted).await?;
    // Kept at once: a new organization's password is not lost if the first sync fails.
    creds.write(&demo_path)?;
    // Synced before the listeners open: the first page a person sees already has the spend.
    let synced = connect_and_sync_demo_sources(server.app(), server.syncer(), &sims).await?;
    let running = server.start(bound).await?;
    creds.postgres_url = match creds.postgres_url.as_deref().map(url::Url::parse) {
        // The same credential; the endpoint may listen elsewhere this run.
        Some(Ok(mut u)) => {
            let _ = u.set_ip_host(running.pg.addr.ip());
            let _ = u.set_port(Some(running.pg.addr.port()));
            Some(u.to_string())
        }
        _ => Some(create_demo_sql_credential(&running.app, running.pg.addr).await?),
    };
    creds.otlp_url = Some(format!("http://{}", running.otlp));
    if creds.ingest_key.is_none() {
        let owner = demo_owner(&running.app).await?;
        let key = running
            .app
            .create_ingest_key(&owner, "demo")
            .await
            .map_err(|e| anyhow!("creating the demo ingest key: {e}"))?;
        creds.ingest_key = Some(key.key);
    }
    creds.write(&demo_path)?;
    let requests = match &creds.ingest_key {
        Some(key) => send_demo_requests(running.otlp, key).await?,
        None => 0,
    };
    println!("burnrate demo is running at {}  (listening on {})", creds.url, running.http);
    println!("  spend       {synced}");
    println!("  requests    {requests} model calls of 3 customers sent through the OTLP receiver");
    println!("  log in as   {}", creds.email);
    println!("  password    {}", creds.password);
    println!("  API key     {}", creds.api_key);
    println!("  try         curl -H 'Authorization: Bearer {}' {}/api/v1/org", creds.api_key, creds.url);
    if let Some(otlp) = &creds.otlp_url {
        println!("  OTLP traces {otlp}/v1/traces  (Authorization: Bearer <ingest_key in demo.json>)");
    }
    if let Some(pg) = &creds.postgres_url {
        println!("  psql        psql '{pg}' -c 'SELECT provider_name, sum(billed_cost) FROM costs GROUP BY 1'");
    }
    println!(
        "Data, the throw-away master key and these credentials are in {} (demo.json).",
        settings.data_dir.display()
    );
    println!("Press Ctrl-C to stop.");
    wait_for_shutdown().await;
    let store = running.store.clone();
    drop(running);
    store.close().await;
    Ok(())
}

/// Sends the demo's applications' model calls through the OTLP receiver, as their exporters
/// would; returns how many. Sent again on every start: the receiver stores each span once.
async fn send_demo_requests(otlp: std::net::SocketAddr, key: &str) -> Result<usize, Failure> {
    let client = reqwest::Client::new();
    let today = chrono::Utc::now().date_naive();
    let mut sent = 0;
    for export in burnrate_sim::demo::requests(today, 90) {
        sent += export["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().map_or(0, Vec::len);
        let r = client
            .post(format!("http://{otlp}/v1/traces"))
            .bearer_auth(key)
            .json(&export)
            .send()
            .await
            .context("sending the demo's requests to the OTLP receiver")?;
        if !r.status().is_success() {
            let status = r.status();
            return Err(anyhow!(
                "the OTLP receiver refused the demo's requests: {status} {}",
                r.text().await.unwrap_or_default()
            )
            .into());
        }
    }
    Ok(sent)
}

/// The demo organization's owner, acting as a person would (the audit log says through which
/// command).
/// Grants the demo's organization what the operator's `BURNRATE_EGRESS_ALLOW` opens (its own
/// databases on a private network, say): on this machine it is the only organization.
async fn grant_allow_list(app: &burnrate_app::App, settings: &Settings, networks: &[String]) -> Result<(), Failure> {
    let guard = settings.egress_guard()?;
    let owner = demo_owner(app).await?;
    let mut t = app.store().tenant(owner.scope).await.context("entering the organization")?;
    for raw in networks {
        let network = guard.grantable(raw).map_err(|e| super::config_error("BURNRATE_EGRESS_ALLOW", e.to_string()))?;
        if t.grant_egress(&network.to_string()).await.context("granting the allow-list")? {
            t.audit(NewAuditEntry {
                actor: Actor::system("burnrate demo"),
                action: AuditAction::EgressGranted,
                target_type: Some("egress"),
                target_id: Some(network.to_string()),
                details: json!({ "network": network.to_string(), "via": "demo" }),
                ip: None,
                user_agent: None,
            })
            .await
            .context("writing the audit log")?;
        }
    }
    t.commit().await.context("granting the allow-list")?;
    Ok(())
}

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
    Ok(DemoFile {
        url: String::new(),
        email: DEMO_EMAIL.into(),
        password,
        api_key: key.key,
        postgres_url: None,
        otlp_url: None,
        ingest_key: None,
    })
}

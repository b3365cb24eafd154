//! A source's credential and settings. Where a secret goes is part of the secret (S23): a base
//! URL decides where the provider's key (for Azure, the client secret's login) is sent, so it
//! changes only with the credential entered again, and that follows the approval policy of new
//! credentials. A database source's configuration is its own and never replaced by sync settings.

use burnrate_core::SourceId;
use burnrate_core::{DATABASE_KINDS, DatabaseConfig, DatabaseTls, schema_name};
use burnrate_sources::aws::{self, AccessKeyId, CostAllocationTag, ExternalId, RoleArn};
use burnrate_sources::azure::{self, ClientId, Scope, TenantId};
use burnrate_sources::gcp::{self, BillingTable, Location, ProjectId};
pub use burnrate_sources::{ProviderSettings, SettingsError, SourceConfig, SourceKind, SourceSpec};
use burnrate_store::AuditAction;
pub use burnrate_store::{Freshness, SourceRecord};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::{Actor, App, Change, Error, Result, Submitted};

/// A pasted credential: trimmed, at most 1000 characters, no control characters.
pub fn parse_secret<'a>(raw: &'a str, field: &'static str, label: &str) -> Result<&'a str> {
    let secret = raw.trim();
    if secret.is_empty() || secret.len() > 1000 || secret.chars().any(char::is_control) {
        return Err(Error::invalid(field, format!("{label}: paste the key as the provider shows it.")));
    }
    Ok(secret)
}

/// A provider setting as entered: its type's check, a refusal naming `field`.
fn setting<T>(parse: fn(&str) -> std::result::Result<T, &'static str>, field: &'static str, raw: &str) -> Result<T> {
    parse(raw).map_err(|message| Error::invalid(field, message))
}

/// A Google service account's JSON key as pasted (a browser's one-line field drops its line
/// breaks, which JSON does not need): checked to be a key that can sign, and the account's email.
pub fn parse_service_account_key(raw: &str) -> Result<(String, String)> {
    let raw = raw.trim();
    if raw.len() > 16 * 1024 {
        return Err(Error::invalid("secret", "Service account key: longer than a key file is."));
    }
    let key = burnrate_sources::gcp::ServiceAccountKey::parse(raw)
        .map_err(|e| Error::invalid("secret", format!("Service account key: {e}.")))?;
    Ok((raw.to_owned(), key.client_email))
}

/// A new source, from the form or the API body. A database source (`kind` `postgres` or
/// `mysql`) has a host, port, database, user and (PostgreSQL) schema, and its password as
/// `secret`.
#[derive(Default, Deserialize, ToSchema)]
pub struct NewSourceInput {
    /// openai, anthropic, aws, azure, gcp, openrouter, postgres or mysql.
    pub kind: String,
    pub name: String,
    /// The provider's admin key, AWS's secret access key, or the database password.
    pub secret: String,
    /// AWS: the access key id (`AKIA…`) of an IAM user allowed `ce:GetCostAndUsage` and
    /// `ce:GetDimensionValues` — itself, or through `role_arn`.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// AWS: a role (`arn:aws:iam::<account>:role/<name>`) to assume before reading costs.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// AWS: the external id the role's trust policy asks for.
    #[serde(default)]
    pub external_id: Option<String>,
    /// AWS: a cost-allocation tag key (activated in the billing console) whose values become the
    /// cost lines' tags; each AI service is then pulled on its own (more requests, each billed).
    #[serde(default)]
    pub cost_allocation_tag: Option<String>,
    /// Azure: the Entra ID tenant (directory) id or domain.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Azure: the application (client) id whose client secret is `secret`; it needs the Cost
    /// Management Reader role on `scope`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Azure: `subscriptions/<id>`, `subscriptions/<id>/resourceGroups/<name>`,
    /// `providers/Microsoft.Management/managementGroups/<id>` or
    /// `providers/Microsoft.Billing/billingAccounts/<id>`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Google Cloud: the billing export table, `project.dataset.gcp_billing_export_v1_<account>`
    /// (`secret` is then the service account's JSON key).
    #[serde(default)]
    pub billing_table: Option<String>,
    /// Google Cloud: the project that runs the queries; the key's own project when absent.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Google Cloud: the export dataset's location (`US`, `EU`, `europe-west1`, …).
    #[serde(default)]
    pub location: Option<String>,
    pub base_url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub schema: Option<String>,
    /// `verify-full` (the default: TLS, the certificate checked for the host name), `require`
    /// (TLS, the certificate not checked) or `prefer` (TLS when offered: how sources saved
    /// before the modes existed connect).
    pub tls: Option<String>,
    /// The private certificate authority (PEM) the server's certificate is checked against in
    /// `verify-full`; the public web's authorities when absent.
    #[serde(default)]
    pub ca_pem: Option<String>,
}

/// A credential entered again: the secret, and for AWS the id that goes with it.
pub struct NewCredential {
    pub secret: String,
    /// AWS: the key's id (an AWS key is replaced as a pair).
    pub access_key_id: Option<String>,
}

/// New sync settings; what is `None` stays as it is. A new `base_url` needs `credential`.
#[derive(Default)]
pub struct SettingsChange {
    pub base_url: Option<String>,
    pub backfill_days: Option<u32>,
    pub interval_minutes: Option<u32>,
    pub credential: Option<NewCredential>,
}

impl App {
    /// Replaces a source's credential — at once, or where the organization asks for approval of
    /// new credentials, once another admin approves.
    pub async fn rotate_source(&self, actor: &Actor, id: SourceId, new: NewCredential) -> Result<Submitted> {
        self.change_source_settings(actor, id, SettingsChange { credential: Some(new), ..Default::default() }).await
    }

    /// Changes how a source syncs. Depth and interval apply at once; a new credential, or a new
    /// place to send it, goes through the approval policy of new credentials as one change.
    pub async fn change_source_settings(
        &self,
        actor: &Actor,
        id: SourceId,
        change: SettingsChange,
    ) -> Result<Submitted> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let source = tx.source(id).await?.ok_or(Error::NotFound)?;
        // A stored configuration that does not read is an error, never a fresh default.
        let SourceSpec::Provider(current) =
            SourceSpec::read(&source.name, &source.kind, &source.config).map_err(Error::internal)?
        else {
            return Err(Error::invalid(
                "settings",
                "A database source has no sync settings: it is read when a query names it.",
            ));
        };
        let http = self.reach(&tx.egress_grants().await?)?;
        let mut next = self.checked_settings(&http, &current, &change).await?;
        let destination =
            (next.base_url != current.base_url).then(|| (current.base_url.clone(), next.base_url.clone()));
        let Some(credential) = &change.credential else {
            if destination.is_some() {
                return Err(Error::invalid(
                    "secret",
                    "Secret: changing where a source's credential is sent needs the credential entered again.",
                ));
            }
            if next != current {
                tx.set_source_config(id, &next.to_json()).await?;
                tx.audit(actor.entry(
                    AuditAction::SourceSettingsChanged,
                    "source",
                    id.to_string(),
                    json!({ "before": current, "after": next }),
                ))
                .await?;
            }
            tx.commit().await?;
            return Ok(Submitted::Applied(id.as_uuid()));
        };
        drop(tx);
        let secret = match &mut next.provider {
            ProviderSettings::Aws(settings) => {
                settings.access_key_id =
                    setting(AccessKeyId::parse, "access_key_id", credential.access_key_id.as_deref().unwrap_or(""))?;
                parse_secret(&credential.secret, "secret", "Secret access key")?.to_owned()
            }
            // A new key may belong to another service account: the settings show which.
            ProviderSettings::Gcp(settings) => {
                let (secret, email) = parse_service_account_key(&credential.secret)?;
                settings.service_account = Some(email);
                secret
            }
            _ => parse_secret(&credential.secret, "secret", "New key")?.to_owned(),
        };
        let config = (next != current).then(|| next.to_json());
        self.submit(actor, Change::SourceRotate { source: id, name: source.name, secret, config, destination }, None)
            .await
    }

    /// New settings, validated: the base URL through the egress guard (a name by what it resolves
    /// to now, on the URL's port; the dial checks again), depth and interval bounded.
    pub async fn checked_settings(
        &self,
        http: &burnrate_net::HttpClient,
        current: &SourceConfig,
        change: &SettingsChange,
    ) -> Result<SourceConfig> {
        let mut next = current.clone();
        if let Some(u) = &change.base_url {
            let u = u.trim();
            if u.is_empty() {
                next.base_url = None;
            } else {
                http.check_destination(u).await.map_err(|e| Error::invalid("base_url", format!("Base URL: {e}.")))?;
                next.base_url = Some(u.to_owned());
            }
        }
        if let Some(d) = change.backfill_days {
            if !(1..=730).contains(&d) {
                return Err(Error::invalid("backfill_days", "Backfill: between 1 and 730 days."));
            }
            next.backfill_days = d;
        }
        if let Some(m) = change.interval_minutes {
            if !(15..=1440).contains(&m) {
                return Err(Error::invalid("interval_minutes", "Sync interval: between 15 and 1440 minutes."));
            }
            next.interval_minutes = m;
        }
        Ok(next)
    }
}

impl App {
    /// Validates a new source and stores it (sealed, audited) — or, where the organization asks for
    /// approval of new credentials, queues it for another admin. The one way a source is made: the
    /// pages, the API, an approved request and the demo all come here. Its first sync is the
    /// caller's to start ([`App::sync_soon`]); an approved source is synced by the scheduler.
    pub async fn connect_source(&self, actor: &Actor, input: NewSourceInput) -> Result<Submitted> {
        actor.require_admin()?;
        if DATABASE_KINDS.contains(&input.kind.as_str()) {
            return self.connect_database(actor, input).await;
        }
        let kind = SourceKind::parse(&input.kind).ok_or_else(|| {
            Error::invalid("kind", "Kind: expected openai, anthropic, aws, azure, gcp, openrouter, postgres or mysql.")
        })?;
        let name = crate::api_keys::label(&input.name)?;
        let given = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let (provider, secret) = match kind {
            SourceKind::Gcp => {
                let (key, email) = parse_service_account_key(&input.secret)?;
                let settings = gcp::Settings {
                    billing_table: setting(
                        BillingTable::parse,
                        "billing_table",
                        input.billing_table.as_deref().unwrap_or(""),
                    )?,
                    project_id: given(input.project_id)
                        .map(|p| setting(ProjectId::parse, "project_id", &p))
                        .transpose()?,
                    location: given(input.location).map(|l| setting(Location::parse, "location", &l)).transpose()?,
                    service_account: Some(email),
                };
                (ProviderSettings::Gcp(settings), key)
            }
            SourceKind::Aws => {
                let settings = aws::Settings {
                    access_key_id: setting(
                        AccessKeyId::parse,
                        "access_key_id",
                        input.access_key_id.as_deref().unwrap_or(""),
                    )?,
                    role_arn: given(input.role_arn).map(|arn| setting(RoleArn::parse, "role_arn", &arn)).transpose()?,
                    external_id: given(input.external_id)
                        .map(|id| setting(ExternalId::parse, "external_id", &id))
                        .transpose()?,
                    cost_allocation_tag: given(input.cost_allocation_tag)
                        .map(|key| setting(CostAllocationTag::parse, "cost_allocation_tag", &key))
                        .transpose()?,
                };
                (
                    ProviderSettings::Aws(settings),
                    parse_secret(&input.secret, "secret", kind.secret_label())?.to_owned(),
                )
            }
            SourceKind::Azure => {
                let raw = |v: &Option<String>| v.clone().unwrap_or_default();
                let settings = azure::Settings {
                    tenant_id: setting(TenantId::parse, "tenant_id", &raw(&input.tenant_id))?,
                    client_id: setting(ClientId::parse, "client_id", &raw(&input.client_id))?,
                    scope: setting(Scope::parse, "scope", &raw(&input.scope))?,
                };
                (
                    ProviderSettings::Azure(settings),
                    parse_secret(&input.secret, "secret", kind.secret_label())?.to_owned(),
                )
            }
            SourceKind::OpenAi | SourceKind::Anthropic | SourceKind::OpenRouter => {
                let plain = SourceConfig::plain(kind).expect("a provider that needs only its key").provider;
                (plain, parse_secret(&input.secret, "secret", kind.secret_label())?.to_owned())
            }
        };
        let defaults = SourceConfig::new(provider);
        let http = self.http_of(actor.scope).await?;
        let config = self
            .checked_settings(&http, &defaults, &SettingsChange { base_url: input.base_url, ..Default::default() })
            .await?;
        let config = config.to_json();
        let details = json!({ "kind": kind.as_str(), "name": name });
        let change = Change::SourceCreate { kind: kind.as_str().into(), name, config, secret, details };
        self.submit(actor, change, None).await
    }

    /// Validates and stores a database source. Its host must pass the egress guard now (and again
    /// at each connection); its password is sealed like any provider key and appears nowhere else.
    async fn connect_database(&self, actor: &Actor, input: NewSourceInput) -> Result<Submitted> {
        let name = crate::api_keys::label(&input.name)?;
        let text = |v: Option<String>| v.map(|v| v.trim().to_owned()).unwrap_or_default();
        let config = DatabaseConfig {
            host: text(input.host),
            port: input.port.unwrap_or(if input.kind == "mysql" { 3306 } else { 5432 }),
            database: text(input.database),
            user: text(input.user),
            schema: Some(text(input.schema)).filter(|s| !s.is_empty()).unwrap_or_else(|| "public".into()),
            tls: database_tls(&text(input.tls))?,
            ca_pem: certificates(input.ca_pem)?,
        };
        config.validate().map_err(|m| Error::invalid("database", m))?;
        self.http_of(actor.scope)
            .await?
            .guard()
            .resolve(&config.host, config.port)
            .await
            .map_err(|e| Error::invalid("host", format!("Host: {e}.")))?;
        let password = input.secret.as_str();
        if password.is_empty() || password.len() > 1000 || password.chars().any(char::is_control) {
            return Err(Error::invalid("secret", "Password: expected the database user's password."));
        }
        let schema = schema_name(&name);
        let mut tx = self.store.tenant(actor.scope).await?;
        if tx
            .sources()
            .await?
            .iter()
            .any(|s| DATABASE_KINDS.contains(&s.kind.as_str()) && schema_name(&s.name) == schema)
        {
            return Err(Error::Conflict(format!("Name: another database source already appears as {schema}.")));
        }
        tx.commit().await?;
        let stored = serde_json::to_string(&config).map_err(Error::internal)?;
        let details = json!({ "kind": input.kind, "name": name, "schema": schema, "host": config.host, "database": config.database, "user": config.user });
        let change =
            Change::SourceCreate { kind: input.kind, name, config: stored, secret: password.to_owned(), details };
        self.submit(actor, change, None).await
    }
}

impl App {
    /// Queues a sync of the source's next window and works the queue in the background: a
    /// source's first sync, or one somebody asked for.
    pub fn sync_soon(&self, scope: burnrate_store::OrgScope, id: SourceId) {
        let syncer = self.syncer.clone();
        tokio::spawn(async move {
            let result = async {
                let mut tx = syncer.store.tenant(scope).await?;
                let source = tx.source(id).await?;
                tx.commit().await?;
                if let Some(source) = source {
                    burnrate_sync::enqueue_next(&syncer, scope, &source, chrono::Utc::now()).await?;
                    burnrate_sync::work(&syncer, &burnrate_store::worker_name("sync-now")).await?;
                }
                Ok::<_, burnrate_sync::SyncError>(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "requested sync did not run");
            }
        });
    }
}

impl App {
    /// Pauses or resumes a source's scheduled syncs, audited.
    pub async fn set_source_paused(&self, actor: &Actor, id: SourceId, paused: bool) -> Result<()> {
        let action = if paused { AuditAction::SourcePaused } else { AuditAction::SourceResumed };
        self.admin_change(actor, ("source", id.to_string()), action, async |tx| {
            Ok(tx.set_source_paused(id, paused).await?)
        })
        .await
    }

    /// Removes a source, keeping its synced data or not (the audit entry says which).
    pub async fn delete_source(&self, actor: &Actor, id: SourceId, keep_data: bool) -> Result<()> {
        let action = if keep_data { AuditAction::SourceDeletedDataKept } else { AuditAction::SourceDeletedDataRemoved };
        self.admin_change(actor, ("source", id.to_string()), action, async |tx| {
            Ok(tx.delete_source(id, keep_data).await?)
        })
        .await
    }

    /// A sync somebody asked for: audited, then started.
    pub async fn request_sync(&self, actor: &Actor, id: SourceId) -> Result<()> {
        self.admin_change(actor, ("source", id.to_string()), AuditAction::SourceSyncRequested, async |tx| {
            Ok(tx.source(id).await?.is_some())
        })
        .await?;
        self.sync_soon(actor.scope, id);
        Ok(())
    }
}

/// A source as the sources page and API list it: its record, its kind and settings read once,
/// and how far its data reaches.
pub struct Listed {
    pub source: SourceRecord,
    /// Settings that no longer read are shown as such, naming the source — never as defaults,
    /// and without hiding the organization's other sources.
    pub spec: std::result::Result<SourceSpec, SettingsError>,
    pub fresh: Freshness,
}

impl App {
    /// The organization's sources (providers and databases), in the order they were connected.
    pub async fn sources(&self, actor: &Actor) -> Result<Vec<Listed>> {
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let sources = tx.sources().await?;
        let fresh = tx.lake_freshness().await?;
        tx.commit().await?;
        Ok(sources
            .into_iter()
            .map(|source| Listed {
                fresh: fresh.get(&source.id).copied().unwrap_or_default(),
                spec: SourceSpec::read(&source.name, &source.kind, &source.config),
                source,
            })
            .collect())
    }

    /// Calls the provider once with the source's credential (yesterday's costs), for an admin:
    /// the source's name, and how many cost lines came back or why it failed.
    pub async fn test_source(&self, actor: &Actor, id: SourceId) -> Result<(String, Result<usize, String>)> {
        actor.require_admin()?;
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let source = tx.source(id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        let outcome = self.syncer.test_connection(actor.scope, &source, chrono::Utc::now().date_naive()).await;
        Ok((source.name, outcome.map_err(|e| e.to_string())))
    }
}

/// The TLS mode asked for a new database source, or the default: verified.
fn database_tls(asked: &str) -> Result<DatabaseTls> {
    match asked {
        "" => Ok(DatabaseTls::VerifyFull),
        asked => DatabaseTls::parse(asked)
            .ok_or_else(|| Error::invalid("tls", "TLS: expected verify-full, require or prefer.")),
    }
}

/// A private certificate authority as pasted: one or more PEM certificates, or nothing.
fn certificates(pem: Option<String>) -> Result<Option<String>> {
    let Some(pem) = pem.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()) else { return Ok(None) };
    burnrate_engine::check_certificate_authority(&pem)
        .map_err(|why| Error::invalid("ca_pem", format!("CA certificate: {why}.")))?;
    Ok(Some(pem))
}

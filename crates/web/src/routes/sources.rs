//! Connected sources: UI and API. Credentials go in once and never come out (S1, S2); every
//! change is audited (S16) without the secret.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::ApiScope;
use burnrate_sources::{DATABASE_KINDS, DatabaseConfig, DatabaseTls, schema_name};
use burnrate_store::Freshness;
use burnrate_sync::{SourceConfig, SourceKind, Syncer};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::account::NoFields;
use super::api::{ApiJson, ApiQuery};
use super::approvals::{Change, Nothing, QueuedView, Submitted, queued, submit};
use super::openapi::{BodyRefusals, Conflicting, Missing, Refusals};
use super::{change, parse_id, see_other};
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{DatabaseRow, Nav, SourceRow, SourcesPage, render, when};
use crate::security::CsrfForm;

async fn page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let mut tx = state.store.read_tenant(who.scope).await?;
    let sources = tx.sources().await?;
    let fresh = tx.lake_freshness().await?;
    tx.commit().await?;
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (databases, sources): (Vec<_>, Vec<_>) =
        sources.into_iter().partition(|s| DATABASE_KINDS.contains(&s.kind.as_str()));
    let page = SourcesPage {
        nav: Some(Nav::new(who, "sources")),
        csrf: who.csrf.clone(),
        databases: databases
            .into_iter()
            .map(|s| {
                let config: Option<DatabaseConfig> = serde_json::from_str(&s.config).ok();
                DatabaseRow {
                    id: s.id.to_string(),
                    schema: schema_name(&s.name),
                    kind: if s.kind == "mysql" { "MySQL / MariaDB" } else { "PostgreSQL" }.into(),
                    address: config
                        .map(|c| format!("{}:{}/{} as {}", c.host, c.port, c.database, c.user))
                        .unwrap_or_default(),
                    hint: s.secret_hint,
                    name: s.name,
                }
            })
            .collect(),
        sources: sources
            .into_iter()
            .map(|s| {
                let config: burnrate_sync::SourceConfig = serde_json::from_str(&s.config).unwrap_or_default();
                SourceRow {
                    id: s.id.to_string(),
                    name: s.name,
                    kind: SourceKind::parse(&s.kind).map(|k| k.label().to_owned()).unwrap_or(s.kind),
                    hint: s.secret_hint,
                    paused: s.paused,
                    synced: s.last_success_at.is_some(),
                    error: s.last_error,
                    last_success: s.last_success_at.map(when).unwrap_or_else(|| "never".into()),
                    fresh: freshness_text(fresh.get(&s.id).copied().unwrap_or_default(), config.repull_days),
                    config,
                    progress: s.progress,
                    summary: s.last_sync_summary,
                    credits: s.credits_remaining.map(|c| {
                        let read = s.credits_checked_at.map(|t| format!(" (read {})", when(t))).unwrap_or_default();
                        format!("USD {c} credits left{read}")
                    }),
                }
            })
            .collect(),
        can_manage: who.role.is_admin(),
        notice,
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// "costs through 2026-11-21 · usage through 2026-11-21 · final through 2026-11-18", or a dash
/// before the first sync. Days the next syncs re-pull are not final: providers still revise them.
fn freshness_text(fresh: Freshness, repull_days: u32) -> String {
    let mut parts: Vec<String> = [("costs", fresh.costs), ("usage", fresh.usage)]
        .into_iter()
        .filter_map(|(table, day)| day.map(|d| format!("{table} through {d}")))
        .collect();
    if let Some(last) = fresh.costs {
        parts.push(format!("final through {}", final_through(last, repull_days)));
    }
    if parts.is_empty() { "—".into() } else { parts.join(" · ") }
}

/// The last day the provider is no longer expected to revise: before the days each sync re-pulls.
fn final_through(last: NaiveDate, repull_days: u32) -> NaiveDate {
    last - chrono::Duration::days(i64::from(repull_days.max(1)))
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn list(State(state): State<AppState>, who: Authed, Query(q): Query<Done>) -> Result<Response, AppError> {
    let notice = match q.done.as_deref() {
        Some("connected") => Some("Connected. The first sync is running; refresh in a moment.".to_owned()),
        Some("database") => Some(
            "Database connected. Its tables appear in SQL under the name shown; they are read when a query names them."
                .to_owned(),
        ),
        Some("syncing") => Some("Sync started.".to_owned()),
        Some("paused") => Some("Paused: no syncs until you resume.".to_owned()),
        Some("resumed") => Some("Resumed.".to_owned()),
        Some("rotated") => Some("Key replaced. The old key is no longer stored.".to_owned()),
        Some("settings") => Some("Settings saved; they apply from the next sync.".to_owned()),
        Some("deleted") => Some("Source removed.".to_owned()),
        Some("queued") => Some(
            "Sent for approval: the credential takes effect once another admin approves it (see Approvals).".to_owned(),
        ),
        _ => None,
    };
    page(&state, &who, notice, None).await
}

/// Queues a sync of the source's next window and works the queue in the background.
fn spawn_sync(syncer: &Syncer, scope: burnrate_store::OrgScope, id: Uuid) {
    let syncer = syncer.clone();
    tokio::spawn(async move {
        let result = async {
            let mut tx = syncer.store.tenant(scope).await?;
            let source = tx.source(id).await?;
            tx.commit().await?;
            if let Some(source) = source {
                let now = chrono::Utc::now();
                let window = Syncer::next_window(&source, now.date_naive());
                burnrate_sync::enqueue_sync(&syncer.store, scope, id, window, None, now.timestamp_millis()).await?;
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

/// What the provider calls the credential burnrate asks for.
fn secret_label(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Aws => "Secret access key",
        SourceKind::Azure => "Client secret",
        SourceKind::Gcp => "Service account key",
        SourceKind::OpenRouter => "Management key",
        SourceKind::OpenAi | SourceKind::Anthropic => "Admin key",
    }
}

/// A provider key as pasted: trimmed, not empty, no control characters, not absurdly long.
fn parse_secret<'a>(raw: &'a str, field: &str) -> Result<&'a str, AppError> {
    let secret = raw.trim();
    if secret.is_empty() || secret.len() > 1000 || secret.chars().any(char::is_control) {
        return Err(AppError::Validation(format!("{field}: paste the key as the provider shows it.")));
    }
    Ok(secret)
}

/// An AWS access key id: `AKIA` (a user's long-term key) and 16 more capitals or digits.
fn parse_access_key_id(raw: Option<&str>) -> Result<String, AppError> {
    let id = raw.unwrap_or("").trim();
    if id.len() == 20 && id.starts_with("AKIA") && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        Ok(id.to_owned())
    } else {
        Err(AppError::Validation(
            "Access key ID: the 20 characters starting with AKIA of an IAM user's access key (temporary ASIA keys expire before the next sync)."
                .into(),
        ))
    }
}

/// A Google service account's JSON key as pasted (a browser's one-line field drops its line
/// breaks, which JSON does not need): checked to be a key that can sign, and the account's email.
fn parse_service_account_key(raw: &str) -> Result<(String, String), AppError> {
    let raw = raw.trim();
    if raw.len() > 16 * 1024 {
        return Err(AppError::Validation("Service account key: longer than a key file is.".into()));
    }
    let key = burnrate_sources::gcp::ServiceAccountKey::parse(raw)
        .map_err(|e| AppError::Validation(format!("Service account key: {e}.")))?;
    Ok((raw.to_owned(), key.client_email))
}

/// A GUID as Azure writes it: 8-4-4-4-12 hexadecimal digits.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An Entra ID tenant: its GUID, or a verified domain (`contoso.onmicrosoft.com`).
fn parse_tenant_id(raw: Option<&str>) -> Result<String, AppError> {
    let id = raw.unwrap_or("").trim();
    let domain = id.contains('.')
        && id.len() <= 253
        && id.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if is_guid(id) || domain {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(AppError::Validation(
            "Tenant ID: the directory (tenant) id, a GUID, or its domain such as contoso.onmicrosoft.com.".into(),
        ))
    }
}

/// An Entra ID application (client) id: a GUID.
fn parse_client_id(raw: Option<&str>) -> Result<String, AppError> {
    let id = raw.unwrap_or("").trim();
    if is_guid(id) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(AppError::Validation("Client ID: the application (client) id of the app registration, a GUID.".into()))
    }
}

/// The Cost Management scope read: a subscription, one of its resource groups, a management
/// group or a billing account (with its profile, section, department or enrollment account). It
/// becomes part of the request path, so only these shapes and plain id characters pass.
fn parse_scope(raw: Option<&str>) -> Result<String, AppError> {
    let scope = raw.unwrap_or("").trim().trim_matches('/');
    let parts: Vec<&str> = scope.split('/').collect();
    let id = |s: &str| {
        (1..=128).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:()".contains(c))
            && s != "."
            && s != ".."
    };
    let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let ok = match lower.as_slice() {
        ["subscriptions", sub] => is_guid(sub),
        ["subscriptions", sub, "resourcegroups", _] => is_guid(sub) && id(parts[3]),
        ["providers", "microsoft.management", "managementgroups", _] => id(parts[3]),
        ["providers", "microsoft.billing", "billingaccounts", _] => id(parts[3]),
        [
            "providers",
            "microsoft.billing",
            "billingaccounts",
            _,
            "billingprofiles" | "departments" | "enrollmentaccounts" | "invoicesections",
            _,
        ] => id(parts[3]) && id(parts[5]),
        _ => false,
    };
    if ok {
        Ok(scope.to_owned())
    } else {
        Err(AppError::Validation(
            "Scope: subscriptions/<subscription id>, subscriptions/<id>/resourceGroups/<name>, \
             providers/Microsoft.Management/managementGroups/<id> or providers/Microsoft.Billing/billingAccounts/<id>."
                .into(),
        ))
    }
}

/// An IAM role ARN: `arn:aws:iam::<12-digit account>:role/<path and name>`.
fn parse_role_arn(arn: &str) -> Result<String, AppError> {
    let ok = ["arn:aws:iam::", "arn:aws-cn:iam::", "arn:aws-us-gov:iam::"].iter().any(|prefix| {
        arn.strip_prefix(prefix).and_then(|rest| rest.split_once(":role/")).is_some_and(|(account, name)| {
            account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && (1..=512).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_/-".contains(c))
        })
    });
    if ok {
        Ok(arn.to_owned())
    } else {
        Err(AppError::Validation("Role ARN: arn:aws:iam::<12-digit account>:role/<name>.".into()))
    }
}

/// An STS external id: 2 to 1224 characters of letters, digits and `+=,.@:/-_`.
fn parse_external_id(id: &str) -> Result<String, AppError> {
    if (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c)) {
        Ok(id.to_owned())
    } else {
        Err(AppError::Validation("External ID: 2 to 1224 letters, digits or +=,.@:/-_".into()))
    }
}

/// A new source, from the form or the API body. A database source (`kind` `postgres` or
/// `mysql`) has a host, port, database, user and (PostgreSQL) schema, and its password as
/// `secret`.
#[derive(Deserialize, ToSchema)]
pub struct NewSourceInput {
    /// openai, anthropic, aws, azure, gcp, openrouter, postgres or mysql.
    kind: String,
    name: String,
    /// The provider's admin key, AWS's secret access key, or the database password.
    secret: String,
    /// AWS: the access key id (`AKIA…`) of an IAM user allowed `ce:GetCostAndUsage` and
    /// `ce:GetDimensionValues` — itself, or through `role_arn`.
    #[serde(default)]
    access_key_id: Option<String>,
    /// AWS: a role (`arn:aws:iam::<account>:role/<name>`) to assume before reading costs.
    #[serde(default)]
    role_arn: Option<String>,
    /// AWS: the external id the role's trust policy asks for.
    #[serde(default)]
    external_id: Option<String>,
    /// AWS: a cost-allocation tag key (activated in the billing console) whose values become the
    /// cost lines' tags; each AI service is then pulled on its own (more requests, each billed).
    #[serde(default)]
    cost_allocation_tag: Option<String>,
    /// Azure: the Entra ID tenant (directory) id or domain.
    #[serde(default)]
    tenant_id: Option<String>,
    /// Azure: the application (client) id whose client secret is `secret`; it needs the Cost
    /// Management Reader role on `scope`.
    #[serde(default)]
    client_id: Option<String>,
    /// Azure: `subscriptions/<id>`, `subscriptions/<id>/resourceGroups/<name>`,
    /// `providers/Microsoft.Management/managementGroups/<id>` or
    /// `providers/Microsoft.Billing/billingAccounts/<id>`.
    #[serde(default)]
    scope: Option<String>,
    /// Google Cloud: the billing export table, `project.dataset.gcp_billing_export_v1_<account>`
    /// (`secret` is then the service account's JSON key).
    #[serde(default)]
    billing_table: Option<String>,
    /// Google Cloud: the project that runs the queries; the key's own project when absent.
    #[serde(default)]
    project_id: Option<String>,
    /// Google Cloud: the export dataset's location (`US`, `EU`, `europe-west1`, …).
    #[serde(default)]
    location: Option<String>,
    base_url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    database: Option<String>,
    user: Option<String>,
    schema: Option<String>,
    /// `prefer` (the default) or `require`.
    tls: Option<String>,
}

/// Validates a new source and stores it (sealed, audited, its backfill started) — or, where the
/// organization asks for approval of new credentials, queues it for another admin.
async fn connect(state: &AppState, caller: &impl Caller, input: NewSourceInput) -> Result<Submitted, AppError> {
    caller.require_admin()?;
    if DATABASE_KINDS.contains(&input.kind.as_str()) {
        return connect_database(state, caller, input).await;
    }
    let kind = SourceKind::parse(&input.kind).ok_or_else(|| {
        AppError::Validation("Kind: expected openai, anthropic, aws, azure, gcp, openrouter, postgres or mysql.".into())
    })?;
    let name = super::actions::parse_key_name(&input.name)?;
    let mut defaults = SourceConfig::for_kind(kind);
    let secret = if kind == SourceKind::Gcp {
        let (key, email) = parse_service_account_key(&input.secret)?;
        defaults.service_account = Some(email);
        let table = input.billing_table.as_deref().unwrap_or("").trim();
        if !burnrate_sources::gcp::valid_table(table) {
            return Err(AppError::Validation(
                "Billing table: the export table as project.dataset.table, e.g. \
                 acme-billing.billing_export.gcp_billing_export_v1_01ABCD_23EF45_6789AB."
                    .into(),
            ));
        }
        defaults.billing_table = Some(table.to_owned());
        let given = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        defaults.project_id = given(input.project_id)
            .map(|p| {
                if burnrate_sources::gcp::valid_project(&p) {
                    Ok(p)
                } else {
                    Err(AppError::Validation("Project ID: 6 to 30 lowercase letters, digits or hyphens.".into()))
                }
            })
            .transpose()?;
        defaults.location = given(input.location)
            .map(|l| {
                if (1..=40).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    Ok(l)
                } else {
                    Err(AppError::Validation(
                        "Location: the dataset's location, such as US, EU or europe-west1.".into(),
                    ))
                }
            })
            .transpose()?;
        key
    } else {
        parse_secret(&input.secret, secret_label(kind))?.to_owned()
    };
    if kind == SourceKind::Aws {
        defaults.access_key_id = Some(parse_access_key_id(input.access_key_id.as_deref())?);
        let given = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        defaults.role_arn = given(input.role_arn).map(|arn| parse_role_arn(&arn)).transpose()?;
        defaults.external_id = given(input.external_id).map(|id| parse_external_id(&id)).transpose()?;
        defaults.cost_allocation_tag = given(input.cost_allocation_tag)
            .map(|key| {
                let ok = key.chars().count() <= 128
                    && key.chars().all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c))
                    && !key.starts_with("aws:");
                if ok {
                    Ok(key)
                } else {
                    Err(AppError::Validation(
                        "Cost allocation tag: a tag key of up to 128 letters, digits, spaces or _.:/=+-@.".into(),
                    ))
                }
            })
            .transpose()?;
    }
    if kind == SourceKind::Azure {
        defaults.tenant_id = Some(parse_tenant_id(input.tenant_id.as_deref())?);
        defaults.client_id = Some(parse_client_id(input.client_id.as_deref())?);
        defaults.scope = Some(parse_scope(input.scope.as_deref())?);
    }
    let config = checked_settings(state, &defaults, input.base_url, None, None)?;
    let config = serde_json::to_string(&config).map_err(|e| AppError::Internal(e.to_string()))?;
    let details = json!({ "kind": kind.as_str(), "name": name });
    let change = Change::SourceCreate { kind: kind.as_str().into(), name, config, secret, details };
    let submitted = submit(state, caller, change, None).await?;
    if let Submitted::Applied(id) = submitted {
        spawn_sync(&state.syncer, caller.scope(), id);
    }
    // An approved source is synced by the next scheduler pass.
    Ok(submitted)
}

/// Validates and stores a database source. Its host must pass the egress guard now (and again
/// at each connection); its password is sealed like any provider key and appears nowhere else.
async fn connect_database(
    state: &AppState,
    caller: &impl Caller,
    input: NewSourceInput,
) -> Result<Submitted, AppError> {
    let name = super::actions::parse_key_name(&input.name)?;
    let text = |v: Option<String>| v.map(|v| v.trim().to_owned()).unwrap_or_default();
    let config = DatabaseConfig {
        host: text(input.host),
        port: input.port.unwrap_or(if input.kind == "mysql" { 3306 } else { 5432 }),
        database: text(input.database),
        user: text(input.user),
        schema: Some(text(input.schema)).filter(|s| !s.is_empty()).unwrap_or_else(|| "public".into()),
        tls: DatabaseTls::parse(&text(input.tls))
            .ok_or_else(|| AppError::Validation("TLS: expected prefer or require.".into()))?,
    };
    config.validate().map_err(AppError::Validation)?;
    state
        .syncer
        .http
        .guard()
        .resolve(&config.host, config.port)
        .await
        .map_err(|e| AppError::Validation(format!("Host: {e}.")))?;
    let password = input.secret.as_str();
    if password.is_empty() || password.len() > 1000 || password.chars().any(char::is_control) {
        return Err(AppError::Validation("Password: expected the database user's password.".into()));
    }
    let schema = schema_name(&name);
    let mut tx = state.store.tenant(caller.scope()).await?;
    if tx.sources().await?.iter().any(|s| DATABASE_KINDS.contains(&s.kind.as_str()) && schema_name(&s.name) == schema) {
        return Err(AppError::Conflict(format!("Name: another database source already appears as {schema}.")));
    }
    tx.commit().await?;
    let stored = serde_json::to_string(&config).map_err(|e| AppError::Internal(e.to_string()))?;
    let details = json!({ "kind": input.kind, "name": name, "schema": schema, "host": config.host, "database": config.database, "user": config.user });
    let change = Change::SourceCreate { kind: input.kind, name, config: stored, secret: password.to_owned(), details };
    submit(state, caller, change, None).await
}

#[derive(Deserialize)]
pub struct NewDatabaseForm {
    kind: String,
    name: String,
    host: String,
    port: String,
    database: String,
    user: String,
    #[serde(default)]
    schema: String,
    #[serde(default)]
    tls: String,
    secret: String,
}

pub async fn create_database(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(f): CsrfForm<NewDatabaseForm>,
) -> Result<Response, AppError> {
    let port = match f.port.trim() {
        "" => None,
        p => {
            Some(p.parse::<u16>().map_err(|_| AppError::Validation("Port: expected a number from 1 to 65535.".into())))
        }
    };
    let input = port.transpose().map(|port| NewSourceInput {
        kind: f.kind,
        name: f.name,
        secret: f.secret,
        access_key_id: None,
        role_arn: None,
        external_id: None,
        cost_allocation_tag: None,
        tenant_id: None,
        client_id: None,
        scope: None,
        billing_table: None,
        project_id: None,
        location: None,
        base_url: None,
        host: Some(f.host),
        port,
        database: Some(f.database),
        user: Some(f.user),
        schema: Some(f.schema),
        tls: Some(f.tls),
    });
    match async { connect(&state, &who, input?).await }.await {
        Ok(Submitted::Applied(_)) => Ok(see_other("/sources?done=database")),
        Ok(Submitted::Queued(_)) => Ok(see_other("/sources?done=queued")),
        Err(AppError::Validation(m)) | Err(AppError::Conflict(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct NewSourceForm {
    kind: String,
    name: String,
    secret: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    role_arn: String,
    #[serde(default)]
    external_id: String,
    #[serde(default)]
    cost_allocation_tag: String,
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    billing_table: String,
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    base_url: String,
}

pub async fn create(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(f): CsrfForm<NewSourceForm>,
) -> Result<Response, AppError> {
    let input = NewSourceInput {
        kind: f.kind,
        name: f.name,
        secret: f.secret,
        access_key_id: Some(f.access_key_id).filter(|a| !a.trim().is_empty()),
        role_arn: Some(f.role_arn),
        external_id: Some(f.external_id),
        cost_allocation_tag: Some(f.cost_allocation_tag),
        tenant_id: Some(f.tenant_id),
        client_id: Some(f.client_id),
        scope: Some(f.scope),
        billing_table: Some(f.billing_table),
        project_id: Some(f.project_id),
        location: Some(f.location),
        base_url: Some(f.base_url),
        host: None,
        port: None,
        database: None,
        user: None,
        schema: None,
        tls: None,
    };
    match connect(&state, &who, input).await {
        Ok(Submitted::Applied(_)) => Ok(see_other("/sources?done=connected")),
        Ok(Submitted::Queued(_)) => Ok(see_other("/sources?done=queued")),
        Err(AppError::Validation(m)) | Err(AppError::Conflict(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

/// Deletes a source, keeping its synced data or not (the audit entry says which).
async fn remove(state: &AppState, caller: &impl Caller, id: Uuid, keep_data: bool) -> Result<(), AppError> {
    let action = if keep_data { "source_deleted_data_kept" } else { "source_deleted_data_removed" };
    change(state, caller, ("source", id), action, async |tx| Ok(tx.delete_source(id, keep_data).await?)).await
}

/// Audits a sync someone asked for and starts it.
async fn request_sync(state: &AppState, caller: &impl Caller, id: Uuid) -> Result<(), AppError> {
    change(state, caller, ("source", id), "source_sync_requested", async |tx| Ok(tx.source(id).await?.is_some()))
        .await?;
    spawn_sync(&state.syncer, caller.scope(), id);
    Ok(())
}

/// Pauses or resumes a source's scheduled syncs, audited.
async fn set_paused(state: &AppState, caller: &impl Caller, id: Uuid, paused: bool) -> Result<(), AppError> {
    let action = if paused { "source_paused" } else { "source_resumed" };
    change(state, caller, ("source", id), action, async |tx| Ok(tx.set_source_paused(id, paused).await?)).await
}

pub async fn pause(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    set_paused(&state, &who, parse_id(&id)?, true).await?;
    Ok(see_other("/sources?done=paused"))
}

pub async fn resume(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    set_paused(&state, &who, parse_id(&id)?, false).await?;
    Ok(see_other("/sources?done=resumed"))
}

/// A new credential for a source (for AWS, a new access key: its id and secret).
#[derive(Deserialize, ToSchema)]
pub struct SecretForm {
    secret: String,
    /// AWS: the new key's id (an AWS key is replaced as a pair).
    #[serde(default)]
    access_key_id: Option<String>,
}

/// Replaces a source's credential — at once, or where the organization asks for approval of new
/// credentials, once another admin approves. An AWS key comes with its own id, kept in the
/// settings.
async fn rotate_secret(
    state: &AppState,
    caller: &impl Caller,
    id: Uuid,
    new: &SecretForm,
) -> Result<Submitted, AppError> {
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let source = tx.source(id).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    let kind = SourceKind::parse(&source.kind);
    let settings = || -> Result<SourceConfig, AppError> {
        serde_json::from_str(&source.config).map_err(|e| AppError::Internal(format!("source {id}: {e}")))
    };
    let (secret, config) = match kind {
        Some(SourceKind::Aws) => {
            let mut config = settings()?;
            config.access_key_id =
                Some(parse_access_key_id(new.access_key_id.as_deref().filter(|a| !a.trim().is_empty()))?);
            (parse_secret(&new.secret, "Secret access key")?.to_owned(), Some(config))
        }
        // A new key may belong to another service account: the settings show which.
        Some(SourceKind::Gcp) => {
            let (secret, email) = parse_service_account_key(&new.secret)?;
            let mut config = settings()?;
            config.service_account = Some(email);
            (secret, Some(config))
        }
        _ => (parse_secret(&new.secret, "New key")?.to_owned(), None),
    };
    let config =
        config.map(|c| serde_json::to_string(&c).map_err(|e| AppError::Internal(e.to_string()))).transpose()?;
    submit(state, caller, Change::SourceRotate { source: id, name: source.name, secret, config }, None).await
}

pub async fn rotate(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<SecretForm>,
) -> Result<Response, AppError> {
    match rotate_secret(&state, &who, parse_id(&id)?, &f).await {
        Ok(Submitted::Applied(_)) => Ok(see_other("/sources?done=rotated")),
        Ok(Submitted::Queued(_)) => Ok(see_other("/sources?done=queued")),
        Err(AppError::Validation(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

/// New settings, validated: the base URL through the egress guard, depth and interval bounded.
fn checked_settings(
    state: &AppState,
    current: &SourceConfig,
    base_url: Option<String>,
    backfill_days: Option<u32>,
    interval_minutes: Option<u32>,
) -> Result<SourceConfig, AppError> {
    let mut next = current.clone();
    if let Some(u) = base_url {
        let u = u.trim().to_owned();
        if u.is_empty() {
            next.base_url = None;
        } else {
            state.syncer.http.guard().check_url(&u).map_err(|e| AppError::Validation(format!("Base URL: {e}.")))?;
            next.base_url = Some(u);
        }
    }
    if let Some(d) = backfill_days {
        if !(1..=730).contains(&d) {
            return Err(AppError::Validation("Backfill: between 1 and 730 days.".into()));
        }
        next.backfill_days = d;
    }
    if let Some(m) = interval_minutes {
        if !(15..=1440).contains(&m) {
            return Err(AppError::Validation("Sync interval: between 15 and 1440 minutes.".into()));
        }
        next.interval_minutes = m;
    }
    Ok(next)
}

async fn change_settings(
    state: &AppState,
    caller: &impl Caller,
    id: Uuid,
    base_url: Option<String>,
    backfill_days: Option<u32>,
    interval_minutes: Option<u32>,
) -> Result<(), AppError> {
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let source = tx.source(id).await?.ok_or(AppError::NotFound)?;
    let current: SourceConfig = serde_json::from_str(&source.config).unwrap_or_default();
    let next = checked_settings(state, &current, base_url, backfill_days, interval_minutes)?;
    let config = serde_json::to_string(&next).map_err(|e| AppError::Internal(e.to_string()))?;
    tx.set_source_config(id, &config).await?;
    tx.audit(caller.entry(
        "source_settings_changed",
        "source",
        id.to_string(),
        json!({ "before": current, "after": next }),
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct SettingsForm {
    base_url: String,
    backfill_days: String,
    interval_minutes: String,
}

pub async fn settings(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<SettingsForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let number = |v: &str, what: &str| {
        v.trim().parse::<u32>().map_err(|_| AppError::Validation(format!("{what}: a whole number.")))
    };
    let result = async {
        let days = number(&f.backfill_days, "Backfill")?;
        let minutes = number(&f.interval_minutes, "Sync interval")?;
        change_settings(&state, &who, id, Some(f.base_url.clone()), Some(days), Some(minutes)).await
    }
    .await;
    match result {
        Ok(()) => Ok(see_other("/sources?done=settings")),
        Err(AppError::Validation(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SettingsBody {
    base_url: Option<String>,
    backfill_days: Option<u32>,
    interval_minutes: Option<u32>,
}

/// Changes how a source syncs (admins).
#[utoipa::path(patch, path = "/sources/{id}", tag = "sources", request_body = SettingsBody,
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 204, description = "Changed"), Refusals, BodyRefusals, Missing))]
pub async fn api_settings(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SettingsBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id = parse_id(&id)?;
    change_settings(&state, &caller, id, b.base_url, b.backfill_days, b.interval_minutes).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct DeleteForm {
    keep_data: String,
}

pub async fn delete(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DeleteForm>,
) -> Result<Response, AppError> {
    remove(&state, &who, parse_id(&id)?, f.keep_data != "no").await?;
    Ok(see_other("/sources?done=deleted"))
}

pub async fn sync_now(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    request_sync(&state, &who, parse_id(&id)?).await?;
    Ok(see_other("/sources?done=syncing"))
}

/// Calls the provider once with the source's credential (yesterday's costs): whether it works,
/// in words.
async fn test_connection(state: &AppState, caller: &impl Caller, id: Uuid) -> Result<(bool, String), AppError> {
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let source = tx.source(id).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(match state.syncer.test_connection(caller.scope(), &source, chrono::Utc::now().date_naive()).await {
        Ok(n) => {
            (true, format!("Connection to {} works: the key was accepted ({n} cost lines for yesterday).", source.name))
        }
        Err(e) => (false, format!("Connection to {} failed: {e}", source.name)),
    })
}

pub async fn test(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    match test_connection(&state, &who, parse_id(&id)?).await? {
        (true, message) => page(&state, &who, Some(message), None).await,
        (false, message) => page(&state, &who, None, Some(message)).await,
    }
}

// --- API -------------------------------------------------------------------------------------

/// A connected source and how fresh its data is.
#[derive(Serialize, ToSchema)]
pub struct SourceView {
    id: Uuid,
    /// openai, anthropic, aws, openrouter, postgres or mysql.
    kind: String,
    name: String,
    /// Settings without secrets: base URL, backfill depth, interval; host and database of a
    /// database source.
    #[schema(value_type = Object)]
    config: serde_json::Value,
    /// The last four characters of the credential.
    secret_last4: String,
    secret_set_at: DateTime<Utc>,
    paused: bool,
    last_attempt_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    /// A running sync's progress, in words.
    progress: Option<String>,
    /// The last day with complete costs in the lake.
    costs_through: Option<NaiveDate>,
    usage_through: Option<NaiveDate>,
    /// The last day the provider is no longer expected to revise: later days are re-pulled by
    /// each sync and may still change.
    final_through: Option<NaiveDate>,
    /// OpenRouter: the prepaid credits left (USD, exact decimal) at the last sync.
    credits_remaining: Option<String>,
    credits_checked_at: Option<DateTime<Utc>>,
    /// What the last successful sync did: lines written, requests made (and their price where
    /// the provider bills them).
    last_sync_summary: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SourcesView {
    sources: Vec<SourceView>,
}

#[utoipa::path(get, path = "/sources", tag = "sources", responses((status = 200, body = SourcesView), Refusals))]
pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let sources = tx.sources().await?;
    let fresh = tx.lake_freshness().await?;
    tx.commit().await?;
    let sources = sources
        .into_iter()
        .map(|s| {
            let fresh = fresh.get(&s.id).copied().unwrap_or_default();
            let config: burnrate_sync::SourceConfig = serde_json::from_str(&s.config).unwrap_or_default();
            SourceView {
                final_through: fresh.costs.map(|d| final_through(d, config.repull_days)),
                costs_through: fresh.costs,
                usage_through: fresh.usage,
                id: s.id,
                kind: s.kind,
                name: s.name,
                config: serde_json::from_str(&s.config).unwrap_or_else(|_| json!({})),
                secret_last4: s.secret_hint,
                secret_set_at: s.secret_set_at,
                paused: s.paused,
                last_attempt_at: s.last_attempt_at,
                last_success_at: s.last_success_at,
                last_error: s.last_error,
                progress: s.progress,
                credits_remaining: s.credits_remaining,
                credits_checked_at: s.credits_checked_at,
                last_sync_summary: s.last_sync_summary,
            }
        })
        .collect();
    Ok(Json(SourcesView { sources }).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct CreatedView {
    id: Uuid,
}

/// Connects a source (admins): its credential is sealed and its backfill starts. Where the
/// organization asks for approval of new credentials, it waits for another admin (`202`).
#[utoipa::path(post, path = "/sources", tag = "sources", request_body = NewSourceInput,
    responses((status = 201, body = CreatedView), (status = 202, body = QueuedView), Refusals, BodyRefusals, Conflicting))]
pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(input): ApiJson<NewSourceInput>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    Ok(match connect(&state, &caller, input).await? {
        Submitted::Applied(id) => (StatusCode::CREATED, Json(CreatedView { id })).into_response(),
        Submitted::Queued(request) => queued(&state, request, Nothing {}),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeepData {
    /// Keep the synced data in the lake (default) or remove it too.
    keep_data: Option<bool>,
}

/// Removes a source (admins); its data stays unless `keep_data=false`.
#[utoipa::path(delete, path = "/sources/{id}", tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id"), KeepData),
    responses((status = 204, description = "Removed"), Refusals, BodyRefusals, Missing))]
pub async fn api_delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<KeepData>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    remove(&state, &caller, parse_id(&id)?, q.keep_data.unwrap_or(true)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, ToSchema)]
pub struct SyncStarted {
    id: Uuid,
    /// `sync started`.
    status: &'static str,
}

/// Starts a sync of the source now (admins); follow it in the source's `progress`.
#[utoipa::path(post, path = "/sources/{id}/sync", tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 202, body = SyncStarted), Refusals, Missing, Conflicting))]
pub async fn api_sync(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id = parse_id(&id)?;
    request_sync(&state, &caller, id).await?;
    Ok((StatusCode::ACCEPTED, Json(SyncStarted { id, status: "sync started" })).into_response())
}

/// How a connection test went.
#[derive(Serialize, ToSchema)]
pub struct ConnectionTestView {
    ok: bool,
    /// What happened, in words: the provider's answer when it refused.
    message: String,
}

/// Calls the provider once with the source's credential and says whether it works (admins).
#[utoipa::path(post, path = "/sources/{id}/test", tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 200, body = ConnectionTestView), Refusals, Missing))]
pub async fn api_test(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let (ok, message) = test_connection(&state, &caller, parse_id(&id)?).await?;
    Ok(Json(ConnectionTestView { ok, message }).into_response())
}

/// Stops the source's scheduled syncs until it is resumed (admins); its data stays.
#[utoipa::path(post, path = "/sources/{id}/pause", tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 204, description = "Paused"), Refusals, Missing))]
pub async fn api_pause(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    set_paused(&state, &caller, parse_id(&id)?, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/sources/{id}/resume", tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 204, description = "Resumed: scheduled syncs run again"), Refusals, Missing))]
pub async fn api_resume(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    set_paused(&state, &caller, parse_id(&id)?, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Replaces the source's credential (admins); where the organization asks for approval of new
/// credentials, it waits for another admin (`202`).
#[utoipa::path(post, path = "/sources/{id}/rotate", tag = "sources", request_body = SecretForm,
    params(("id" = Uuid, Path, description = "The source's id")),
    responses((status = 204, description = "Replaced"), (status = 202, body = QueuedView), Refusals, BodyRefusals, Missing))]
pub async fn api_rotate(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SecretForm>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    Ok(match rotate_secret(&state, &caller, parse_id(&id)?, &body).await? {
        Submitted::Applied(_) => StatusCode::NO_CONTENT.into_response(),
        Submitted::Queued(request) => queued(&state, request, Nothing {}),
    })
}

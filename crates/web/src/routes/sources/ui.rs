//! The sources pages: server-rendered, every change a form post behind the CSRF check.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::Submitted;
use burnrate_app::sources::{Listed, NewSourceInput, ProviderSettings, SettingsChange, SourceKind, SourceSpec};
use burnrate_core::schema_name;
use serde::Deserialize;

use super::{
    SecretForm, connect, credential, freshness_text, remove, request_sync, rotate_secret, set_paused, test_connection,
};
use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{Nav, render, when};
use crate::routes::{parse_id, see_other};
use crate::security::{CsrfForm, NoFields};

async fn page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let listed = state.app.sources(&who.actor()).await?;
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (databases, sources): (Vec<_>, Vec<_>) =
        listed.into_iter().partition(|l| matches!(l.spec, Ok(SourceSpec::Database { .. })));
    let page = SourcesPage {
        nav: Some(Nav::new(who, "sources")),
        csrf: who.csrf.clone(),
        databases: databases
            .into_iter()
            .filter_map(|Listed { source: s, spec, .. }| {
                let spec = spec.ok()?;
                let SourceSpec::Database { config: c, .. } = &spec else { return None };
                Some(DatabaseRow {
                    id: s.id.to_string(),
                    schema: schema_name(&s.name),
                    kind: spec.label().into(),
                    address: format!("{}:{}/{} as {}", c.host, c.port, c.database, c.user),
                    tls: c.tls.as_str(),
                    tls_label: c.tls.label(),
                    hint: s.secret_hint,
                    name: s.name,
                })
            })
            .collect(),
        sources: sources
            .into_iter()
            .map(|Listed { source: s, spec, fresh }| {
                // Settings that no longer read show as such, and the source can still be removed.
                let (settings, error) = match spec {
                    Ok(SourceSpec::Provider(config)) => (Some(config), s.last_error),
                    Ok(SourceSpec::Database { .. }) => unreachable!("partitioned above"),
                    Err(e) => (None, Some(e.to_string())),
                };
                let kind = settings.as_ref().map_or(s.kind.clone(), |c| c.kind().label().to_owned());
                let account = settings.as_ref().and_then(|c| match &c.provider {
                    ProviderSettings::Gcp(gcp) => gcp.service_account.clone(),
                    _ => None,
                });
                SourceRow {
                    id: s.id.to_string(),
                    name: s.name,
                    kind,
                    hint: s.secret_hint,
                    account,
                    paused: s.paused,
                    synced: s.last_success_at.is_some(),
                    error,
                    last_success: s.last_success_at.map(when).unwrap_or_else(|| "never".into()),
                    fresh: freshness_text(fresh, settings.as_ref().map_or(0, |c| c.repull_days)),
                    aws: settings.as_ref().is_some_and(|c| c.kind() == SourceKind::Aws),
                    settings,
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
    #[serde(default)]
    ca_pem: String,
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
        ca_pem: Some(f.ca_pem),
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
        ca_pem: None,
    };
    match connect(&state, &who, input).await {
        Ok(Submitted::Applied(_)) => Ok(see_other("/sources?done=connected")),
        Ok(Submitted::Queued(_)) => Ok(see_other("/sources?done=queued")),
        Err(AppError::Validation(m)) | Err(AppError::Conflict(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
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

#[derive(Deserialize)]
pub struct SettingsForm {
    base_url: String,
    backfill_days: String,
    interval_minutes: String,
    /// The credential again: needed only with a new base URL (S23).
    #[serde(default)]
    secret: String,
    #[serde(default)]
    access_key_id: Option<String>,
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
        let change = SettingsChange {
            base_url: Some(f.base_url.clone()),
            backfill_days: Some(days),
            interval_minutes: Some(minutes),
            credential: credential(Some(f.secret.clone()), f.access_key_id.clone()),
        };
        Ok(state.app.change_source_settings(&who.actor(), id, change).await?)
    }
    .await;
    match result {
        Ok(Submitted::Applied(_)) => Ok(see_other("/sources?done=settings")),
        Ok(Submitted::Queued(_)) => Ok(see_other("/sources?done=queued")),
        Err(AppError::Validation(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
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

pub struct SourceRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub hint: String,
    pub paused: bool,
    pub synced: bool,
    pub error: Option<String>,
    pub last_success: String,
    /// Its settings, or `None` when they no longer read (`error` then says so).
    pub settings: Option<burnrate_app::sources::SourceConfig>,
    /// A Google source's service account, shown instead of the key's last characters.
    pub account: Option<String>,
    /// An AWS source: its key is replaced with its access key id.
    pub aws: bool,
    pub progress: Option<String>,
    /// The last day of data per table.
    pub fresh: String,
    /// A prepaid account's credits left, in words: "USD 62.5688 credits left (read 2026-12-01 15:00 UTC)".
    pub credits: Option<String>,
    /// What the last successful sync did.
    pub summary: Option<String>,
}

/// A connected database, read at query time.
pub struct DatabaseRow {
    pub id: String,
    pub name: String,
    /// "PostgreSQL" or "MySQL / MariaDB".
    pub kind: String,
    /// `ext_<name>`: where its tables appear in SQL.
    pub schema: String,
    /// `host:port/database as user`.
    pub address: String,
    /// `verify-full`, `require` or `prefer`, and what it means.
    pub tls: &'static str,
    pub tls_label: &'static str,
    pub hint: String,
}

#[derive(Template)]
#[template(path = "sources.html")]
pub struct SourcesPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub sources: Vec<SourceRow>,
    pub databases: Vec<DatabaseRow>,
    pub can_manage: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

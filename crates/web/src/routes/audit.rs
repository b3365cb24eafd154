//! The audit log (S16) as people and programs read it: the page with filters, the CSV export
//! (RFC 4180, formulas defused) from the page and `GET /api/v1/audit?format=csv`, and the JSON
//! listing of `/api/v1/audit`. Admins only; the chain itself is checked by `burnrate audit verify`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use burnrate_app::audit::{AuditFilter, AuditRecord, SHOWN};
use burnrate_core::ApiScope;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::api::ApiQuery;
use super::openapi::{BodyRefusals, Refusals};
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{AuditPage, AuditRow, Nav, render};

/// The filters, as a query string carries them.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The actor's type (`operator`), label or id, exactly.
    #[serde(default)]
    pub(crate) actor: String,
    /// The action, exactly (`budget_created`).
    #[serde(default)]
    pub(crate) action: String,
    /// The target's type or id, exactly.
    #[serde(default)]
    pub(crate) target: String,
    /// `2026-11-30` (from its start) or an RFC 3339 time.
    #[serde(default)]
    pub(crate) from: String,
    /// `2026-11-30` (through its end) or an RFC 3339 time (excluded).
    #[serde(default)]
    pub(crate) to: String,
    /// `csv` for the export (API); JSON otherwise.
    #[serde(default)]
    pub(crate) format: String,
    /// Entries older than this sequence number (the JSON listing's next page).
    pub(crate) before: Option<i64>,
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, AppError> {
        Ok(burnrate_app::audit::filter(&self.actor, &self.action, &self.target, &self.from, &self.to)?)
    }

    /// Some filter is set.
    fn is_filtered(&self) -> bool {
        [&self.actor, &self.action, &self.target, &self.from, &self.to].iter().any(|v| !v.trim().is_empty())
    }

    /// The query string of the filters, for the export link.
    fn filters_query(&self) -> String {
        serde_urlencoded::to_string([
            ("actor", self.actor.trim()),
            ("action", self.action.trim()),
            ("target", self.target.trim()),
            ("from", self.from.trim()),
            ("to", self.to.trim()),
        ])
        .unwrap_or_default()
    }
}

/// The export as a download.
async fn csv_download(
    state: &AppState,
    caller: &impl Caller,
    q: &AuditQuery,
    filter: AuditFilter,
) -> Result<Response, AppError> {
    let details = json!({ "format": "csv", "filters": q.filters_query() });
    let chunks = state.app.export_audit(&caller.actor(), filter, details).await?;
    let body = futures::StreamExt::map(chunks, |c| Ok::<_, std::io::Error>(bytes::Bytes::from(c)));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"burnrate-audit.csv\""),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

pub async fn audit_page(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    who.require_admin()?;
    let (entries, error) = match q.filter() {
        Ok(filter) => (state.app.audit_entries(&who.actor(), &filter, q.before).await?, None),
        Err(AppError::Validation(m)) => (Vec::new(), Some(m)),
        Err(e) => return Err(e),
    };
    Ok(render(&AuditPage {
        nav: Some(Nav::new(&who, "audit")),
        export: format!("/audit.csv?{}", q.filters_query()),
        filtered: q.is_filtered(),
        error,
        entries: entries.into_iter().map(AuditRow::from).collect(),
        q,
    })
    .into_response())
}

pub async fn audit_csv(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let filter = q.filter()?;
    csv_download(&state, &who, &q, filter).await
}

/// One entry of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    seq: i64,
    at: DateTime<Utc>,
    /// user, api_key, operator, system or anonymous.
    actor_type: String,
    actor_id: Option<String>,
    actor_label: String,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    /// What changed, without secrets.
    #[schema(value_type = Object)]
    details: serde_json::Value,
    ip: Option<String>,
    user_agent: Option<String>,
    prev_hash: String,
    hash: String,
}

impl From<&AuditRecord> for AuditEntryView {
    fn from(e: &AuditRecord) -> Self {
        AuditEntryView {
            seq: e.seq,
            at: e.at,
            actor_type: e.actor_type.clone(),
            actor_id: e.actor_id.clone(),
            actor_label: e.actor_label.clone(),
            action: e.action.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target_id.clone(),
            details: serde_json::from_str(&e.details).unwrap_or_else(|_| json!({})),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

/// A page of the log, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPageView {
    entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; absent on the last.
    next_before: Option<i64>,
}

/// `GET /api/v1/audit`: newest first, a page of up to 200 (`before` for the next), filtered like
/// the page; `format=csv` for the whole export (admins).
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries, or with `format=csv` every selected entry as RFC 4180 CSV",
         content((AuditPageView = "application/json"), (String = "text/csv"))),
        Refusals, BodyRefusals))]
pub async fn api_audit(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let filter = q.filter()?;
    match q.format.as_str() {
        "csv" => return Ok(csv_download(&state, &caller, &q, filter).await?),
        "" | "json" => {}
        other => return Err(AppError::Validation(format!("format: {other:?} is not csv or json")).into()),
    }
    let entries = state.app.audit_entries(&caller.actor(), &filter, q.before).await?;
    let next_before = (entries.len() as i64 == SHOWN).then(|| entries.last().map(|e| e.seq)).flatten();
    Ok(Json(AuditPageView { entries: entries.iter().map(AuditEntryView::from).collect(), next_before }).into_response())
}

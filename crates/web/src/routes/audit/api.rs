//! The audit log through the JSON API: `/api/v1/audit`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use burnrate_app::audit::{AuditRecord, SHOWN};
use burnrate_core::ApiScope;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{AuditQuery, csv_download};
use crate::AppState;
use crate::api::{ApiQuery, BodyRefusals, Refusals};
use crate::auth::{ApiCaller, Caller};
use crate::error::{ApiError, AppError};

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

//! The audit log (S16) as people and programs read it: the page with filters, the CSV export
//! (RFC 4180, formulas defused) from the page and `GET /api/v1/audit?format=csv`, and the JSON
//! listing of `/api/v1/audit`. Admins only; the chain itself is checked by `burnrate audit verify`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use burnrate_core::ApiScope;
use burnrate_store::{AUDIT_CSV_COLUMNS, AuditAction, AuditFilter, AuditRecord, OrgScope, Store};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::api::ApiQuery;
use super::openapi::{BodyRefusals, Refusals};
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};
use crate::pages::{AuditPage, AuditRow, Nav, render};

/// Entries a page or a JSON answer shows at most.
const SHOWN: i64 = 200;
/// Entries read per round trip while exporting.
const EXPORT_PAGE: i64 = 1000;

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

/// A bound of the time filter: a date means its first instant (`from`) or the next day's (`to`).
fn instant(what: &str, raw: &str, day_end: bool) -> Result<Option<DateTime<Utc>>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let day = raw.parse::<NaiveDate>().map_err(|_| {
        AppError::Validation(format!("{what}: a date such as 2026-11-30 or a time such as 2026-11-30T12:00:00Z"))
    })?;
    let day = if day_end { day.succ_opt().unwrap_or(day) } else { day };
    Ok(Some(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()))
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, AppError> {
        let given = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(AuditFilter {
            actor: given(&self.actor),
            action: given(&self.action),
            target: given(&self.target),
            from: instant("from", &self.from, false)?,
            to: instant("to", &self.to, true)?,
        })
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

/// Every entry matching `filter`, oldest first, as a CSV download read a page at a time.
fn csv_download(store: Store, scope: OrgScope, filter: AuditFilter) -> Response {
    let header = burnrate_core::csv::record(AUDIT_CSV_COLUMNS.iter().map(|c| Some(*c)));
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let (store, filter) = (store.clone(), filter.clone());
        async move {
            let after = after?;
            let page = async {
                let mut tx = store.tenant(scope).await?;
                let rows = tx.audit_search(&filter, burnrate_store::AuditPage::Oldest { after }, EXPORT_PAGE).await?;
                tx.commit().await?;
                Ok::<_, burnrate_store::StoreError>(rows)
            }
            .await;
            match page {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = (rows.len() as i64 == EXPORT_PAGE).then(|| rows.last().map(|r| r.seq)).flatten();
                    let text: String = rows.iter().map(AuditRecord::csv_record).collect();
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(text)), next))
                }
                // Ends the download with a line saying why, rather than a silently short file.
                Err(e) => Some((Ok(bytes::Bytes::from(format!("error: {e}\r\n"))), None)),
            }
        }
    });
    let head = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(header)) });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"burnrate-audit.csv\""),
        ],
        Body::from_stream(futures::StreamExt::chain(head, pages)),
    )
        .into_response()
}

pub async fn audit_page(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    who.require_admin()?;
    let (entries, error) = match q.filter() {
        Ok(filter) => {
            let mut tx = state.store.tenant(who.scope).await?;
            let entries =
                tx.audit_search(&filter, burnrate_store::AuditPage::Newest { before: q.before }, SHOWN).await?;
            tx.commit().await?;
            (entries, None)
        }
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
    who.require_admin()?;
    let filter = q.filter()?;
    exported(&state, &who, &q).await?;
    Ok(csv_download(state.store.clone(), who.scope, filter))
}

/// Records an export of the log (S16: exports are audited), with the filters it used.
async fn exported(state: &AppState, caller: &impl Caller, q: &AuditQuery) -> Result<(), AppError> {
    let mut tx = state.store.tenant(caller.scope()).await?;
    let details = json!({ "format": "csv", "filters": q.filters_query() });
    tx.audit(caller.entry(AuditAction::AuditExported, "organization", caller.scope().org_id().to_string(), details))
        .await?;
    tx.commit().await?;
    Ok(())
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
        "csv" => {
            exported(&state, &caller, &q).await?;
            return Ok(csv_download(state.store.clone(), caller.scope(), filter));
        }
        "" | "json" => {}
        other => return Err(AppError::Validation(format!("format: {other:?} is not csv or json")).into()),
    }
    let mut tx = state.store.tenant(caller.scope()).await?;
    let entries = tx.audit_search(&filter, burnrate_store::AuditPage::Newest { before: q.before }, SHOWN).await?;
    tx.commit().await?;
    let next_before = (entries.len() as i64 == SHOWN).then(|| entries.last().map(|e| e.seq)).flatten();
    Ok(Json(AuditPageView { entries: entries.iter().map(AuditEntryView::from).collect(), next_before }).into_response())
}

//! The audit log (S16) as people and programs read it: the page with filters, the CSV export
//! (RFC 4180, formulas defused) from the page and `GET /api/v1/audit?format=csv`, and the JSON
//! listing of `/api/v1/audit`. Admins only; the chain itself is checked by `burnrate audit verify`.

mod api;
mod ui;

use axum::Router;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use burnrate_app::audit::AuditFilter;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;

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

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new().route("/audit", get(ui::audit_page)).route("/audit.csv", get(ui::audit_csv))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(api::api_audit))
}

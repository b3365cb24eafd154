//! The audit log pages: server-rendered, every change a form post behind the CSRF check.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};

use super::{AuditQuery, csv_download};
use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{AuditRow, Nav, render};

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

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub nav: Option<Nav>,
    pub entries: Vec<AuditRow>,
    /// The filters as typed.
    pub q: super::AuditQuery,
    /// Some filter is set.
    pub filtered: bool,
    /// The CSV export of what the filters select.
    pub export: String,
    pub error: Option<String>,
}

//! The approval queue pages: server-rendered, every change a form post behind the CSRF check.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::approvals::ApprovalState;
use chrono::Utc;
use serde::Deserialize;

use super::{decide, shown_state};
use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{Nav, render, when};
use crate::routes::parse_id;
use crate::security::CsrfForm;

async fn page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let (list, sole_admin) = state.app.approval_queue(&who.actor()).await?;
    let me = who.member();
    let rows = list
        .iter()
        .map(|r| {
            let summary: serde_json::Value = serde_json::from_str(&r.summary).unwrap_or_default();
            ApprovalRow {
                id: r.id.to_string(),
                text: summary["text"].as_str().unwrap_or_default().to_owned(),
                before: summary.get("before").filter(|b| !b.is_null()).map(|b| b.to_string()).unwrap_or_default(),
                after: summary.get("after").map(|a| a.to_string()).unwrap_or_default(),
                state: shown_state(r).to_owned(),
                requested: when(r.requested_at),
                expires: when(r.expires_at),
                mine: r.requested_by == me,
                open: r.is_open(Utc::now()),
                comment: r.comment.clone().unwrap_or_default(),
                outcome: r.outcome.clone().unwrap_or_default(),
            }
        })
        .collect();
    let status = if error.is_some() { StatusCode::CONFLICT } else { StatusCode::OK };
    let page = ApprovalsPage {
        nav: Some(Nav::new(who, "approvals")),
        csrf: who.csrf.clone(),
        requests: rows,
        sole_admin,
        notice,
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn approvals_page(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    page(&state, &who, None, None).await
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    comment: String,
}

async fn decide_form(
    state: AppState,
    who: Authed,
    id: String,
    comment: String,
    approve: bool,
) -> Result<Response, AppError> {
    match decide(&state, &who, parse_id(&id)?, approve, Some(&comment)).await {
        Ok(r) => {
            let notice = match (approve, r.state) {
                (true, ApprovalState::Failed) => {
                    format!("Approved, but not applied: {}.", r.outcome.unwrap_or_default())
                }
                (true, _) => "Approved and applied.".to_owned(),
                (false, _) => "Rejected.".to_owned(),
            };
            page(&state, &who, Some(notice), None).await
        }
        Err(AppError::Conflict(m)) => page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn approve_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DecisionForm>,
) -> Result<Response, AppError> {
    decide_form(state, who, id, f.comment, true).await
}

pub async fn reject_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DecisionForm>,
) -> Result<Response, AppError> {
    decide_form(state, who, id, f.comment, false).await
}

pub struct ApprovalRow {
    pub id: String,
    /// The change in words.
    pub text: String,
    /// Values before and after, as JSON (no secrets).
    pub before: String,
    pub after: String,
    /// pending, approved, rejected, failed or expired.
    pub state: String,
    pub requested: String,
    pub expires: String,
    /// Asked for by the member looking: they cannot decide it.
    pub mine: bool,
    /// Still waiting for a decision.
    pub open: bool,
    pub comment: String,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "approvals.html")]
pub struct ApprovalsPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub requests: Vec<ApprovalRow>,
    /// The organization has one admin: sensitive changes apply at once.
    pub sole_admin: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

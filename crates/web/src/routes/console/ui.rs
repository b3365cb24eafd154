//! The SQL console pages: server-rendered, every change a form post behind the CSRF check.

use std::time::Instant;

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use burnrate_app::exports::Export;
use burnrate_engine::SqlSession;
use serde::Deserialize;

use super::{PAGE_ROWS, run_page, session, shown};
use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{Nav, render};
use crate::security::CsrfForm;

#[derive(Deserialize)]
pub struct ConsoleForm {
    sql: String,
    #[serde(default)]
    page: usize,
}

async fn page(
    session: &SqlSession,
    who: &Authed,
    sql: String,
    result: Option<ConsoleResult>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = ConsolePage {
        nav: Some(Nav::new(who, "sql")),
        csrf: who.csrf.clone(),
        tables: burnrate_app::console::tables(session)
            .await?
            .into_iter()
            .map(|t| ConsoleTable {
                name: t.name,
                columns: t.columns.into_iter().map(|(name, kind)| ConsoleColumn { name, kind }).collect(),
            })
            .collect(),
        sql,
        result,
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn console_page(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    // An empty query: the page shows its example.
    page(&session(&state, &who)?, &who, String::new(), None, None).await
}

/// Runs the query and shows page `form.page` of its rows.
pub async fn run(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<ConsoleForm>,
) -> Result<Response, AppError> {
    let session = session(&state, &who)?;
    let started = Instant::now();
    let skip = form.page.saturating_mul(PAGE_ROWS);
    match run_page(&session, &form.sql, form.page).await.map_err(shown) {
        Ok((columns, rows, more)) => {
            let result = ConsoleResult {
                first: skip + 1,
                last: skip + rows.len(),
                page: form.page,
                more,
                columns,
                rows,
                millis: started.elapsed().as_millis(),
            };
            page(&session, &who, form.sql, Some(result), None).await
        }
        Err(message) => page(&session, &who, form.sql, None, Some(message?)).await,
    }
}

/// The whole result as CSV, streamed as the query produces it.
pub async fn csv(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<ConsoleForm>,
) -> Result<Response, AppError> {
    let session = session(&state, &who)?;
    let q = match session.query(&form.sql).await {
        Ok(q) => q,
        Err(e) => {
            let message = shown(e)?;
            return page(&session, &who, form.sql, None, Some(message)).await;
        }
    };
    // Exports are audited (S16): who took which query's result away.
    let statement: String = form.sql.chars().take(1000).collect();
    let details = serde_json::json!({ "format": "csv", "statement": statement });
    state.app.record_export(&who.actor(), Export::Query, details).await?;
    let body = crate::download::csv_body(session, q);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"burnrate-query.csv\""),
        ],
        body,
    )
        .into_response())
}

pub struct ConsoleColumn {
    pub name: String,
    pub kind: String,
}

pub struct ConsoleTable {
    /// `costs`, or `ext_shop.teams` outside the default schema.
    pub name: String,
    pub columns: Vec<ConsoleColumn>,
}

/// One page of a query's rows.
pub struct ConsoleResult {
    pub columns: Vec<String>,
    /// Values as text; `None` is NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// Row numbers (from 1) of the first and last row shown.
    pub first: usize,
    pub last: usize,
    pub page: usize,
    pub more: bool,
    pub millis: u128,
}

#[derive(Template)]
#[template(path = "console.html")]
pub struct ConsolePage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub tables: Vec<ConsoleTable>,
    pub sql: String,
    pub result: Option<ConsoleResult>,
    pub error: Option<String>,
}

//! The SQL console: a query box, its result a page of rows at a time, the whole result as CSV,
//! and the organization's tables to browse. Server-rendered (no script): each page runs the
//! query again and reads past the earlier rows, so pages are stable when the query orders them.

use burnrate_app::exports::Export;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use burnrate_app::spend::texts;
use burnrate_engine::{EngineError, SqlSession};
use datafusion::arrow::array::RecordBatch;
use futures::StreamExt;
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{ConsoleColumn, ConsolePage, ConsoleResult, ConsoleTable, Nav, render};
use crate::security::CsrfForm;

/// Rows on one page of a result.
const PAGE_ROWS: usize = 100;
/// The most characters of one value the page shows (the CSV has them all).
const CELL_CHARS: usize = 200;

#[derive(Deserialize)]
pub struct ConsoleForm {
    sql: String,
    #[serde(default)]
    page: usize,
}

fn session(state: &AppState, who: &Authed) -> Result<SqlSession, AppError> {
    Ok(state.app.sql_session(&who.actor(), who.email.as_str())?)
}

/// An engine error as the console shows it: the user's mistake in full, an internal one not.
fn shown(e: EngineError) -> Result<String, AppError> {
    match e {
        EngineError::Store(_) | EngineError::Setup(_) => Err(AppError::internal(e)),
        other => Ok(other.to_string()),
    }
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

/// Page `page` of the query's rows within the statement timeout, or what was wrong with it.
async fn run_page(
    state: &AppState,
    session: &SqlSession,
    sql: &str,
    page: usize,
) -> Result<Result<Page, String>, AppError> {
    let timeout = state.engine.as_ref().map(|e| e.statement_timeout()).unwrap_or_default();
    let skip = page.saturating_mul(PAGE_ROWS);
    Ok(match tokio::time::timeout(timeout, read_page(session, sql, skip)).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(e)) => Err(shown(e)?),
        Err(_) => Err(EngineError::Timeout(timeout).to_string()),
    })
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
    match run_page(&state, &session, &form.sql, form.page).await? {
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
        Err(message) => page(&session, &who, form.sql, None, Some(message)).await,
    }
}

type Page = (Vec<String>, Vec<Vec<Option<String>>>, bool);

/// The column names, the rows after the first `skip` (at most a page), and whether more follow.
async fn read_page(session: &SqlSession, sql: &str, skip: usize) -> Result<Page, EngineError> {
    let mut q = session.query(sql).await?;
    let columns = q.schema.fields().iter().map(|f| f.name().clone()).collect();
    let (mut seen, mut rows) = (0usize, Vec::new());
    while let Some(batch) = q.stream.next().await {
        let batch = batch?;
        let n = batch.num_rows();
        let from = skip.saturating_sub(seen).min(n);
        seen += n;
        if from == n {
            continue;
        }
        let wanted = (PAGE_ROWS + 1 - rows.len()).min(n - from);
        rows.extend(texts(&batch, from, wanted, Some(CELL_CHARS))?);
        if rows.len() > PAGE_ROWS {
            break;
        }
    }
    let more = rows.len() > PAGE_ROWS;
    rows.truncate(PAGE_ROWS);
    Ok((columns, rows, more))
}

/// The organization's reporting time zone, as the budgets use it.
pub(crate) async fn reporting_zone(
    state: &AppState,
    scope: burnrate_app::OrgScope,
) -> Result<burnrate_core::ReportingZone, AppError> {
    let notifier = state.notifier().ok_or_else(|| AppError::internal("this instance runs no SQL engine"))?;
    notifier.zone(scope).await.map_err(AppError::internal)
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
    let body = csv_body(session, q);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"burnrate-query.csv\""),
        ],
        body,
    )
        .into_response())
}

/// A query's result as CSV — its column names, then its rows as they come. The session lives as
/// long as the stream, and the stream as long as the download.
pub(crate) fn csv_body(session: SqlSession, q: burnrate_engine::QueryStream) -> Body {
    let first = burnrate_core::csv::record(q.schema.fields().iter().map(|f| Some(f.name().as_str())));
    async_body(
        session,
        first,
        move |batch| {
            let rows = texts(&batch, 0, batch.num_rows(), None)?;
            let mut out = String::new();
            for row in rows {
                out.push_str(&burnrate_core::csv::record(row.iter().map(|v| v.as_deref())));
            }
            Ok(out)
        },
        q.stream,
    )
}

/// A response body of `first`, then each batch of `stream` rendered by `render`; an error
/// mid-way ends the download with a last line saying so.
fn async_body(
    session: SqlSession,
    first: String,
    render: impl Fn(RecordBatch) -> Result<String, EngineError> + Send + 'static,
    stream: datafusion::execution::SendableRecordBatchStream,
) -> Body {
    let head = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(first)) });
    let rest = stream.map(move |batch| {
        let _keep = &session;
        let text = batch.map_err(EngineError::from).and_then(&render).unwrap_or_else(|e| format!("error: {e}\r\n"));
        Ok::<_, std::io::Error>(bytes::Bytes::from(text))
    });
    Body::from_stream(head.chain(rest))
}

/// A query over the organization's tables (`costs`, `usage`, its databases' schemas).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    sql: String,
    /// Which page of 100 rows, from 0.
    #[serde(default)]
    page: usize,
}

/// A page of a query's result; values as text (money stays exact), `null` for NULL.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct QueryResultView {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
    page: usize,
    /// More rows follow on the next page.
    more: bool,
    millis: u128,
}

/// Runs a read-only SQL query (the console's): a page of up to 100 rows. A query the engine
/// refuses answers `422` with the reason.
#[utoipa::path(post, path = "/sql", tag = "sql", request_body = QueryBody,
    responses((status = 200, body = QueryResultView), super::openapi::Refusals, super::openapi::BodyRefusals))]
pub async fn api_query(
    State(state): State<AppState>,
    caller: crate::auth::ApiCaller,
    super::api::ApiJson(body): super::api::ApiJson<QueryBody>,
) -> Result<Response, crate::error::ApiError> {
    caller.require(burnrate_core::ApiScope::Read)?;
    let label = caller.actor().audit_actor().label;
    let session = state.app.sql_session(&caller.actor(), &label)?;
    let started = Instant::now();
    match run_page(&state, &session, &body.sql, body.page).await? {
        Ok((columns, rows, more)) => {
            let view = QueryResultView { columns, rows, page: body.page, more, millis: started.elapsed().as_millis() };
            Ok(axum::Json(view).into_response())
        }
        Err(message) => Err(AppError::Validation(message).into()),
    }
}

//! The SQL console: a query box, its result a page of rows at a time, the whole result as CSV,
//! and the organization's tables to browse. Server-rendered (no script): each page runs the
//! query again and reads past the earlier rows, so pages are stable when the query orders them.

mod api;
mod ui;

use axum::Router;
use axum::routing::{get, post};
use burnrate_app::spend::texts;
use burnrate_engine::{EngineError, SqlSession};
use futures::StreamExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;

/// Rows on one page of a result.
const PAGE_ROWS: usize = 100;

/// The most characters of one value the page shows (the CSV has them all).
const CELL_CHARS: usize = 200;

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

/// Page `page` of the query's rows within the statement timeout, or what was wrong with it.
async fn run_page(session: &SqlSession, sql: &str, page: usize) -> Result<Page, EngineError> {
    let timeout = session.statement_timeout();
    let skip = page.saturating_mul(PAGE_ROWS);
    tokio::time::timeout(timeout, read_page(session, sql, skip)).await.unwrap_or(Err(EngineError::Timeout(timeout)))
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

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new().route("/sql/console", get(ui::console_page).post(ui::run)).route("/sql/console.csv", post(ui::csv))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(api::api_query))
}

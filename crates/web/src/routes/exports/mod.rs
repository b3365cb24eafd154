//! Exports of the organization's costs as FOCUS 1.2 (`GET /api/v1/exports`, and the export form
//! on the overview): the `costs` table under FOCUS column names, read through the SQL engine and
//! streamed — CSV as rows come, Parquet a row group at a time — so an export of any size holds
//! about a row group in memory. Each export is audited and counted against the organization's
//! export quota.

mod api;
mod ui;

use axum::Router;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use burnrate_engine::{QueryStream, SqlSession};
use chrono::NaiveDate;
use futures::StreamExt;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;

/// Rows per Parquet row group: what an export holds in memory at most.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// What to export: `dataset=focus`, `format=parquet|csv`, and the days `from` (inclusive) to
/// `to` (exclusive), UTC; without them, everything.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `focus`: costs as FOCUS 1.2.
    dataset: String,
    /// `parquet` (the default) or `csv`.
    #[serde(default)]
    format: String,
    /// The first day exported (UTC), `YYYY-MM-DD`.
    from: Option<String>,
    /// The day after the last exported (UTC), `YYYY-MM-DD`.
    to: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Parquet,
    Csv,
}

/// A checked export request.
struct Export {
    format: Format,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl ExportQuery {
    fn check(&self) -> Result<Export, AppError> {
        if self.dataset != "focus" {
            return Err(AppError::Validation(format!("dataset: {:?} is not known; focus is", self.dataset)));
        }
        let format = match self.format.as_str() {
            "" | "parquet" => Format::Parquet,
            "csv" => Format::Csv,
            other => return Err(AppError::Validation(format!("format: {other:?} is not parquet or csv"))),
        };
        let (from, to) =
            crate::routes::day_range(self.from.as_deref().unwrap_or(""), self.to.as_deref().unwrap_or(""))?;
        Ok(Export { format, from, to })
    }
}

impl Export {
    fn file_name(&self) -> String {
        let span = match (self.from, self.to) {
            (None, None) => "all".to_owned(),
            (f, t) => format!(
                "{}_{}",
                f.map(|d| d.to_string()).unwrap_or_else(|| "start".into()),
                t.map(|d| d.to_string()).unwrap_or_else(|| "now".into())
            ),
        };
        let ext = if self.format == Format::Csv { "csv" } else { "parquet" };
        format!("burnrate-focus-{span}.{ext}")
    }
}

/// Checks the quota, records the export (S16) and starts it.
async fn export(state: &AppState, caller: &impl Caller, label: &str, q: &ExportQuery) -> Result<Response, AppError> {
    let export = q.check()?;
    let key = format!("export:{}", caller.scope().org_id());
    state
        .limiter
        .check(&key, state.config.exports_per_org)
        .await
        .map_err(|wait| AppError::RateLimited { retry_after_secs: wait.as_secs().max(1) })?;
    let (session, stream) =
        state.app.export_focus(&caller.actor(), label, export.from, export.to, q.format.as_str()).await?;
    let (content_type, body) = match export.format {
        Format::Csv => ("text/csv; charset=utf-8", crate::download::csv_body(session, stream)),
        Format::Parquet => ("application/vnd.apache.parquet", parquet_body(session, stream)?),
    };
    let disposition = format!("attachment; filename=\"{}\"", export.file_name());
    Ok(([(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

/// The query's batches as one Parquet file, sent a row group at a time: the writer's finished
/// pages are taken out of its buffer after each batch, the footer at the end. A failure mid-way
/// ends the body with an error, so the client sees a broken transfer rather than a short file.
fn parquet_body(session: SqlSession, q: QueryStream) -> Result<Body, AppError> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let writer = ArrowWriter::try_new(Vec::new(), q.schema, Some(props)).map_err(AppError::internal)?;
    let broken = |e: String| std::io::Error::other(e);
    let chunks = futures::stream::unfold(Some((session, q.stream, writer)), move |state| async move {
        let (session, mut stream, mut writer) = state?;
        loop {
            match stream.next().await {
                Some(Ok(batch)) => {
                    if let Err(e) = writer.write(&batch) {
                        return Some((Err(broken(e.to_string())), None));
                    }
                    let written = std::mem::take(writer.inner_mut());
                    if !written.is_empty() {
                        return Some((Ok(bytes::Bytes::from(written)), Some((session, stream, writer))));
                    }
                }
                Some(Err(e)) => return Some((Err(broken(e.to_string())), None)),
                None => {
                    let last = writer.finish().map(|_| bytes::Bytes::from(std::mem::take(writer.inner_mut())));
                    return Some((last.map_err(|e| broken(e.to_string())), None));
                }
            }
        }
    });
    Ok(Body::from_stream(chunks))
}

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new().route("/exports/focus", get(ui::download))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(api::api_export))
}

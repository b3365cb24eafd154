//! Query results as downloads: the rows streamed as the engine produces them, so a download of any
//! size holds about a batch in memory.

use axum::body::Body;
use burnrate_app::spend::texts;
use burnrate_engine::{EngineError, SqlSession};
use datafusion::arrow::array::RecordBatch;
use futures::StreamExt;

/// A query's result as CSV — its column names, then its rows as they come. The session lives as
/// long as the stream, and the stream as long as the download — at most the statement timeout
/// from now: a client reading slowly does not hold a query open longer than one that reads fast.
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
    let timeout = session.statement_timeout();
    let deadline = tokio::time::Instant::now() + timeout;
    let head = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(first)) });
    // Past the deadline the query's stream is dropped, which cancels it, and a last line says so.
    let batches = futures::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(batch)) => Some((batch.map_err(EngineError::from), Some(stream))),
            Ok(None) => None,
            Err(_) => Some((Err(EngineError::Timeout(timeout)), None)),
        }
    });
    let rest = batches.map(move |batch| {
        let _keep = &session;
        let text = batch.and_then(&render).unwrap_or_else(|e| format!("error: {e}\r\n"));
        Ok::<_, std::io::Error>(bytes::Bytes::from(text))
    });
    Body::from_stream(head.chain(rest))
}

//! The streaming pipeline from a connector into the lake: pages flow through a small channel to a
//! writer task, so parsing the next page and encoding the last one use both cores.

use burnrate_lake::{LakeRow, TableWriter};
use burnrate_sources::{PullStats, RecordSender, SourceError};

use crate::SyncError;

/// Pages in flight between a connector and the lake writer: enough to keep both busy, few enough
/// that memory stays at a few pages.
pub(crate) const PAGES_IN_FLIGHT: usize = 2;

/// Runs a streamed pull into `writer`. The writer runs as its own task, so parsing the next page
/// and encoding the last one use both cores.
pub(crate) async fn stream_into<T: LakeRow, F>(
    writer: TableWriter<T>,
    prepare: impl Fn(&mut [T]) + Send + 'static,
    pull: impl FnOnce(RecordSender<T>) -> F,
) -> Result<(TableWriter<T>, PullStats), SyncError>
where
    F: std::future::Future<Output = Result<PullStats, SourceError>>,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<T>>(PAGES_IN_FLIGHT);
    let write = tokio::spawn(async move {
        let mut writer = writer;
        while let Some(mut page) = rx.recv().await {
            prepare(&mut page);
            writer.push(page).await?;
        }
        Ok::<_, burnrate_lake::LakeError>(writer)
    });
    let pulled = pull(tx).await;
    let written = write.await.map_err(|e| SyncError::Config(format!("the lake writer failed: {e}")))?;
    // When the writer fails the pull sees its pages refused; the writer's error is the cause.
    let writer = written?;
    Ok((writer, pulled?))
}

//! Operations metrics: the process's Prometheus recorder, which every crate feeds through the
//! `metrics` facade, and the listener that serves it — its own, never the public port (S29).
//!
//! ```text
//!   counter!/histogram!/gauge! (web, sync, notify, pgwire, lake, store)
//!        └──► recorder (one per process) ──► GET /metrics on BURNRATE_METRICS_ADDR
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Histogram buckets of durations, in seconds: from a fast API call to a long backfill.
const SECONDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

/// Histogram buckets of memory, in bytes: 64 KiB to 4 GiB, each four times the last.
const BYTES: &[f64] = &[
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
    4_294_967_296.0,
];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use; every server of the process renders it.
pub fn recorder() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .expect("the duration buckets are not empty")
                .set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES)
                .expect("the memory buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Only fails when another recorder was installed first: its metrics are then the
            // process's, and this handle renders what is recorded through it (nothing).
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics shows none of burnrate's");
            }
            describe();
            metrics::gauge!("burnrate_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            // Served from the start, so that a rate over them reads zero rather than nothing.
            metrics::counter!("burnrate_webhook_dead_letters_total").absolute(0);
            metrics::counter!("burnrate_query_spilled_bytes_total").absolute(0);
            metrics::counter!("burnrate_query_spill_refusals_total").absolute(0);
            metrics::gauge!("burnrate_wire_connections").increment(0.0);
            handle
        })
        .clone()
}

/// What each series is, for the `# HELP` lines.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("burnrate_build_info", "The running version (value 1).");
    describe_histogram!(
        "burnrate_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP requests by route template, method and status, from routing to the response's head."
    );
    describe_counter!("burnrate_logins_total", "Password logins by outcome (ok, failed).");
    describe_counter!("burnrate_rate_limit_refusals_total", "Requests a rate limit refused or postponed, by limit.");
    describe_counter!("burnrate_syncs_total", "Source syncs by provider and outcome (ok, failed).");
    describe_histogram!("burnrate_sync_duration_seconds", Unit::Seconds, "Source syncs by provider and outcome.");
    describe_counter!("burnrate_sync_rows_total", "Rows synced into the lake by provider and table.");
    describe_gauge!("burnrate_jobs_due", "Background jobs due and not yet done, by kind.");
    describe_gauge!(
        "burnrate_jobs_oldest_wait_seconds",
        Unit::Seconds,
        "How long the due job of each kind that has waited longest has waited."
    );
    describe_counter!(
        "burnrate_webhook_deliveries_total",
        "Webhook sends (queued events and test events) by outcome: delivered, refused (a non-2xx answer), unanswered."
    );
    describe_counter!(
        "burnrate_webhook_dead_letters_total",
        "Webhook deliveries that failed every attempt (or met a paused destination) and went to the dead-letter list."
    );
    describe_gauge!("burnrate_wire_connections", "Open connections to the Postgres wire endpoint.");
    describe_gauge!(
        "burnrate_tls_certificate_expiry_timestamp_seconds",
        Unit::Seconds,
        "When the certificate each TLS listener (https, pg) serves expires, in seconds since the epoch."
    );
    describe_counter!("burnrate_queries_total", "SQL queries that read tables, by front end (wire, sql, app).");
    describe_histogram!(
        "burnrate_query_duration_seconds",
        Unit::Seconds,
        "SQL queries by front end, from planning until their last row was read or they were dropped."
    );
    describe_histogram!(
        "burnrate_query_memory_high_water_bytes",
        Unit::Bytes,
        "The most memory a SQL query held at once, by front end."
    );
    describe_counter!("burnrate_query_spilled_bytes_total", Unit::Bytes, "Bytes queries spilled to disk.");
    describe_counter!(
        "burnrate_query_spill_refusals_total",
        "Spills refused because the organization's running queries had spilled their share."
    );
    describe_gauge!("burnrate_lake_files", "Live Parquet files in the lake, by table, over every organization.");
    describe_gauge!("burnrate_lake_bytes", Unit::Bytes, "Bytes of the live Parquet files in the lake, by table.");
    describe_counter!("burnrate_lake_files_written_total", "Parquet files committed to the lake, by table.");
    describe_counter!("burnrate_lake_bytes_written_total", Unit::Bytes, "Bytes committed to the lake, by table.");
}

/// When the certificate a `listener` (`https`, `pg`) serves expires, in seconds since the epoch.
pub fn certificate_expires(listener: &'static str, at: i64) {
    metrics::gauge!("burnrate_tls_certificate_expiry_timestamp_seconds", "listener" => listener).set(at as f64);
}

/// The metrics listener, serving until dropped.
pub struct MetricsServer {
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    app: burnrate_app::App,
    /// Job kinds the instance runs and any seen queued: one with none due reads zero, not its
    /// last count.
    kinds: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

/// Serves `GET /metrics` on `listener` (anything else: 404), with the gauges read at scrape
/// time (the job queue, its `job_kinds` always shown) refreshed first.
pub fn serve_metrics(
    listener: TcpListener,
    app: burnrate_app::App,
    job_kinds: &[&str],
) -> std::io::Result<MetricsServer> {
    let addr = listener.local_addr()?;
    let kinds = job_kinds.iter().map(|k| (*k).to_owned()).collect();
    let scrape = Scrape { handle: recorder(), app, kinds: std::sync::Arc::new(std::sync::Mutex::new(kinds)) };
    let router = Router::new().route("/metrics", get(render)).with_state(scrape);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(MetricsServer { addr, task })
}

async fn render(State(scrape): State<Scrape>) -> Response {
    // A queue that cannot be read is said in the log; the rest is still served.
    match tokio::time::timeout(Duration::from_secs(5), scrape.app.job_queue()).await {
        Ok(Ok(queue)) => {
            let mut kinds = scrape.kinds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            kinds.extend(queue.iter().map(|jobs| jobs.kind.clone()));
            for kind in kinds.iter() {
                let jobs = queue.iter().find(|jobs| &jobs.kind == kind);
                let (due, waited) = jobs.map_or((0, 0), |jobs| (jobs.due, jobs.oldest_wait_ms));
                metrics::gauge!("burnrate_jobs_due", "kind" => kind.clone()).set(due as f64);
                metrics::gauge!("burnrate_jobs_oldest_wait_seconds", "kind" => kind.clone())
                    .set(waited as f64 / 1000.0);
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: the job queue could not be read"),
        Err(_) => tracing::warn!("metrics: the job queue did not answer within 5 s"),
    }
    // Every table is shown, an empty one as zero.
    match tokio::time::timeout(Duration::from_secs(5), scrape.app.lake_totals()).await {
        Ok(Ok(totals)) => {
            for table in ["costs", "usage"] {
                let (files, bytes) = totals.get(table).copied().unwrap_or_default();
                metrics::gauge!("burnrate_lake_files", "table" => table).set(files as f64);
                metrics::gauge!("burnrate_lake_bytes", "table" => table).set(bytes as f64);
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: the lake's files could not be counted"),
        Err(_) => tracing::warn!("metrics: counting the lake's files took more than 5 s"),
    }
    scrape.handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], scrape.handle.render()).into_response()
}

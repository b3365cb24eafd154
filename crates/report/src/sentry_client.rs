//! The Sentry client: events and breadcrumbs are scrubbed in `before_send` and
//! `before_breadcrumb`, then posted as envelopes by a task on the async runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sentry::types::Dsn;
use sentry::{ClientInitGuard, ClientOptions, Envelope, Transport};
use serde_json::Value;

use crate::scrub::scrub_json;

/// Envelopes waiting to be sent; beyond this, new ones are dropped (a flood of errors must not
/// grow memory without bound).
const QUEUE: usize = 100;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ReporterError {
    #[error("BURNRATE_SENTRY_DSN: {0}")]
    Dsn(String),
    #[error("BURNRATE_SENTRY_DSN: cannot build the HTTP client: {0}")]
    Client(String),
}

/// The running Sentry client; events still queued are sent (for up to two seconds) when it is
/// dropped, so keep it alive for the life of the process.
pub struct Reporter {
    _guard: ClientInitGuard,
}

impl Reporter {
    /// Starts reporting to `dsn`. Envelopes are sent by a task on `runtime`.
    pub fn start(dsn: &str, release: &'static str, runtime: tokio::runtime::Handle) -> Result<Self, ReporterError> {
        let dsn: Dsn = dsn.parse().map_err(|e| ReporterError::Dsn(format!("{e}")))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(SEND_TIMEOUT)
            .build()
            .map_err(|e| ReporterError::Client(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        runtime.spawn(send_envelopes(rx, client, dsn.clone(), Arc::clone(&pending)));
        let transport: Arc<dyn Transport> = Arc::new(EnvelopeQueue { tx, pending });
        let options = ClientOptions {
            dsn: Some(dsn),
            release: Some(release.into()),
            send_default_pii: false,
            attach_stacktrace: false,
            before_send: Some(Arc::new(scrubbed)),
            before_breadcrumb: Some(Arc::new(scrubbed)),
            transport: Some(Arc::new(move |_: &ClientOptions| Arc::clone(&transport))),
            ..Default::default()
        };
        Ok(Self { _guard: sentry::init(options) })
    }
}

/// Events and breadcrumbs go through JSON, where every string is reachable: scrubbed there and
/// read back. Anything that will not read back is dropped rather than sent unscrubbed.
fn scrubbed<T: serde::Serialize + serde::de::DeserializeOwned>(item: T) -> Option<T> {
    let mut value: Value = serde_json::to_value(&item).ok()?;
    scrub_json(&mut value);
    serde_json::from_value(value).ok()
}

/// The tracing layer that turns errors and warnings into Sentry events and informational lines
/// into breadcrumbs (what happened just before).
pub fn sentry_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use sentry::integrations::tracing::EventFilter;
    sentry::integrations::tracing::layer().event_filter(|md| match *md.level() {
        tracing::Level::ERROR | tracing::Level::WARN => EventFilter::Event,
        tracing::Level::INFO => EventFilter::Breadcrumb,
        _ => EventFilter::Ignore,
    })
}

struct EnvelopeQueue {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    pending: Arc<AtomicUsize>,
}

impl Transport for EnvelopeQueue {
    fn send_envelope(&self, envelope: Envelope) {
        let mut body = Vec::new();
        if envelope.to_writer(&mut body).is_err() {
            return;
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.tx.try_send(body).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.pending.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

async fn send_envelopes(
    mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    client: reqwest::Client,
    dsn: Dsn,
    pending: Arc<AtomicUsize>,
) {
    let url = dsn.envelope_api_url();
    let auth = dsn.to_auth(Some(concat!("burnrate/", env!("CARGO_PKG_VERSION")))).to_string();
    while let Some(body) = rx.recv().await {
        let sent = client
            .post(url.as_str())
            .header("X-Sentry-Auth", &auth)
            .header(reqwest::header::CONTENT_TYPE, "application/x-sentry-envelope")
            .body(body)
            .send()
            .await;
        // Never through tracing: a failure to report must not become another report.
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => eprintln!("error report not accepted by Sentry: HTTP {}", r.status()),
            Err(e) => eprintln!("error report not sent to Sentry: {}", crate::scrub(&e.to_string())),
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

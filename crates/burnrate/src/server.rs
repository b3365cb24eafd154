//! The one composition root: what a running burnrate server is made of (listeners, the SQL
//! engine, the wire endpoint, the scheduler, mail and alert workers, the limiter, the egress
//! guard), built from settings. `serve`, `demo` and the test harness all start it through here:
//!
//! ```text
//!   bind(settings) ──▶ Server::build(settings, tuning) ──▶ .start(bound) ──▶ Running
//!   (sockets first)    (store, keys, lake, engine, app)     (listeners, workers)
//! ```
//!
//! [`launch`] is the three in a row; the demo seeds its organization between the last two.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use burnrate_store::{Store, Vault};
use burnrate_web::{AppState, Listeners, Quota, TlsFiles, WebConfig};
use secrecy::ExposeSecret;

use crate::commands::{Failure, config_error, master_keys, open_store, password_hasher};
use crate::settings::Settings;

/// What a deployment does not configure but a test harness sets: how names resolve, how fast
/// provider calls and webhook deliveries are retried, and tighter rate limits.
/// `Tuning::default()` is production.
#[derive(Clone, Default)]
pub struct Tuning {
    /// How the outbound client resolves host names (the system's resolver unless set).
    pub lookup: Option<Arc<dyn burnrate_net::Lookup>>,
    /// The first wait before an outbound call is tried again.
    pub retry_backoff: Option<Duration>,
    pub delivery: Option<burnrate_notify::DeliveryPolicy>,
    pub login_per_ip: Option<Quota>,
    pub login_per_account: Option<Quota>,
    pub api_per_ip: Option<Quota>,
    pub api_per_key: Option<Quota>,
    pub exports_per_org: Option<Quota>,
    /// What "now" is for the application's answers (the system's time unless set).
    pub clock: burnrate_app::Clock,
}

pub(crate) fn web_config(settings: &Settings) -> WebConfig {
    let mut cfg = WebConfig::new(settings.public_url.clone());
    cfg.signup = settings.signup;
    cfg.hsts = settings.https_addr.is_some() || settings.behind_tls_proxy;
    cfg.trust_forwarded_for = settings.behind_tls_proxy;
    cfg.login_per_ip = Quota::per_minute(settings.login_rate_per_ip, settings.login_rate_per_ip);
    cfg.api_per_key = WebConfig::api_per_key(settings.api_rate_per_key);
    cfg.api_per_ip = WebConfig::api_per_ip(settings.api_rate_per_key);
    cfg.otlp_per_key = WebConfig::api_per_key(settings.otlp_rate_per_key);
    cfg.otlp_per_ip = WebConfig::api_per_ip(settings.otlp_rate_per_key);
    let address = reachable(settings, settings.pg_addr);
    cfg.pg_endpoint = Some(burnrate_web::PgEndpoint { address, tls: settings.pg_tls_cert.is_some() });
    let scheme = if settings.https_addr.is_some() { "https" } else { "http" };
    cfg.otlp_url = Some(format!("{scheme}://{}", reachable(settings, settings.otlp_addr)));
    cfg
}

/// `host:port` of a listener as clients reach it: by the public host name when it is bound to
/// every interface.
fn reachable(settings: &Settings, addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("{}:{}", settings.public_url.host_str().unwrap_or("localhost"), addr.port())
    } else {
        addr.to_string()
    }
}

impl Tuning {
    fn apply(&self, cfg: &mut WebConfig) {
        let quotas = [
            (&mut cfg.login_per_ip, self.login_per_ip),
            (&mut cfg.login_per_account, self.login_per_account),
            (&mut cfg.api_per_ip, self.api_per_ip),
            (&mut cfg.api_per_key, self.api_per_key),
            (&mut cfg.exports_per_org, self.exports_per_org),
        ];
        for (quota, tuned) in quotas {
            if let Some(q) = tuned {
                *quota = q;
            }
        }
    }
}

/// Webhook deliveries in flight at once per instance.
const DELIVERERS: usize = 8;

/// The background jobs this server's workers run: the metrics show each one's queue.
const JOB_KINDS: [&str; 5] = [
    burnrate_sync::SYNC_JOB,
    burnrate_store::EVALUATE_JOB,
    burnrate_store::SYNC_FAILED_JOB,
    burnrate_notify::DELIVER_JOB,
    burnrate_notify::digest::DIGEST_JOB,
];

/// How often the scheduler looks for sources due a sync.
const SCHEDULER_TICK: Duration = Duration::from_secs(60);

/// The listening sockets, bound before anything else takes a port.
pub struct Bound {
    http: tokio::net::TcpListener,
    https: Option<(tokio::net::TcpListener, TlsFiles)>,
    pg: tokio::net::TcpListener,
    metrics: tokio::net::TcpListener,
    otlp: tokio::net::TcpListener,
}

impl Bound {
    /// Where the HTTP listener is bound (the port the system chose for port 0).
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    pub fn https_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        self.https.as_ref().map(|(l, _)| l.local_addr()).transpose()
    }

    pub fn pg_addr(&self) -> std::io::Result<SocketAddr> {
        self.pg.local_addr()
    }

    pub fn metrics_addr(&self) -> std::io::Result<SocketAddr> {
        self.metrics.local_addr()
    }

    pub fn otlp_addr(&self) -> std::io::Result<SocketAddr> {
        self.otlp.local_addr()
    }
}

/// Binds the configured addresses: first, so that nothing started later (the demo's simulated
/// providers take ephemeral ports) can hold one of them.
pub async fn bind(settings: &Settings) -> Result<Bound, Failure> {
    let http = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .map_err(|e| config_error("BURNRATE_HTTP_ADDR", format!("cannot listen on {}: {e}", settings.http_addr)))?;
    let https = match (settings.https_addr, &settings.tls_cert, &settings.tls_key) {
        (Some(addr), Some(cert), Some(key)) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| config_error("BURNRATE_HTTPS_ADDR", format!("cannot listen on {addr}: {e}")))?;
            Some((l, TlsFiles { cert: cert.clone(), key: key.clone() }))
        }
        _ => None,
    };
    let pg = tokio::net::TcpListener::bind(settings.pg_addr)
        .await
        .map_err(|e| config_error("BURNRATE_PG_ADDR", format!("cannot listen on {}: {e}", settings.pg_addr)))?;
    let metrics = tokio::net::TcpListener::bind(settings.metrics_addr).await.map_err(|e| {
        config_error("BURNRATE_METRICS_ADDR", format!("cannot listen on {}: {e}", settings.metrics_addr))
    })?;
    let otlp = tokio::net::TcpListener::bind(settings.otlp_addr)
        .await
        .map_err(|e| config_error("BURNRATE_OTLP_ADDR", format!("cannot listen on {}: {e}", settings.otlp_addr)))?;
    Ok(Bound { http, https, pg, metrics, otlp })
}

/// Builds the server from `settings` and starts it on `bound`: what `burnrate serve` runs.
pub async fn launch(settings: &Settings, tuning: Tuning, bound: Bound) -> Result<Running, Failure> {
    Server::build(settings, tuning).await?.start(bound).await
}

/// Everything a server runs, built and checked but not yet listening.
pub struct Server {
    state: AppState,
    engine: burnrate_engine::Engine,
    notifier: burnrate_notify::Notifier,
    mailer: burnrate_notify::Mailer,
    pg_tls: Option<burnrate_pgwire::PgTls>,
    wire_connections: burnrate_pgwire::ConnectionLimits,
    store: Store,
}

impl Server {
    /// Opens the store (migrating it where that is this process's job), the key ring, the lake
    /// and the engine; every setting that is wrong fails here, naming itself.
    pub async fn build(settings: &Settings, tuning: Tuning) -> Result<Self, Failure> {
        // Before anything records: what is recorded before the recorder exists is lost.
        burnrate_web::recorder();
        let ring = master_keys(settings)?;
        settings.check_pg_tls()?;
        let pg_tls = match (&settings.pg_tls_cert, &settings.pg_tls_key) {
            (Some(cert), Some(key)) => {
                let tls = burnrate_net::ServerTls::load(cert, key, "BURNRATE_PG_TLS_CERT", "BURNRATE_PG_TLS_KEY")
                    .map_err(|e| config_error("BURNRATE_PG_TLS_CERT", e))?;
                burnrate_web::certificate_expires("pg", tls.expires_at);
                Some(tls.into())
            }
            _ => None,
        };
        let lake = burnrate_lake::Lake::from_url(&settings.lake_url())
            .map_err(|e| config_error("BURNRATE_LAKE_URL", e.to_string().trim_start_matches("BURNRATE_LAKE_URL: ")))?;
        // Object storage retries for minutes; a lake that does not answer at start is a setting to fix.
        match tokio::time::timeout(Duration::from_secs(30), lake.probe()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(config_error("BURNRATE_LAKE_URL", format!("{}: {e}", settings.lake_url()))),
            Err(_) => {
                return Err(config_error(
                    "BURNRATE_LAKE_URL",
                    format!("{}: no answer within 30 s", settings.lake_url()),
                ));
            }
        }
        let guard = settings.egress_guard()?;
        let mut options = burnrate_net::ClientOptions::default();
        if let Some(backoff) = tuning.retry_backoff {
            options.base_backoff = backoff;
        }
        let client = match &tuning.lookup {
            Some(lookup) => burnrate_net::HttpClient::with_lookup(guard, options, Arc::clone(lookup)),
            None => burnrate_net::HttpClient::new(guard, options),
        };
        // One limiter for every route and dispatch; shared by all instances when Redis is configured.
        let limiter = match &settings.redis_url {
            Some(url) => burnrate_web::RateLimiter::redis(url.expose_secret())
                .await
                .map_err(|e| config_error("BURNRATE_REDIS_URL", e.trim_start_matches("BURNRATE_REDIS_URL: ")))?,
            None => burnrate_web::RateLimiter::new(),
        };
        let store = open_store(settings).await?;
        let vault = Arc::new(Vault::new(ring));
        let mailer = burnrate_notify::Mailer::new(
            store.clone(),
            Arc::clone(&vault),
            limiter.clone(),
            settings.smtp_url.as_ref().map(|s| s.expose_secret()),
            &settings.mail_from,
        )
        .map_err(|e| config_error("BURNRATE_SMTP_URL", e))?;
        // The shipped price catalogue is checked once, here: usage is priced with it.
        burnrate_prices::Catalogue::shipped()
            .map_err(|e| Failure::Other(anyhow::anyhow!("{e}; reinstall burnrate")))?;
        let syncer = burnrate_sync::Syncer {
            lease: settings.sync_lease,
            ..burnrate_sync::Syncer::new(store.clone(), Arc::clone(&vault), lake, client)
        };
        let engine = build_engine(settings, &syncer)?;
        let notifier = burnrate_notify::Notifier::new(
            store.clone(),
            Arc::clone(&vault),
            engine.clone(),
            syncer.http.clone(),
            mailer.clone(),
            burnrate_notify::NotifierConfig {
                public_url: settings.public_url.clone(),
                policy: tuning.delivery.unwrap_or_default(),
                limiter: limiter.clone(),
            },
        );
        let app =
            burnrate_app::App::new(syncer, mailer.clone(), password_hasher(settings), settings.public_url.clone())
                .with_notifier(notifier.clone())
                .with_engine(engine.clone())
                .with_clock(tuning.clock);
        let mut config = web_config(settings);
        tuning.apply(&mut config);
        let state = AppState::new(config, app, limiter);
        Ok(Self { state, engine, notifier, mailer, pg_tls, wire_connections: settings.wire_connections, store })
    }

    /// The application, for what runs before the listeners open (the demo's seeding).
    pub fn app(&self) -> &burnrate_app::App {
        self.state.app()
    }

    pub fn syncer(&self) -> &burnrate_sync::Syncer {
        self.state.app().syncer()
    }

    /// Serves on the bound listeners and starts the background workers: the mail worker, the
    /// sync scheduler, budget evaluation and webhook delivery.
    pub async fn start(self, bound: Bound) -> Result<Running, Failure> {
        let Bound { http, https, pg, metrics, otlp } = bound;
        let Server { state, engine, notifier, mailer, pg_tls, wire_connections, store } = self;
        let pg = burnrate_pgwire::PgServer::start(pg, engine.clone(), state.app().clone(), pg_tls, wire_connections)
            .map_err(|e| config_error("BURNRATE_PG_ADDR", e.to_string()))?;
        let app = state.app().clone();
        let syncer = app.syncer().clone();
        let workers = Workers(vec![
            mailer.spawn_worker(),
            burnrate_sync::spawn_scheduler(syncer.clone(), SCHEDULER_TICK),
            notifier.spawn(DELIVERERS),
        ]);
        let metrics = burnrate_web::serve_metrics(metrics, app.clone(), &JOB_KINDS)
            .map_err(|e| config_error("BURNRATE_METRICS_ADDR", e.to_string()))?;
        let web = burnrate_web::serve(state, Listeners { http, https, otlp: Some(otlp) })
            .await
            .map_err(|e| config_error("TLS", e))?;
        Ok(Running {
            http: web.http_addr,
            https: web.https_addr,
            otlp: web.otlp_addr.expect("the receiver listens"),
            pg,
            app,
            syncer,
            notifier,
            engine,
            store,
            metrics,
            _web: web,
            workers,
        })
    }
}

/// A serving instance; dropping it stops the listeners and the workers.
pub struct Running {
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    /// The OTLP traces receiver.
    pub otlp: SocketAddr,
    pub pg: burnrate_pgwire::PgServer,
    pub app: burnrate_app::App,
    pub syncer: burnrate_sync::Syncer,
    pub notifier: burnrate_notify::Notifier,
    pub engine: burnrate_engine::Engine,
    pub store: Store,
    /// The `/metrics` listener.
    pub metrics: burnrate_web::MetricsServer,
    _web: burnrate_web::RunningServer,
    workers: Workers,
}

impl Running {
    /// Stops the background workers (mail, scheduler, evaluation, delivery) while the listeners
    /// go on: an instance whose workers died, for tests of what another instance takes over.
    pub fn stop_workers(&mut self) {
        self.workers.stop();
    }
}

/// Background tasks that end with their server.
struct Workers(Vec<tokio::task::JoinHandle<()>>);

impl Workers {
    fn stop(&mut self) {
        for task in self.0.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The SQL engine, under the wire endpoint and the console.
fn build_engine(settings: &Settings, syncer: &burnrate_sync::Syncer) -> Result<burnrate_engine::Engine, Failure> {
    let config = burnrate_engine::EngineConfig {
        memory_limit: usize::try_from(settings.query_memory_limit)
            .map_err(|_| config_error("BURNRATE_QUERY_MEMORY_LIMIT", "too large for this machine"))?,
        spill_dir: settings.spill_dir.clone(),
        max_spill_bytes: settings.spill_max,
        max_spill_bytes_per_org: settings.spill_max_per_org,
        statement_timeout: settings.statement_timeout,
        concurrency: burnrate_engine::Concurrency {
            instance: settings.query_concurrency,
            per_org: settings.query_concurrency_per_org,
            wait: settings.query_wait,
        },
    };
    let engine = burnrate_engine::Engine::new(config, syncer.store.clone(), syncer.lake.clone())
        .map_err(|e| config_error("BURNRATE_SPILL_DIR", e.to_string()))?
        .with_database_sources(Arc::clone(&syncer.vault), syncer.http.guard().clone());
    Ok(engine)
}

pub(crate) async fn wait_for_shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}

//! The one composition root: what a running burnrate server is made of (listeners, the SQL
//! engine, the wire endpoint, the scheduler, mail and alert workers, the limiter, the egress
//! guard), built from settings. `serve` and `demo` both start it through here.

use std::sync::Arc;

use burnrate_store::{Store, Vault};
use burnrate_web::{AppState, Listeners, Quota, TlsFiles, WebConfig};
use secrecy::ExposeSecret;

use crate::commands::{Failure, config_error, password_hasher};
use crate::settings::Settings;

pub(crate) fn web_config(settings: &Settings) -> WebConfig {
    let mut cfg = WebConfig::new(settings.public_url.clone());
    cfg.signup = settings.signup;
    cfg.hsts = settings.https_addr.is_some() || settings.behind_tls_proxy;
    cfg.trust_forwarded_for = settings.behind_tls_proxy;
    cfg.smtp_url = settings.smtp_url.as_ref().map(|s| s.expose_secret().to_owned());
    cfg.mail_from = settings.mail_from.clone();
    cfg.login_per_ip = Quota::per_minute(settings.login_rate_per_ip, settings.login_rate_per_ip);
    cfg.sync_lease = settings.sync_lease;
    cfg.api_per_key = WebConfig::api_per_key(settings.api_rate_per_key);
    cfg.api_per_ip = WebConfig::api_per_ip(settings.api_rate_per_key);
    // Bound to every interface: clients reach it by the public host name.
    let address = if settings.pg_addr.ip().is_unspecified() {
        format!("{}:{}", settings.public_url.host_str().unwrap_or("localhost"), settings.pg_addr.port())
    } else {
        settings.pg_addr.to_string()
    };
    cfg.pg_endpoint = Some(burnrate_web::PgEndpoint { address, tls: settings.pg_tls_cert.is_some() });
    cfg
}

pub(crate) struct Running {
    _server: burnrate_web::RunningServer,
    pub(crate) pg: burnrate_pgwire::PgServer,
    _mail: tokio::task::JoinHandle<()>,
    _scheduler: tokio::task::JoinHandle<()>,
    _alerts: Option<tokio::task::JoinHandle<()>>,
    pub(crate) http: std::net::SocketAddr,
}

/// Webhook deliveries in flight at once per instance.
const DELIVERERS: usize = 8;

/// Everything the server runs, built but not yet listening.
pub(crate) async fn build_state(settings: &Settings, store: Store, vault: Arc<Vault>) -> Result<AppState, Failure> {
    let hasher = password_hasher(settings);
    let lake = burnrate_lake::Lake::from_url(&settings.lake_url())
        .map_err(|e| config_error("BURNRATE_LAKE_URL", e.to_string().trim_start_matches("BURNRATE_LAKE_URL: ")))?;
    // Object storage retries for minutes; a lake that does not answer at start is a setting to fix.
    match tokio::time::timeout(std::time::Duration::from_secs(30), lake.probe()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(config_error("BURNRATE_LAKE_URL", format!("{}: {e}", settings.lake_url()))),
        Err(_) => {
            return Err(config_error("BURNRATE_LAKE_URL", format!("{}: no answer within 30 s", settings.lake_url())));
        }
    }
    let guard = burnrate_net::EgressGuard::new(&settings.egress_allow).map_err(|e| {
        config_error("BURNRATE_EGRESS_ALLOW", e.to_string().trim_start_matches("BURNRATE_EGRESS_ALLOW: "))
    })?;
    let client = burnrate_net::HttpClient::new(guard, burnrate_net::ClientOptions::default());
    // One limiter for every route and dispatch; shared by all instances when Redis is configured.
    let limiter = match &settings.redis_url {
        Some(url) => burnrate_web::RateLimiter::redis(url.expose_secret())
            .await
            .map_err(|e| config_error("BURNRATE_REDIS_URL", e.trim_start_matches("BURNRATE_REDIS_URL: ")))?,
        None => burnrate_web::RateLimiter::new(),
    };
    AppState::new(web_config(settings), store, vault, hasher, lake, client, limiter)
        .map_err(|e| config_error("BURNRATE_SMTP_URL", e))
}

/// The listening sockets, bound before anything else takes a port.
pub(crate) struct Bound {
    http: tokio::net::TcpListener,
    https: Option<(tokio::net::TcpListener, TlsFiles)>,
    pg: tokio::net::TcpListener,
}

/// Binds the configured addresses: first, so that nothing started later (the demo's simulated
/// providers take ephemeral ports) can hold one of them.
pub(crate) async fn bind(settings: &Settings) -> Result<Bound, Failure> {
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
    Ok(Bound { http, https, pg })
}

/// Serves on the bound listeners and starts the background workers.
pub(crate) async fn start(settings: &Settings, state: AppState, bound: Bound) -> Result<Running, Failure> {
    let Bound { http, https, pg } = bound;
    let engine = build_engine(settings, state.syncer())?;
    let pg = start_pg(settings, pg, engine.clone(), state.app().clone())?;
    let state = state.with_engine(engine);
    let mail = state.mailer().spawn_worker();
    let syncer = state.syncer().clone();
    let scheduler = burnrate_sync::spawn_scheduler(syncer.clone(), std::time::Duration::from_secs(60));
    let alerts = state.notifier().map(|n| n.spawn(DELIVERERS));
    let server = burnrate_web::serve(state, Listeners { http, https }).await.map_err(|e| config_error("TLS", e))?;
    let http = server.http_addr;
    Ok(Running { _server: server, pg, _mail: mail, _scheduler: scheduler, _alerts: alerts, http })
}

/// The SQL engine, under the wire endpoint and the console.
pub(crate) fn build_engine(
    settings: &Settings,
    syncer: &burnrate_sync::Syncer,
) -> Result<burnrate_engine::Engine, Failure> {
    let config = burnrate_engine::EngineConfig {
        memory_limit: usize::try_from(settings.query_memory_limit)
            .map_err(|_| config_error("BURNRATE_QUERY_MEMORY_LIMIT", "too large for this machine"))?,
        spill_dir: settings.spill_dir.clone(),
        max_spill_bytes: settings.spill_max,
        statement_timeout: settings.statement_timeout,
    };
    let engine = burnrate_engine::Engine::new(config, syncer.store.clone(), syncer.lake.clone())
        .map_err(|e| config_error("BURNRATE_SPILL_DIR", e.to_string()))?
        .with_database_sources(Arc::clone(&syncer.vault), syncer.http.guard().clone());
    Ok(engine)
}

/// The Postgres wire endpoint over `engine`.
pub(crate) fn start_pg(
    settings: &Settings,
    listener: tokio::net::TcpListener,
    engine: burnrate_engine::Engine,
    app: burnrate_app::App,
) -> Result<burnrate_pgwire::PgServer, Failure> {
    settings.check_pg_tls()?;
    let tls = match (&settings.pg_tls_cert, &settings.pg_tls_key) {
        (Some(cert), Some(key)) => Some(
            burnrate_net::ServerTls::load(cert, key, "BURNRATE_PG_TLS_CERT", "BURNRATE_PG_TLS_KEY")
                .map_err(|e| config_error("BURNRATE_PG_TLS_CERT", e))?
                .into(),
        ),
        _ => None,
    };
    burnrate_pgwire::PgServer::start(listener, engine, app, tls)
        .map_err(|e| config_error("BURNRATE_PG_ADDR", e.to_string()))
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

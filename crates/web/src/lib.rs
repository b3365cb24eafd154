//! burnrate's HTTP front end.
//!
//! Owns everything HTTP: the server-rendered UI (askama templates, no inline script), the JSON API
//! under `/api/v1`, sessions and CSRF, security headers, CORS, rate limits and the HTTP/HTTPS
//! listeners. It never talks SQL: every read and write goes through `burnrate-store`,
//! tenant data through an `OrgScope` obtained from a membership check or an API key.

mod auth;
mod chart;
mod config;
mod error;
mod metrics;
mod pages;
mod routes;
mod security;
mod server;

use std::sync::Arc;

use burnrate_crypto::PasswordHasher;
use burnrate_store::{Store, Vault};

pub use burnrate_notify::{Mailer, Notifier};
pub use burnrate_store::{Quota, RateLimiter};
pub use config::{PgEndpoint, SignupMode, WebConfig};
pub use error::AppError;
pub use server::{Listeners, RunningServer, TlsFiles, serve};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The application layer: the rules. Handlers call it rather than deciding themselves.
    pub(crate) app: burnrate_app::App,
    pub(crate) store: Store,
    pub(crate) vault: Arc<Vault>,
    pub(crate) config: Arc<WebConfig>,
    pub(crate) limiter: RateLimiter,
    pub(crate) mailer: Mailer,
    pub(crate) metrics: Arc<metrics::Metrics>,
    pub(crate) syncer: burnrate_sync::Syncer,
    /// The SQL engine under the console; `None` in an instance that serves no SQL.
    pub(crate) engine: Option<burnrate_engine::Engine>,
    /// Budgets and alerts, which read spend through the engine (set with it).
    pub(crate) notifier: Option<Notifier>,
}

impl AppState {
    pub fn new(
        config: WebConfig,
        store: Store,
        vault: Arc<Vault>,
        hasher: PasswordHasher,
        lake: burnrate_lake::Lake,
        http: burnrate_net::HttpClient,
        limiter: RateLimiter,
    ) -> Result<Self, String> {
        let mailer = Mailer::new(
            store.clone(),
            Arc::clone(&vault),
            limiter.clone(),
            config.smtp_url.as_deref(),
            &config.mail_from,
        )?;
        let syncer = burnrate_sync::Syncer {
            lease: config.sync_lease,
            ..burnrate_sync::Syncer::new(store.clone(), Arc::clone(&vault), lake, http)
        };
        let app = burnrate_app::App::new(syncer.clone(), mailer.clone(), hasher.clone(), config.public_url.clone());
        Ok(Self {
            app,
            store,
            vault,
            config: Arc::new(config),
            limiter,
            mailer,
            metrics: Arc::new(metrics::Metrics::default()),
            syncer,
            engine: None,
            notifier: None,
        })
    }

    /// Serves the SQL console over `engine`.
    pub fn with_engine(mut self, engine: burnrate_engine::Engine) -> Self {
        self.notifier = Some(Notifier::new(
            self.store.clone(),
            Arc::clone(&self.vault),
            engine.clone(),
            self.syncer.http.clone(),
            self.mailer.clone(),
            burnrate_notify::NotifierConfig {
                public_url: self.config.public_url.clone(),
                policy: self.config.delivery,
                limiter: self.limiter.clone(),
            },
        ));
        self.engine = Some(engine);
        if let Some(notifier) = &self.notifier {
            self.app = self.app.clone().with_notifier(notifier.clone());
        }
        self
    }

    /// Budgets and alerts; `None` in an instance without the SQL engine.
    pub fn notifier(&self) -> Option<&Notifier> {
        self.notifier.as_ref()
    }

    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    pub fn app(&self) -> &burnrate_app::App {
        &self.app
    }

    pub fn syncer(&self) -> &burnrate_sync::Syncer {
        &self.syncer
    }
}

/// Selects aws-lc-rs as the process's TLS crypto provider (the one the listeners use), so that
/// libraries calling rustls's defaults agree with it. Call once at start; later calls do nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The whole application as an axum router.
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}

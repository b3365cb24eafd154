//! burnrate's HTTP front end.
//!
//! Owns everything HTTP: the server-rendered UI (askama templates, no inline script), the JSON API
//! under `/api/v1`, sessions and CSRF, security headers, CORS, rate limits and the HTTP/HTTPS
//! listeners. Every read and write goes through the application layer (`burnrate-app`), which
//! decides who may do what and audits it; tenant data through an `OrgScope` obtained from a
//! session or an API key.

mod api;
mod auth;
mod chart;
mod config;
mod download;
mod error;
mod metrics;
mod pages;
mod routes;
mod security;
mod server;

use std::sync::Arc;

pub use burnrate_app::{Quota, RateLimiter};
pub use config::{PgEndpoint, SignupMode, WebConfig};
pub use error::AppError;
pub use metrics::{MetricsServer, certificate_expires, recorder, serve_metrics};
pub use server::{Listeners, RunningServer, TlsFiles, serve};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The application layer: the rules. Handlers call it rather than deciding themselves.
    pub(crate) app: burnrate_app::App,
    pub(crate) config: Arc<WebConfig>,
    pub(crate) limiter: RateLimiter,
}

impl AppState {
    /// The web front end of `app`, rate-limited by `limiter`.
    pub fn new(config: WebConfig, app: burnrate_app::App, limiter: RateLimiter) -> Self {
        Self { app, config: Arc::new(config), limiter }
    }

    pub fn app(&self) -> &burnrate_app::App {
        &self.app
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

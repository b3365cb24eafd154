//! What the web layer needs to know of the instance's configuration. The binary parses settings
//! and their errors; this is the validated result.

use std::time::Duration;

use burnrate_app::Quota;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupMode {
    /// Anyone may sign up and create an organization.
    Open,
    /// Only invited addresses may create accounts.
    Invite,
    /// Accounts are created by the operator (`burnrate user create`) only.
    Closed,
}

#[derive(Clone, Debug)]
pub struct WebConfig {
    /// The origin users reach (`BURNRATE_PUBLIC_URL`): links in mail, CORS, CSRF origin check.
    pub public_url: url::Url,
    pub signup: SignupMode,
    /// Send `Strict-Transport-Security`: the app is reached over HTTPS (ours or a proxy's).
    pub hsts: bool,
    /// Trust the last `X-Forwarded-For` hop for the client address (behind a TLS proxy).
    pub trust_forwarded_for: bool,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub login_per_ip: Quota,
    pub login_per_account: Quota,
    pub api_per_key: Quota,
    pub api_per_ip: Quota,
    /// Cost exports an organization may start (each reads all of the period asked for).
    pub exports_per_org: Quota,
    /// Where SQL clients reach the Postgres wire endpoint, for connection strings.
    pub pg_endpoint: Option<PgEndpoint>,
    /// The traces receiver's origin as exporters reach it, for the exporter settings shown.
    pub otlp_url: Option<String>,
    /// OTLP exports an ingest key may send, and one client address (before its key is looked up).
    pub otlp_per_key: Quota,
    pub otlp_per_ip: Quota,
}

/// The Postgres wire endpoint as clients reach it.
#[derive(Clone, Debug)]
pub struct PgEndpoint {
    /// `host:port`.
    pub address: String,
    /// The endpoint has a certificate: connection strings ask for `sslmode=require`.
    pub tls: bool,
}

impl WebConfig {
    /// Defaults for everything but the origin.
    pub fn new(public_url: url::Url) -> Self {
        Self {
            public_url,
            signup: SignupMode::Open,
            hsts: false,
            trust_forwarded_for: false,
            session_idle: Duration::from_secs(2 * 3600),
            session_absolute: Duration::from_secs(12 * 3600),
            pg_endpoint: None,
            otlp_url: None,
            // An SDK's batch processor exports every few seconds; a collector more often.
            otlp_per_key: Self::api_per_key(1200),
            otlp_per_ip: Self::api_per_ip(1200),
            login_per_ip: Quota::per_minute(30, 30),
            login_per_account: Quota::per_minute(10, 10),
            api_per_key: Self::api_per_key(600),
            api_per_ip: Self::api_per_ip(600),
            exports_per_org: Quota::per_minute(1, 10),
        }
    }

    /// `per_key` API requests a minute per key, in bursts of a sixth of that.
    pub fn api_per_key(per_key: u32) -> Quota {
        Quota::per_minute(per_key, (per_key / 6).max(1))
    }

    /// Per client address, twice a key's allowance (one address may run several keys' clients).
    pub fn api_per_ip(per_key: u32) -> Quota {
        Quota::per_minute(per_key.saturating_mul(2), (per_key / 3).max(1))
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    pub fn origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    pub fn link(&self, path: &str) -> String {
        format!("{}{}", self.origin(), path)
    }
}

//! Settings: a TOML file (`--config`) overridden by `BURNRATE_*` environment variables.
//!
//! Secrets (master keys, database, Redis, SMTP and Sentry URLs) come only from the environment or
//! from a file named by `BURNRATE_<NAME>_FILE` (as container platforms mount secrets): a secret in
//! the TOML file is an error, so it cannot end up in a repository by accident. Every error names
//! the setting; the binary exits with status 2 on them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use burnrate_web::SignupMode;
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

fn err(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { setting: format!("BURNRATE_{setting}"), message: message.into() }
}

const SECRETS: &[&str] = &["MASTER_KEYS", "DATABASE_URL", "DATABASE_ADMIN_URL", "REDIS_URL", "SMTP_URL", "SENTRY_DSN"];
const PLAIN: &[&str] = &[
    "DATA_DIR",
    "LAKE_URL",
    "PUBLIC_URL",
    "HTTPS_ADDR",
    "TLS_CERT",
    "TLS_KEY",
    "HTTP_ADDR",
    "BEHIND_TLS_PROXY",
    "PG_ADDR",
    "METRICS_ADDR",
    "OTLP_ADDR",
    "PG_TLS_CERT",
    "PG_TLS_KEY",
    "MAIL_FROM",
    "QUERY_MEMORY_LIMIT",
    "SPILL_DIR",
    "SIGNUP",
    "STATEMENT_TIMEOUT",
    "SPILL_MAX",
    "SPILL_MAX_PER_ORG",
    "EGRESS_ALLOW",
    "EGRESS_SHARED",
    "LOGIN_RATE_PER_IP",
    "BCRYPT_COST",
    "SYNC_LEASE",
    "API_RATE_PER_KEY",
    "OTLP_RATE_PER_KEY",
    "QUERY_CONCURRENCY",
    "QUERY_CONCURRENCY_PER_ORG",
    "QUERY_WAIT",
    "WIRE_MAX_CONNECTIONS",
    "WIRE_MAX_CONNECTIONS_PER_ORG",
];

/// Where raw values come from: the environment first, then the file.
pub struct Sources {
    env: BTreeMap<String, String>,
    file: BTreeMap<String, String>,
}

impl Sources {
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let env = std::env::vars().filter(|(k, _)| k.starts_with("BURNRATE_")).collect();
        let mut file = BTreeMap::new();
        if let Some(path) = config_file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                setting: "--config".into(),
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            let table: toml::Table = text.parse().map_err(|e| ConfigError {
                setting: "--config".into(),
                message: format!("{} is not valid TOML: {e}", path.display()),
            })?;
            for (key, value) in table {
                let name = key.to_ascii_uppercase();
                if SECRETS.contains(&name.as_str()) {
                    return Err(err(
                        &name,
                        format!(
                            "secrets may only come from the environment (or BURNRATE_{name}_FILE), not from {}",
                            path.display()
                        ),
                    ));
                }
                if !PLAIN.contains(&name.as_str()) {
                    return Err(ConfigError {
                        setting: "--config".into(),
                        message: format!("unknown setting `{key}` in {}", path.display()),
                    });
                }
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    toml::Value::Array(items) => items
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => {
                        return Err(err(&name, format!("expected a string, number or boolean, got {other}")));
                    }
                };
                file.insert(name, text);
            }
        }
        Ok(Self { env, file })
    }

    /// Values given as `BURNRATE_*` variables, without reading the process's environment (a test
    /// harness configuring an instance as an operator would).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let env = vars.into_iter().filter(|(k, _)| k.starts_with("BURNRATE_")).collect();
        Self { env, file: BTreeMap::new() }
    }

    fn plain(&self, name: &str) -> Option<String> {
        self.env
            .get(&format!("BURNRATE_{name}"))
            .cloned()
            .or_else(|| self.file.get(name).cloned())
            .filter(|v| !v.trim().is_empty())
    }

    /// `BURNRATE_SENTRY_DSN`, read before anything else so the first error is reported too.
    pub fn sentry_dsn(&self) -> Result<Option<SecretString>, ConfigError> {
        self.secret("SENTRY_DSN")
    }

    fn secret(&self, name: &str) -> Result<Option<SecretString>, ConfigError> {
        if let Some(v) = self.env.get(&format!("BURNRATE_{name}")).filter(|v| !v.trim().is_empty()) {
            return Ok(Some(SecretString::from(v.trim().to_owned())));
        }
        if let Some(path) = self.env.get(&format!("BURNRATE_{name}_FILE")) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(&format!("{name}_FILE"), format!("cannot read {path}: {e}")))?;
            return Ok(Some(SecretString::from(text.trim().to_owned())));
        }
        Ok(None)
    }
}

fn parse_addr(name: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.trim().parse().map_err(|_| err(name, format!("{v:?} is not an address of the form 127.0.0.1:8080 or [::1]:8080")))
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(err(name, format!("{v:?} is not true or false"))),
    }
}

/// `512MiB`, `10GiB`, `1000000` (bytes).
/// `BURNRATE_<name>` and `BURNRATE_<name>_PER_ORG`: a limit of the instance and the share of one
/// organization in it, each from 1 to `max` `what`, the share no more than the whole.
fn limits(
    src: &Sources,
    name: &str,
    defaults: (usize, usize),
    max: usize,
    what: &str,
) -> Result<(usize, usize), ConfigError> {
    let one = |name: &str, default: usize| match src.plain(name) {
        Some(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| err(name, format!("{v:?} is not a number of {what} from 1 to {max}"))),
        None => Ok(default),
    };
    let per_org_name = format!("{name}_PER_ORG");
    let (instance, per_org) = (one(name, defaults.0)?, one(&per_org_name, defaults.1)?);
    if per_org > instance {
        return Err(err(&per_org_name, format!("{per_org} is more than BURNRATE_{name} ({instance})")));
    }
    Ok((instance, per_org))
}

pub fn parse_bytes(name: &str, v: &str) -> Result<u64, ConfigError> {
    let s = v.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| err(name, format!("{v:?} is not a size such as 512MiB")))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(err(name, format!("unknown size unit {other:?}; use B, KiB, MiB, GiB or TiB")));
        }
    };
    n.checked_mul(mult).filter(|b| *b > 0).ok_or_else(|| err(name, format!("{v:?} is out of range")))
}

/// `60s`, `5m`, `1h`, `250ms`.
pub fn parse_duration(name: &str, v: &str) -> Result<Duration, ConfigError> {
    let s = v.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| err(name, format!("{v:?} is not a duration such as 60s")))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => {
            return Err(err(name, format!("unknown duration unit {other:?}; use ms, s, m or h")));
        }
    };
    if d.is_zero() {
        return Err(err(name, "must be greater than zero"));
    }
    Ok(d)
}

// Settings of features still being built (lake, SQL endpoint, Redis, Sentry, egress) are parsed and
// validated already, so a bad value fails at start rather than when the feature lands.
#[allow(dead_code)]
#[derive(Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<SecretString>,
    pub database_admin_url: Option<SecretString>,
    pub master_keys: Option<SecretString>,
    /// `BURNRATE_LAKE_URL`; unset: `lake/` in the data directory (see [`Settings::lake_url`]).
    pub lake_url: Option<String>,
    pub public_url: url::Url,
    pub https_addr: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub http_addr: SocketAddr,
    pub behind_tls_proxy: bool,
    pub pg_addr: SocketAddr,
    /// Where `/metrics` is served: its own listener, loopback unless the operator says otherwise
    /// (the public port serves no metrics, S29).
    pub metrics_addr: SocketAddr,
    /// The OTLP traces receiver's listener (`POST /v1/traces`).
    pub otlp_addr: SocketAddr,
    /// `BURNRATE_PG_TLS_CERT` / `_KEY`, else the HTTPS certificate and key.
    pub pg_tls_cert: Option<PathBuf>,
    pub pg_tls_key: Option<PathBuf>,
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub redis_url: Option<SecretString>,
    pub query_memory_limit: u64,
    pub spill_dir: PathBuf,
    pub spill_max: u64,
    /// `BURNRATE_SPILL_MAX_PER_ORG`: what one organization's running queries may have spilled
    /// together (`BURNRATE_SPILL_MAX` unless set).
    pub spill_max_per_org: u64,
    pub statement_timeout: Duration,
    pub signup: SignupMode,
    /// `BURNRATE_EGRESS_ALLOW`: the private networks any organization may be granted.
    pub egress_allow: Vec<String>,
    /// `BURNRATE_EGRESS_SHARED`: the part of it every organization reaches without a grant.
    pub egress_shared: Vec<String>,
    pub login_rate_per_ip: u32,
    pub bcrypt_cost: u32,
    /// `BURNRATE_SYNC_LEASE`: a stopped instance's sync is taken over after this.
    pub sync_lease: Duration,
    /// `BURNRATE_API_RATE_PER_KEY`: API requests a minute per key (per client address, twice this).
    pub api_rate_per_key: u32,
    /// `BURNRATE_OTLP_RATE_PER_KEY`: OTLP exports a minute per ingest key (per client address,
    /// twice this).
    pub otlp_rate_per_key: u32,
    /// `BURNRATE_QUERY_CONCURRENCY` and `BURNRATE_QUERY_CONCURRENCY_PER_ORG`: client queries
    /// running at once on the instance and for one organization.
    pub query_concurrency: usize,
    pub query_concurrency_per_org: usize,
    /// `BURNRATE_QUERY_WAIT`: how long a query over either limit waits for a slot.
    pub query_wait: Duration,
    /// `BURNRATE_WIRE_MAX_CONNECTIONS` and `BURNRATE_WIRE_MAX_CONNECTIONS_PER_ORG`: Postgres wire
    /// connections open at once on the instance and for one organization.
    pub wire_connections: burnrate_pgwire::ConnectionLimits,
}

impl Settings {
    /// The instance's egress guard: `BURNRATE_EGRESS_ALLOW` the ceiling, `BURNRATE_EGRESS_SHARED`
    /// what every organization reaches of it; the rest only organizations granted it reach.
    pub fn egress_guard(&self) -> Result<burnrate_net::EgressGuard, ConfigError> {
        let ceiling = burnrate_net::EgressGuard::new(&self.egress_allow)
            .map_err(|e| err("EGRESS_ALLOW", e.to_string().trim_start_matches("BURNRATE_EGRESS_ALLOW: ")))?;
        ceiling.sharing(&self.egress_shared).map_err(|e| err("EGRESS_SHARED", e.to_string()))
    }

    pub fn from_sources(src: &Sources, default_data_dir: &str) -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(src.plain("DATA_DIR").unwrap_or_else(|| default_data_dir.to_owned()));
        let public_url = src.plain("PUBLIC_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let public_url = url::Url::parse(&public_url)
            .ok()
            .filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.username().is_empty()
                    && u.password().is_none()
            })
            .ok_or_else(|| {
                err(
                    "PUBLIC_URL",
                    format!("{public_url:?} is not an http(s) origin such as https://burnrate.example.com"),
                )
            })?;
        let https_addr = src.plain("HTTPS_ADDR").map(|v| parse_addr("HTTPS_ADDR", &v)).transpose()?;
        let tls_cert = src.plain("TLS_CERT").map(PathBuf::from);
        let tls_key = src.plain("TLS_KEY").map(PathBuf::from);
        if https_addr.is_some() && (tls_cert.is_none() || tls_key.is_none()) {
            return Err(err("HTTPS_ADDR", "HTTPS needs BURNRATE_TLS_CERT and BURNRATE_TLS_KEY (PEM files)"));
        }
        let http_addr = parse_addr("HTTP_ADDR", &src.plain("HTTP_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into()))?;
        let behind_tls_proxy =
            src.plain("BEHIND_TLS_PROXY").map(|v| parse_bool("BEHIND_TLS_PROXY", &v)).transpose()?.unwrap_or(false);
        let signup = match src.plain("SIGNUP").as_deref().map(str::trim) {
            None | Some("open") => SignupMode::Open,
            Some("invite") => SignupMode::Invite,
            Some("closed") => SignupMode::Closed,
            Some(other) => {
                return Err(err("SIGNUP", format!("{other:?} is not one of open, invite, closed")));
            }
        };
        let database_url = src.secret("DATABASE_URL")?;
        if let Some(u) = &database_url {
            use secrecy::ExposeSecret;
            let u = u.expose_secret();
            if !(u.starts_with("sqlite:") || u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(err("DATABASE_URL", "expected a sqlite:// or postgres:// URL"));
            }
        }
        let login_rate_per_ip = match src.plain("LOGIN_RATE_PER_IP") {
            Some(v) => v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                err("LOGIN_RATE_PER_IP", format!("{v:?} is not a positive number of logins per minute"))
            })?,
            None => 30,
        };
        let api_rate_per_key = match src.plain("API_RATE_PER_KEY") {
            Some(v) => v.trim().parse().ok().filter(|n| (1..=u32::MAX / 2).contains(n)).ok_or_else(|| {
                err("API_RATE_PER_KEY", format!("{v:?} is not a positive number of requests per minute"))
            })?,
            None => 600,
        };
        let otlp_rate_per_key = match src.plain("OTLP_RATE_PER_KEY") {
            Some(v) => v.trim().parse().ok().filter(|n| (1..=u32::MAX / 2).contains(n)).ok_or_else(|| {
                err("OTLP_RATE_PER_KEY", format!("{v:?} is not a positive number of exports per minute"))
            })?,
            None => 1200,
        };
        let defaults = burnrate_engine::Concurrency::default();
        let (query_concurrency, query_concurrency_per_org) =
            limits(src, "QUERY_CONCURRENCY", (defaults.instance, defaults.per_org), 10_000, "queries at once")?;
        let wire_defaults = burnrate_pgwire::ConnectionLimits::default();
        let (instance, per_org) = limits(
            src,
            "WIRE_MAX_CONNECTIONS",
            (wire_defaults.instance, wire_defaults.per_org),
            100_000,
            "connections",
        )?;
        let wire_connections = burnrate_pgwire::ConnectionLimits { instance, per_org };
        let list = |name: &str| -> Vec<String> {
            src.plain(name)
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default()
        };
        let spill_max = parse_bytes("SPILL_MAX", &src.plain("SPILL_MAX").unwrap_or_else(|| "10GiB".into()))?;
        let bcrypt_cost = match src.plain("BCRYPT_COST") {
            // Only the safer direction: 10 is the floor (S4).
            Some(v) => v
                .trim()
                .parse()
                .ok()
                .filter(|n| (10..=16).contains(n))
                .ok_or_else(|| err("BCRYPT_COST", format!("{v:?} is not a bcrypt cost from 10 to 16")))?,
            None => 10,
        };
        let (pg_tls_cert, pg_tls_key) = match (src.plain("PG_TLS_CERT"), src.plain("PG_TLS_KEY")) {
            (Some(c), Some(k)) => (Some(PathBuf::from(c)), Some(PathBuf::from(k))),
            (None, None) => (tls_cert.clone(), tls_key.clone()),
            _ => return Err(err("PG_TLS_CERT", "set both BURNRATE_PG_TLS_CERT and BURNRATE_PG_TLS_KEY, or neither")),
        };
        Ok(Settings {
            pg_tls_cert,
            pg_tls_key,
            lake_url: src.plain("LAKE_URL"),
            spill_dir: src.plain("SPILL_DIR").map(PathBuf::from).unwrap_or_else(|| data_dir.join("spill")),
            query_memory_limit: parse_bytes(
                "QUERY_MEMORY_LIMIT",
                &src.plain("QUERY_MEMORY_LIMIT").unwrap_or_else(|| "512MiB".into()),
            )?,
            spill_max,
            spill_max_per_org: match src.plain("SPILL_MAX_PER_ORG") {
                Some(v) => parse_bytes("SPILL_MAX_PER_ORG", &v)?,
                None => spill_max,
            },
            statement_timeout: parse_duration(
                "STATEMENT_TIMEOUT",
                &src.plain("STATEMENT_TIMEOUT").unwrap_or_else(|| "60s".into()),
            )?,
            sync_lease: parse_duration("SYNC_LEASE", &src.plain("SYNC_LEASE").unwrap_or_else(|| "2m".into()))?,
            pg_addr: parse_addr("PG_ADDR", &src.plain("PG_ADDR").unwrap_or_else(|| "127.0.0.1:5433".into()))?,
            metrics_addr: parse_addr(
                "METRICS_ADDR",
                &src.plain("METRICS_ADDR").unwrap_or_else(|| "127.0.0.1:9464".into()),
            )?,
            otlp_addr: parse_addr("OTLP_ADDR", &src.plain("OTLP_ADDR").unwrap_or_else(|| "127.0.0.1:4318".into()))?,
            egress_allow: list("EGRESS_ALLOW"),
            egress_shared: list("EGRESS_SHARED"),
            mail_from: src.plain("MAIL_FROM").unwrap_or_else(|| "burnrate <burnrate@localhost>".into()),
            database_admin_url: src.secret("DATABASE_ADMIN_URL")?,
            master_keys: src.secret("MASTER_KEYS")?,
            smtp_url: src.secret("SMTP_URL")?,
            redis_url: src.secret("REDIS_URL")?,
            data_dir,
            database_url,
            public_url,
            https_addr,
            tls_cert,
            tls_key,
            http_addr,
            behind_tls_proxy,
            signup,
            login_rate_per_ip,
            api_rate_per_key,
            otlp_rate_per_key,
            query_concurrency,
            query_concurrency_per_org,
            query_wait: match src.plain("QUERY_WAIT") {
                Some(v) => parse_duration("QUERY_WAIT", &v)?,
                None => defaults.wait,
            },
            wire_connections,
            bcrypt_cost,
        })
    }

    /// The application's database URL: the configured one or a SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        use secrecy::ExposeSecret;
        match &self.database_url {
            Some(u) => u.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("burnrate.db").display()),
        }
    }

    /// Where the lake lives: the setting, else `lake/` in the data directory (which `demo
    /// --data-dir` may have moved after the settings were read).
    pub fn lake_url(&self) -> String {
        match &self.lake_url {
            Some(u) => u.clone(),
            None => format!("file://{}", self.data_dir.join("lake").display()),
        }
    }

    /// The Postgres wire endpoint takes passwords: off loopback it needs TLS (S7).
    pub fn check_pg_tls(&self) -> Result<(), ConfigError> {
        if self.pg_tls_cert.is_none() && !self.pg_addr.ip().is_loopback() {
            return Err(err(
                "PG_ADDR",
                format!(
                    "{} is not a loopback address; the Postgres wire endpoint needs TLS there. Set BURNRATE_PG_TLS_CERT and BURNRATE_PG_TLS_KEY (or BURNRATE_TLS_CERT and BURNRATE_TLS_KEY)",
                    self.pg_addr
                ),
            ));
        }
        Ok(())
    }

    /// Plain HTTP serves the app only on loopback or behind a TLS-terminating proxy (S7).
    pub fn check_plain_http(&self) -> Result<(), ConfigError> {
        if self.https_addr.is_none() && !self.behind_tls_proxy && !self.http_addr.ip().is_loopback() {
            return Err(err(
                "HTTP_ADDR",
                format!(
                    "{} is not a loopback address; plain HTTP is served only on loopback. Configure BURNRATE_HTTPS_ADDR with BURNRATE_TLS_CERT and BURNRATE_TLS_KEY, or set BURNRATE_BEHIND_TLS_PROXY=true",
                    self.http_addr
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_with_units() {
        assert_eq!(parse_bytes("X", "512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("X", "10GiB").unwrap(), 10 << 30);
        assert!(parse_bytes("X", "12 parsecs").unwrap_err().to_string().contains("BURNRATE_X"));
        assert_eq!(parse_duration("X", "60s").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("X", "0s").is_err());
    }

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars = pairs.iter().map(|(k, v)| (format!("BURNRATE_{k}"), (*v).to_owned()));
        Settings::from_sources(&Sources::from_vars(vars), "./burnrate-data")
    }

    #[test]
    fn the_postgres_endpoint_needs_tls_off_loopback_and_both_files_or_neither() {
        let s = settings(&[("PG_ADDR", "0.0.0.0:5433")]).unwrap();
        let e = s.check_pg_tls().unwrap_err().to_string();
        assert!(e.contains("BURNRATE_PG_ADDR") && e.contains("TLS"), "{e}");
        assert!(settings(&[]).unwrap().check_pg_tls().is_ok(), "loopback by default");
        let s = settings(&[("PG_ADDR", "0.0.0.0:5433"), ("TLS_CERT", "c.pem"), ("TLS_KEY", "k.pem")]).unwrap();
        assert!(s.check_pg_tls().is_ok(), "the HTTPS certificate serves the endpoint too");
        let e = settings(&[("PG_TLS_CERT", "c.pem")]).unwrap_err().to_string();
        assert!(e.contains("BURNRATE_PG_TLS_CERT"), "{e}");
    }
}

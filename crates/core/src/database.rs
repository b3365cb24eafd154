//! Database sources: an organization's own databases, which are not synced but read at query
//! time by the SQL engine (as `ext_<name>` schemas). What is stored of one: its non-secret
//! settings here, its password as the source's sealed secret.

use serde::{Deserialize, Serialize};

/// The source kinds that are databases read at query time (the others are billing APIs synced
/// into the lake).
pub const DATABASE_KINDS: &[&str] = &["postgres", "mysql"];

/// A database source's non-secret settings, stored as the source's JSON config. The password is
/// the source's sealed secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseConfig {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    /// The remote schema whose tables appear under `ext_<name>`.
    #[serde(default = "public")]
    pub schema: String,
    /// Sources saved before the TLS mode was asked for read as [`DatabaseTls::Prefer`], as they
    /// were connected then.
    #[serde(default)]
    pub tls: DatabaseTls,
    /// Certificates (PEM) of the private certificate authority the server's certificate is
    /// checked against; the public web's authorities when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

/// How the connection to a database source is encrypted and its server checked. Whatever the
/// mode, the password never leaves as it is typed: PostgreSQL sources log in by SCRAM only,
/// MySQL/MariaDB sources by scrambles (the password itself only over verified TLS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseTls {
    /// TLS required and the server's certificate checked against the configured host name —
    /// the connection still goes to the address the egress guard approved, never to a name
    /// looked up again. New sources are made so.
    VerifyFull,
    /// TLS required, the certificate not checked: an explicit choice, labelled as such.
    Require,
    /// TLS when the server offers it, unchecked, plain otherwise: how sources saved before the
    /// mode was asked for keep connecting (MySQL/MariaDB sources' default, for now).
    #[default]
    Prefer,
}

impl DatabaseTls {
    /// `verify-full`, `require` or `prefer`, as forms and the API write it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "verify-full" => Some(DatabaseTls::VerifyFull),
            "require" => Some(DatabaseTls::Require),
            "prefer" => Some(DatabaseTls::Prefer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseTls::VerifyFull => "verify-full",
            DatabaseTls::Require => "require",
            DatabaseTls::Prefer => "prefer",
        }
    }

    /// The mode in words, for the sources page.
    pub fn label(self) -> &'static str {
        match self {
            DatabaseTls::VerifyFull => "TLS, certificate verified",
            DatabaseTls::Require => "TLS, certificate NOT verified",
            DatabaseTls::Prefer => "TLS only if offered, NOT verified (plain text possible)",
        }
    }
}

fn public() -> String {
    "public".to_owned()
}

impl DatabaseConfig {
    /// Checks each value before it is stored: they are passed to the driver one by one (never
    /// spliced into a connection string), and still a host must look like one and no name may
    /// hold control characters or be longer than PostgreSQL allows.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let host_ok = !self.host.is_empty()
            && self.host.len() <= 253
            && self.host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_ok {
            return Err(format!("Host: {:?} is not a host name or IP address.", self.host));
        }
        if self.port == 0 {
            return Err("Port: expected a port between 1 and 65535.".into());
        }
        for (field, value) in [("Database", &self.database), ("User", &self.user), ("Schema", &self.schema)] {
            if value.is_empty() || value.len() > 63 || value.chars().any(char::is_control) {
                return Err(format!("{field}: expected 1 to 63 characters without control characters."));
            }
        }
        Ok(())
    }
}

/// The schema a database source's tables appear under: `ext_` and its name lower-cased, every
/// run of other characters than letters and digits replaced by `_`.
pub fn schema_name(source_name: &str) -> String {
    let mut out = String::from("ext_");
    let mut gap = false;
    for c in source_name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            if gap && !out.ends_with('_') {
                out.push('_');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    if gap {
        out.push('_');
    }
    out
}

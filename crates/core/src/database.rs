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
    #[serde(default)]
    pub tls: DatabaseTls,
}

/// Whether the connection to a database source must be encrypted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseTls {
    /// TLS when the server offers it, plain otherwise (the drivers' default).
    #[default]
    Prefer,
    /// TLS or no connection. The server's certificate is not checked against a name: the
    /// connection goes to the address the egress guard approved, not to a name looked up again.
    Require,
}

impl DatabaseTls {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "prefer" => Some(DatabaseTls::Prefer),
            "require" => Some(DatabaseTls::Require),
            _ => None,
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

//! A provider source's non-secret settings, as stored (JSON) and read back: what every source
//! has (where its API is, how it syncs) and what its provider needs, one variant a provider,
//! each holding its own module's parsed values.

use burnrate_core::{DATABASE_KINDS, DatabaseConfig, SyncWindow};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{Schedule, SourceKind};

/// A provider source's non-secret settings, stored as JSON beside its kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceConfig {
    /// What the provider needs, tagged with its kind (`"kind": "aws"`, …).
    #[serde(flatten)]
    pub provider: ProviderSettings,
    /// A proxy or test server instead of the provider's own API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// How far back the first sync reaches (OpenAI and Anthropic: 90 days).
    pub backfill_days: u32,
    /// How many trailing days each sync re-pulls to catch restatements (3).
    pub repull_days: u32,
    pub interval_minutes: u32,
}

/// What a provider needs beyond its credential, as its module parses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderSettings {
    OpenAi,
    Anthropic,
    Aws(crate::aws::Settings),
    Azure(crate::azure::Settings),
    Gcp(crate::gcp::Settings),
    OpenRouter,
}

impl ProviderSettings {
    pub fn kind(&self) -> SourceKind {
        match self {
            ProviderSettings::OpenAi => SourceKind::OpenAi,
            ProviderSettings::Anthropic => SourceKind::Anthropic,
            ProviderSettings::Aws(_) => SourceKind::Aws,
            ProviderSettings::Azure(_) => SourceKind::Azure,
            ProviderSettings::Gcp(_) => SourceKind::Gcp,
            ProviderSettings::OpenRouter => SourceKind::OpenRouter,
        }
    }
}

impl SourceConfig {
    /// A new source's settings: its provider's, on its provider's schedule.
    pub fn new(provider: ProviderSettings) -> Self {
        let Schedule { backfill_days, repull_days, interval_minutes } = provider.kind().provider().schedule;
        Self { provider, base_url: None, backfill_days, repull_days, interval_minutes }
    }

    /// A provider that needs nothing but its credential (OpenAI, Anthropic, OpenRouter).
    pub fn plain(kind: SourceKind) -> Option<Self> {
        let provider = match kind {
            SourceKind::OpenAi => ProviderSettings::OpenAi,
            SourceKind::Anthropic => ProviderSettings::Anthropic,
            SourceKind::OpenRouter => ProviderSettings::OpenRouter,
            SourceKind::Aws | SourceKind::Azure | SourceKind::Gcp => return None,
        };
        Some(Self::new(provider))
    }

    pub fn kind(&self) -> SourceKind {
        self.provider.kind()
    }

    /// The stored settings of the source `name` of `kind`, or an error naming it: a row that no
    /// longer reads is never taken for the defaults (which would start a backfill nobody asked
    /// for), and settings of another provider than the row's kind are refused.
    pub fn read(name: &str, kind: &str, stored: &str) -> Result<Self, SettingsError> {
        let refuse = |reason: String| SettingsError { source_name: name.to_owned(), reason };
        let mut value: serde_json::Value = serde_json::from_str(stored).map_err(|e| refuse(e.to_string()))?;
        let object = value.as_object_mut().ok_or_else(|| refuse("not a JSON object".into()))?;
        match object.get("kind") {
            // Settings stored before they carried their kind have it only beside them.
            None => {
                object.insert("kind".into(), kind.into());
            }
            Some(tagged) if tagged == kind => {}
            Some(tagged) => return Err(refuse(format!("settings of kind {tagged} on a source of kind {kind:?}"))),
        }
        serde_json::from_value(value).map_err(|e| refuse(e.to_string()))
    }

    /// As stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings are plain JSON values")
    }

    /// The window the next sync covers: the whole backfill the first time (`synced_before` false),
    /// the trailing re-pull after — widened to whole months, the lake's unit of replacement.
    pub fn next_window(&self, synced_before: bool, today: NaiveDate) -> SyncWindow {
        let days = if synced_before { self.repull_days.max(1) } else { self.backfill_days.max(1) };
        // `today` is included: spend so far today is shown, and replaced by the next sync.
        SyncWindow::trailing_days(today + chrono::Duration::days(1), days + 1)
            .expect("a positive number of days")
            .whole_months()
    }
}

/// What a source is, read once from its stored kind and settings: a provider's billing API with
/// its settings, or one of the organization's own databases, read when a query names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    Provider(SourceConfig),
    Database { kind: &'static str, config: DatabaseConfig },
}

impl SourceSpec {
    /// The source `name`'s stored `kind` and settings, or an error naming it.
    pub fn read(name: &str, kind: &str, stored: &str) -> Result<Self, SettingsError> {
        match DATABASE_KINDS.iter().find(|k| **k == kind) {
            Some(kind) => serde_json::from_str(stored)
                .map(|config| SourceSpec::Database { kind, config })
                .map_err(|e| SettingsError { source_name: name.to_owned(), reason: e.to_string() }),
            None => SourceConfig::read(name, kind, stored).map(SourceSpec::Provider),
        }
    }

    /// How people know its kind: the provider's label, or the database's.
    pub fn label(&self) -> &'static str {
        match self {
            SourceSpec::Provider(config) => config.kind().label(),
            SourceSpec::Database { kind: "mysql", .. } => "MySQL / MariaDB",
            SourceSpec::Database { .. } => "PostgreSQL",
        }
    }
}

/// A source's stored settings that no longer read.
#[derive(Debug, thiserror::Error)]
#[error("source {source_name:?}: its stored settings are unreadable ({reason}); nothing was synced")]
pub struct SettingsError {
    pub source_name: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: &str = r#""backfill_days":90,"repull_days":3,"interval_minutes":60"#;
    const AZURE: &str = r#""tenant_id":"contoso.onmicrosoft.com","client_id":"0f0e1d2c-3b4a-5968-7766-554433221100""#;

    #[test]
    fn stored_settings_read_back_as_typed_values_or_are_refused_naming_the_source_and_the_value() {
        let aws = format!(r#"{{{SCHEDULE},"access_key_id":"AKIAIOSFODNN7EXAMPLE"}}"#);
        let ProviderSettings::Aws(settings) = SourceConfig::read("prod", "aws", &aws).unwrap().provider else {
            panic!("an AWS source reads as AWS settings")
        };
        assert_eq!(settings.access_key_id.as_str(), "AKIAIOSFODNN7EXAMPLE");
        let azure = format!(r#"{{{SCHEDULE},{AZURE},"scope":"/subscriptions/0f0e1d2c-3b4a-5968-7766-554433221100/"}}"#);
        let ProviderSettings::Azure(settings) = SourceConfig::read("prod", "azure", &azure).unwrap().provider else {
            panic!("an Azure source reads as Azure settings")
        };
        assert_eq!(settings.scope.as_str(), "subscriptions/0f0e1d2c-3b4a-5968-7766-554433221100", "normalized");

        // What a person could never have entered is not sent anywhere when read back either.
        for (kind, stored, says) in [
            ("azure", format!(r#"{{{SCHEDULE},{AZURE},"scope":"subscriptions/../../providers/x"}}"#), "Scope: "),
            (
                "aws",
                format!(
                    r#"{{{SCHEDULE},"access_key_id":"AKIAIOSFODNN7EXAMPLE","role_arn":"arn:aws:iam::123:role/x y"}}"#
                ),
                "Role ARN: ",
            ),
            ("aws", format!(r#"{{{SCHEDULE},"access_key_id":"ASIATEMPORARYKEY0001"}}"#), "Access key ID: "),
            ("gcp", format!(r#"{{{SCHEDULE},"billing_table":"a.b"}}"#), "Billing table: "),
            // A provider's required setting is never made up.
            ("aws", format!("{{{SCHEDULE}}}"), "missing field `access_key_id`"),
            ("azure", format!(r#"{{{SCHEDULE},{AZURE}}}"#), "missing field `scope`"),
            // Settings of one provider on a source of another are not taken for either.
            (
                "openai",
                format!(r#"{{{SCHEDULE},"kind":"aws","access_key_id":"AKIAIOSFODNN7EXAMPLE"}}"#),
                "kind \"aws\"",
            ),
            ("openai", "[]".to_owned(), "not a JSON object"),
            ("openai", "{".to_owned(), "EOF"),
        ] {
            let error = SourceConfig::read("prod", kind, &stored).unwrap_err().to_string();
            assert!(error.starts_with("source \"prod\": its stored settings are unreadable ("), "{error}");
            assert!(error.contains(says), "{kind} {stored}: {error}");
        }
    }

    #[test]
    fn settings_are_stored_with_their_kind_and_read_back_equal() {
        for kind in SourceKind::ALL {
            let Some(config) = SourceConfig::plain(kind) else { continue };
            let stored = config.to_json();
            assert!(stored.contains(&format!(r#""kind":"{}""#, kind.as_str())), "{stored}");
            assert_eq!(SourceConfig::read("prod", kind.as_str(), &stored).unwrap(), config);
            assert_eq!(config.backfill_days, kind.provider().schedule.backfill_days);
        }
        // A row written before settings carried their kind reads by the row's kind.
        let old = format!("{{{SCHEDULE}}}");
        assert_eq!(SourceConfig::read("prod", "anthropic", &old).unwrap().kind(), SourceKind::Anthropic);
        let database =
            r#"{"host":"db.example.com","port":5432,"database":"app","user":"ro","schema":"public","tls":"require"}"#;
        assert_eq!(SourceSpec::read("warehouse", "postgres", database).unwrap().label(), "PostgreSQL");
    }
}

//! A provider source's non-secret settings, as stored (JSON) and read back.

use burnrate_core::SyncWindow;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{Schedule, SourceKind};

/// A source's non-secret settings, stored as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceConfig {
    /// A proxy or test server instead of the provider's own API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// AWS: the access key id that goes with the sealed secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<crate::aws::AccessKeyId>,
    /// AWS: a role to assume before reading Cost Explorer, and the external id its trust policy
    /// asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<crate::aws::RoleArn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<crate::aws::ExternalId>,
    /// AWS: a cost-allocation tag key whose values become the cost lines' tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_allocation_tag: Option<crate::aws::CostAllocationTag>,
    /// Azure: the Entra ID tenant, the application (client) id that goes with the sealed client
    /// secret, and the scope read (`subscriptions/<id>`, a resource group, management group or
    /// billing account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<crate::azure::TenantId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<crate::azure::ClientId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::azure::Scope>,
    /// Google Cloud: the billing export table (`project.dataset.gcp_billing_export_v1_…`), the
    /// project that runs the queries (the key's own when unset), the dataset's location, and the
    /// service account's email (read from the sealed key, for people to see which it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_table: Option<crate::gcp::BillingTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<crate::gcp::ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<crate::gcp::Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// How far back the first sync reaches (OpenAI and Anthropic: 90 days).
    pub backfill_days: u32,
    /// How many trailing days each sync re-pulls to catch restatements (3).
    pub repull_days: u32,
    pub interval_minutes: u32,
}

impl Default for SourceConfig {
    fn default() -> Self {
        let Schedule { backfill_days, repull_days, interval_minutes } = Schedule::DEFAULT;
        Self {
            base_url: None,
            access_key_id: None,
            role_arn: None,
            external_id: None,
            cost_allocation_tag: None,
            tenant_id: None,
            client_id: None,
            scope: None,
            billing_table: None,
            project_id: None,
            location: None,
            service_account: None,
            backfill_days,
            repull_days,
            interval_minutes,
        }
    }
}

impl SourceConfig {
    /// The stored settings of the source `name`, or an error naming it: a row that no longer
    /// reads is never taken for the defaults (which would start a backfill nobody asked for).
    pub fn parse(name: &str, stored: &str) -> Result<Self, SettingsError> {
        serde_json::from_str(stored).map_err(|e| SettingsError { source_name: name.to_owned(), reason: e.to_string() })
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

    /// What a new source of `kind` starts with: its provider's schedule.
    pub fn for_kind(kind: SourceKind) -> Self {
        let Schedule { backfill_days, repull_days, interval_minutes } = kind.provider().schedule;
        Self { backfill_days, repull_days, interval_minutes, ..Self::default() }
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

    #[test]
    fn stored_settings_read_back_as_typed_values_or_are_refused_naming_the_source_and_the_value() {
        let good = format!(
            r#"{{{SCHEDULE},"access_key_id":"AKIAIOSFODNN7EXAMPLE","scope":"/subscriptions/0f0e1d2c-3b4a-5968-7766-554433221100/"}}"#
        );
        let config = SourceConfig::parse("prod", &good).unwrap();
        assert_eq!(config.access_key_id.unwrap().as_str(), "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(config.scope.unwrap().as_str(), "subscriptions/0f0e1d2c-3b4a-5968-7766-554433221100", "normalized");

        // What a person could never have entered is not sent anywhere when read back either.
        for (field, value, says) in [
            ("scope", "subscriptions/../../providers/x", "Scope: "),
            ("role_arn", "arn:aws:iam::123:role/x y", "Role ARN: "),
            ("access_key_id", "ASIATEMPORARYKEY0001", "Access key ID: "),
            ("billing_table", "a.b", "Billing table: "),
        ] {
            let stored = format!(r#"{{{SCHEDULE},"{field}":"{value}"}}"#);
            let error = SourceConfig::parse("prod", &stored).unwrap_err().to_string();
            assert!(error.starts_with("source \"prod\": its stored settings are unreadable ("), "{error}");
            assert!(error.contains(says), "{field}: {error}");
        }
    }
}

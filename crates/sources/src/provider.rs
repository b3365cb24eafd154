//! The providers burnrate connects to: each provider module registers what it is (its name,
//! label, API address, what its credential is called, how often it syncs) and how to make its
//! [`Connector`] from a source's settings. Sync drives every provider through that one trait.
//!
//! Adding a provider: its module here with its connector, its settings (when it needs more than
//! its credential) and `REGISTRATION`, its simulator in `burnrate-sim`, a variant of
//! [`SourceKind`] and of [`crate::ProviderSettings`], and one line in [`SourceKind::provider`].

use burnrate_core::{CostRecord, SyncWindow, UsageRecord};
use burnrate_net::HttpClient;
use chrono::NaiveDate;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::openrouter::Credits;
use crate::{ProgressSink, PullStats, RecordSender, SourceError};

/// The providers burnrate can connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    OpenAi,
    Anthropic,
    /// Amazon Bedrock, through AWS Cost Explorer.
    Aws,
    /// Azure OpenAI and AI Foundry, through Azure Cost Management.
    Azure,
    /// Vertex AI and the Gemini API, through the Cloud Billing export in BigQuery.
    Gcp,
    OpenRouter,
}

impl SourceKind {
    pub const ALL: [SourceKind; 6] = [
        SourceKind::OpenAi,
        SourceKind::Anthropic,
        SourceKind::Aws,
        SourceKind::Azure,
        SourceKind::Gcp,
        SourceKind::OpenRouter,
    ];

    /// What the provider's module registers of it.
    pub fn provider(self) -> &'static Provider {
        match self {
            SourceKind::OpenAi => &crate::openai::REGISTRATION,
            SourceKind::Anthropic => &crate::anthropic::REGISTRATION,
            SourceKind::Aws => &crate::aws::REGISTRATION,
            SourceKind::Azure => &crate::azure::REGISTRATION,
            SourceKind::Gcp => &crate::gcp::REGISTRATION,
            SourceKind::OpenRouter => &crate::openrouter::REGISTRATION,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Its name where sources are stored and in the API (`openai`, `aws`, …).
    pub fn as_str(self) -> &'static str {
        self.provider().name
    }

    pub fn label(self) -> &'static str {
        self.provider().label
    }

    pub fn default_base_url(self) -> &'static str {
        self.provider().base_url
    }

    /// What its credential is called on forms ("Admin key", "Client secret", …).
    pub fn secret_label(self) -> &'static str {
        self.provider().secret_label
    }
}

/// How a source syncs: how far back its first sync reaches, how many trailing days each later
/// sync re-pulls to catch restatements, and how often it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub backfill_days: u32,
    pub repull_days: u32,
    pub interval_minutes: u32,
}

impl Schedule {
    /// 90 days back, 3 days re-pulled, hourly.
    pub const DEFAULT: Schedule = Schedule { backfill_days: 90, repull_days: 3, interval_minutes: 60 };
}

/// What a provider module registers.
pub struct Provider {
    /// As stored and in the API.
    pub name: &'static str,
    pub label: &'static str,
    /// The provider's own API; a source may name a proxy or a test server instead.
    pub base_url: &'static str,
    pub secret_label: &'static str,
    /// The provider name its cost lines and errors carry (FOCUS `ProviderName`).
    pub reports_as: &'static str,
    /// What to check when the provider refuses the credential.
    pub credential_hint: &'static str,
    /// How a new source of it syncs.
    pub schedule: Schedule,
    pub connect: Connect,
}

/// How a provider makes its connector: from a source's settings, its API's address and its opened
/// credential; the error names the setting that is missing or wrong.
pub type Connect = fn(&crate::SourceConfig, url::Url, SecretString) -> Result<Box<dyn Connector>, String>;

/// A provider's billing API with a source's credential opened, as sync drives it for one sync.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The first day the provider still reports when today (UTC) is `today`; `None` when it
    /// reaches back as far as asked.
    fn reaches_back(&self, _today: NaiveDate) -> Option<NaiveDate> {
        None
    }

    /// The window's cost lines, sent a page at a time; `out` closes when the pull ends.
    async fn stream_costs(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: RecordSender<CostRecord>,
    ) -> Result<PullStats, SourceError>;

    /// The window's usage lines. The clouds' billing data carries usage quantities on the cost
    /// lines, so by default there are none.
    async fn stream_usage(
        &self,
        _http: &HttpClient,
        _window: SyncWindow,
        _progress: ProgressSink<'_>,
        _out: RecordSender<UsageRecord>,
    ) -> Result<PullStats, SourceError> {
        Ok(PullStats::default())
    }

    /// A prepaid account's credits left, read with each sync; `None` for providers that bill later.
    async fn credits(&self, _http: &HttpClient, _window: SyncWindow) -> Result<Option<Credits>, SourceError> {
        Ok(None)
    }
}

/// Makes a provider's own pulls its [`Connector`]: its cost report, its usage report where it has
/// one (`costs_and_usage`), and whatever else it answers, written out in the braces.
macro_rules! connector {
    (costs $provider:ident { $($extra:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::Connector for $provider {
            $($extra)*

            async fn stream_costs(
                &self,
                http: &burnrate_net::HttpClient,
                window: burnrate_core::SyncWindow,
                progress: $crate::ProgressSink<'_>,
                out: $crate::RecordSender<burnrate_core::CostRecord>,
            ) -> Result<$crate::PullStats, $crate::SourceError> {
                $provider::stream_costs(self, http, window, progress, &out).await
            }
        }
    };
    // Usage is one more method beside the rest: written once, here.
    (costs_and_usage $provider:ident { $($extra:tt)* }) => {
        $crate::provider::connector!(costs $provider {
            $($extra)*

            async fn stream_usage(
                &self,
                http: &burnrate_net::HttpClient,
                window: burnrate_core::SyncWindow,
                progress: $crate::ProgressSink<'_>,
                out: $crate::RecordSender<burnrate_core::UsageRecord>,
            ) -> Result<$crate::PullStats, $crate::SourceError> {
                $provider::stream_usage(self, http, window, progress, &out).await
            }
        });
    };
}

pub(crate) use connector;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_registered_under_the_name_it_is_stored_by() {
        let mut reports_as = std::collections::BTreeSet::new();
        for kind in SourceKind::ALL {
            assert_eq!(SourceKind::parse(kind.as_str()), Some(kind), "{kind:?}");
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()), "{kind:?}");
            assert!(reports_as.insert(kind.provider().reports_as), "{kind:?}: its credential advice would mix");
        }
    }
}

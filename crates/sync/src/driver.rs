//! Driving a provider: the connector of a source, built from its settings with its credential
//! opened for the length of one sync (S2), and the pulls it answers.

use burnrate_core::{CostRecord, SyncWindow, UsageRecord};
use burnrate_net::HttpClient;
use burnrate_sources::aws::{AssumeRole, AwsCredentials};
use burnrate_sources::{
    Anthropic, BigQueryBilling, CostExplorer, CostManagement, OpenAi, OpenRouter, ProgressSink, PullStats,
    RecordSender, SourceError,
};
use burnrate_store::{OrgScope, SourceRecord};
use chrono::NaiveDate;

use crate::{SourceConfig, SourceKind, SyncError, Syncer};

/// A connected provider, its key opened for the length of one sync.
pub(crate) enum Connector {
    OpenAi(OpenAi),
    Anthropic(Anthropic),
    Aws(CostExplorer),
    Azure(CostManagement),
    Gcp(BigQueryBilling),
    OpenRouter(OpenRouter),
}

impl Connector {
    /// The first day the provider still reports when today (UTC) is `today`; `None` when it
    /// reaches back as far as asked.
    pub(crate) fn reaches_back(&self, today: NaiveDate) -> Option<NaiveDate> {
        match self {
            Connector::OpenRouter(_) => Some(OpenRouter::reaches_back(today)),
            Connector::OpenAi(_)
            | Connector::Anthropic(_)
            | Connector::Aws(_)
            | Connector::Azure(_)
            | Connector::Gcp(_) => None,
        }
    }

    pub(crate) async fn stream_costs(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: RecordSender<CostRecord>,
    ) -> Result<PullStats, SourceError> {
        match self {
            Connector::OpenAi(api) => api.stream_costs(http, window, progress, &out).await,
            Connector::Anthropic(api) => api.stream_costs(http, window, progress, &out).await,
            Connector::Aws(api) => api.stream_costs(http, window, progress, &out).await,
            Connector::Azure(api) => api.stream_costs(http, window, progress, &out).await,
            Connector::Gcp(api) => api.stream_costs(http, window, progress, &out).await,
            Connector::OpenRouter(api) => api.stream_costs(http, window, progress, &out).await,
        }
    }

    pub(crate) async fn stream_usage(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: RecordSender<UsageRecord>,
    ) -> Result<PullStats, SourceError> {
        match self {
            Connector::OpenAi(api) => api.stream_usage(http, window, progress, &out).await,
            Connector::Anthropic(api) => api.stream_usage(http, window, progress, &out).await,
            // The clouds' billing data carries usage quantities on the cost lines.
            Connector::Aws(_) | Connector::Azure(_) | Connector::Gcp(_) => Ok(PullStats::default()),
            Connector::OpenRouter(api) => api.stream_usage(http, window, progress, &out).await,
        }
    }
}

impl Syncer {
    /// The source's connector, with its key opened from the vault.
    pub(crate) async fn connector(&self, scope: OrgScope, source: &SourceRecord) -> Result<Connector, SyncError> {
        let kind = SourceKind::parse(&source.kind).ok_or_else(|| SyncError::UnknownKind(source.kind.clone()))?;
        let config = SourceConfig::of(source)?;
        let base = config.base_url.as_deref().unwrap_or(kind.default_base_url());
        let base_url = url::Url::parse(base).map_err(|e| SyncError::Config(format!("base URL: {e}")))?;
        let mut tx = self.store.tenant(scope).await?;
        let secret = tx.open_source_secret(&self.vault, source.id).await?;
        tx.commit().await?;
        let admin_key = secrecy::SecretString::from(secret.as_str().to_owned());
        drop(secret);
        Ok(match kind {
            SourceKind::OpenAi => Connector::OpenAi(OpenAi { base_url, admin_key }),
            SourceKind::Anthropic => Connector::Anthropic(Anthropic { base_url, admin_key }),
            SourceKind::Aws => {
                let access_key_id = config
                    .access_key_id
                    .ok_or_else(|| SyncError::Config("an AWS source needs its access key id".into()))?;
                let credentials = AwsCredentials { access_key_id, secret_access_key: admin_key, session_token: None };
                let role = match config.role_arn {
                    Some(role_arn) => {
                        // A proxy or test server standing in for Cost Explorer stands in for STS too.
                        let sts = config.base_url.as_deref().unwrap_or(burnrate_sources::aws::STS_URL);
                        let sts_url = url::Url::parse(sts).map_err(|e| SyncError::Config(format!("STS URL: {e}")))?;
                        Some(AssumeRole { role_arn, external_id: config.external_id, sts_url })
                    }
                    None => None,
                };
                let cost_allocation_tag = config.cost_allocation_tag;
                Connector::Aws(CostExplorer { base_url, credentials, role, cost_allocation_tag })
            }
            SourceKind::Azure => {
                let missing = |what: &str| SyncError::Config(format!("an Azure source needs its {what}"));
                // A proxy or test server standing in for Cost Management stands in for Entra ID too.
                let login = config.base_url.as_deref().unwrap_or(burnrate_sources::azure::LOGIN_URL);
                let login_url = url::Url::parse(login).map_err(|e| SyncError::Config(format!("login URL: {e}")))?;
                Connector::Azure(CostManagement::new(
                    base_url,
                    login_url,
                    config.tenant_id.ok_or_else(|| missing("tenant id"))?,
                    config.client_id.ok_or_else(|| missing("client id"))?,
                    admin_key,
                    config.scope.ok_or_else(|| missing("scope"))?,
                ))
            }
            SourceKind::Gcp => Connector::Gcp(BigQueryBilling::new(
                base_url,
                admin_key,
                config.project_id,
                config
                    .billing_table
                    .ok_or_else(|| SyncError::Config("a Google Cloud source needs its billing table".into()))?,
                config.location,
            )),
            SourceKind::OpenRouter => Connector::OpenRouter(OpenRouter::new(base_url, admin_key)),
        })
    }
}

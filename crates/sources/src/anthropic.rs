//! Anthropic Admin API reports (providers.md §2): the cost report, daily buckets grouped by
//! workspace and description, with amounts as decimal strings in cents; and the messages usage
//! report, by workspace, API key and model.

use burnrate_core::{ChargeCategory, CostRecord, SyncWindow, UsageRecord};
use burnrate_net::HttpClient;
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{
    Ask, Call, Paged, Pager, ProgressSink, PullStats, Pulled, RecordSender, SourceError, SourceErrorKind, collect,
    error_message, money, report_url, tokens,
};

pub const PROVIDER: &str = "Anthropic";
const COST_ENDPOINT: &str = "GET /v1/organizations/cost_report";
const USAGE_ENDPOINT: &str = "GET /v1/organizations/usage_report/messages";
const API_VERSION: &str = "2023-06-01";
/// The most daily buckets one page may hold (both reports).
const PAGE_BUCKETS: u32 = 31;
/// The most hourly buckets one usage page may hold.
const PAGE_HOURS: u32 = 168;

/// One Anthropic organization, reached with an Admin API key.
pub struct Anthropic {
    /// `https://api.anthropic.com` unless a proxy or a test server stands in.
    pub base_url: url::Url,
    pub admin_key: SecretString,
}

#[derive(Deserialize)]
struct Page<T> {
    data: Vec<Bucket<T>>,
    has_more: bool,
    next_page: Option<String>,
}

impl<T> Paged for Page<T> {
    fn cursor(&self) -> Option<String> {
        if self.has_more { self.next_page.clone() } else { None }
    }
    fn reached(&self) -> Option<DateTime<Utc>> {
        self.data.last().map(|b| b.ending_at)
    }
}

#[derive(Deserialize)]
struct Bucket<T> {
    starting_at: DateTime<Utc>,
    ending_at: DateTime<Utc>,
    results: Vec<T>,
}

#[derive(Deserialize)]
struct CostItem {
    currency: String,
    amount: String,
    workspace_id: Option<String>,
    description: Option<String>,
    cost_type: Option<String>,
    model: Option<String>,
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct UsageItem {
    uncached_input_tokens: i64,
    cache_creation: CacheCreation,
    cache_read_input_tokens: i64,
    output_tokens: i64,
    server_tool_use: Option<ServerToolUse>,
    api_key_id: Option<String>,
    workspace_id: Option<String>,
    model: Option<String>,
    service_tier: Option<String>,
}

#[derive(Deserialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: i64,
    ephemeral_1h_input_tokens: i64,
}

#[derive(Deserialize)]
struct ServerToolUse {
    web_search_requests: i64,
}

impl Anthropic {
    fn url(&self, path: &str, group_by: &[&str], ask: &Ask<'_>) -> url::Url {
        let times = [
            ("starting_at", ask.window.start_time().to_rfc3339_opts(SecondsFormat::Secs, true)),
            ("ending_at", ask.window.end_time().to_rfc3339_opts(SecondsFormat::Secs, true)),
        ];
        report_url(&self.base_url, path, times, (ask.limit, ask.bucket), group_by, ask.page)
    }

    /// Pulls every cost line of `window` into memory.
    pub async fn pull_costs(&self, http: &HttpClient, window: SyncWindow) -> Result<Pulled<CostRecord>, SourceError> {
        collect(|tx| async move { self.stream_costs(http, window, &|_| {}, &tx).await }).await
    }

    /// Sends the cost lines of `window` to `out` page by page, reporting progress after each.
    pub async fn stream_costs(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: &RecordSender<CostRecord>,
    ) -> Result<PullStats, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: COST_ENDPOINT, window };
        let headers = [("x-api-key", self.admin_key.expose_secret()), ("anthropic-version", API_VERSION)];
        let url = |ask: &Ask<'_>| self.url("/v1/organizations/cost_report", &["workspace_id", "description"], ask);
        let pager = Pager::new(call, http, &headers, error_message, url, "costs", progress, PAGE_BUCKETS);
        let stats = pager
            .stream(out, |page: Page<CostItem>, stats| {
                let mut records = Vec::new();
                for bucket in page.data {
                    for item in bucket.results {
                        let cents: Decimal = burnrate_core::parse_decimal(&item.amount)
                            .map(|(d, _)| d)
                            .map_err(|e| call.error(SourceErrorKind::Malformed(format!("amount: {e}"))))?;
                        // Cents to currency units, in decimal arithmetic.
                        let units = cents / Decimal::ONE_HUNDRED;
                        let cost = money(&call, &units.to_string(), &item.currency, &mut stats.rounded_values)?;
                        let service = match item.cost_type.as_deref() {
                            Some("web_search") => "Claude API Web Search",
                            Some("code_execution") => "Claude API Code Execution",
                            _ => "Claude API",
                        };
                        let sku = match (&item.model, &item.token_type) {
                            (Some(m), Some(t)) => Some(format!("{m}:{t}")),
                            _ => item.description.clone(),
                        };
                        records.push(CostRecord {
                            charge_period_start: bucket.starting_at,
                            charge_period_end: bucket.ending_at,
                            billed_cost: cost,
                            effective_cost: cost,
                            list_cost: cost,
                            list_cost_estimated: true,
                            provider_name: PROVIDER.into(),
                            service_name: service.into(),
                            sub_account_id: item.workspace_id,
                            sku_id: sku,
                            model: item.model,
                            charge_category: ChargeCategory::Usage,
                            charge_description: item.description,
                            consumed_quantity: None,
                            consumed_unit: None,
                            api_key_id: None,
                            tags: Default::default(),
                        });
                    }
                }
                Ok(records)
            })
            .await?;
        Ok(stats)
    }

    /// Pulls the messages usage of `window` into memory.
    pub async fn pull_usage(&self, http: &HttpClient, window: SyncWindow) -> Result<Pulled<UsageRecord>, SourceError> {
        collect(|tx| async move { self.stream_usage(http, window, &|_| {}, &tx).await }).await
    }

    /// Sends the messages usage of `window` to `out` page by page. Cache writes of both lifetimes
    /// are one class, cache reads another, so the three input classes are disjoint.
    pub async fn stream_usage(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: &RecordSender<UsageRecord>,
    ) -> Result<PullStats, SourceError> {
        let headers = [("x-api-key", self.admin_key.expose_secret()), ("anthropic-version", API_VERSION)];
        let groups = ["workspace_id", "api_key_id", "model", "service_tier"];
        let url = |ask: &Ask<'_>| self.url("/v1/organizations/usage_report/messages", &groups, ask);
        let mut stats = PullStats::default();
        for (part, bucket) in crate::by_bucket(window) {
            let call = Call { provider: PROVIDER, endpoint: USAGE_ENDPOINT, window: part };
            let pager = Pager::new(call, http, &headers, error_message, url, "usage", progress, PAGE_BUCKETS);
            let pager = if bucket == crate::BucketWidth::Hour { pager.hourly(PAGE_HOURS) } else { pager };
            stats.add(self.stream_usage_pages(call, pager, out).await?);
        }
        Ok(stats)
    }

    /// The records of one run of usage pages.
    async fn stream_usage_pages<U: Fn(&Ask<'_>) -> url::Url>(
        &self,
        call: Call,
        pager: Pager<'_, U>,
        out: &RecordSender<UsageRecord>,
    ) -> Result<PullStats, SourceError> {
        let stats = pager
            .stream(out, |page: Page<UsageItem>, _| {
                let mut records = Vec::new();
                for bucket in page.data {
                    for u in bucket.results {
                        let write_1h = tokens(
                            &call,
                            "cache_creation.ephemeral_1h_input_tokens",
                            u.cache_creation.ephemeral_1h_input_tokens,
                        )?;
                        let write = tokens(
                            &call,
                            "cache_creation.ephemeral_5m_input_tokens",
                            u.cache_creation.ephemeral_5m_input_tokens,
                        )? + write_1h;
                        let mut extra = std::collections::BTreeMap::new();
                        if let Some(tools) = u.server_tool_use {
                            extra.insert(
                                "web_search_requests".to_owned(),
                                tokens(&call, "web_search_requests", tools.web_search_requests)?,
                            );
                        }
                        records.push(UsageRecord {
                            bucket_start: bucket.starting_at,
                            bucket_end: bucket.ending_at,
                            provider_name: PROVIDER.into(),
                            usage_type: "messages".into(),
                            model: u.model,
                            project_id: u.workspace_id,
                            api_key_id: u.api_key_id,
                            service_tier: u.service_tier,
                            input_uncached_tokens: tokens(&call, "uncached_input_tokens", u.uncached_input_tokens)?,
                            input_cached_tokens: tokens(&call, "cache_read_input_tokens", u.cache_read_input_tokens)?,
                            input_cache_write_tokens: write,
                            input_cache_write_1h_tokens: write_1h,
                            output_tokens: tokens(&call, "output_tokens", u.output_tokens)?,
                            // The messages report has no request count: unknown, not zero.
                            requests: None,
                            extra,
                            computed_cost: None,
                            price_ref: None,
                        });
                    }
                }
                Ok(records)
            })
            .await?;
        Ok(stats)
    }
}

/// What this module registers: Anthropic syncs 90 days back, re-pulls 3, hourly.
pub(crate) static REGISTRATION: crate::Provider = crate::Provider {
    name: "anthropic",
    label: "Anthropic",
    base_url: "https://api.anthropic.com",
    secret_label: "Admin key",
    reports_as: PROVIDER,
    credential_hint: "check that it is a valid admin key with access to usage and costs",
    schedule: crate::Schedule::DEFAULT,
    connect: |_, base_url, admin_key| Ok(Box::new(Anthropic { base_url, admin_key })),
};

crate::provider::connector!(costs_and_usage Anthropic {});

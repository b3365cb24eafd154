//! OpenAI Costs API: `GET /v1/organization/costs` (providers.md §1), daily buckets grouped by
//! project and line item.

use burnrate_core::{ChargeCategory, CostRecord, SyncWindow};
use burnrate_net::HttpClient;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{
    Ask, BucketWidth, Call, Paged, Pager, ProgressSink, PullStats, Pulled, RecordSender, SourceError, SourceErrorKind,
    by_bucket, collect, error_message, money, report_url, tokens,
};

pub const PROVIDER: &str = "OpenAI";
const ENDPOINT: &str = "GET /v1/organization/costs";
/// The most daily buckets one page may hold.
const PAGE_BUCKETS: u32 = 180;

/// The costs connector of one OpenAI organization.
pub struct OpenAi {
    /// `https://api.openai.com` unless a proxy or a test server stands in.
    pub base_url: url::Url,
    pub admin_key: SecretString,
}

/// A page of any OpenAI organization report: daily buckets of `R` results.
#[derive(Deserialize)]
struct Page<R> {
    data: Vec<Bucket<R>>,
    has_more: bool,
    next_page: Option<String>,
}

#[derive(Deserialize)]
struct Bucket<R> {
    start_time: i64,
    end_time: i64,
    results: Vec<R>,
}

impl<R> Paged for Page<R> {
    fn cursor(&self) -> Option<String> {
        if self.has_more { self.next_page.clone() } else { None }
    }
    fn reached(&self) -> Option<DateTime<Utc>> {
        self.data.last().and_then(|b| DateTime::from_timestamp(b.end_time, 0))
    }
}

#[derive(Deserialize)]
struct CostResult {
    amount: Amount,
    line_item: Option<String>,
    project_id: Option<String>,
    api_key_id: Option<String>,
    quantity: Option<Box<RawValue>>,
    quantity_unit: Option<String>,
}

#[derive(Deserialize)]
struct Amount {
    value: Box<RawValue>,
    currency: String,
}

/// `organization.usage.completions.result`. Older responses lack the split fields; `input_tokens`
/// always includes cached and cache-write tokens.
#[derive(Deserialize)]
struct CompletionsResult {
    input_tokens: i64,
    output_tokens: i64,
    num_model_requests: i64,
    input_cached_tokens: Option<i64>,
    input_cache_write_tokens: Option<i64>,
    input_uncached_tokens: Option<i64>,
    project_id: Option<String>,
    api_key_id: Option<String>,
    model: Option<String>,
    service_tier: Option<String>,
    batch: Option<bool>,
}

fn time(call: &Call, secs: i64) -> Result<DateTime<Utc>, SourceError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| call.error(SourceErrorKind::Malformed(format!("bucket time {secs} is out of range"))))
}

impl OpenAi {
    fn url(&self, path: &str, group_by: &[&str], ask: &Ask<'_>) -> url::Url {
        let times = [
            ("start_time", ask.window.start_time().timestamp().to_string()),
            ("end_time", ask.window.end_time().timestamp().to_string()),
        ];
        report_url(&self.base_url, path, times, (ask.limit, ask.bucket), group_by, ask.page)
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.admin_key.expose_secret())
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
        let call = Call { provider: PROVIDER, endpoint: ENDPOINT, window };
        let auth = self.auth();
        let headers = [("authorization", auth.as_str())];
        let url = |ask: &Ask<'_>| self.url("/v1/organization/costs", &["project_id", "line_item"], ask);
        let pager = Pager::new(call, http, &headers, error_message, url, "costs", progress, PAGE_BUCKETS);
        let stats = pager
            .stream(out, |page: Page<CostResult>, stats| {
                let mut records = Vec::new();
                for bucket in page.data {
                    let (start, end) = (time(&call, bucket.start_time)?, time(&call, bucket.end_time)?);
                    for r in bucket.results {
                        let cost = money(&call, r.amount.value.get(), &r.amount.currency, &mut stats.rounded_values)?;
                        let quantity = r
                            .quantity
                            .map(|q| burnrate_core::parse_decimal(q.get()).map(|(d, _)| d))
                            .transpose()
                            .map_err(|e| call.error(SourceErrorKind::Malformed(format!("quantity: {e}"))))?;
                        // `line_item` is "model, token class" in every example seen; its format is
                        // not documented, so it is kept whole and the model taken best-effort.
                        let model = r.line_item.as_deref().and_then(|l| l.split_once(", ").map(|(m, _)| m.to_owned()));
                        records.push(CostRecord {
                            charge_period_start: start,
                            charge_period_end: end,
                            billed_cost: cost,
                            effective_cost: cost,
                            list_cost: cost,
                            list_cost_estimated: true,
                            provider_name: PROVIDER.into(),
                            service_name: "OpenAI API".into(),
                            sub_account_id: r.project_id,
                            sku_id: r.line_item.clone(),
                            model,
                            charge_category: ChargeCategory::Usage,
                            charge_description: r.line_item,
                            consumed_quantity: quantity,
                            consumed_unit: r.quantity_unit,
                            api_key_id: r.api_key_id,
                            tags: Default::default(),
                        });
                    }
                }
                Ok(records)
            })
            .await?;
        Ok(stats)
    }
}

const USAGE_ENDPOINT: &str = "GET /v1/organization/usage/completions";
/// The most daily buckets one usage page may hold.
const USAGE_PAGE_BUCKETS: u32 = 31;
/// The most hourly buckets one usage page may hold.
const USAGE_PAGE_HOURS: u32 = 168;

impl OpenAi {
    /// Pulls the usage of `window` from every usage endpoint into memory.
    pub async fn pull_usage(
        &self,
        http: &HttpClient,
        window: SyncWindow,
    ) -> Result<Pulled<burnrate_core::UsageRecord>, SourceError> {
        collect(|tx| async move { self.stream_usage(http, window, &|_| {}, &tx).await }).await
    }

    /// Sends the usage of `window` to `out` page by page: completions by project, API key, model,
    /// service tier and batch, with the three input classes disjoint (uncached excludes cached and
    /// cache-write tokens); then each other usage endpoint in its own unit.
    pub async fn stream_usage(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: &RecordSender<burnrate_core::UsageRecord>,
    ) -> Result<PullStats, SourceError> {
        let auth = self.auth();
        let headers = [("authorization", auth.as_str())];
        let groups = ["project_id", "api_key_id", "model", "service_tier", "batch"];
        let url = |ask: &Ask<'_>| self.url("/v1/organization/usage/completions", &groups, ask);
        let mut stats = PullStats::default();
        for (part, bucket) in by_bucket(window) {
            let call = Call { provider: PROVIDER, endpoint: USAGE_ENDPOINT, window: part };
            let pager = Pager::new(call, http, &headers, error_message, url, "usage", progress, USAGE_PAGE_BUCKETS);
            let pager = if bucket == BucketWidth::Hour { pager.hourly(USAGE_PAGE_HOURS) } else { pager };
            let part_stats = pager
                .stream(out, |page: Page<CompletionsResult>, _| {
                    let mut records = Vec::new();
                    for bucket in page.data {
                        let (start, end) = (time(&call, bucket.start_time)?, time(&call, bucket.end_time)?);
                        for r in bucket.results {
                            records.push(completions_record(&call, start, end, r)?);
                        }
                    }
                    Ok(records)
                })
                .await?;
            stats.add(part_stats);
        }
        for endpoint in OTHER_USAGE {
            stats.add(self.stream_other_usage(http, window, progress, endpoint, out).await?);
        }
        Ok(stats)
    }

    async fn stream_other_usage(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        endpoint: &OtherUsage,
        out: &RecordSender<burnrate_core::UsageRecord>,
    ) -> Result<PullStats, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: endpoint.endpoint, window };
        let auth = self.auth();
        let headers = [("authorization", auth.as_str())];
        let path = format!("/v1/organization/usage/{}", endpoint.path);
        let url = |ask: &Ask<'_>| self.url(&path, endpoint.groups, ask);
        let pager = Pager::new(call, http, &headers, error_message, url, "usage", progress, USAGE_PAGE_BUCKETS);
        let stats = pager
            .stream(out, |page: Page<serde_json::Map<String, serde_json::Value>>, _| {
                let mut records = Vec::new();
                for bucket in page.data {
                    let (start, end) = (time(&call, bucket.start_time)?, time(&call, bucket.end_time)?);
                    for r in bucket.results {
                        records.push(other_record(&call, endpoint, start, end, &r)?);
                    }
                }
                Ok(records)
            })
            .await?;
        Ok(stats)
    }
}

fn completions_record(
    call: &Call,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    r: CompletionsResult,
) -> Result<burnrate_core::UsageRecord, SourceError> {
    let cached = tokens(call, "input_cached_tokens", r.input_cached_tokens.unwrap_or(0))?;
    let write = tokens(call, "input_cache_write_tokens", r.input_cache_write_tokens.unwrap_or(0))?;
    let uncached = match r.input_uncached_tokens {
        Some(n) => tokens(call, "input_uncached_tokens", n)?,
        None => tokens(call, "input_tokens minus cached and cache-write tokens", r.input_tokens - cached - write)?,
    };
    let mut extra = std::collections::BTreeMap::new();
    if r.batch == Some(true) {
        extra.insert("batch".to_owned(), 1);
    }
    Ok(burnrate_core::UsageRecord {
        bucket_start: start,
        bucket_end: end,
        provider_name: PROVIDER.into(),
        usage_type: "completions".into(),
        model: r.model,
        project_id: r.project_id,
        api_key_id: r.api_key_id,
        service_tier: r.service_tier,
        input_uncached_tokens: uncached,
        input_cached_tokens: cached,
        input_cache_write_tokens: write,
        input_cache_write_1h_tokens: 0,
        output_tokens: tokens(call, "output_tokens", r.output_tokens)?,
        requests: Some(tokens(call, "num_model_requests", r.num_model_requests)?),
        extra,
        computed_cost: None,
        price_ref: None,
    })
}

fn other_record(
    call: &Call,
    endpoint: &OtherUsage,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    r: &serde_json::Map<String, serde_json::Value>,
) -> Result<burnrate_core::UsageRecord, SourceError> {
    let int = |field: &str| -> Result<Option<i64>, SourceError> {
        match r.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) => tokens(call, field, n).map(Some),
                None => Err(call.error(SourceErrorKind::Malformed(format!("{field} is not a whole number")))),
            },
        }
    };
    let text = |field: &str| r.get(field).and_then(|v| v.as_str()).map(str::to_owned);
    let units = int(endpoint.unit)?
        .ok_or_else(|| call.error(SourceErrorKind::Malformed(format!("{} is missing", endpoint.unit))))?;
    let mut extra = std::collections::BTreeMap::new();
    let input = if endpoint.unit == "input_tokens" {
        units
    } else {
        extra.insert(endpoint.unit.to_owned(), units);
        0
    };
    Ok(burnrate_core::UsageRecord {
        bucket_start: start,
        bucket_end: end,
        provider_name: PROVIDER.into(),
        usage_type: endpoint.path.into(),
        model: text("model"),
        project_id: text("project_id"),
        api_key_id: text("api_key_id"),
        service_tier: None,
        // These endpoints have no cache: all their input is uncached.
        input_uncached_tokens: input,
        input_cached_tokens: 0,
        input_cache_write_tokens: 0,
        input_cache_write_1h_tokens: 0,
        output_tokens: 0,
        requests: int("num_model_requests")?,
        extra,
        computed_cost: None,
        price_ref: None,
    })
}

/// A usage endpoint other than completions: what it is grouped by, and its own unit.
struct OtherUsage {
    path: &'static str,
    endpoint: &'static str,
    groups: &'static [&'static str],
    unit: &'static str,
}

const OTHER_USAGE: &[OtherUsage] = &[
    OtherUsage {
        path: "embeddings",
        endpoint: "GET /v1/organization/usage/embeddings",
        groups: &["project_id", "api_key_id", "model"],
        unit: "input_tokens",
    },
    OtherUsage {
        path: "moderations",
        endpoint: "GET /v1/organization/usage/moderations",
        groups: &["project_id", "api_key_id", "model"],
        unit: "input_tokens",
    },
    OtherUsage {
        path: "images",
        endpoint: "GET /v1/organization/usage/images",
        groups: &["project_id", "api_key_id", "model"],
        unit: "images",
    },
    OtherUsage {
        path: "audio_speeches",
        endpoint: "GET /v1/organization/usage/audio_speeches",
        groups: &["project_id", "api_key_id", "model"],
        unit: "characters",
    },
    OtherUsage {
        path: "audio_transcriptions",
        endpoint: "GET /v1/organization/usage/audio_transcriptions",
        groups: &["project_id", "api_key_id", "model"],
        unit: "seconds",
    },
    OtherUsage {
        path: "vector_stores",
        endpoint: "GET /v1/organization/usage/vector_stores",
        groups: &["project_id"],
        unit: "usage_bytes",
    },
    OtherUsage {
        path: "code_interpreter_sessions",
        endpoint: "GET /v1/organization/usage/code_interpreter_sessions",
        groups: &["project_id"],
        unit: "num_sessions",
    },
];

/// What this module registers: OpenAI syncs 90 days back, re-pulls 3, hourly.
pub(crate) static REGISTRATION: crate::Provider = crate::Provider {
    name: "openai",
    label: "OpenAI",
    base_url: "https://api.openai.com",
    secret_label: "Admin key",
    reports_as: PROVIDER,
    credential_hint: "check that it is a valid admin key with access to usage and costs",
    schedule: crate::Schedule::DEFAULT,
    connect: |_, base_url, admin_key| Ok(Box::new(OpenAi { base_url, admin_key })),
};

crate::provider::connector!(costs_and_usage OpenAi {});

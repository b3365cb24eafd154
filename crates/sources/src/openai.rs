//! OpenAI Costs API: `GET /v1/organization/costs` (providers.md §1), daily buckets grouped by
//! project and line item.

use burnrate_core::{ChargeCategory, CostRecord, SyncWindow};
use burnrate_net::HttpClient;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{
    Call, CostPull, Paged, ProgressSink, SourceError, SourceErrorKind, UsagePull, fetch_all, money, report_url, tokens,
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

#[derive(Deserialize)]
struct Page {
    data: Vec<Bucket>,
    has_more: bool,
    next_page: Option<String>,
}

#[derive(Deserialize)]
struct Bucket {
    start_time: i64,
    end_time: i64,
    results: Vec<CostResult>,
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

impl Paged for Page {
    fn cursor(&self) -> Option<String> {
        if self.has_more { self.next_page.clone() } else { None }
    }
    fn reached(&self) -> Option<DateTime<Utc>> {
        self.data.last().and_then(|b| DateTime::from_timestamp(b.end_time, 0))
    }
}

#[derive(Deserialize)]
struct UsagePage {
    data: Vec<UsageBucket>,
    has_more: bool,
    next_page: Option<String>,
}

impl Paged for UsagePage {
    fn cursor(&self) -> Option<String> {
        if self.has_more { self.next_page.clone() } else { None }
    }
    fn reached(&self) -> Option<DateTime<Utc>> {
        self.data.last().and_then(|b| DateTime::from_timestamp(b.end_time, 0))
    }
}

#[derive(Deserialize)]
struct UsageBucket {
    start_time: i64,
    end_time: i64,
    results: Vec<CompletionsResult>,
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

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorInner,
}

#[derive(Deserialize)]
struct ErrorInner {
    message: String,
}

fn error_detail(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(body).ok().map(|b| b.error.message)
}

fn time(call: &Call, secs: i64) -> Result<DateTime<Utc>, SourceError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| call.error(SourceErrorKind::Malformed(format!("bucket time {secs} is out of range"))))
}

impl OpenAi {
    fn url(&self, path: &str, window: &SyncWindow, group_by: &[&str], limit: u32, page: Option<&str>) -> url::Url {
        let times = [
            ("start_time", window.start_time().timestamp().to_string()),
            ("end_time", window.end_time().timestamp().to_string()),
        ];
        report_url(&self.base_url, path, times, limit, group_by, page)
    }

    /// Pulls every cost line of `window`.
    pub async fn pull_costs(&self, http: &HttpClient, window: SyncWindow) -> Result<CostPull, SourceError> {
        self.pull_costs_reporting(http, window, &|_| {}).await
    }

    /// [`Self::pull_costs`], reporting progress after every page.
    pub async fn pull_costs_reporting(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
    ) -> Result<CostPull, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: ENDPOINT, window };
        let auth = format!("Bearer {}", self.admin_key.expose_secret());
        let headers = [("authorization", auth.as_str())];
        let mut pull = CostPull::default();
        let url = |page: Option<&str>| {
            self.url("/v1/organization/costs", &window, &["project_id", "line_item"], PAGE_BUCKETS, page)
        };
        let pages: Vec<Page> = fetch_all(&call, http, &headers, error_detail, url, "costs", progress).await?;
        pull.pages = pages.len() as u32;
        for page in pages {
            for bucket in page.data {
                let (start, end) = (time(&call, bucket.start_time)?, time(&call, bucket.end_time)?);
                for r in bucket.results {
                    let cost = money(&call, r.amount.value.get(), &r.amount.currency, &mut pull.rounded_values)?;
                    let quantity = r
                        .quantity
                        .map(|q| burnrate_core::parse_decimal(q.get()).map(|(d, _)| d))
                        .transpose()
                        .map_err(|e| call.error(SourceErrorKind::Malformed(format!("quantity: {e}"))))?;
                    // `line_item` is "model, token class" in every example seen; its format is
                    // not documented, so it is kept whole and the model taken best-effort.
                    let model = r.line_item.as_deref().and_then(|l| l.split_once(", ").map(|(m, _)| m.to_owned()));
                    pull.records.push(CostRecord {
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
        }
        Ok(pull)
    }
}

const USAGE_ENDPOINT: &str = "GET /v1/organization/usage/completions";
/// The most daily buckets one usage page may hold.
const USAGE_PAGE_BUCKETS: u32 = 31;

impl OpenAi {
    /// Pulls the completions usage of `window`, by project, API key and model. The three input
    /// classes come out disjoint: uncached excludes cached and cache-write tokens.
    pub async fn pull_usage(&self, http: &HttpClient, window: SyncWindow) -> Result<UsagePull, SourceError> {
        self.pull_usage_reporting(http, window, &|_| {}).await
    }

    /// [`Self::pull_usage`], reporting progress after every page.
    pub async fn pull_usage_reporting(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
    ) -> Result<UsagePull, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: USAGE_ENDPOINT, window };
        let auth = format!("Bearer {}", self.admin_key.expose_secret());
        let headers = [("authorization", auth.as_str())];
        let groups = ["project_id", "api_key_id", "model", "service_tier", "batch"];
        let url = |page: Option<&str>| {
            self.url("/v1/organization/usage/completions", &window, &groups, USAGE_PAGE_BUCKETS, page)
        };
        let pages: Vec<UsagePage> = fetch_all(&call, http, &headers, error_detail, url, "usage", progress).await?;
        let mut pull = UsagePull { pages: pages.len() as u32, ..Default::default() };
        for bucket in pages.into_iter().flat_map(|p| p.data) {
            let (start, end) = (time(&call, bucket.start_time)?, time(&call, bucket.end_time)?);
            for r in bucket.results {
                let cached = tokens(&call, "input_cached_tokens", r.input_cached_tokens.unwrap_or(0))?;
                let write = tokens(&call, "input_cache_write_tokens", r.input_cache_write_tokens.unwrap_or(0))?;
                let uncached = match r.input_uncached_tokens {
                    Some(n) => tokens(&call, "input_uncached_tokens", n)?,
                    None => tokens(
                        &call,
                        "input_tokens minus cached and cache-write tokens",
                        r.input_tokens - cached - write,
                    )?,
                };
                let mut extra = std::collections::BTreeMap::new();
                if r.batch == Some(true) {
                    extra.insert("batch".to_owned(), 1);
                }
                pull.records.push(burnrate_core::UsageRecord {
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
                    output_tokens: tokens(&call, "output_tokens", r.output_tokens)?,
                    requests: Some(tokens(&call, "num_model_requests", r.num_model_requests)?),
                    extra,
                });
            }
        }
        for endpoint in OTHER_USAGE {
            self.pull_other_usage(http, window, progress, endpoint, &mut pull).await?;
        }
        Ok(pull)
    }

    async fn pull_other_usage(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        endpoint: &OtherUsage,
        pull: &mut UsagePull,
    ) -> Result<(), SourceError> {
        let call = Call { provider: PROVIDER, endpoint: endpoint.endpoint, window };
        let auth = format!("Bearer {}", self.admin_key.expose_secret());
        let headers = [("authorization", auth.as_str())];
        let path = format!("/v1/organization/usage/{}", endpoint.path);
        let url = |page: Option<&str>| self.url(&path, &window, endpoint.groups, USAGE_PAGE_BUCKETS, page);
        let pages: Vec<GenericPage> = fetch_all(&call, http, &headers, error_detail, url, "usage", progress).await?;
        pull.pages += pages.len() as u32;
        for bucket in pages.into_iter().flat_map(|p| p.data) {
            let (start, end) = (time(&call, bucket.start_time)?, time(&call, bucket.end_time)?);
            for r in bucket.results {
                let int = |field: &str| -> Result<Option<i64>, SourceError> {
                    match r.get(field) {
                        None | Some(serde_json::Value::Null) => Ok(None),
                        Some(v) => match v.as_i64() {
                            Some(n) => tokens(&call, field, n).map(Some),
                            None => {
                                Err(call.error(SourceErrorKind::Malformed(format!("{field} is not a whole number"))))
                            }
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
                pull.records.push(burnrate_core::UsageRecord {
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
                    output_tokens: 0,
                    requests: int("num_model_requests")?,
                    extra,
                });
            }
        }
        Ok(())
    }
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

#[derive(Deserialize)]
struct GenericPage {
    data: Vec<GenericBucket>,
    has_more: bool,
    next_page: Option<String>,
}

impl Paged for GenericPage {
    fn cursor(&self) -> Option<String> {
        if self.has_more { self.next_page.clone() } else { None }
    }
    fn reached(&self) -> Option<DateTime<Utc>> {
        self.data.last().and_then(|b| DateTime::from_timestamp(b.end_time, 0))
    }
}

#[derive(Deserialize)]
struct GenericBucket {
    start_time: i64,
    end_time: i64,
    results: Vec<serde_json::Map<String, serde_json::Value>>,
}

//! OpenRouter (providers.md §6), read with a management key: `GET /api/v1/activity` one completed
//! UTC day at a time — spend (`usage`, USD credits) and tokens per model, provider endpoint and
//! workspace — and `GET /api/v1/credits` for the balance.
//!
//! `/activity` reaches back only 30 completed days ([`OpenRouter::reaches_back`]); the sync keeps
//! older days of a month it replaces from the lake. One day's answer holds both the costs and the
//! tokens, so the days fetched for the costs are kept for the usage pull of the same sync.

use std::collections::BTreeMap;
use std::sync::Mutex;

use burnrate_core::{ChargeCategory, CostRecord, Money, SyncWindow, UsageRecord};
use burnrate_net::HttpClient;
use chrono::{Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{
    Call, Progress, ProgressSink, PullStats, Pulled, RecordSender, SourceError, SourceErrorKind, collect,
    error_message, money, tokens,
};

pub const PROVIDER: &str = "OpenRouter";
const ACTIVITY_ENDPOINT: &str = "GET /api/v1/activity";
const CREDITS_ENDPOINT: &str = "GET /api/v1/credits";
/// How many completed UTC days `/activity` covers.
pub const ACTIVITY_DAYS: i64 = 30;

/// One OpenRouter account, reached with a management key.
pub struct OpenRouter {
    /// `https://openrouter.ai` unless a proxy or a test server stands in.
    pub base_url: url::Url,
    pub management_key: SecretString,
    /// Days already fetched in this sync, for the usage pull after the costs.
    fetched: Mutex<BTreeMap<NaiveDate, Vec<Activity>>>,
}

#[derive(Deserialize)]
struct ActivityPage {
    data: Vec<Activity>,
}

#[derive(Clone, Deserialize)]
struct Activity {
    date: NaiveDate,
    model: String,
    model_permaslug: String,
    provider_name: String,
    /// USD of OpenRouter credits, kept as the JSON token's text so no digit is lost.
    usage: Box<RawValue>,
    requests: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    reasoning_tokens: i64,
    /// Present with `group_by=workspace`.
    #[serde(default)]
    workspace_id: Option<String>,
}

#[derive(Deserialize)]
struct CreditsPage {
    data: CreditsData,
}

#[derive(Deserialize)]
struct CreditsData {
    total_credits: Box<RawValue>,
    total_usage: Box<RawValue>,
}

/// The account's prepaid credits (USD): bought, spent, and what is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credits {
    pub total: Money,
    pub used: Money,
}

impl Credits {
    pub fn remaining(&self) -> Decimal {
        self.total.amount() - self.used.amount()
    }
}

impl OpenRouter {
    pub fn new(base_url: url::Url, management_key: SecretString) -> Self {
        Self { base_url, management_key, fetched: Mutex::default() }
    }

    /// The first day `/activity` still answers for when today (UTC) is `today`.
    pub fn reaches_back(today: NaiveDate) -> NaiveDate {
        today - Duration::days(ACTIVITY_DAYS)
    }

    fn url(&self, path: &str, day: Option<NaiveDate>) -> url::Url {
        let mut url = self.base_url.clone();
        let full = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&full);
        url.set_query(None);
        if let Some(day) = day {
            url.query_pairs_mut().append_pair("date", &day.to_string()).append_pair("group_by", "workspace");
        }
        url
    }

    /// One day's activity, from this sync's earlier fetch or from OpenRouter.
    async fn day(&self, http: &HttpClient, call: &Call, day: NaiveDate) -> Result<Vec<Activity>, SourceError> {
        if let Some(rows) = self.fetched.lock().expect("fetched days").get(&day) {
            return Ok(rows.clone());
        }
        let auth = format!("Bearer {}", self.management_key.expose_secret());
        let body = call
            .get(http, &self.url("/api/v1/activity", Some(day)), &[("authorization", &auth)], error_message)
            .await?;
        let page: ActivityPage =
            serde_json::from_slice(&body).map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))?;
        if let Some(other) = page.data.iter().find(|a| a.date != day) {
            return Err(call.error(SourceErrorKind::Malformed(format!(
                "asked for {day}, the answer holds a row of {}",
                other.date
            ))));
        }
        self.fetched.lock().expect("fetched days").insert(day, page.data.clone());
        Ok(page.data)
    }

    /// Walks the completed days of `window` (today is not complete and has no activity yet),
    /// handing each day's rows to `convert` and the records to `out`.
    async fn stream_days<T>(
        &self,
        http: &HttpClient,
        call: Call,
        report: &'static str,
        progress: ProgressSink<'_>,
        out: &RecordSender<T>,
        mut convert: impl FnMut(&Call, Activity, &mut PullStats) -> Result<T, SourceError>,
    ) -> Result<PullStats, SourceError> {
        let today = Utc::now().date_naive();
        let mut stats = PullStats::default();
        let mut day = call.window.start();
        while day < call.window.end() && day < today {
            let mut records = Vec::new();
            for row in self.day(http, &call, day).await? {
                records.push(convert(&call, row, &mut stats)?);
            }
            stats.pages += 1;
            stats.rows += records.len();
            crate::hand_over(&call, out, records).await?;
            progress(Progress { report, pages: stats.pages, window: call.window, reached: Some(day) });
            day += Duration::days(1);
        }
        Ok(stats)
    }

    /// Pulls every cost line of `window` into memory.
    pub async fn pull_costs(&self, http: &HttpClient, window: SyncWindow) -> Result<Pulled<CostRecord>, SourceError> {
        collect(|tx| async move { self.stream_costs(http, window, &|_| {}, &tx).await }).await
    }

    /// Sends the spend of each completed day of `window` to `out`: one cost line per model,
    /// provider endpoint and workspace.
    pub async fn stream_costs(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: &RecordSender<CostRecord>,
    ) -> Result<PullStats, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: ACTIVITY_ENDPOINT, window };
        self.stream_days(http, call, "costs", progress, out, |call, a, stats| {
            let cost = money(call, a.usage.get(), "USD", &mut stats.rounded_values)?;
            let prompt = tokens(call, "prompt_tokens", a.prompt_tokens)?;
            let completion = tokens(call, "completion_tokens", a.completion_tokens)?;
            let start = a.date.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            Ok(CostRecord {
                charge_period_start: start,
                charge_period_end: start + Duration::days(1),
                billed_cost: cost,
                effective_cost: cost,
                list_cost: cost,
                list_cost_estimated: true,
                provider_name: PROVIDER.into(),
                service_name: "OpenRouter".into(),
                sub_account_id: a.workspace_id,
                sku_id: Some(a.model_permaslug.clone()),
                model: Some(a.model),
                charge_category: ChargeCategory::Usage,
                charge_description: Some(format!("{} via {}", a.model_permaslug, a.provider_name)),
                consumed_quantity: Some(Decimal::from(prompt) + Decimal::from(completion)),
                consumed_unit: Some("Tokens".into()),
                api_key_id: None,
                tags: Default::default(),
            })
        })
        .await
    }

    /// Pulls the usage of `window` into memory.
    pub async fn pull_usage(&self, http: &HttpClient, window: SyncWindow) -> Result<Pulled<UsageRecord>, SourceError> {
        collect(|tx| async move { self.stream_usage(http, window, &|_| {}, &tx).await }).await
    }

    /// Sends the tokens and requests of each completed day of `window` to `out`.
    pub async fn stream_usage(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: &RecordSender<UsageRecord>,
    ) -> Result<PullStats, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: ACTIVITY_ENDPOINT, window };
        self.stream_days(http, call, "usage", progress, out, |call, a, _| {
            let start = a.date.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            let mut extra = BTreeMap::new();
            extra.insert("reasoning_tokens".to_owned(), tokens(call, "reasoning_tokens", a.reasoning_tokens)?);
            Ok(UsageRecord {
                bucket_start: start,
                bucket_end: start + Duration::days(1),
                provider_name: PROVIDER.into(),
                usage_type: "activity".into(),
                model: Some(a.model),
                project_id: a.workspace_id,
                api_key_id: None,
                service_tier: None,
                // OpenRouter does not split cached input out.
                input_uncached_tokens: tokens(call, "prompt_tokens", a.prompt_tokens)?,
                input_cached_tokens: 0,
                input_cache_write_tokens: 0,
                input_cache_write_1h_tokens: 0,
                output_tokens: tokens(call, "completion_tokens", a.completion_tokens)?,
                requests: Some(tokens(call, "requests", a.requests)?),
                extra,
                computed_cost: None,
                price_ref: None,
            })
        })
        .await
    }

    /// The account's credits: bought and used, in USD.
    pub async fn credits(&self, http: &HttpClient, window: SyncWindow) -> Result<Credits, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: CREDITS_ENDPOINT, window };
        let auth = format!("Bearer {}", self.management_key.expose_secret());
        let body =
            call.get(http, &self.url("/api/v1/credits", None), &[("authorization", &auth)], error_message).await?;
        let page: CreditsPage =
            serde_json::from_slice(&body).map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))?;
        let mut rounded = 0;
        Ok(Credits {
            total: money(&call, page.data.total_credits.get(), "USD", &mut rounded)?,
            used: money(&call, page.data.total_usage.get(), "USD", &mut rounded)?,
        })
    }
}

/// What this module registers. OpenRouter reports completed days only, as far back as 30 days:
/// each sync takes the whole of them, 4 times a day (the credits balance is read with each).
pub(crate) static REGISTRATION: crate::Provider = crate::Provider {
    name: "openrouter",
    label: "OpenRouter",
    base_url: "https://openrouter.ai",
    secret_label: "Management key",
    reports_as: PROVIDER,
    credential_hint: "check that it is a management key (Settings → Management keys): an inference key cannot read activity or credits",
    schedule: crate::Schedule {
        backfill_days: ACTIVITY_DAYS as u32,
        repull_days: ACTIVITY_DAYS as u32,
        interval_minutes: 360,
    },
    connect: |_, base_url, key| Ok(Box::new(OpenRouter::new(base_url, key))),
};

crate::provider::connector!(costs_and_usage OpenRouter {
    fn reaches_back(&self, today: chrono::NaiveDate) -> Option<chrono::NaiveDate> {
        Some(OpenRouter::reaches_back(today))
    }

    async fn credits(&self, http: &HttpClient, window: SyncWindow) -> Result<Option<Credits>, SourceError> {
        OpenRouter::credits(self, http, window).await.map(Some)
    }
});

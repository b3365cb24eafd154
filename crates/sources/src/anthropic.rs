//! Anthropic cost report: `GET /v1/organizations/cost_report` (providers.md §2), daily buckets
//! grouped by workspace and description. Amounts are decimal strings in cents.

use burnrate_core::{ChargeCategory, CostRecord, SyncWindow};
use burnrate_net::HttpClient;
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{Call, CostPull, SourceError, SourceErrorKind, money};

pub const PROVIDER: &str = "Anthropic";
const ENDPOINT: &str = "GET /v1/organizations/cost_report";
const API_VERSION: &str = "2023-06-01";
/// The most daily buckets one page may hold.
const PAGE_BUCKETS: u32 = 31;

/// The cost connector of one Anthropic organization (an Admin API key).
pub struct AnthropicCosts {
    /// `https://api.anthropic.com` unless a proxy or a test server stands in.
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
    starting_at: DateTime<Utc>,
    ending_at: DateTime<Utc>,
    results: Vec<CostItem>,
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

impl AnthropicCosts {
    fn url(&self, window: &SyncWindow, page: Option<&str>) -> url::Url {
        let mut url = self.base_url.clone();
        let path = format!("{}/v1/organizations/cost_report", url.path().trim_end_matches('/'));
        url.set_path(&path);
        {
            let mut q = url.query_pairs_mut();
            q.clear()
                .append_pair("starting_at", &window.start_time().to_rfc3339_opts(SecondsFormat::Secs, true))
                .append_pair("ending_at", &window.end_time().to_rfc3339_opts(SecondsFormat::Secs, true))
                .append_pair("bucket_width", "1d")
                .append_pair("group_by[]", "workspace_id")
                .append_pair("group_by[]", "description")
                .append_pair("limit", &PAGE_BUCKETS.to_string());
            if let Some(p) = page {
                q.append_pair("page", p);
            }
        }
        url
    }

    pub async fn pull(&self, http: &HttpClient, window: SyncWindow) -> Result<CostPull, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: ENDPOINT, window };
        let headers = [("x-api-key", self.admin_key.expose_secret()), ("anthropic-version", API_VERSION)];
        let mut pull = CostPull::default();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let body = call.get(http, &self.url(&window, cursor.as_deref()), &headers, error_detail).await?;
            pull.pages += 1;
            let page: Page =
                serde_json::from_slice(&body).map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))?;
            for bucket in page.data {
                for item in bucket.results {
                    let cents: Decimal = burnrate_core::parse_decimal(&item.amount)
                        .map(|(d, _)| d)
                        .map_err(|e| call.error(SourceErrorKind::Malformed(format!("amount: {e}"))))?;
                    // Cents to currency units, in decimal arithmetic.
                    let units = cents / Decimal::ONE_HUNDRED;
                    let cost = money(&call, &units.to_string(), &item.currency, &mut pull.rounded_values)?;
                    let service = match item.cost_type.as_deref() {
                        Some("web_search") => "Claude API Web Search",
                        Some("code_execution") => "Claude API Code Execution",
                        _ => "Claude API",
                    };
                    let sku = match (&item.model, &item.token_type) {
                        (Some(m), Some(t)) => Some(format!("{m}:{t}")),
                        _ => item.description.clone(),
                    };
                    pull.records.push(CostRecord {
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
            let next = if page.has_more { page.next_page } else { None };
            match call.next_cursor(&mut seen, next, pull.pages)? {
                Some(c) => cursor = Some(c),
                None => return Ok(pull),
            }
        }
    }
}

//! OpenAI Costs API: `GET /v1/organization/costs` (providers.md §1), daily buckets grouped by
//! project and line item.

use burnrate_core::{ChargeCategory, CostRecord, SyncWindow};
use burnrate_net::HttpClient;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{Call, CostPull, SourceError, SourceErrorKind, money};

pub const PROVIDER: &str = "OpenAI";
const ENDPOINT: &str = "GET /v1/organization/costs";
/// The most daily buckets one page may hold.
const PAGE_BUCKETS: u32 = 180;

/// The costs connector of one OpenAI organization.
pub struct OpenAiCosts {
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

impl OpenAiCosts {
    fn url(&self, window: &SyncWindow, page: Option<&str>) -> url::Url {
        let mut url = self.base_url.clone();
        let path = format!("{}/v1/organization/costs", url.path().trim_end_matches('/'));
        url.set_path(&path);
        {
            let mut q = url.query_pairs_mut();
            q.clear()
                .append_pair("start_time", &window.start_time().timestamp().to_string())
                .append_pair("end_time", &window.end_time().timestamp().to_string())
                .append_pair("bucket_width", "1d")
                // The bracket spelling is what OpenAI's own SDK sends.
                .append_pair("group_by[]", "project_id")
                .append_pair("group_by[]", "line_item")
                .append_pair("limit", &PAGE_BUCKETS.to_string());
            if let Some(p) = page {
                q.append_pair("page", p);
            }
        }
        url
    }

    /// Pulls every cost line of `window`.
    pub async fn pull(&self, http: &HttpClient, window: SyncWindow) -> Result<CostPull, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: ENDPOINT, window };
        let auth = format!("Bearer {}", self.admin_key.expose_secret());
        let headers = [("authorization", auth.as_str())];
        let mut pull = CostPull::default();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let body = call.get(http, &self.url(&window, cursor.as_deref()), &headers, error_detail).await?;
            pull.pages += 1;
            let page: Page =
                serde_json::from_slice(&body).map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))?;
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
            let next = if page.has_more { page.next_page } else { None };
            match call.next_cursor(&mut seen, next, pull.pages)? {
                Some(c) => cursor = Some(c),
                None => return Ok(pull),
            }
        }
    }
}

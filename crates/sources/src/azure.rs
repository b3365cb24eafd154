//! Azure Cost Management (providers.md §4): an Entra ID client-credentials token, then the Query
//! API on a subscription, resource group, management group or billing account — daily costs of
//! Azure AI Services resources (`microsoft.cognitiveservices/accounts`: Azure OpenAI, AI Foundry)
//! grouped by resource and meter, `ActualCost` for the billed cost and `AmortizedCost` for the
//! effective cost, joined on day, resource and meter.
//!
//! Traps handled: columns are read by name (their order is not promised), `UsageDate` is a
//! `yyyymmdd` number, amounts are doubles with float noise (rounded half-even to 9 decimals, which
//! restores the billed value), a page is followed by POSTing the same body to `nextLink` (only on
//! the same host: the token goes with it), `204 No Content` means no rows, and a 429 waits as long
//! as the longest of Azure's retry headers asks. One month is queried at a time: Azure charges
//! its query budget per month of data, and a month's rows are held to join the two cost types.

use std::collections::BTreeMap;

use burnrate_core::{ChargeCategory, CostRecord, Money, SyncWindow};
use burnrate_net::HttpClient;
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{classify, fetch_error, sanitize};
use crate::{Call, Progress, ProgressSink, PullStats, Pulled, RecordSender, SourceError, SourceErrorKind, collect};

pub const PROVIDER: &str = "Microsoft";
const TOKEN_ENDPOINT: &str = "POST /oauth2/v2.0/token";
const QUERY_ENDPOINT: &str = "POST Microsoft.CostManagement/query";
pub const API_VERSION: &str = "2025-03-01";
pub const LOGIN_URL: &str = "https://login.microsoftonline.com";
/// The resource type of Azure OpenAI and AI Foundry accounts.
pub const AI_RESOURCE_TYPE: &str = "microsoft.cognitiveservices/accounts";
/// Stops a provider that keeps saying "more" from looping forever.
const MAX_PAGES: u32 = 10_000;

/// An Entra ID application (service principal) allowed to read costs at `scope`.
pub struct CostManagement {
    /// `https://management.azure.com` unless a proxy or a test server stands in.
    pub base_url: url::Url,
    /// `https://login.microsoftonline.com` unless a proxy or a test server stands in.
    pub login_url: url::Url,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// `subscriptions/<id>`, `subscriptions/<id>/resourceGroups/<name>`,
    /// `providers/Microsoft.Management/managementGroups/<id>` or
    /// `providers/Microsoft.Billing/billingAccounts/<id>`.
    pub scope: String,
    token: crate::oauth::TokenCache,
}

#[derive(Deserialize)]
struct QueryReply {
    properties: QueryProperties,
}

#[derive(Deserialize)]
struct QueryProperties {
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
    columns: Vec<Column>,
    rows: Vec<Vec<Box<RawValue>>>,
}

#[derive(Deserialize)]
struct Column {
    name: String,
}

/// ARM's error body: `{"error": {"code": …, "message": …}}`.
fn arm_error(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: String,
        message: String,
    }
    serde_json::from_slice::<Body>(body).ok().map(|b| format!("{}: {}", b.error.code, b.error.message))
}

/// (day, resource id, meter): what the two cost types are joined on.
type LineKey = (NaiveDate, String, String);

/// One row of the query answer, read by column name.
struct Row {
    key: LineKey,
    cost: Money,
    quantity: Option<Decimal>,
}

/// Where each needed column is in this answer.
struct Columns {
    cost: usize,
    quantity: Option<usize>,
    date: usize,
    resource: usize,
    meter: usize,
    currency: usize,
}

impl Columns {
    fn find(call: &Call, columns: &[Column]) -> Result<Self, SourceError> {
        let at = |names: &[&str]| columns.iter().position(|c| names.iter().any(|n| c.name.eq_ignore_ascii_case(n)));
        let need = |names: &[&str]| {
            at(names)
                .ok_or_else(|| call.error(SourceErrorKind::Malformed(format!("the answer has no {} column", names[0]))))
        };
        Ok(Self {
            cost: need(&["Cost", "PreTaxCost"])?,
            quantity: at(&["UsageQuantity"]),
            date: need(&["UsageDate"])?,
            resource: need(&["ResourceId"])?,
            meter: need(&["Meter"])?,
            currency: need(&["Currency"])?,
        })
    }

    fn row(&self, call: &Call, raw: &[Box<RawValue>], rounded: &mut u32) -> Result<Row, SourceError> {
        let malformed = |what: String| call.error(SourceErrorKind::Malformed(what));
        let cell = |i: usize| raw.get(i).map(|v| v.get()).ok_or_else(|| malformed(format!("a row has no column {i}")));
        let text = |i: usize| -> Result<String, SourceError> {
            serde_json::from_str::<Option<String>>(cell(i)?)
                .map(Option::unwrap_or_default)
                .map_err(|e| malformed(format!("column {i}: {e}")))
        };
        let date = cell(self.date)?;
        let day = NaiveDate::parse_from_str(date.trim_matches('"'), "%Y%m%d")
            .map_err(|_| malformed(format!("UsageDate {date} is not yyyymmdd")))?;
        let currency = text(self.currency)?;
        let cost = crate::money(call, cell(self.cost)?, &currency, rounded)?;
        let quantity = match self.quantity {
            Some(i) => Some(
                burnrate_core::parse_decimal(cell(i)?)
                    .map(|(d, _)| d)
                    .map_err(|e| malformed(format!("UsageQuantity: {e}")))?,
            ),
            None => None,
        };
        // ARM ids are case-insensitive and Azure is not consistent in their case.
        Ok(Row { key: (day, text(self.resource)?.to_ascii_lowercase(), text(self.meter)?), cost, quantity })
    }
}

/// The model a meter is for, where its name says it ("gpt-4o-0806-Inp-glbl 1K Tokens" →
/// "gpt-4o-0806"): the text before the input/output marker. Meter names are not documented, so
/// this is best effort and the meter itself is kept as the SKU.
pub fn model_of_meter(meter: &str) -> Option<String> {
    let lower = meter.to_ascii_lowercase();
    ["-inp", "-outp", " input", " output", "-cchd", " cached"]
        .iter()
        .filter_map(|marker| lower.find(marker))
        .min()
        .filter(|at| *at > 0)
        .map(|at| meter[..at].trim().to_owned())
}

/// The unit a meter is priced in, where its name ends with it ("… 1K Tokens" → "1K Tokens").
fn unit_of_meter(meter: &str) -> Option<String> {
    let words: Vec<&str> = meter.split_whitespace().collect();
    match words.as_slice() {
        [.., block, "Tokens"] if block.starts_with(|c: char| c.is_ascii_digit()) => Some(format!("{block} Tokens")),
        _ => None,
    }
}

/// The subscription in an ARM resource id (`/subscriptions/<id>/resourcegroups/…`).
fn subscription_of(resource: &str) -> Option<String> {
    let mut parts = resource.split('/').filter(|p| !p.is_empty());
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("subscriptions") {
            return parts.next().map(str::to_owned);
        }
    }
    None
}

impl CostManagement {
    pub fn new(
        base_url: url::Url,
        login_url: url::Url,
        tenant_id: String,
        client_id: String,
        client_secret: SecretString,
        scope: String,
    ) -> Self {
        Self { base_url, login_url, tenant_id, client_id, client_secret, scope, token: Default::default() }
    }

    /// A bearer token: the one held while it has more than two minutes left, else a new one.
    async fn token(&self, http: &HttpClient, window: SyncWindow) -> Result<SecretString, SourceError> {
        if let Some(token) = self.token.get() {
            return Ok(token);
        }
        let call = Call { provider: PROVIDER, endpoint: TOKEN_ENDPOINT, window };
        let mut url = self.login_url.clone();
        let path = format!("{}/{}/oauth2/v2.0/token", url.path().trim_end_matches('/'), self.tenant_id);
        url.set_path(&path);
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.client_secret.expose_secret())
            .append_pair("scope", "https://management.azure.com/.default")
            .finish();
        crate::oauth::fetch_token(http, &call, &url, form, &self.token).await
    }

    fn query_url(&self) -> url::Url {
        let mut url = self.base_url.clone();
        let path = format!(
            "{}/{}/providers/Microsoft.CostManagement/query",
            url.path().trim_end_matches('/'),
            self.scope.trim_matches('/')
        );
        url.set_path(&path);
        url.set_query(Some(&format!("api-version={API_VERSION}")));
        url
    }

    /// The query of one cost type over `days` (at most a month).
    fn body(cost_type: &str, days: SyncWindow) -> bytes::Bytes {
        let last = days.end() - Duration::days(1);
        serde_json::json!({
            "type": cost_type,
            "timeframe": "Custom",
            "timePeriod": { "from": format!("{}T00:00:00Z", days.start()), "to": format!("{last}T23:59:59Z") },
            "dataset": {
                "granularity": "Daily",
                "aggregation": {
                    "totalCost": { "name": "Cost", "function": "Sum" },
                    "totalQuantity": { "name": "UsageQuantity", "function": "Sum" }
                },
                "grouping": [
                    { "type": "Dimension", "name": "ResourceId" },
                    { "type": "Dimension", "name": "Meter" }
                ],
                "filter": {
                    "dimensions": { "name": "ResourceType", "operator": "In", "values": [AI_RESOURCE_TYPE] }
                }
            }
        })
        .to_string()
        .into()
    }

    /// Every row of one cost type over `days`, following `nextLink`.
    async fn query(
        &self,
        http: &HttpClient,
        call: &Call,
        cost_type: &str,
        days: SyncWindow,
        stats: &mut PullStats,
    ) -> Result<Vec<Row>, SourceError> {
        let body = Self::body(cost_type, days);
        let mut url = self.query_url();
        let mut rows = Vec::new();
        let mut seen = Vec::new();
        let mut renewed = false;
        loop {
            let token = self.token(http, call.window).await?;
            let auth = format!("Bearer {}", token.expose_secret());
            let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
            let reply = http.post_read(&url, &headers, body.clone()).await.map_err(|e| call.error(fetch_error(e)))?;
            drop(auth);
            let request_id = reply.headers.get("x-ms-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            match reply.status {
                204 => return Ok(rows),
                200..=299 => {}
                401 if !renewed
                    && arm_error(&reply.body).is_some_and(|e| e.starts_with("ExpiredAuthenticationToken")) =>
                {
                    // The token ran out mid-sync (a long backfill): renew it once and ask again.
                    self.token.clear();
                    renewed = true;
                    continue;
                }
                status => {
                    let detail =
                        arm_error(&reply.body).map(|m| sanitize(&m)).unwrap_or_else(|| "no error message".into());
                    let detail =
                        if request_id.is_empty() { detail } else { format!("{detail} (request {request_id})") };
                    return Err(call.error(classify(status, reply.attempts, detail)));
                }
            }
            let page: QueryReply = serde_json::from_slice(&reply.body)
                .map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))?;
            stats.pages += 1;
            if !page.properties.rows.is_empty() {
                let columns = Columns::find(call, &page.properties.columns)?;
                for raw in &page.properties.rows {
                    rows.push(columns.row(call, raw, &mut stats.rounded_values)?);
                }
            }
            let Some(next) = page.properties.next_link.filter(|n| !n.is_empty()) else { return Ok(rows) };
            let next =
                url::Url::parse(&next).map_err(|e| call.error(SourceErrorKind::Malformed(format!("nextLink: {e}"))))?;
            // The bearer token goes wherever nextLink points: only ever to the API's own origin.
            if next.origin() != self.base_url.origin() {
                return Err(call.error(SourceErrorKind::Malformed(format!(
                    "nextLink points to another host ({})",
                    next.host_str().unwrap_or("none")
                ))));
            }
            if seen.contains(&next) || stats.pages >= MAX_PAGES {
                return Err(call.error(SourceErrorKind::Malformed("paging does not end (nextLink repeated)".into())));
            }
            seen.push(next.clone());
            url = next;
        }
    }

    /// Pulls every cost line of `window` into memory.
    pub async fn pull_costs(&self, http: &HttpClient, window: SyncWindow) -> Result<Pulled<CostRecord>, SourceError> {
        collect(|tx| async move { self.stream_costs(http, window, &|_| {}, &tx).await }).await
    }

    /// Sends the AI services' cost lines of `window` to `out`, a month at a time.
    pub async fn stream_costs(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: &RecordSender<CostRecord>,
    ) -> Result<PullStats, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: QUERY_ENDPOINT, window };
        let mut stats = PullStats::default();
        for days in window.months() {
            let actual = self.query(http, &call, "ActualCost", days, &mut stats).await?;
            let amortized = self.query(http, &call, "AmortizedCost", days, &mut stats).await?;
            let records = join(&call, actual, amortized)?;
            stats.rows += records.len();
            crate::hand_over(&call, out, records).await?;
            let reached = Some(days.end() - Duration::days(1));
            progress(Progress { report: "costs", pages: stats.pages, window, reached });
        }
        Ok(stats)
    }
}

/// One cost line per day, resource and meter: the actual cost billed, the amortized cost
/// effective (a reservation's purchase spread over the days that use it). A line with only one
/// of the two is 0 in the other.
fn join(call: &Call, actual: Vec<Row>, amortized: Vec<Row>) -> Result<Vec<CostRecord>, SourceError> {
    let add = |sum: Option<Money>, cost: Money| match sum {
        None => Ok(Some(cost)),
        Some(sum) => {
            sum.checked_add(&cost).map(Some).map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))
        }
    };
    // (billed, effective, quantity) by day, resource and meter.
    type Line = (Option<Money>, Option<Money>, Option<Decimal>);
    let mut lines: BTreeMap<LineKey, Line> = BTreeMap::new();
    for row in actual {
        let line = lines.entry(row.key).or_default();
        line.0 = add(line.0, row.cost)?;
        line.2 = Some(line.2.unwrap_or_default() + row.quantity.unwrap_or_default());
    }
    for row in amortized {
        let line = lines.entry(row.key).or_default();
        line.1 = add(line.1, row.cost)?;
    }
    Ok(lines
        .into_iter()
        .map(|((day, resource, meter), (billed, effective, quantity))| {
            let currency = billed.or(effective).expect("a line has one of the two").currency();
            let billed = billed.unwrap_or(Money::zero(currency));
            let effective = effective.unwrap_or(Money::zero(currency));
            let start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            CostRecord {
                charge_period_start: start,
                charge_period_end: start + Duration::days(1),
                billed_cost: billed,
                effective_cost: effective,
                list_cost: billed,
                list_cost_estimated: true,
                provider_name: PROVIDER.into(),
                service_name: "Azure AI Services".into(),
                sub_account_id: subscription_of(&resource),
                sku_id: Some(meter.clone()),
                model: model_of_meter(&meter),
                charge_category: ChargeCategory::Usage,
                consumed_unit: unit_of_meter(&meter),
                charge_description: Some(meter),
                consumed_quantity: quantity,
                api_key_id: None,
                tags: Default::default(),
            }
        })
        .collect())
}

/// What this module registers. Azure finalises a month up to 72 hours after it ends and throttles
/// hard: 35 days re-pulled every 6 hours.
pub(crate) static REGISTRATION: crate::Provider = crate::Provider {
    name: "azure",
    label: "Azure AI",
    base_url: "https://management.azure.com",
    secret_label: "Client secret",
    reports_as: PROVIDER,
    credential_hint: "check the tenant id, the application (client) id and its client secret (the secret's value, not its id), and that the application has the Cost Management Reader role on the scope",
    schedule: crate::Schedule { repull_days: 35, interval_minutes: 360, ..crate::Schedule::DEFAULT },
    connect,
};

/// What an Azure source needs beside its sealed client secret: the Entra ID tenant, the
/// application (client) id the secret belongs to, and the scope read (`subscriptions/<id>`, a
/// resource group, management group or billing account).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub tenant_id: TenantId,
    pub client_id: ClientId,
    pub scope: Scope,
}

/// A Cost Management connector from a source's settings: its tenant, client and scope.
fn connect(
    config: &crate::SourceConfig,
    base_url: url::Url,
    client_secret: SecretString,
) -> Result<Box<dyn crate::Connector>, String> {
    let crate::ProviderSettings::Azure(settings) = &config.provider else { return Err("not an Azure source".into()) };
    // A proxy or test server standing in for Cost Management stands in for Entra ID too.
    let login = config.base_url.as_deref().unwrap_or(LOGIN_URL);
    let login_url = url::Url::parse(login).map_err(|e| format!("login URL: {e}"))?;
    Ok(Box::new(CostManagement::new(
        base_url,
        login_url,
        settings.tenant_id.to_string(),
        settings.client_id.to_string(),
        client_secret,
        settings.scope.to_string(),
    )))
}

crate::provider::connector!(costs CostManagement {});

/// A GUID as Azure writes it: 8-4-4-4-12 hexadecimal digits.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

crate::setting::setting!(
    /// An Entra ID tenant: its GUID, or a verified domain (`contoso.onmicrosoft.com`), lower-cased.
    TenantId,
    |raw| {
        let id = raw.trim();
        let domain = id.contains('.')
            && id.len() <= 253
            && id.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        match is_guid(id) || domain {
            true => Ok(id.to_ascii_lowercase()),
            false => Err("Tenant ID: the directory (tenant) id, a GUID, or its domain such as contoso.onmicrosoft.com."),
        }
    }
);

crate::setting::setting!(
    /// An Entra ID application (client) id: a GUID, lower-cased.
    ClientId,
    |raw| match is_guid(raw.trim()) {
        true => Ok(raw.trim().to_ascii_lowercase()),
        false => Err("Client ID: the application (client) id of the app registration, a GUID."),
    }
);

crate::setting::setting!(
    /// The Cost Management scope read: a subscription, one of its resource groups, a management
    /// group or a billing account (with its profile, section, department or enrollment account). It
    /// becomes part of the request path, so only these shapes and plain id characters pass.
    Scope,
    |raw| {
        let scope = raw.trim().trim_matches('/');
        let parts: Vec<&str> = scope.split('/').collect();
        let id = |s: &str| {
            (1..=128).contains(&s.len())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:()".contains(c))
                && s != "."
                && s != ".."
        };
        let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let ok = match lower.as_slice() {
            ["subscriptions", sub] => is_guid(sub),
            ["subscriptions", sub, "resourcegroups", _] => is_guid(sub) && id(parts[3]),
            ["providers", "microsoft.management", "managementgroups", _] => id(parts[3]),
            ["providers", "microsoft.billing", "billingaccounts", _] => id(parts[3]),
            [
                "providers",
                "microsoft.billing",
                "billingaccounts",
                _,
                "billingprofiles" | "departments" | "enrollmentaccounts" | "invoicesections",
                _,
            ] => id(parts[3]) && id(parts[5]),
            _ => false,
        };
        match ok {
            true => Ok(scope.to_owned()),
            false => Err("Scope: subscriptions/<subscription id>, subscriptions/<id>/resourceGroups/<name>, \
                          providers/Microsoft.Management/managementGroups/<id> or providers/Microsoft.Billing/billingAccounts/<id>."),
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_name_their_model_and_unit_where_they_can() {
        assert_eq!(model_of_meter("gpt-4o-0806-Inp-glbl 1K Tokens").as_deref(), Some("gpt-4o-0806"));
        assert_eq!(model_of_meter("gpt 4o 0513 Input global Tokens").as_deref(), Some("gpt 4o 0513"));
        assert_eq!(model_of_meter("Standard S0 Transactions"), None);
        assert_eq!(unit_of_meter("gpt-4o-0806-Outp-glbl 1K Tokens").as_deref(), Some("1K Tokens"));
        assert_eq!(unit_of_meter("Provisioned Managed Unit"), None);
        assert_eq!(
            subscription_of(
                "/subscriptions/0000-1/resourcegroups/rg-ai/providers/microsoft.cognitiveservices/accounts/x"
            )
            .as_deref(),
            Some("0000-1")
        );
    }
}

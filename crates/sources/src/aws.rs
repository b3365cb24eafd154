//! AWS Cost Explorer (providers.md §3): Bedrock spend from `GetCostAndUsage`, daily, grouped by
//! service and usage type, filtered to the services `GetDimensionValues` finds for "Bedrock" —
//! Amazon's own models bill as "Amazon Bedrock", marketplace models each as their own service
//! ("Claude 3.5 Sonnet (Amazon Bedrock Edition)"), so a fixed filter would miss most spend — and
//! pulled once per linked account that had such spend (the account is the FOCUS sub-account).
//!
//! Requests are JSON 1.1 POSTs signed with SigV4: AWS's own `aws-sigv4` signs every header
//! burnrate sends and the body; the secret stays inside [`sign_request`]. AWS answers throttling
//! with `400` and a `LimitExceededException` body, which the connector waits out itself. Each page
//! is billed by AWS, so a sync asks for as few as it can.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use burnrate_core::{ChargeCategory, CostRecord, SyncWindow};
use burnrate_net::HttpClient;
use chrono::NaiveDate;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::{
    Call, Progress, ProgressSink, PullStats, Pulled, RecordSender, SourceError, SourceErrorKind, Try, collect, money,
    until_not_throttled,
};

pub const PROVIDER: &str = "Amazon Web Services";
const COST_ENDPOINT: &str = "POST / GetCostAndUsage";
const SERVICES_ENDPOINT: &str = "POST / GetDimensionValues";
const TARGET_PREFIX: &str = "AWSInsightsIndexService.";
/// Cost Explorer is a global service, signed for us-east-1.
pub const SIGNING_REGION: &str = "us-east-1";
/// What names the services that carry AI spend.
const SERVICE_SEARCH: &str = "Bedrock";
/// Error codes that mean the credentials, not the request, are wrong.
const CREDENTIAL_CODES: [&str; 6] = [
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
];
const THROTTLE_CODES: [&str; 3] = ["LimitExceededException", "ThrottlingException", "TooManyRequestsException"];

/// Credentials for AWS: an access key id (`AKIA…`, or `ASIA…` with a session token).
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

/// What is signed: a request as it will be sent.
pub struct AwsRequest<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// Every header the request carries besides those the signature adds.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub region: &'a str,
    /// The signing name of the service (`ce` for Cost Explorer, `sts`).
    pub service: &'a str,
}

/// The headers to add to `request` so AWS accepts it at `at`: `authorization`, `x-amz-date`, and
/// `x-amz-security-token` for temporary credentials. `Err` says what could not be signed (never
/// with the secret).
pub fn sign_request(
    credentials: &AwsCredentials,
    request: &AwsRequest<'_>,
    at: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose_secret().to_owned(),
        credentials.session_token.as_ref().map(|t| t.expose_secret().to_owned()),
        None,
        "burnrate-source",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(request.region)
        .name(request.service)
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| format!("request to sign: {e}"))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| format!("signing: {e}"))?.into_parts();
    Ok(instructions.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

/// One AWS account (or organization, from its management account) through Cost Explorer.
pub struct CostExplorer {
    /// `https://ce.us-east-1.amazonaws.com` unless a proxy or a test server stands in.
    pub base_url: url::Url,
    pub credentials: AwsCredentials,
    /// A role to assume first, when the access key's user may not read Cost Explorer itself.
    pub role: Option<AssumeRole>,
    /// A cost-allocation tag key (`team`) whose values become the lines' tags. GetCostAndUsage
    /// groups by two keys at most, so with a tag each AI service is pulled on its own, grouped by
    /// usage type and the tag: more requests (each billed), nothing lost.
    pub cost_allocation_tag: Option<String>,
}

/// What a GetCostAndUsage request groups by, and so what its groups' two keys are.
enum Grouping<'a> {
    /// `[SERVICE, USAGE_TYPE]`, over every AI service.
    ServiceAndUsageType,
    /// `[USAGE_TYPE, TAG:<key>]`, for one service.
    UsageTypeAndTag { service: &'a str, key: &'a str },
}

impl Grouping<'_> {
    fn group_by(&self) -> serde_json::Value {
        match self {
            Grouping::ServiceAndUsageType => {
                json!([{ "Type": "DIMENSION", "Key": "SERVICE" }, { "Type": "DIMENSION", "Key": "USAGE_TYPE" }])
            }
            Grouping::UsageTypeAndTag { key, .. } => {
                json!([{ "Type": "DIMENSION", "Key": "USAGE_TYPE" }, { "Type": "TAG", "Key": key }])
            }
        }
    }

    /// (service, usage type, tags) of a group's keys.
    fn read(&self, keys: [String; 2]) -> (String, String, std::collections::BTreeMap<String, String>) {
        let [first, second] = keys;
        match self {
            Grouping::ServiceAndUsageType => (first, second, Default::default()),
            Grouping::UsageTypeAndTag { service, key } => {
                // "team$search"; "team$" where the cost carries no such tag.
                let value = second.split_once('$').map(|(_, v)| v).unwrap_or("");
                let tags =
                    if value.is_empty() { Default::default() } else { [((*key).to_owned(), value.to_owned())].into() };
                ((*service).to_owned(), first, tags)
            }
        }
    }
}

/// STS `AssumeRole` before reading Cost Explorer: the way another account grants access — its
/// role trusts this user, and the external id guards against a confused deputy.
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    /// `https://sts.amazonaws.com/` unless a proxy or a test server stands in.
    pub sts_url: url::Url,
}

/// The global STS endpoint, signed for us-east-1.
pub const STS_URL: &str = "https://sts.amazonaws.com/";
const STS_ENDPOINT: &str = "POST / AssumeRole";

/// The text of the first `<tag>…</tag>` in an STS answer, XML entities decoded. STS answers are
/// flat where it matters (credentials, error code and message), so no XML parser is needed.
fn xml_text(doc: &str, tag: &str) -> Option<String> {
    let start = doc.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + doc[start..].find(&format!("</{tag}>"))?;
    Some(
        doc[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// Signs a POST of `body` to `url` for `service` with `credentials`, and sends it (network
/// failures and 5xx retried by the client; answers of any status returned).
async fn signed_post(
    http: &HttpClient,
    call: &Call,
    credentials: &AwsCredentials,
    url: &url::Url,
    headers: &[(&str, &str)],
    body: &[u8],
    service: &str,
) -> Result<burnrate_net::Reply, SourceError> {
    let request = AwsRequest { method: "POST", url: url.as_str(), headers, body, region: SIGNING_REGION, service };
    let signed = sign_request(credentials, &request, SystemTime::now())
        .map_err(|e| call.error(SourceErrorKind::Rejected { status: 0, detail: e }))?;
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    http.post_read(url, &all, bytes::Bytes::copy_from_slice(body))
        .await
        .map_err(|e| call.error(crate::error::fetch_error(e)))
}

fn host_of(url: &url::Url) -> Option<String> {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => Some(format!("{h}:{p}")),
        (Some(h), None) => Some(h.to_owned()),
        (None, _) => None,
    }
}

/// An AWS JSON error: `{"__type": "...", "Message": "..."}` (or `message`).
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type")]
    kind: Option<String>,
    #[serde(alias = "message", rename = "Message")]
    message: Option<String>,
}

/// The bare error code: without a `namespace#` prefix or a `:url` suffix (providers.md §3).
pub fn error_code(raw: &str) -> &str {
    let code = raw.rsplit_once('#').map_or(raw, |(_, c)| c);
    code.split_once(':').map_or(code, |(c, _)| c)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DimensionValues {
    dimension_values: Vec<DimensionValue>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DimensionValue {
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CostPage {
    results_by_time: Vec<ResultByTime>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResultByTime {
    time_period: TimePeriod,
    #[serde(default)]
    groups: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TimePeriod {
    start: NaiveDate,
    end: NaiveDate,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Group {
    keys: Vec<String>,
    metrics: std::collections::HashMap<String, Metric>,
}

/// Amounts are strings, so they reach the lake digit for digit.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Metric {
    amount: String,
    unit: String,
}

impl CostExplorer {
    /// One Cost Explorer operation: signed, sent, throttling waited out, errors named.
    async fn call<T: DeserializeOwned>(
        &self,
        http: &HttpClient,
        call: &Call,
        credentials: &AwsCredentials,
        operation: &str,
        body: &serde_json::Value,
    ) -> Result<T, SourceError> {
        let body = serde_json::to_vec(body).map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))?;
        let host = host_of(&self.base_url)
            .ok_or_else(|| call.error(SourceErrorKind::Egress("the base URL has no host".into())))?;
        let target = format!("{TARGET_PREFIX}{operation}");
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let body = &body;
        until_not_throttled(call, || async move {
            let reply = signed_post(http, call, credentials, &self.base_url, &headers, body, "ce").await?;
            if (200..300).contains(&reply.status) {
                return serde_json::from_slice(&reply.body)
                    .map(Try::Done)
                    .map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())));
            }
            let parsed: Option<ErrorBody> = serde_json::from_slice(&reply.body).ok();
            let code = parsed.as_ref().and_then(|b| b.kind.as_deref()).map(error_code).unwrap_or("").to_owned();
            if THROTTLE_CODES.contains(&code.as_str()) || reply.status == 429 {
                return Ok(Try::Throttled);
            }
            let message = parsed.and_then(|b| b.message).unwrap_or_else(|| "no error message".into());
            let detail = crate::error::sanitize(&if code.is_empty() { message } else { format!("{code}: {message}") });
            Err(call.error(if CREDENTIAL_CODES.contains(&code.as_str()) {
                SourceErrorKind::Credential { status: reply.status, detail }
            } else {
                crate::error::classify(reply.status, reply.attempts, detail)
            }))
        })
        .await
    }

    fn period(window: SyncWindow) -> serde_json::Value {
        json!({ "Start": window.start().to_string(), "End": window.end().to_string() })
    }

    /// Temporary credentials of the role, from STS.
    async fn assume(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        role: &AssumeRole,
    ) -> Result<AwsCredentials, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: STS_ENDPOINT, window };
        // Built in a block: the serializer is not `Sync` and must not live across an await.
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", "AssumeRole")
                .append_pair("Version", "2011-06-15")
                .append_pair("RoleArn", &role.role_arn)
                .append_pair("RoleSessionName", "burnrate-cost-sync")
                .append_pair("DurationSeconds", "3600");
            if let Some(id) = &role.external_id {
                form.append_pair("ExternalId", id);
            }
            form.finish()
        };
        let host = host_of(&role.sts_url)
            .ok_or_else(|| call.error(SourceErrorKind::Egress("the STS URL has no host".into())))?;
        let headers = [("host", host.as_str()), ("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        let reply =
            signed_post(http, &call, &self.credentials, &role.sts_url, &headers, body.as_bytes(), "sts").await?;
        let text = String::from_utf8_lossy(&reply.body);
        if !(200..300).contains(&reply.status) {
            let code = xml_text(&text, "Code").unwrap_or_default();
            let message = xml_text(&text, "Message").unwrap_or_else(|| "no error message".into());
            let detail = crate::error::sanitize(&format!(
                "{code}: {message} — the role's trust policy must allow this access key's user, with this external id"
            ));
            return Err(call.error(if reply.status == 403 || code == "AccessDenied" {
                SourceErrorKind::Credential { status: reply.status, detail }
            } else {
                crate::error::classify(reply.status, reply.attempts, detail)
            }));
        }
        let field = |tag: &str| {
            xml_text(&text, tag)
                .ok_or_else(|| call.error(SourceErrorKind::Malformed(format!("no {tag} in the answer"))))
        };
        Ok(AwsCredentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: SecretString::from(field("SecretAccessKey")?),
            session_token: Some(SecretString::from(field("SessionToken")?)),
        })
    }

    /// The values of `dimension` that had cost in `window` (matching `search`, within `filter`).
    async fn dimension_values(
        &self,
        http: &HttpClient,
        credentials: &AwsCredentials,
        window: SyncWindow,
        dimension: &str,
        search: Option<&str>,
        filter: Option<&serde_json::Value>,
    ) -> Result<(Vec<String>, u32), SourceError> {
        let call = Call { provider: PROVIDER, endpoint: SERVICES_ENDPOINT, window };
        let (mut values, mut token, mut seen, mut pages) = (Vec::new(), None::<String>, Vec::new(), 0);
        loop {
            let mut body =
                json!({ "TimePeriod": Self::period(window), "Dimension": dimension, "Context": "COST_AND_USAGE" });
            if let Some(search) = search {
                body["SearchString"] = json!(search);
            }
            if let Some(filter) = filter {
                body["Filter"] = filter.clone();
            }
            if let Some(t) = &token {
                body["NextPageToken"] = json!(t);
            }
            let page: DimensionValues = self.call(http, &call, credentials, "GetDimensionValues", &body).await?;
            pages += 1;
            values.extend(page.dimension_values.into_iter().map(|v| v.value));
            token = call.next_cursor(&mut seen, page.next_page_token, pages)?;
            if token.is_none() {
                break;
            }
        }
        values.sort();
        values.dedup();
        Ok((values, pages))
    }

    /// Pulls every cost line of `window` into memory.
    pub async fn pull_costs(&self, http: &HttpClient, window: SyncWindow) -> Result<Pulled<CostRecord>, SourceError> {
        collect(|tx| async move { self.stream_costs(http, window, &|_| {}, &tx).await }).await
    }

    /// Sends the AI cost lines of `window` to `out` page by page, reporting progress after each.
    pub async fn stream_costs(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: &RecordSender<CostRecord>,
    ) -> Result<PullStats, SourceError> {
        let assumed = match &self.role {
            Some(role) => Some(self.assume(http, window, role).await?),
            None => None,
        };
        let credentials = assumed.as_ref().unwrap_or(&self.credentials);
        let (services, listed) =
            self.dimension_values(http, credentials, window, "SERVICE", Some(SERVICE_SEARCH), None).await?;
        // The listings count as pages: AWS bills them as requests.
        let mut stats = PullStats { pages: listed, ..Default::default() };
        if services.is_empty() {
            return Ok(stats);
        }
        let only_ai = json!({ "Dimensions": { "Key": "SERVICE", "Values": services, "MatchOptions": ["EQUALS"] } });
        // One pull per account: GroupBy takes two keys and both are spent on service and usage
        // type, so the account comes from the filter.
        let (accounts, listed) =
            self.dimension_values(http, credentials, window, "LINKED_ACCOUNT", None, Some(&only_ai)).await?;
        stats.pages += listed;
        let call = Call { provider: PROVIDER, endpoint: COST_ENDPOINT, window };
        let pulls: Vec<(String, Grouping<'_>)> = accounts
            .iter()
            .flat_map(|account| match &self.cost_allocation_tag {
                None => vec![(account.clone(), Grouping::ServiceAndUsageType)],
                Some(key) => services
                    .iter()
                    .map(|service| (account.clone(), Grouping::UsageTypeAndTag { service, key }))
                    .collect(),
            })
            .collect();
        for (account, grouping) in pulls {
            let services = match &grouping {
                Grouping::ServiceAndUsageType => only_ai.clone(),
                Grouping::UsageTypeAndTag { service, .. } => {
                    json!({ "Dimensions": { "Key": "SERVICE", "Values": [service], "MatchOptions": ["EQUALS"] } })
                }
            };
            let filter = json!({ "And": [
                services,
                { "Dimensions": { "Key": "LINKED_ACCOUNT", "Values": [account], "MatchOptions": ["EQUALS"] } },
            ] });
            let (mut token, mut seen) = (None::<String>, Vec::new());
            loop {
                // The same request each page, plus the token (a changed request is refused).
                let mut body = json!({
                    "TimePeriod": Self::period(window),
                    "Granularity": "DAILY",
                    "Metrics": ["UnblendedCost", "AmortizedCost", "UsageQuantity"],
                    "GroupBy": grouping.group_by(),
                    "Filter": filter,
                });
                if let Some(t) = &token {
                    body["NextPageToken"] = json!(t);
                }
                let page: CostPage = self.call(http, &call, credentials, "GetCostAndUsage", &body).await?;
                stats.pages += 1;
                let reached = page.results_by_time.last().map(|r| r.time_period.end - chrono::Duration::days(1));
                let records = self.records(&call, &account, &grouping, page.results_by_time, &mut stats)?;
                stats.rows += records.len();
                progress(Progress { report: "costs", pages: stats.pages, window, reached });
                crate::hand_over(&call, out, records).await?;
                token = call.next_cursor(&mut seen, page.next_page_token, stats.pages)?;
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(stats)
    }

    fn records(
        &self,
        call: &Call,
        account: &str,
        grouping: &Grouping<'_>,
        results: Vec<ResultByTime>,
        stats: &mut PullStats,
    ) -> Result<Vec<CostRecord>, SourceError> {
        let malformed = |what: String| call.error(SourceErrorKind::Malformed(what));
        let mut records = Vec::new();
        for day in results {
            let start = day.time_period.start.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            let end = day.time_period.end.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            for group in day.groups {
                let keys = <[String; 2]>::try_from(group.keys)
                    .map_err(|k| malformed(format!("a group has {} keys, not the two asked for", k.len())))?;
                let (service, usage_type, tags) = grouping.read(keys);
                let metric = |name: &str| {
                    group.metrics.get(name).ok_or_else(|| malformed(format!("{service}/{usage_type}: no {name}")))
                };
                let unblended = metric("UnblendedCost")?;
                let amortized = metric("AmortizedCost")?;
                let billed = money(call, &unblended.amount, &unblended.unit, &mut stats.rounded_values)?;
                let effective = money(call, &amortized.amount, &amortized.unit, &mut stats.rounded_values)?;
                let quantity = group.metrics.get("UsageQuantity");
                records.push(CostRecord {
                    charge_period_start: start,
                    charge_period_end: end,
                    billed_cost: billed,
                    effective_cost: effective,
                    list_cost: billed,
                    list_cost_estimated: true,
                    provider_name: PROVIDER.into(),
                    model: model_of_service(&service),
                    service_name: service,
                    sub_account_id: Some(account.to_owned()),
                    sku_id: Some(usage_type.clone()),
                    charge_category: ChargeCategory::Usage,
                    charge_description: Some(usage_type),
                    consumed_quantity: quantity
                        .map(|q| burnrate_core::parse_decimal(&q.amount).map(|(d, _)| d))
                        .transpose()
                        .map_err(|e| malformed(format!("UsageQuantity: {e}")))?,
                    consumed_unit: quantity.map(|q| q.unit.clone()),
                    api_key_id: None,
                    tags,
                });
            }
        }
        Ok(records)
    }
}

/// A marketplace model's service is named after it: "Claude 3.5 Sonnet (Amazon Bedrock
/// Edition)" is the model "Claude 3.5 Sonnet". Amazon's own models share "Amazon Bedrock".
fn model_of_service(service: &str) -> Option<String> {
    service.strip_suffix(" (Amazon Bedrock Edition)").map(|m| m.trim().to_owned())
}

/// What this module registers. AWS bills every Cost Explorer request and keeps adding costs for
/// days, so a source syncs every 6 hours and re-pulls 14 days.
pub(crate) static REGISTRATION: crate::Provider = crate::Provider {
    name: "aws",
    label: "AWS Bedrock",
    base_url: "https://ce.us-east-1.amazonaws.com",
    secret_label: "Secret access key",
    reports_as: PROVIDER,
    credential_hint: "check the access key id and secret, and that the IAM user may call ce:GetCostAndUsage and ce:GetDimensionValues",
    schedule: crate::Schedule { repull_days: 14, interval_minutes: 360, ..crate::Schedule::DEFAULT },
    connect,
};

/// What an AWS source needs beside its sealed secret access key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// The access key id that goes with the sealed secret.
    pub access_key_id: AccessKeyId,
    /// A role to assume before reading Cost Explorer, and the external id its trust policy asks
    /// for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<RoleArn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<ExternalId>,
    /// A cost-allocation tag key whose values become the cost lines' tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_allocation_tag: Option<CostAllocationTag>,
}

/// A Cost Explorer connector from a source's settings: its access key id beside the sealed secret,
/// and the role to assume, when it names one.
fn connect(
    config: &crate::SourceConfig,
    base_url: url::Url,
    secret_access_key: SecretString,
) -> Result<Box<dyn crate::Connector>, String> {
    let crate::ProviderSettings::Aws(settings) = &config.provider else { return Err("not an AWS source".into()) };
    let access_key_id = settings.access_key_id.to_string();
    let credentials = AwsCredentials { access_key_id, secret_access_key, session_token: None };
    let role = match &settings.role_arn {
        Some(role_arn) => {
            // A proxy or test server standing in for Cost Explorer stands in for STS too.
            let sts = config.base_url.as_deref().unwrap_or(STS_URL);
            let sts_url = url::Url::parse(sts).map_err(|e| format!("STS URL: {e}"))?;
            Some(AssumeRole {
                role_arn: role_arn.to_string(),
                external_id: settings.external_id.as_ref().map(ToString::to_string),
                sts_url,
            })
        }
        None => None,
    };
    let cost_allocation_tag = settings.cost_allocation_tag.as_ref().map(ToString::to_string);
    Ok(Box::new(CostExplorer { base_url, credentials, role, cost_allocation_tag }))
}

crate::provider::connector!(costs CostExplorer {});

crate::setting::setting!(
    /// An IAM user's access key id: `AKIA` (a long-term key) and 16 more capitals or digits.
    AccessKeyId,
    |raw| {
        let id = raw.trim();
        match id.len() == 20 && id.starts_with("AKIA") && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            true => Ok(id.to_owned()),
            false => Err("Access key ID: the 20 characters starting with AKIA of an IAM user's access key (temporary ASIA keys expire before the next sync)."),
        }
    }
);

crate::setting::setting!(
    /// An IAM role ARN: `arn:aws:iam::<12-digit account>:role/<path and name>`.
    RoleArn,
    |raw| {
        let arn = raw.trim();
        let ok = ["arn:aws:iam::", "arn:aws-cn:iam::", "arn:aws-us-gov:iam::"].iter().any(|prefix| {
            arn.strip_prefix(prefix).and_then(|rest| rest.split_once(":role/")).is_some_and(|(account, name)| {
                account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && (1..=512).contains(&name.len())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_/-".contains(c))
            })
        });
        if ok { Ok(arn.to_owned()) } else { Err("Role ARN: arn:aws:iam::<12-digit account>:role/<name>.") }
    }
);

crate::setting::setting!(
    /// An STS external id: 2 to 1224 characters of letters, digits and `+=,.@:/-_`.
    ExternalId,
    |raw| {
        let id = raw.trim();
        match (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c)) {
            true => Ok(id.to_owned()),
            false => Err("External ID: 2 to 1224 letters, digits or +=,.@:/-_"),
        }
    }
);

crate::setting::setting!(
    /// A cost-allocation tag key (not one of AWS's own `aws:` tags).
    CostAllocationTag,
    |raw| {
        let key = raw.trim();
        let ok = !key.is_empty()
            && key.chars().count() <= 128
            && key.chars().all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c))
            && !key.starts_with("aws:");
        match ok {
            true => Ok(key.to_owned()),
            false => Err("Cost allocation tag: a tag key of up to 128 letters, digits, spaces or _.:/=+-@."),
        }
    }
);

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The credentials and instant of AWS's published SigV4 test suite.
    fn suite() -> (AwsCredentials, SystemTime) {
        let credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        // 2015-08-30T12:36:00Z
        (credentials, UNIX_EPOCH + Duration::from_secs(1_440_938_160))
    }

    fn authorization(headers: &[(String, String)]) -> &str {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.as_str()).unwrap()
    }

    #[test]
    fn signatures_match_the_aws_test_suite() {
        let (credentials, at) = suite();
        for (name, method, url, signature) in [
            (
                "get-vanilla",
                "GET",
                "https://example.amazonaws.com/",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "post-vanilla",
                "POST",
                "https://example.amazonaws.com/",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                "get-vanilla-query-order-key-case",
                "GET",
                "https://example.amazonaws.com/?Param2=value2&Param1=value1",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ] {
            let request = AwsRequest {
                method,
                url,
                headers: &[("host", "example.amazonaws.com")],
                body: b"",
                region: "us-east-1",
                service: "service",
            };
            let headers = sign_request(&credentials, &request, at).unwrap();
            assert_eq!(
                authorization(&headers),
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature={signature}"
                ),
                "{name}"
            );
            assert!(headers.iter().any(|(k, v)| k == "x-amz-date" && v == "20150830T123600Z"), "{name}: {headers:?}");
        }
    }

    #[test]
    fn error_codes_lose_their_namespace_and_url() {
        assert_eq!(error_code("com.amazonaws.ce#LimitExceededException"), "LimitExceededException");
        assert_eq!(
            error_code("LimitExceededException:http://internal.amazon.com/coral/com.amazonaws.ce/"),
            "LimitExceededException"
        );
        assert_eq!(error_code("DataUnavailableException"), "DataUnavailableException");
        let sts = "<Credentials><AccessKeyId>ASIAX</AccessKeyId><SessionToken>a&amp;b</SessionToken></Credentials>";
        assert_eq!(xml_text(sts, "AccessKeyId").as_deref(), Some("ASIAX"));
        assert_eq!(xml_text(sts, "SessionToken").as_deref(), Some("a&b"));
        assert_eq!(xml_text(sts, "Expiration"), None);
        assert_eq!(
            model_of_service("Claude 3.5 Sonnet (Amazon Bedrock Edition)").as_deref(),
            Some("Claude 3.5 Sonnet")
        );
        assert_eq!(model_of_service("Amazon Bedrock"), None);
    }

    #[test]
    fn temporary_credentials_send_their_token_under_the_signature() {
        let (mut credentials, at) = suite();
        credentials.session_token = Some(SecretString::from("FQoGZXIvYXdzEXAMPLETOKEN"));
        let request = AwsRequest {
            method: "POST",
            url: "https://ce.us-east-1.amazonaws.com/",
            headers: &[
                ("host", "ce.us-east-1.amazonaws.com"),
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "AWSInsightsIndexService.GetCostAndUsage"),
            ],
            body: br#"{"Granularity":"DAILY"}"#,
            region: "us-east-1",
            service: "ce",
        };
        let headers = sign_request(&credentials, &request, at).unwrap();
        assert!(headers.iter().any(|(k, v)| k == "x-amz-security-token" && v == "FQoGZXIvYXdzEXAMPLETOKEN"));
        let auth = authorization(&headers);
        assert!(
            auth.contains("/20150830/us-east-1/ce/aws4_request")
                && auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target"),
            "{auth}"
        );
        assert!(!auth.contains("wJalrXUtnFEMI"), "the secret never appears");
    }
}

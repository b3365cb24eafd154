//! AWS Cost Explorer as providers.md §3 describes it: JSON 1.1 `POST /` routed on `X-Amz-Target`,
//! `Content-Type: application/x-amz-json-1.1` required, the SigV4 signature verified (credential
//! scope `<key id>/<date>/us-east-1/ce/aws4_request`, the target header under the signature, the
//! signature itself recomputed with the secret, the time within 15 minutes), string amounts, `Total` empty when grouped, the last days `Estimated`, groups
//! spread over pages with `NextPageToken`, and `__type` errors — throttling in the namespaced
//! spelling, so connectors must strip it.
//!
//! Fixture lines map as: `group` is the SERVICE, `item` the USAGE_TYPE, `account` the
//! LINKED_ACCOUNT; `amount` is both the unblended and the amortized cost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::{Fault, State, record};

/// The account of lines that name none.
pub const PAYER_ACCOUNT: &str = "111122223333";

/// The temporary credentials STS hands out for the configured role.
pub const TEMPORARY_KEY_ID: &str = "ASIASIMULATEDTEMP001";
pub const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjSIMULATEDSESSIONTOKEN";
const TEMPORARY_SECRET: &str = "simulated/temporary/secret/key";
const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your \
                             AWS Secret Access Key and signing method.";

/// The value of cost-allocation tag `key` on a fixture line: `team` is `search` on input tokens
/// and `research` on output tokens; anything else is untagged.
pub fn tag_of(line: &crate::CostLine, key: &str) -> Option<&'static str> {
    let usage = line.item.to_ascii_lowercase();
    match key {
        "team" if usage.contains("input") => Some("search"),
        "team" if usage.contains("output") => Some("research"),
        _ => None,
    }
}

/// A group's two keys — (SERVICE, USAGE_TYPE) or (USAGE_TYPE, `key$value`) — and its amount.
type Grouped = ((String, String), Decimal);

/// Groups on one page of `GetCostAndUsage` (AWS does not let callers choose).
pub const GROUPS_PER_PAGE: usize = 5;

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({ "__type": kind, "Message": message });
    (
        status,
        [
            (header::CONTENT_TYPE, "application/x-amz-json-1.1"),
            (header::HeaderName::from_static("x-amzn-requestid"), "7f2c1a9e-0b6d-4c1e-9a51-3e2f1d0c9b8a"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "ValidationException", message)
}

pub(crate) fn router(state: Arc<Mutex<State>>, access_key_id: String, secret: String) -> Router {
    Router::new().route("/", post(handle)).with_state((state, access_key_id, secret))
}

async fn handle(
    AxState((state, access_key_id, secret)): AxState<(Arc<Mutex<State>>, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if h("content-type").starts_with("application/x-www-form-urlencoded") {
        if let Err(why) = signature_valid(&headers, &body, "sts", &access_key_id, &secret, None) {
            record(&state, "POST / sts".into());
            return sts_error(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", &format!("{BAD_SIGNATURE} ({why})"));
        }
        return assume_role(&state, &access_key_id, &h("authorization"), &body);
    }
    let target = h("x-amz-target");
    let fault = record(&state, format!("POST / {target} {}", String::from_utf8_lossy(&body)));
    let auth = h("authorization");
    let signed_by = |key: &str| auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={key}/"));
    let temporary = signed_by(TEMPORARY_KEY_ID)
        && h("x-amz-security-token") == SESSION_TOKEN
        && auth.contains("x-amz-security-token");
    let scope_ok = (signed_by(&access_key_id) || temporary)
        && auth.contains("/us-east-1/ce/aws4_request, SignedHeaders=")
        && auth.contains("x-amz-target")
        && auth.contains("Signature=")
        && !h("x-amz-date").is_empty();
    if !scope_ok {
        return error(
            StatusCode::BAD_REQUEST,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    let (key, secret, token) = if temporary {
        (TEMPORARY_KEY_ID, TEMPORARY_SECRET, Some(SESSION_TOKEN))
    } else {
        (&*access_key_id, &*secret, None)
    };
    if let Err(why) = signature_valid(&headers, &body, "ce", key, secret, token) {
        return error(StatusCode::FORBIDDEN, "InvalidSignatureException", &format!("{BAD_SIGNATURE} ({why})"));
    }
    if state.lock().expect("sim state").aws_role.is_some() && !temporary {
        return error(
            StatusCode::BAD_REQUEST,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/burnrate is not authorized to perform: ce:GetCostAndUsage",
        );
    }
    if h("content-type") != "application/x-amz-json-1.1" {
        return error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "Start of structure or map found where not expected.",
        );
    }
    match fault {
        Some(Fault::RateLimited { .. }) => {
            return error(
                StatusCode::BAD_REQUEST,
                "com.amazonaws.ce#LimitExceededException:http://internal.amazon.com/coral/com.amazonaws.ce/",
                "Rate exceeded",
            );
        }
        Some(Fault::ServerError(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, "InternalServerError", "An internal error occurred.");
        }
        Some(Fault::MalformedJson) => {
            return (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], "{\"ResultsByTime\": [{")
                .into_response();
        }
        Some(Fault::Pass) | None => {}
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "SerializationException", "The request body is not JSON.");
    };
    let period = match time_period(&request) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match target.as_str() {
        "AWSInsightsIndexService.GetDimensionValues" => dimension_values(&state, &request, period),
        "AWSInsightsIndexService.GetCostAndUsage" => cost_and_usage(&state, &request, period),
        other => error(StatusCode::BAD_REQUEST, "UnknownOperationException", &format!("unknown operation {other:?}")),
    }
}

/// An STS error, in its XML.
fn sts_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code>\
         <Message>{message}</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"
    );
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// Whether the request's `Authorization` is the SigV4 signature by `key_id` with `secret` (and
/// `token`) of this very request, within AWS's 15 minutes of clock skew: the simulator signs the
/// headers the request says it signed with AWS's own signer, and compares.
fn signature_valid(
    headers: &HeaderMap,
    body: &[u8],
    service: &str,
    key_id: &str,
    secret: &str,
    token: Option<&str>,
) -> Result<(), &'static str> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth = h("authorization").ok_or("no Authorization header")?;
    let at = h("x-amz-date")
        .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok())
        .ok_or("no X-Amz-Date")?
        .and_utc();
    if (Utc::now() - at).num_minutes().abs() > 15 {
        return Err("Signature expired: the request time is more than 15 minutes from the server's");
    }
    let signed: Vec<&str> = auth
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .map(|s| s.split(';').collect())
        .unwrap_or_default();
    // The signer adds these two itself, from the time and the identity.
    let to_sign: Vec<(&str, &str)> = signed
        .iter()
        .filter(|n| !matches!(**n, "x-amz-date" | "x-amz-security-token"))
        .map(|n| h(n).map(|v| (*n, v)).ok_or("a signed header is missing"))
        .collect::<Result<_, _>>()?;
    let identity =
        aws_credential_types::Credentials::new(key_id, secret, token.map(str::to_owned), None, "simulator").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(at.into())
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| "signing parameters")?
        .into();
    let url = format!("http://{}/", h("host").ok_or("no Host header")?);
    let signable = SignableRequest::new("POST", &url, to_sign.into_iter(), SignableBody::Bytes(body))
        .map_err(|_| "the request cannot be signed")?;
    let (instructions, _) = sign(signable, &params).map_err(|_| "signing")?.into_parts();
    let expected = instructions.headers().find(|(k, _)| *k == "authorization").map(|(_, v)| v.to_owned());
    if expected.as_deref() == Some(auth) { Ok(()) } else { Err("signature mismatch") }
}

/// STS `AssumeRole` (query protocol, XML answers): temporary credentials for the configured role
/// when the role ARN and external id match.
fn assume_role(state: &Mutex<State>, access_key_id: &str, auth: &str, body: &[u8]) -> Response {
    let form = String::from_utf8_lossy(body).into_owned();
    record(state, format!("POST / sts {form}"));
    let pairs = crate::query_pairs(Some(&form));
    let one = |k: &str| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str()).unwrap_or("");
    if !auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={access_key_id}/"))
        || !auth.contains("/us-east-1/sts/aws4_request")
    {
        return sts_error(
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        );
    }
    if one("Action") != "AssumeRole" || one("Version") != "2011-06-15" {
        return sts_error(StatusCode::BAD_REQUEST, "InvalidAction", "Could not find operation for this request.");
    }
    let role = state.lock().expect("sim state").aws_role.clone();
    let Some((arn, external_id)) = role else {
        return sts_error(StatusCode::FORBIDDEN, "AccessDenied", "No role may be assumed here.");
    };
    if one("RoleArn") != arn || one("ExternalId") != external_id || one("RoleSessionName").len() < 2 {
        let message = format!(
            "User: arn:aws:iam::123456789012:user/burnrate is not authorized to perform: sts:AssumeRole on resource: {}",
            one("RoleArn")
        );
        return sts_error(StatusCode::FORBIDDEN, "AccessDenied", &message);
    }
    let expires = (Utc::now() + Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let body = format!(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><AssumedRoleUser>\
         <AssumedRoleId>AROA3XFRBF23EXAMPLE:{session}</AssumedRoleId><Arn>{arn}</Arn></AssumedRoleUser><Credentials>\
         <AccessKeyId>{TEMPORARY_KEY_ID}</AccessKeyId><SecretAccessKey>{TEMPORARY_SECRET}</SecretAccessKey>\
         <SessionToken>{SESSION_TOKEN}</SessionToken><Expiration>{expires}</Expiration></Credentials></AssumeRoleResult>\
         <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata></AssumeRoleResponse>",
        session = one("RoleSessionName"),
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

#[allow(clippy::result_large_err)]
fn time_period(request: &Value) -> Result<(NaiveDate, NaiveDate), Response> {
    let day = |k: &str| request["TimePeriod"][k].as_str().and_then(|s| s.parse::<NaiveDate>().ok());
    match (day("Start"), day("End")) {
        (Some(start), Some(end)) if start < end => Ok((start, end)),
        (Some(_), Some(_)) => Err(invalid("Start date must be before end date")),
        _ => Err(invalid("TimePeriod: Start and End are required, as YYYY-MM-DD")),
    }
}

fn answer(body: Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body.to_string()).into_response()
}

fn dimension_values(state: &Mutex<State>, request: &Value, (start, end): (NaiveDate, NaiveDate)) -> Response {
    let dimension = request["Dimension"].as_str().unwrap_or("");
    if !["SERVICE", "LINKED_ACCOUNT"].contains(&dimension) {
        return invalid("the simulator serves the SERVICE and LINKED_ACCOUNT dimensions only");
    }
    let filter = match Filter::parse(&request["Filter"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let search = request["SearchString"].as_str().unwrap_or("").to_lowercase();
    let s = state.lock().expect("sim state");
    let mut values: Vec<String> = s
        .lines
        .iter()
        .filter(|l| l.day >= start && l.day < end && filter.admits(l))
        .map(|l| if dimension == "SERVICE" { l.group.clone().unwrap_or_default() } else { account_of(l) })
        .filter(|v| v.to_lowercase().contains(&search))
        .collect();
    values.sort();
    values.dedup();
    let n = values.len();
    answer(json!({
        "DimensionValues": values.into_iter().map(|v| json!({ "Value": v, "Attributes": {} })).collect::<Vec<_>>(),
        "ReturnSize": n, "TotalSize": n,
    }))
}

fn account_of(l: &crate::CostLine) -> String {
    l.account.clone().unwrap_or_else(|| PAYER_ACCOUNT.to_owned())
}

/// A request's `Filter`: one root — `Dimensions` of SERVICE or LINKED_ACCOUNT, or `And` of them.
#[derive(Default)]
struct Filter {
    services: Option<Vec<String>>,
    accounts: Option<Vec<String>>,
}

impl Filter {
    #[allow(clippy::result_large_err)]
    fn parse(filter: &Value) -> Result<Self, Response> {
        let Some(root) = filter.as_object() else { return Ok(Self::default()) };
        if root.len() > 1 {
            return Err(invalid(
                "Expression has more than one roots. Only one root operator is allowed for each expression",
            ));
        }
        let parts: Vec<&Value> = match filter.get("And").and_then(Value::as_array) {
            Some(list) => list.iter().collect(),
            None => vec![filter],
        };
        let mut out = Self::default();
        for part in parts {
            let d = &part["Dimensions"];
            let values =
                d["Values"].as_array().map(|v| v.iter().filter_map(Value::as_str).map(str::to_owned).collect());
            match d["Key"].as_str() {
                Some("SERVICE") => out.services = values,
                Some("LINKED_ACCOUNT") => out.accounts = values,
                _ => return Err(invalid("the simulator filters on SERVICE and LINKED_ACCOUNT dimensions only")),
            }
        }
        Ok(out)
    }

    fn admits(&self, l: &crate::CostLine) -> bool {
        let service = l.group.clone().unwrap_or_default();
        self.services.as_ref().is_none_or(|s| s.contains(&service))
            && self.accounts.as_ref().is_none_or(|a| a.contains(&account_of(l)))
    }
}

fn cost_and_usage(state: &Mutex<State>, request: &Value, (start, end): (NaiveDate, NaiveDate)) -> Response {
    if request["Granularity"] != "DAILY" {
        return invalid("the simulator serves DAILY granularity only");
    }
    let metrics: Vec<&str> =
        request["Metrics"].as_array().map(|m| m.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    if metrics.is_empty() {
        return invalid("Metrics: at least one is required");
    }
    let group_by: Vec<(&str, &str)> = request["GroupBy"]
        .as_array()
        .map(|g| g.iter().filter_map(|d| Some((d["Type"].as_str()?, d["Key"].as_str()?))).collect())
        .unwrap_or_default();
    // None: [SERVICE, USAGE_TYPE]; Some(key): [USAGE_TYPE, TAG:key].
    let tag = match group_by.as_slice() {
        [("DIMENSION", "SERVICE"), ("DIMENSION", "USAGE_TYPE")] => None,
        [("DIMENSION", "USAGE_TYPE"), ("TAG", key)] => Some((*key).to_owned()),
        _ if group_by.len() > 2 => return invalid("GroupBy: at most two groups"),
        _ => return invalid("the simulator groups by [SERVICE, USAGE_TYPE] or [USAGE_TYPE, TAG]"),
    };
    let filter = match Filter::parse(&request["Filter"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    // Every (day, service, usage type) with its amount; a day without cost keeps an empty entry.
    let s = state.lock().expect("sim state");
    let mut days: BTreeMap<NaiveDate, BTreeMap<(String, String), Decimal>> = BTreeMap::new();
    let mut day = start;
    while day < end {
        days.insert(day, BTreeMap::new());
        day += Duration::days(1);
    }
    for l in s.lines.iter().filter(|l| l.day >= start && l.day < end && filter.admits(l)) {
        let keys = match &tag {
            None => (l.group.clone().unwrap_or_default(), l.item.clone()),
            Some(key) => (l.item.clone(), format!("{key}${}", tag_of(l, key).unwrap_or(""))),
        };
        *days.entry(l.day).or_default().entry(keys).or_default() += l.amount;
    }
    drop(s);
    let flat: Vec<(NaiveDate, Option<Grouped>)> =
        days.into_iter()
            .flat_map(|(d, groups)| {
                if groups.is_empty() { vec![(d, None)] } else { groups.into_iter().map(|g| (d, Some(g))).collect() }
            })
            .collect();
    let offset = match request["NextPageToken"].as_str() {
        None => 0,
        Some(t) => match t.strip_prefix("sim-page-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n < flat.len() => n,
            _ => return error(StatusCode::BAD_REQUEST, "InvalidNextTokenException", "The NextPageToken is invalid."),
        },
    };
    let page = &flat[offset..(offset + GROUPS_PER_PAGE).min(flat.len())];
    let estimated_from = Utc::now().date_naive() - Duration::days(1);
    let mut results: Vec<Value> = Vec::new();
    for (d, group) in page {
        if results.last().is_none_or(|r| r["TimePeriod"]["Start"] != d.to_string()) {
            results.push(json!({
                "TimePeriod": { "Start": d.to_string(), "End": (*d + Duration::days(1)).to_string() },
                "Total": {}, "Groups": [], "Estimated": *d >= estimated_from,
            }));
        }
        if let Some(((first, second), amount)) = group {
            let mut m = serde_json::Map::new();
            for metric in &metrics {
                let value = match *metric {
                    "UsageQuantity" => {
                        json!({ "Amount": (amount * Decimal::from(1000)).normalize().to_string(), "Unit": "N/A" })
                    }
                    _ => json!({ "Amount": amount.normalize().to_string(), "Unit": "USD" }),
                };
                m.insert((*metric).to_owned(), value);
            }
            let last = results.last_mut().expect("pushed");
            last["Groups"].as_array_mut().expect("array").push(json!({ "Keys": [first, second], "Metrics": m }));
        }
    }
    let mut body = json!({
        "GroupDefinitions": request["GroupBy"],
        "ResultsByTime": results, "DimensionValueAttributes": [],
    });
    if offset + GROUPS_PER_PAGE < flat.len() {
        body["NextPageToken"] = json!(format!("sim-page-{}", offset + GROUPS_PER_PAGE));
    }
    answer(body)
}

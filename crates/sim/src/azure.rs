//! Azure of providers.md §4: the Entra ID token endpoint (`POST /{tenant}/oauth2/v2.0/token`,
//! client credentials, form-encoded) and the Cost Management Query API
//! (`POST /{scope}/providers/Microsoft.CostManagement/query?api-version=…`): bearer tokens checked
//! and expiring, the body validated (at most 2 aggregations and 2 groupings, `timePeriod` with
//! `Custom`), answers as column/row tables with `UsageDate` a yyyymmdd number and costs as doubles
//! with float noise, [`PAGE_ROWS`] rows a page followed by `nextLink` with `$skiptoken`, 204 when
//! nothing matches, 429 with Azure's retry headers.
//!
//! A fixture line is one day's cost of one meter (`item`) on one resource (`group`, an ARM id);
//! lines of resources that are not Azure AI Services stand for the rest of the bill.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::{Fault, State, query_pairs, record};

/// Rows a page holds unless `$top` asks for fewer (Azure: 5000).
pub const PAGE_ROWS: usize = 4;
pub const API_VERSIONS: [&str; 3] = ["2023-11-01", "2024-08-01", "2025-03-01"];
const AI_TYPE: &str = "/providers/microsoft.cognitiveservices/accounts/";

/// The application the simulator knows, and the tokens it issued.
#[derive(Default)]
pub(crate) struct Azure {
    pub(crate) tenant: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) scope: String,
    /// Issued tokens; `false` once expired.
    pub(crate) tokens: Vec<(String, bool)>,
    /// A host `nextLink` points to instead of this simulator's (a hostile or broken answer).
    pub(crate) next_link_host: Option<String>,
}

fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    let mut r = (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    r.headers_mut().insert("x-ms-request-id", "5b2f7c1e-3d0a-4c9e-8f61-0a1b2c3d4e5f".parse().expect("ascii"));
    r
}

fn bad(message: &str) -> Response {
    arm_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

pub(crate) fn router(state: Arc<Mutex<State>>) -> Router {
    Router::new().route("/{tenant}/oauth2/v2.0/token", post(token)).fallback(query).with_state(state)
}

type Shared = AxState<Arc<Mutex<State>>>;

fn token_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = serde_json::json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: 0a1b2c3d-0000-4000-8000-aabbccddeeff Correlation ID: 11111111-2222-4333-8444-555555555555 Timestamp: 2026-01-03 06:00:00Z"),
        "error_codes": [code],
        "timestamp": "2026-01-03 06:00:00Z",
        "trace_id": "0a1b2c3d-0000-4000-8000-aabbccddeeff",
        "correlation_id": "11111111-2222-4333-8444-555555555555",
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}")
    });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn token(AxState(state): Shared, Path(tenant): Path<String>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    record(&state, path);
    let form = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let Ok(body) = axum::body::to_bytes(req.into_body(), 1 << 16).await else { return bad("body too large") };
    if !form.starts_with("application/x-www-form-urlencoded") {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let pairs = query_pairs(Some(&String::from_utf8_lossy(&body)));
    let one = |k: &str| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let mut s = state.lock().expect("sim state");
    let Some(azure) = s.azure.as_mut() else { return bad("not an Azure simulator") };
    if tenant != azure.tenant {
        return token_error(StatusCode::BAD_REQUEST, "invalid_tenant", 90002, &format!("Tenant '{tenant}' not found."));
    }
    if one("grant_type") != "client_credentials" {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if one("scope") != "https://management.azure.com/.default" {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid.",
        );
    }
    if one("client_id") != azure.client_id {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    if one("client_secret") != azure.client_secret {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    let token = format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.sim{}", azure.tokens.len());
    azure.tokens.push((token.clone(), true));
    let body = serde_json::json!({ "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token });
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn query(AxState(state): Shared, req: Request) -> Response {
    let key = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let fault = record(&state, key);
    let path = req.uri().path().to_owned();
    let Some(scope) = path.strip_suffix("/providers/Microsoft.CostManagement/query") else {
        return arm_error(StatusCode::NOT_FOUND, "NotFound", &format!("No route for {path}"));
    };
    let pairs = query_pairs(req.uri().query());
    let one = |k: &str| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    if !one("api-version").is_some_and(|v| API_VERSIONS.contains(&v.as_str())) {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            "The api-version is missing or not supported.",
        );
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    {
        let s = state.lock().expect("sim state");
        let Some(azure) = s.azure.as_ref() else { return bad("not an Azure simulator") };
        match azure.tokens.iter().find(|(t, _)| Some(t) == bearer.as_ref()) {
            None => {
                return arm_error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "The access token is invalid.",
                );
            }
            Some((_, false)) => {
                return arm_error(
                    StatusCode::UNAUTHORIZED,
                    "ExpiredAuthenticationToken",
                    "The access token expiry UTC time is earlier than current UTC time.",
                );
            }
            Some(_) => {}
        }
        if !scope.trim_start_matches('/').eq_ignore_ascii_case(&azure.scope) {
            return arm_error(
                StatusCode::FORBIDDEN,
                "AuthorizationFailed",
                &format!(
                    "The client does not have authorization to perform action 'Microsoft.CostManagement/query/action' over scope '{scope}'."
                ),
            );
        }
    }
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut r = arm_error(StatusCode::TOO_MANY_REQUESTS, "429", "Too many requests. Please retry.");
            let h = r.headers_mut();
            // Azure's own header asks for the wait; the standard one says less.
            h.insert(
                "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after",
                retry_after_secs.to_string().parse().expect("digits"),
            );
            h.insert("retry-after", "0".parse().expect("digits"));
            h.insert("x-ms-ratelimit-microsoft.costmanagement-qpu-remaining", "QueryUsage=0".parse().expect("ascii"));
            return r;
        }
        Some(Fault::ServerError(code)) => {
            return arm_error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "InternalServerError",
                "Encountered internal server error.",
            );
        }
        Some(Fault::MalformedJson) => {
            return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{\"properties\": {\"columns\": [")
                .into_response();
        }
        Some(Fault::Pass) | None => {}
    }
    if !req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return arm_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "The content media type is not supported.",
        );
    }
    let own_host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1").to_owned();
    let host =
        state.lock().expect("sim state").azure.as_ref().and_then(|a| a.next_link_host.clone()).unwrap_or(own_host);
    let Ok(body) = axum::body::to_bytes(req.into_body(), 1 << 20).await else { return bad("body too large") };
    let Ok(q) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return bad("The query definition is not valid JSON.");
    };
    let cost_type = q["type"].as_str().unwrap_or("");
    if !["ActualCost", "AmortizedCost", "Usage"].contains(&cost_type) {
        return bad(&format!("Invalid query type '{cost_type}'."));
    }
    if q["timeframe"] != "Custom" {
        return bad("The simulator serves timeframe Custom only.");
    }
    let day = |v: &serde_json::Value| v.as_str().and_then(|t| t.get(..10)).and_then(|d| d.parse::<NaiveDate>().ok());
    let (Some(from), Some(to)) = (day(&q["timePeriod"]["from"]), day(&q["timePeriod"]["to"])) else {
        return bad("timePeriod with from and to is required when timeframe is Custom.");
    };
    let dataset = &q["dataset"];
    if dataset["aggregation"].as_object().is_some_and(|a| a.len() > 2) {
        return bad("Query can have at most 2 aggregation clauses.");
    }
    let grouping: Vec<&str> = dataset["grouping"]
        .as_array()
        .map(|g| g.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    if grouping.len() > 2 {
        return bad("Query can have at most 2 grouping clauses.");
    }
    if grouping != ["ResourceId", "Meter"] || dataset["granularity"] != "Daily" {
        return bad("The simulator serves daily costs grouped by ResourceId and Meter.");
    }
    let ai_only = dataset["filter"]["dimensions"]["name"] == "ResourceType"
        && dataset["filter"]["dimensions"]["values"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == "microsoft.cognitiveservices/accounts"));

    // Summed by day, resource and meter, in the order Azure's answers seem to take.
    let mut grouped: BTreeMap<(NaiveDate, String, String), Decimal> = BTreeMap::new();
    {
        let s = state.lock().expect("sim state");
        for l in s.lines.iter().filter(|l| l.day >= from && l.day <= to) {
            let resource = l.group.clone().unwrap_or_default();
            if ai_only && !resource.to_ascii_lowercase().contains(AI_TYPE) {
                continue;
            }
            *grouped.entry((l.day, resource, l.item.clone())).or_default() += l.amount;
        }
    }
    let mut all: Vec<_> = grouped.into_iter().collect();
    if cost_type == "AmortizedCost" {
        // Joined by key, not by position: the second answer comes in another order.
        all.reverse();
    }
    if all.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let top = one("$top").and_then(|t| t.parse::<usize>().ok()).unwrap_or(PAGE_ROWS).clamp(1, PAGE_ROWS);
    let offset =
        one("$skiptoken").and_then(|t| t.strip_prefix("AQAA").and_then(|n| n.parse::<usize>().ok())).unwrap_or(0);
    let page = all.iter().skip(offset).take(top);
    let rows: Vec<String> = page
        .enumerate()
        .map(|(i, ((day, resource, meter), amount))| {
            format!(
                "[{},{},{},{},{},\"USD\"]",
                crate::float_text(*amount, (offset + i) % 2 == 1),
                (amount * Decimal::from(400)).round_dp(3),
                day.format("%Y%m%d"),
                serde_json::to_string(resource).expect("a string"),
                serde_json::to_string(meter).expect("a string"),
            )
        })
        .collect();
    let next = if offset + top < all.len() {
        let api = one("api-version").unwrap_or_default();
        format!("\"http://{host}{path}?api-version={api}&$skiptoken=AQAA{}\"", offset + top)
    } else {
        "null".into()
    };
    let body = format!(
        "{{\"id\":\"{scope}/providers/Microsoft.CostManagement/query/5b2f7c1e-3d0a-4c9e-8f61-0a1b2c3d4e5f\",\
         \"name\":\"5b2f7c1e-3d0a-4c9e-8f61-0a1b2c3d4e5f\",\"type\":\"Microsoft.CostManagement/query\",\
         \"location\":null,\"sku\":null,\"eTag\":null,\"properties\":{{\"nextLink\":{next},\
         \"columns\":[{{\"name\":\"Cost\",\"type\":\"Number\"}},{{\"name\":\"UsageQuantity\",\"type\":\"Number\"}},\
         {{\"name\":\"UsageDate\",\"type\":\"Number\"}},{{\"name\":\"ResourceId\",\"type\":\"String\"}},\
         {{\"name\":\"Meter\",\"type\":\"String\"}},{{\"name\":\"Currency\",\"type\":\"String\"}}],\
         \"rows\":[{}]}}}}",
        rows.join(",")
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

//! Google Cloud of providers.md §5: the OAuth token endpoint (`POST /token`, a JWT-bearer grant
//! whose RS256 assertion is verified against the service account's public key, `aud` and `exp`
//! checked) and BigQuery `jobs.query` / `jobs.getQueryResults` over a billing export table: a job
//! may answer `jobComplete: false` first, pages of [`PAGE_ROWS`] rows follow `pageToken`, every
//! cell is a string, errors use Google's envelope (403 `rateLimitExceeded` for throttling, 404
//! `notFound` for a missing table, 400 `invalidQuery`).
//!
//! The simulator runs no SQL: it checks the query names the export table and filters by the
//! `@start`, `@end` and `@services` parameters, then aggregates the fixture. A fixture line is one
//! day's cost of one SKU (`item`, its description) of one service (`model`) in one project
//! (`group`); [`credits_of`] and [`list_cost_of`] derive its credits and list cost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::Router;
use axum::extract::{Path, Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::{CostLine, Fault, State, query_pairs, record};

/// Rows a page holds at most (BigQuery: as many as fit 10 MB).
pub const PAGE_ROWS: usize = 3;
pub const CLIENT_EMAIL: &str = "burnrate-reader@acme-billing.iam.gserviceaccount.com";
pub const PRIVATE_KEY_ID: &str = "1f2e3d4c5b6a79880123456789abcdef01234567";

/// Credits of a fixture line: a tenth of a Vertex AI line's cost, as a negative amount.
pub fn credits_of(line: &CostLine) -> Decimal {
    if line.model.as_deref() == Some("Vertex AI") { -(line.amount / Decimal::TEN).round_dp(9) } else { Decimal::ZERO }
}

/// List cost of a fixture line: a quarter above its cost.
pub fn list_cost_of(line: &CostLine) -> Decimal {
    (line.amount * Decimal::new(125, 2)).round_dp(9)
}

/// Resource labels of a fixture line: `team` by model family, and none on the Gemini API.
pub fn labels_of(line: &CostLine) -> Vec<(&'static str, &'static str)> {
    match (line.model.as_deref(), line.item.contains("Flash")) {
        (Some("Gemini API"), _) => vec![],
        (_, true) => vec![("team", "search"), ("env", "prod")],
        (_, false) => vec![("team", "research")],
    }
}

/// The SKU id of a fixture line: stable, from its description.
pub fn sku_id_of(description: &str) -> String {
    let sum: u32 = description.bytes().map(u32::from).sum();
    format!("{:04X}-{:04X}-{:04X}", sum % 0xFFFF, description.len(), (sum * 31) % 0xFFFF)
}

/// The service account, its signing key, the query project and the export table.
pub(crate) struct Gcp {
    pub(crate) public_key: Vec<u8>,
    pub(crate) private_pem: String,
    pub(crate) project: String,
    pub(crate) table: String,
    pub(crate) tokens: Vec<String>,
    /// Jobs: their rows (cells as strings) and how many polls still answer "not complete".
    pub(crate) jobs: Vec<(Vec<Vec<Option<String>>>, u32)>,
    /// Each new job first answers this many times that it is still running.
    pub(crate) slow_polls: u32,
}

/// A new RSA key pair: (PKCS#8 PEM, the public key as BigQuery's token endpoint would know it).
pub fn generate_key() -> (String, Vec<u8>) {
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("an RSA key");
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("PKCS#8");
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64")).collect();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
    (pem, pair.public_key().as_ref().to_vec())
}

/// A service account JSON key file as Google issues it, with `token_uri` at `token_uri`.
pub fn key_json(project: &str, private_pem: &str, token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": PRIVATE_KEY_ID,
        "private_key": private_pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "103735210456721234567",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/burnrate-reader%40acme-billing.iam.gserviceaccount.com",
        "universe_domain": "googleapis.com"
    })
    .to_string()
}

fn google_error(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": status.as_u16(), "message": message,
        "errors": [{ "message": message, "domain": "global", "reason": reason }],
        "status": match status.as_u16() { 400 => "INVALID_ARGUMENT", 401 => "UNAUTHENTICATED", 403 => "PERMISSION_DENIED", 404 => "NOT_FOUND", _ => "INTERNAL" } } });
    (status, [(header::CONTENT_TYPE, "application/json; charset=UTF-8")], body.to_string()).into_response()
}

fn grant_error(description: &str) -> Response {
    let body = serde_json::json!({ "error": "invalid_grant", "error_description": description });
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string())
        .into_response()
}

pub(crate) fn router(state: Arc<Mutex<State>>) -> Router {
    Router::new()
        .route("/token", post(token))
        .route("/bigquery/v2/projects/{project}/queries", post(query))
        .route("/bigquery/v2/projects/{project}/queries/{job}", get(results))
        .with_state(state)
}

type Shared = AxState<Arc<Mutex<State>>>;

async fn token(AxState(state): Shared, req: Request) -> Response {
    record(&state, req.uri().path().to_owned());
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let Ok(body) = axum::body::to_bytes(req.into_body(), 1 << 16).await else { return grant_error("body too large") };
    let pairs = query_pairs(Some(&String::from_utf8_lossy(&body)));
    let one = |k: &str| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone()).unwrap_or_default();
    if one("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        let body = serde_json::json!({ "error": "unsupported_grant_type", "error_description": "Invalid grant_type" });
        return (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/json")], body.to_string())
            .into_response();
    }
    let assertion = one("assertion");
    let parts: Vec<&str> = assertion.split('.').collect();
    let [head, claims, signature] = parts.as_slice() else { return grant_error("Invalid JWT: not three segments.") };
    let decode =
        |s: &str| URL_SAFE_NO_PAD.decode(s).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let (Some(head_json), Some(claims_json)) = (decode(head), decode(claims)) else {
        return grant_error("Invalid JWT: segments are not base64url JSON.");
    };
    let mut s = state.lock().expect("sim state");
    let Some(gcp) = s.gcp.as_mut() else { return grant_error("not a Google Cloud simulator") };
    if head_json["alg"] != "RS256" || head_json["kid"] != PRIVATE_KEY_ID {
        return grant_error("Invalid JWT: unknown key or algorithm.");
    }
    let signed = format!("{head}.{claims}");
    let Ok(sig) = URL_SAFE_NO_PAD.decode(signature) else { return grant_error("Invalid JWT Signature.") };
    if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &gcp.public_key).verify(signed.as_bytes(), &sig).is_err() {
        return grant_error("Invalid JWT Signature.");
    }
    let now = chrono::Utc::now().timestamp();
    let (iat, exp) = (claims_json["iat"].as_i64().unwrap_or(0), claims_json["exp"].as_i64().unwrap_or(0));
    if exp <= now || iat > now + 60 || exp - iat > 3600 {
        return grant_error(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
    }
    if claims_json["aud"] != format!("http://{host}/token") || claims_json["iss"] != CLIENT_EMAIL {
        return grant_error("Invalid JWT: the audience or issuer is wrong.");
    }
    if !claims_json["scope"]
        .as_str()
        .is_some_and(|sc| sc.split(' ').any(|x| x == "https://www.googleapis.com/auth/bigquery"))
    {
        return grant_error("Invalid OAuth scope or ID token audience provided.");
    }
    let token = format!("ya29.c.sim{}", gcp.tokens.len());
    gcp.tokens.push(token.clone());
    // Google's own client converts a string expires_in; some answers carry one.
    let body = serde_json::json!({ "access_token": token, "expires_in": "3599", "token_type": "Bearer" });
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Authentication and faults of the BigQuery endpoints.
#[allow(clippy::result_large_err)]
fn preamble(state: &Mutex<State>, req: &Request, project: &str) -> Result<(), Response> {
    let fault = record(state, req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default());
    let bearer =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let s = state.lock().expect("sim state");
    let gcp = s
        .gcp
        .as_ref()
        .ok_or_else(|| google_error(StatusCode::NOT_FOUND, "notFound", "not a Google Cloud simulator"))?;
    if !bearer.is_some_and(|b| gcp.tokens.iter().any(|t| t == b)) {
        return Err(google_error(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        ));
    }
    if project != gcp.project {
        return Err(google_error(
            StatusCode::FORBIDDEN,
            "accessDenied",
            &format!(
                "Access Denied: Project {project}: User does not have bigquery.jobs.create permission in project {project}."
            ),
        ));
    }
    match fault {
        Some(Fault::RateLimited { .. }) => Err(google_error(
            StatusCode::FORBIDDEN,
            "rateLimitExceeded",
            "Exceeded rate limits: too many api requests per user per method for this user_method. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas",
        )),
        Some(Fault::ServerError(code)) => Err(google_error(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "backendError",
            "Backend error. Job aborted.",
        )),
        Some(Fault::MalformedJson) => {
            Err((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{\"kind\": \"bigquery#queryRe")
                .into_response())
        }
        Some(Fault::Pass) | None => Ok(()),
    }
}

const FIELDS: [(&str, &str); 13] = [
    ("usage_date", "DATE"),
    ("service", "STRING"),
    ("sku_id", "STRING"),
    ("sku", "STRING"),
    ("project_id", "STRING"),
    ("currency", "STRING"),
    ("cost_type", "STRING"),
    ("cost", "FLOAT"),
    ("credits", "FLOAT"),
    ("cost_at_list", "FLOAT"),
    ("pricing_qty", "FLOAT"),
    ("pricing_unit", "STRING"),
    ("labels", "STRING"),
];

/// A page of job `job`'s rows from `offset`, or its state while it still runs.
fn page(gcp: &mut Gcp, project: &str, job: usize, offset: usize, max: usize, kind: &str) -> String {
    let reference = serde_json::json!({ "projectId": project, "jobId": format!("job_sim{job}"), "location": "US" });
    let (rows, polls) = &mut gcp.jobs[job];
    if *polls > 0 {
        *polls -= 1;
        return serde_json::json!({ "kind": kind, "jobReference": reference, "jobComplete": false }).to_string();
    }
    let end = (offset + max.clamp(1, PAGE_ROWS)).min(rows.len());
    let cells: Vec<serde_json::Value> = rows[offset..end]
        .iter()
        .map(|r| serde_json::json!({ "f": r.iter().map(|v| serde_json::json!({ "v": v })).collect::<Vec<_>>() }))
        .collect();
    let fields: Vec<serde_json::Value> =
        FIELDS.iter().map(|(n, t)| serde_json::json!({ "name": n, "type": t, "mode": "NULLABLE" })).collect();
    let mut body = serde_json::json!({
        "kind": kind, "schema": { "fields": fields }, "jobReference": reference,
        "totalRows": rows.len().to_string(), "rows": cells, "totalBytesProcessed": "1048576",
        "jobComplete": true, "cacheHit": false,
    });
    if end < rows.len() {
        body["pageToken"] = serde_json::json!(format!("BHAZ{end}"));
    }
    body.to_string()
}

async fn query(AxState(state): Shared, Path(project): Path<String>, req: Request) -> Response {
    if let Err(r) = preamble(&state, &req, &project) {
        return r;
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), 1 << 20).await else {
        return google_error(StatusCode::BAD_REQUEST, "invalid", "body too large");
    };
    let Ok(q) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return google_error(StatusCode::BAD_REQUEST, "parseError", "Parse Error");
    };
    if q["useLegacySql"] != false {
        return google_error(
            StatusCode::BAD_REQUEST,
            "invalidQuery",
            "Invalid table name: legacy SQL is the default; send useLegacySql false.",
        );
    }
    if q["formatOptions"]["useInt64Timestamp"] != true {
        return google_error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "The simulator expects formatOptions.useInt64Timestamp.",
        );
    }
    let sql = q["query"].as_str().unwrap_or("");
    let param =
        |name: &str| q["queryParameters"].as_array().and_then(|ps| ps.iter().find(|p| p["name"] == name)).cloned();
    let day = |name: &str| {
        param(name)
            .and_then(|p| p["parameterValue"]["value"].as_str().and_then(|v| v.get(..10)?.parse::<NaiveDate>().ok()))
    };
    let services: Vec<String> = param("services")
        .and_then(|p| {
            p["parameterValue"]["arrayValues"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v["value"].as_str().map(str::to_owned)).collect())
        })
        .unwrap_or_default();
    let (Some(start), Some(end)) = (day("start"), day("end")) else {
        return google_error(StatusCode::BAD_REQUEST, "invalidQuery", "Query parameter 'start' or 'end' not found.");
    };
    let mut s = state.lock().expect("sim state");
    let lines = s.lines.clone();
    let gcp = s.gcp.as_mut().expect("checked in the preamble");
    if !sql.contains(&format!("FROM `{}`", gcp.table)) {
        return google_error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Not found: Table in the query was not found in location US",
        );
    }
    if !sql.contains("usage_start_time >= @start")
        || !sql.contains("IN UNNEST(@services)")
        || !sql.contains("TO_JSON_STRING(labels) AS labels")
    {
        return google_error(
            StatusCode::BAD_REQUEST,
            "invalidQuery",
            "The simulator serves the billing aggregate only.",
        );
    }
    // day, service, sku, project → (cost, credits, list, quantity)
    type Sums = (Decimal, Decimal, Decimal, Decimal);
    let mut grouped: BTreeMap<(NaiveDate, String, String, String, String), Sums> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.day >= start && l.day < end) {
        let service = l.model.clone().unwrap_or_default();
        if !services.contains(&service) {
            continue;
        }
        let labels: Vec<serde_json::Value> =
            labels_of(l).into_iter().map(|(k, v)| serde_json::json!({ "key": k, "value": v })).collect();
        let labels = serde_json::Value::Array(labels).to_string();
        let e =
            grouped.entry((l.day, service, l.item.clone(), l.group.clone().unwrap_or_default(), labels)).or_default();
        e.0 += l.amount;
        e.1 += credits_of(l);
        e.2 += list_cost_of(l);
        e.3 += l.amount * Decimal::from(1000);
    }
    let rows: Vec<Vec<Option<String>>> = grouped
        .into_iter()
        .enumerate()
        .map(|(i, ((day, service, sku, project, labels), (cost, credits, list, qty)))| {
            vec![
                Some(day.to_string()),
                Some(service),
                Some(sku_id_of(&sku)),
                Some(sku),
                Some(project),
                Some("USD".into()),
                Some("regular".into()),
                Some(crate::float_text(cost, i % 2 == 1)),
                Some(crate::float_text(credits, false)),
                Some(crate::float_text(list, false)),
                Some(qty.normalize().to_string()),
                Some("count".into()),
                Some(labels),
            ]
        })
        .collect();
    let slow = gcp.slow_polls;
    gcp.jobs.push((rows, slow));
    let job = gcp.jobs.len() - 1;
    let max = q["maxResults"].as_u64().unwrap_or(PAGE_ROWS as u64) as usize;
    let body = page(gcp, &project, job, 0, max, "bigquery#queryResponse");
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn results(AxState(state): Shared, Path((project, job)): Path<(String, String)>, req: Request) -> Response {
    if let Err(r) = preamble(&state, &req, &project) {
        return r;
    }
    let pairs = query_pairs(req.uri().query());
    let one = |k: &str| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    if one("formatOptions.useInt64Timestamp").as_deref() != Some("true") {
        return google_error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "The simulator expects formatOptions.useInt64Timestamp.",
        );
    }
    let mut s = state.lock().expect("sim state");
    let gcp = s.gcp.as_mut().expect("checked in the preamble");
    let Some(index) = job.strip_prefix("job_sim").and_then(|n| n.parse::<usize>().ok()).filter(|n| *n < gcp.jobs.len())
    else {
        return google_error(StatusCode::NOT_FOUND, "notFound", &format!("Not found: Job {project}:US.{job}"));
    };
    let offset = match one("pageToken") {
        None => 0,
        Some(t) => match t.strip_prefix("BHAZ").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => return google_error(StatusCode::BAD_REQUEST, "invalid", "Invalid page token."),
        },
    };
    let max = one("maxResults").and_then(|m| m.parse().ok()).unwrap_or(PAGE_ROWS);
    let body = page(gcp, &project, index, offset, max, "bigquery#getQueryResultsResponse");
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

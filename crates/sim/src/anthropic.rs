//! The Anthropic Admin API reports of providers.md §2: `GET /v1/organizations/cost_report`
//! (amounts as decimal strings in cents) and `GET /v1/organizations/usage_report/messages`.
//! `starting_at` snaps to the start of its UTC day; buckets are days.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::{Fault, State, query_pairs, record};

/// (workspace, description, model): the dimensions a cost line is summed by.
type GroupKey = (Option<String>, Option<String>, Option<String>);

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({ "type": "error", "error": { "type": kind, "message": message }, "request_id": "req_sim0000000000000000000000" });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn bad(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

pub(crate) fn router(state: Arc<Mutex<State>>, api_key: String) -> Router {
    Router::new()
        .route("/v1/organizations/cost_report", get(cost_report))
        .route("/v1/organizations/usage_report/messages", get(usage_report))
        .with_state((state, api_key))
}

/// The Unix time `day` starts at.
fn day_start_of(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp()
}

struct Query {
    group_by: Vec<String>,
    /// This page's buckets: whole UTC days, or hours with `bucket_width=1h`.
    page: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    next: Option<usize>,
    /// Hour buckets, each holding its share of its day's usage.
    hourly: bool,
    /// The request's path and query: what a remembered answer is filed under.
    key: String,
}

/// Authentication, faults, parameters and paging, common to both reports.
// The error is the HTTP answer itself, built and returned once per request.
#[allow(clippy::result_large_err)]
fn preamble(
    state: &Mutex<State>,
    api_key: &str,
    req: &Request,
    allowed_groups: &[&str],
    serves_hours: bool,
) -> Result<Query, Response> {
    let key = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let fault = record(state, key.clone());
    let h = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if h("x-api-key").as_deref() != Some(api_key) {
        return Err(error(StatusCode::UNAUTHORIZED, "authentication_error", "invalid x-api-key"));
    }
    if h("anthropic-version").is_none() {
        return Err(bad("anthropic-version: header is required"));
    }
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "Number of requests has exceeded your rate limit",
            );
            r.headers_mut().insert("retry-after", retry_after_secs.to_string().parse().expect("digits"));
            return Err(r);
        }
        Some(Fault::ServerError(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Err(error(
                status,
                if code == 529 { "overloaded_error" } else { "api_error" },
                "Internal server error",
            ));
        }
        Some(Fault::MalformedJson) => {
            return Err((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"data\": [{\"starting_at\": \"2025-",
            )
                .into_response());
        }
        Some(Fault::Pass) | None => {}
    }
    if let Some(remembered) = crate::recall(state, &key) {
        return Err(remembered);
    }
    let pairs = query_pairs(req.uri().query());
    let one = |k: &str| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    let Some(start) = one("starting_at") else { return Err(bad("starting_at: field required")) };
    let Ok(start) = DateTime::parse_from_rfc3339(&start).map(|t| t.with_timezone(&Utc)) else {
        return Err(bad("starting_at: invalid datetime"));
    };
    let end = match one("ending_at").map(|e| DateTime::parse_from_rfc3339(&e)) {
        None => Utc::now(),
        Some(Ok(e)) if e > start => e.with_timezone(&Utc),
        Some(_) => return Err(bad("ending_at: must be a datetime after starting_at")),
    };
    let hourly = match one("bucket_width").as_deref() {
        None | Some("1d") => false,
        Some("1h") if serves_hours => true,
        Some("1h") | Some("1m") => return Err(bad("bucket_width: the simulator serves 1h for the usage report only")),
        Some(w) => return Err(bad(&format!("bucket_width: invalid value '{w}'"))),
    };
    let (default_limit, max_limit) = if hourly { (24, 168) } else { (7, 31) };
    let limit = match one("limit").map(|v| v.parse::<usize>()) {
        None => default_limit,
        Some(Ok(n)) if (1..=max_limit).contains(&n) => n,
        Some(_) => return Err(bad(&format!("limit: must be between 1 and {max_limit}"))),
    };
    let mut group_by = Vec::new();
    for (k, v) in &pairs {
        if k == "group_by" {
            if !allowed_groups.contains(&v.as_str()) {
                return Err(bad(&format!("group_by: invalid value '{v}'")));
            }
            group_by.push(v.clone());
        }
    }
    // Buckets start at the day (or hour) `starting_at` falls in, as the real report snaps it.
    let width = if hourly { Duration::hours(1) } else { Duration::days(1) };
    let midnight = start.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let mut b = if hourly { midnight + Duration::hours((start - midnight).num_hours()) } else { midnight };
    let mut buckets = Vec::new();
    while b < end {
        buckets.push((b, b + width));
        b += width;
    }
    let first = match one("page") {
        None => 0,
        Some(p) => match p.strip_prefix("page_").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= buckets.len() => n,
            _ => return Err(bad("page: invalid page token")),
        },
    };
    let page: Vec<_> = buckets.iter().copied().skip(first).take(limit).collect();
    let next = first + page.len();
    Ok(Query { group_by, page, next: (next < buckets.len()).then_some(next), hourly, key })
}

fn envelope(state: &Mutex<State>, key: String, buckets: Vec<String>, next: Option<usize>) -> Response {
    let (has_more, next_page) = match next {
        Some(n) => (true, format!("\"page_{n}\"")),
        None => (false, "null".into()),
    };
    let body = format!(r#"{{"data":[{}],"has_more":{has_more},"next_page":{next_page}}}"#, buckets.join(","));
    crate::answer(state, key, body)
}

fn bucket((start, end): (DateTime<Utc>, DateTime<Utc>), results: Vec<String>) -> String {
    let text = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(r#"{{"starting_at":"{}","ending_at":"{}","results":[{}]}}"#, text(start), text(end), results.join(","))
}

async fn cost_report(AxState((state, api_key)): AxState<(Arc<Mutex<State>>, String)>, req: Request) -> Response {
    let q = match preamble(&state, &api_key, &req, &["workspace_id", "description"], false) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let by_workspace = q.group_by.iter().any(|g| g == "workspace_id");
    let by_description = q.group_by.iter().any(|g| g == "description");
    let mut buckets = Vec::new();
    for span in &q.page {
        let day = span.0.date_naive();
        let mut grouped: BTreeMap<GroupKey, Decimal> = BTreeMap::new();
        let lines = state.lock().expect("sim state").lines_of(day);
        for l in lines {
            let key = (
                by_workspace.then(|| l.group.clone()).flatten(),
                by_description.then(|| l.item.clone()),
                by_description.then(|| l.model.clone()).flatten(),
            );
            *grouped.entry(key).or_default() += l.amount;
        }
        let results = grouped
            .into_iter()
            .map(|((workspace, description, model), dollars)| {
                let cents = (dollars * Decimal::ONE_HUNDRED).normalize();
                let cost_type = description.as_ref().map(|d| if d.starts_with("Web Search") { "web_search" } else { "tokens" });
                format!(
                    r#"{{"currency":"USD","amount":"{cents}","workspace_id":{},"description":{},"cost_type":{},"context_window":null,"model":{},"service_tier":null,"token_type":null,"inference_geo":null}}"#,
                    serde_json::to_string(&workspace).expect("string"),
                    serde_json::to_string(&description).expect("string"),
                    serde_json::to_string(&cost_type).expect("string"),
                    serde_json::to_string(&model).expect("string"),
                )
            })
            .collect();
        buckets.push(bucket(*span, results));
    }
    envelope(&state, q.key, buckets, q.next)
}

/// The part of `write` cache-write tokens the simulator reports as written for an hour.
pub(crate) fn one_hour_part(write: i64) -> i64 {
    write / 4
}

async fn usage_report(AxState((state, api_key)): AxState<(Arc<Mutex<State>>, String)>, req: Request) -> Response {
    let groups = [
        "api_key_id",
        "workspace_id",
        "model",
        "service_tier",
        "context_window",
        "inference_geo",
        "speed",
        "account_id",
        "service_account_id",
    ];
    let q = match preamble(&state, &api_key, &req, &groups, true) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let by = |g: &str| q.group_by.iter().any(|x| x == g);
    let mut buckets = Vec::new();
    for span in &q.page {
        let day = span.0.date_naive();
        // (workspace, api key, model) -> (uncached, cache read, cache write, output, web searches)
        let mut grouped: BTreeMap<GroupKey, [i64; 5]> = BTreeMap::new();
        let usage = state.lock().expect("sim state").usage_of(day);
        for u in usage {
            let key = (
                by("workspace_id").then(|| u.group.clone()).flatten(),
                by("api_key_id").then(|| u.api_key.clone()).flatten(),
                by("model").then(|| u.model.clone()),
            );
            let t = grouped.entry(key).or_default();
            let bounds = (span.0.timestamp(), span.1.timestamp());
            let day_start = day_start_of(day);
            for (slot, v) in t.iter_mut().zip([u.uncached, u.cached, u.cache_write, u.output, u.web_searches]) {
                *slot += if q.hourly { crate::hour_share(v, bounds, day_start) } else { v };
            }
        }
        let results = grouped
            .into_iter()
            .map(|((workspace, key, model), [uncached, read, write, output, searches])| {
                // Cache writes split between the two cache lifetimes, as the real report does.
                let one_hour = one_hour_part(write);
                serde_json::json!({
                    "uncached_input_tokens": uncached,
                    "cache_creation": { "ephemeral_5m_input_tokens": write - one_hour, "ephemeral_1h_input_tokens": one_hour },
                    "cache_read_input_tokens": read,
                    "output_tokens": output,
                    "server_tool_use": { "web_search_requests": searches },
                    "api_key_id": key, "workspace_id": workspace, "model": model, "service_tier": null,
                    "context_window": null, "inference_geo": null, "speed": null, "account_id": null, "service_account_id": null,
                })
                .to_string()
            })
            .collect();
        buckets.push(bucket(*span, results));
    }
    envelope(&state, q.key, buckets, q.next)
}

//! `GET /v1/organization/costs` as providers.md §1 describes it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use crate::{Fault, State, query_pairs, record};

const DAY: i64 = 86_400;

fn error(status: StatusCode, message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Response {
    let body = serde_json::json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn bad(message: &str, param: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message, "invalid_request_error", Some(param), None)
}

pub(crate) fn router(state: Arc<Mutex<State>>, api_key: String) -> Router {
    let mut router = Router::new()
        .route("/v1/organization/costs", get(costs))
        .route("/v1/organization/usage/completions", get(completions))
        .route("/v1/chat/completions", post(chat_completion));
    for endpoint in OTHER_USAGE {
        router = router
            .route(&format!("/v1/organization/usage/{}", endpoint.path), get(move |s, r| other_usage(endpoint, s, r)));
    }
    router.with_state((state, api_key))
}

/// `POST /v1/chat/completions`, for applications' instrumentation to call: an answer of the
/// API's shape whose `usage` is known in advance — a prompt costs one token per character of
/// its messages' text, an answer five — so a test knows what the spans should say.
async fn chat_completion(AxState((_, api_key)): AxState<(Arc<Mutex<State>>, String)>, req: Request) -> Response {
    let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth != format!("Bearer {api_key}") {
        return error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        );
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), 1 << 20).await else {
        return bad("The body could not be read.", "body");
    };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return bad("We could not parse the JSON body of your request.", "body");
    };
    let Some(model) = body["model"].as_str() else { return bad("you must provide a model parameter", "model") };
    let prompt_tokens: usize = body["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["content"].as_str()).map(|c| c.chars().count()).sum())
        .unwrap_or(0);
    let answer = serde_json::json!({
        "id": format!("chatcmpl-sim{prompt_tokens}"),
        "object": "chat.completion",
        "created": 1_796_119_200,
        "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Paris.", "refusal": null },
                      "logprobs": null, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": 5, "total_tokens": prompt_tokens + 5,
                   "prompt_tokens_details": { "cached_tokens": 0, "audio_tokens": 0 },
                   "completion_tokens_details": { "reasoning_tokens": 0, "audio_tokens": 0 } },
        "service_tier": "default",
        "system_fingerprint": "fp_sim",
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], answer.to_string()).into_response()
}

/// The usage endpoints other than completions (providers.md §1): the result's `object`, the
/// fields it groups by, and the name of its own unit.
pub(crate) struct OtherUsage {
    pub path: &'static str,
    object: &'static str,
    groups: &'static [&'static str],
    /// The field carrying the endpoint's unit; `input_tokens` for token endpoints.
    unit: &'static str,
    /// Whether results carry `num_model_requests`.
    requests: bool,
}

const USER_GROUPS: &[&str] = &["project_id", "user_id", "api_key_id", "model"];

pub(crate) const OTHER_USAGE: &[OtherUsage] = &[
    OtherUsage {
        path: "embeddings",
        object: "organization.usage.embeddings.result",
        groups: USER_GROUPS,
        unit: "input_tokens",
        requests: true,
    },
    OtherUsage {
        path: "moderations",
        object: "organization.usage.moderations.result",
        groups: USER_GROUPS,
        unit: "input_tokens",
        requests: true,
    },
    OtherUsage {
        path: "images",
        object: "organization.usage.images.result",
        groups: &["project_id", "user_id", "api_key_id", "model", "size", "source"],
        unit: "images",
        requests: true,
    },
    OtherUsage {
        path: "audio_speeches",
        object: "organization.usage.audio_speeches.result",
        groups: USER_GROUPS,
        unit: "characters",
        requests: true,
    },
    OtherUsage {
        path: "audio_transcriptions",
        object: "organization.usage.audio_transcriptions.result",
        groups: USER_GROUPS,
        unit: "seconds",
        requests: true,
    },
    OtherUsage {
        path: "vector_stores",
        object: "organization.usage.vector_stores.result",
        groups: &["project_id"],
        unit: "usage_bytes",
        requests: false,
    },
    OtherUsage {
        path: "code_interpreter_sessions",
        object: "organization.usage.code_interpreter_sessions.result",
        groups: &["project_id"],
        unit: "num_sessions",
        requests: false,
    },
];

async fn other_usage(
    endpoint: &'static OtherUsage,
    AxState((state, api_key)): AxState<(Arc<Mutex<State>>, String)>,
    req: Request,
) -> Response {
    let q = match preamble(&state, &api_key, &req, endpoint.groups, 31, false) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let by = |g: &str| q.group_by.iter().any(|x| x == g);
    let mut buckets = Vec::new();
    for (bs, be) in &q.page {
        let day = day_of(*bs);
        let mut grouped: BTreeMap<UsageKey, [i64; 2]> = BTreeMap::new();
        let usage = state.lock().expect("sim state").usage_of(day);
        for u in usage.iter().filter(|u| u.endpoint == endpoint.path) {
            let key = (
                by("project_id").then(|| u.group.clone()).flatten(),
                by("api_key_id").then(|| u.api_key.clone()).flatten(),
                by("model").then(|| u.model.clone()),
            );
            let t = grouped.entry(key).or_default();
            t[0] += u.units;
            t[1] += u.requests;
        }
        let results: Vec<String> = grouped
            .into_iter()
            .map(|((project, key, model), [units, requests])| {
                let mut r = serde_json::json!({ "object": endpoint.object, "project_id": project });
                r[endpoint.unit] = units.into();
                if endpoint.requests {
                    r["num_model_requests"] = requests.into();
                }
                if endpoint.groups.contains(&"model") {
                    r["user_id"] = serde_json::Value::Null;
                    r["api_key_id"] = key.into();
                    r["model"] = model.into();
                }
                r.to_string()
            })
            .collect();
        buckets.push(format!(
            r#"{{"object":"bucket","start_time":{bs},"end_time":{be},"results":[{}]}}"#,
            results.join(",")
        ));
    }
    envelope(&state, q.key, buckets, q.next)
}

/// What every OpenAI organization endpoint checks and parses before answering.
struct Query {
    group_by: Vec<String>,
    /// This page's buckets and the index of the next page, if any.
    page: Vec<(i64, i64)>,
    next: Option<usize>,
    /// Hour buckets (`bucket_width=1h`), each holding its share of its day's usage.
    hourly: bool,
    /// The request's path and query: what a remembered answer is filed under.
    key: String,
}

// The error is the HTTP answer itself, built and returned once per request.
#[allow(clippy::result_large_err)]
fn preamble(
    state: &Mutex<State>,
    api_key: &str,
    req: &Request,
    allowed_groups: &[&str],
    max_limit: usize,
    serves_hours: bool,
) -> Result<Query, Response> {
    let key = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let fault = record(state, key.clone());
    let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth != format!("Bearer {api_key}") {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ));
    }
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for requests.",
                "requests",
                None,
                Some("rate_limit_exceeded"),
            );
            r.headers_mut().insert("retry-after", retry_after_secs.to_string().parse().expect("digits"));
            return Err(r);
        }
        Some(Fault::ServerError(code)) => {
            return Err(error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "The server had an error.",
                "server_error",
                None,
                None,
            ));
        }
        Some(Fault::MalformedJson) => {
            return Err((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"object\": \"page\", \"data\": [{\"object\": \"bucket\", \"start_ti",
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
    let Some(start) = one("start_time") else {
        return Err(bad("Missing required parameter: 'start_time'.", "start_time"));
    };
    let Ok(start) = start.parse::<i64>() else { return Err(bad("Invalid value for 'start_time'.", "start_time")) };
    let end = match one("end_time").map(|v| v.parse::<i64>()) {
        None => Utc::now().timestamp(),
        Some(Ok(e)) if e > start => e,
        Some(_) => return Err(bad("Invalid value for 'end_time'.", "end_time")),
    };
    let hourly = match one("bucket_width").as_deref() {
        None | Some("1d") => false,
        Some("1h") if serves_hours => true,
        // Real values the simulator does not serve: said plainly rather than answered wrongly.
        Some("1h") | Some("1m") => {
            return Err(bad("The simulator serves bucket_width=1h for completions usage only.", "bucket_width"));
        }
        Some(w) => {
            return Err(bad(
                &format!("Invalid value for 'bucket_width': '{w}'. Supported values are: '1m', '1h', '1d'."),
                "bucket_width",
            ));
        }
    };
    let (default_limit, max_limit, width) = if hourly { (24, 168, 3600) } else { (7, max_limit, DAY) };
    let limit = match one("limit").map(|v| v.parse::<usize>()) {
        None => default_limit,
        Some(Ok(n)) if (1..=max_limit).contains(&n) => n,
        Some(_) => return Err(bad(&format!("Invalid value for 'limit': must be between 1 and {max_limit}."), "limit")),
    };
    let mut group_by = Vec::new();
    for (k, v) in &pairs {
        if k == "group_by" {
            if !allowed_groups.contains(&v.as_str()) {
                return Err(bad(&format!("Invalid value for 'group_by': '{v}'."), "group_by"));
            }
            group_by.push(v.clone());
        }
    }
    // Buckets: the first starts at start_time, the rest at UTC midnights (or hours).
    let mut bounds = Vec::new();
    let mut b = start;
    while b < end {
        let next = ((b / width) + 1) * width;
        bounds.push((b, next.min(end)));
        b = next;
    }
    let first = match one("page") {
        None => 0,
        Some(p) => match p.strip_prefix("page_").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= bounds.len() => n,
            _ => return Err(bad("Invalid value for 'page'.", "page")),
        },
    };
    let page: Vec<(i64, i64)> = bounds.iter().copied().skip(first).take(limit).collect();
    let next = first + page.len();
    Ok(Query { group_by, page, next: (next < bounds.len()).then_some(next), hourly, key })
}

fn day_of(bucket_start: i64) -> NaiveDate {
    Utc.timestamp_opt(bucket_start, 0).single().map(|t: DateTime<Utc>| t.date_naive()).unwrap_or(NaiveDate::MIN)
}

fn envelope(state: &Mutex<State>, key: String, buckets: Vec<String>, next: Option<usize>) -> Response {
    let (has_more, next_page) = match next {
        Some(n) => (true, format!("\"page_{n}\"")),
        None => (false, "null".into()),
    };
    let body =
        format!(r#"{{"object":"page","data":[{}],"has_more":{has_more},"next_page":{next_page}}}"#, buckets.join(","));
    crate::answer(state, key, body)
}

/// (project, line item): the dimensions costs are summed by.
type CostKey = (Option<String>, Option<String>);

async fn costs(AxState((state, api_key)): AxState<(Arc<Mutex<State>>, String)>, req: Request) -> Response {
    let q = match preamble(&state, &api_key, &req, &["project_id", "line_item", "api_key_id"], 180, false) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let group_by = &q.group_by;
    let mut buckets = Vec::new();
    for (bs, be) in &q.page {
        let day = day_of(*bs);
        // A bucket carries the cost of the UTC day it starts in.
        let by_item = group_by.iter().any(|g| g == "line_item");
        // (amount, tokens): a quantity is reported per line item, and only where every line has one.
        let mut grouped: BTreeMap<CostKey, (Decimal, Option<i64>)> = BTreeMap::new();
        let lines = state.lock().expect("sim state").lines_of(day);
        for l in lines {
            let key = (
                group_by.iter().any(|g| g == "project_id").then(|| l.group.clone()).flatten(),
                by_item.then(|| l.item.clone()),
            );
            let (amount, tokens) = grouped.entry(key).or_insert((Decimal::ZERO, Some(0)));
            *amount += l.amount;
            *tokens = tokens.zip(l.quantity).map(|(a, b)| a + b);
        }
        let results: Vec<String> = grouped
            .into_iter()
            .map(|((project, item), (amount, tokens))| {
                let (quantity, unit) = match tokens.filter(|_| by_item) {
                    Some(t) => (t.to_string(), r#""tokens""#),
                    None => ("null".to_owned(), "null"),
                };
                format!(
                    r#"{{"object":"organization.costs.result","amount":{{"value":{},"currency":"usd"}},"line_item":{},"project_id":{},"api_key_id":null,"quantity":{quantity},"quantity_unit":{unit}}}"#,
                    amount.normalize(),
                    serde_json::to_string(&item).expect("string"),
                    serde_json::to_string(&project).expect("string"),
                )
            })
            .collect();
        buckets.push(format!(
            r#"{{"object":"bucket","start_time":{bs},"end_time":{be},"results":[{}]}}"#,
            results.join(",")
        ));
    }
    envelope(&state, q.key, buckets, q.next)
}

/// (project, API key, model): the dimensions usage is summed by.
type UsageKey = (Option<String>, Option<String>, Option<String>);

async fn completions(AxState((state, api_key)): AxState<(Arc<Mutex<State>>, String)>, req: Request) -> Response {
    let groups = ["project_id", "user_id", "api_key_id", "model", "batch", "service_tier"];
    let q = match preamble(&state, &api_key, &req, &groups, 31, true) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let by = |g: &str| q.group_by.iter().any(|x| x == g);
    let legacy = state.lock().expect("sim state").legacy_usage;
    let mut buckets = Vec::new();
    for (bs, be) in &q.page {
        let day = day_of(*bs);
        // (project, api key, model) -> (uncached, cached, cache write, output, requests)
        let mut grouped: BTreeMap<UsageKey, [i64; 5]> = BTreeMap::new();
        let usage = state.lock().expect("sim state").usage_of(day);
        for u in usage.iter().filter(|u| u.endpoint.is_empty()) {
            let key = (
                by("project_id").then(|| u.group.clone()).flatten(),
                by("api_key_id").then(|| u.api_key.clone()).flatten(),
                by("model").then(|| u.model.clone()),
            );
            let t = grouped.entry(key).or_default();
            let day_start = *bs - bs.rem_euclid(DAY);
            for (slot, v) in t.iter_mut().zip([u.uncached, u.cached, u.cache_write, u.output, u.requests]) {
                *slot += if q.hourly { crate::hour_share(v, (*bs, *be), day_start) } else { v };
            }
        }
        let results: Vec<String> = grouped
            .into_iter()
            .map(|((project, key, model), [uncached, cached, write, output, requests])| {
                if legacy {
                    return serde_json::json!({
                        "object": "organization.usage.completions.result",
                        "input_tokens": uncached + cached + write, "output_tokens": output, "input_cached_tokens": cached,
                        "input_audio_tokens": 0, "output_audio_tokens": 0, "num_model_requests": requests,
                        "project_id": project, "user_id": null, "api_key_id": key, "model": model, "batch": null,
                    })
                    .to_string();
                }
                serde_json::json!({
                    "object": "organization.usage.completions.result",
                    "input_tokens": uncached + cached + write,
                    "input_cached_tokens": cached,
                    "input_cache_write_tokens": write,
                    "input_uncached_tokens": uncached,
                    "output_tokens": output,
                    "input_text_tokens": uncached,
                    "output_text_tokens": output,
                    "input_cached_text_tokens": cached,
                    "input_audio_tokens": 0, "input_cached_audio_tokens": 0, "output_audio_tokens": 0,
                    "input_image_tokens": 0, "input_cached_image_tokens": 0, "output_image_tokens": 0,
                    "num_model_requests": requests,
                    "project_id": project, "user_id": null, "api_key_id": key, "model": model, "batch": null, "service_tier": null,
                })
                .to_string()
            })
            .collect();
        buckets.push(format!(
            r#"{{"object":"bucket","start_time":{bs},"end_time":{be},"results":[{}]}}"#,
            results.join(",")
        ));
    }
    envelope(&state, q.key, buckets, q.next)
}

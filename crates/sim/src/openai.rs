//! `GET /v1/organization/costs` as providers.md §1 describes it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
    Router::new().route("/v1/organization/costs", get(costs)).with_state((state, api_key))
}

async fn costs(AxState((state, api_key)): AxState<(Arc<Mutex<State>>, String)>, req: Request) -> Response {
    let pq = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let fault = record(&state, pq);
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
            return r;
        }
        Some(Fault::ServerError(code)) => {
            return error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "The server had an error.",
                "server_error",
                None,
                None,
            );
        }
        Some(Fault::MalformedJson) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"object\": \"page\", \"data\": [{\"object\": \"bucket\", \"start_ti",
            )
                .into_response();
        }
        None => {}
    }
    let pairs = query_pairs(req.uri().query());
    let one = |k: &str| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    let Some(start) = one("start_time") else { return bad("Missing required parameter: 'start_time'.", "start_time") };
    let Ok(start) = start.parse::<i64>() else { return bad("Invalid value for 'start_time'.", "start_time") };
    let end = match one("end_time").map(|v| v.parse::<i64>()) {
        None => Utc::now().timestamp(),
        Some(Ok(e)) if e > start => e,
        Some(_) => return bad("Invalid value for 'end_time'.", "end_time"),
    };
    if let Some(w) = one("bucket_width").filter(|w| w != "1d") {
        return bad(&format!("Invalid value for 'bucket_width': '{w}'. Supported values are: '1d'."), "bucket_width");
    }
    let limit = match one("limit").map(|v| v.parse::<usize>()) {
        None => 7,
        Some(Ok(n)) if (1..=180).contains(&n) => n,
        Some(_) => return bad("Invalid value for 'limit': must be between 1 and 180.", "limit"),
    };
    let mut group_by = Vec::new();
    for (k, v) in &pairs {
        if k == "group_by" {
            if !matches!(v.as_str(), "project_id" | "line_item" | "api_key_id") {
                return bad(&format!("Invalid value for 'group_by': '{v}'."), "group_by");
            }
            group_by.push(v.clone());
        }
    }
    // Buckets: the first starts at start_time, the rest at UTC midnights.
    let mut bounds = Vec::new();
    let mut b = start;
    while b < end {
        let next = ((b / DAY) + 1) * DAY;
        bounds.push((b, next.min(end)));
        b = next;
    }
    let first = match one("page") {
        None => 0,
        Some(p) => match p.strip_prefix("page_").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= bounds.len() => n,
            _ => return bad("Invalid value for 'page'.", "page"),
        },
    };
    let lines = state.lock().expect("sim state").lines.clone();
    let page: Vec<(i64, i64)> = bounds.iter().copied().skip(first).take(limit).collect();
    let mut buckets = Vec::new();
    for (bs, be) in &page {
        let day = Utc.timestamp_opt(*bs, 0).single().map(|t: DateTime<Utc>| t.date_naive()).unwrap_or(NaiveDate::MIN);
        // A bucket carries the cost of the UTC day it starts in.
        let mut grouped: BTreeMap<(Option<String>, Option<String>), Decimal> = BTreeMap::new();
        for l in lines.iter().filter(|l| l.day == day) {
            let key = (
                group_by.iter().any(|g| g == "project_id").then(|| l.group.clone()).flatten(),
                group_by.iter().any(|g| g == "line_item").then(|| l.item.clone()),
            );
            *grouped.entry(key).or_default() += l.amount;
        }
        let results: Vec<String> = grouped
            .into_iter()
            .map(|((project, item), amount)| {
                format!(
                    r#"{{"object":"organization.costs.result","amount":{{"value":{},"currency":"usd"}},"line_item":{},"project_id":{},"api_key_id":null,"quantity":null,"quantity_unit":null}}"#,
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
    let next = first + page.len();
    let (has_more, next_page) =
        if next < bounds.len() { (true, format!("\"page_{next}\"")) } else { (false, "null".into()) };
    let body =
        format!(r#"{{"object":"page","data":[{}],"has_more":{has_more},"next_page":{next_page}}}"#, buckets.join(","));
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

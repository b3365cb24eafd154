//! `GET /v1/organizations/cost_report` as providers.md §2 describes it: amounts are decimal
//! strings in cents, `starting_at` snaps to the start of its UTC day, buckets are days.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;

use crate::{Fault, State, query_pairs, record};

/// (workspace, description, model): the dimensions a cost line is summed by.
type GroupKey = (Option<String>, Option<String>, Option<String>);

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({ "type": "error", "error": { "type": kind, "message": message }, "request_id": "req_sim0000000000000000000000" });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

pub(crate) fn router(state: Arc<Mutex<State>>, api_key: String) -> Router {
    Router::new().route("/v1/organizations/cost_report", get(cost_report)).with_state((state, api_key))
}

fn rfc3339(d: NaiveDate) -> String {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn cost_report(AxState((state, api_key)): AxState<(Arc<Mutex<State>>, String)>, req: Request) -> Response {
    let pq = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let fault = record(&state, pq);
    let h = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if h("x-api-key").as_deref() != Some(api_key.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "authentication_error", "invalid x-api-key");
    }
    if h("anthropic-version").is_none() {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", "anthropic-version: header is required");
    }
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "Number of requests has exceeded your rate limit",
            );
            r.headers_mut().insert("retry-after", retry_after_secs.to_string().parse().expect("digits"));
            return r;
        }
        Some(Fault::ServerError(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, if code == 529 { "overloaded_error" } else { "api_error" }, "Internal server error");
        }
        Some(Fault::MalformedJson) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"data\": [{\"starting_at\": \"2025-",
            )
                .into_response();
        }
        None => {}
    }
    let pairs = query_pairs(req.uri().query());
    let one = |k: &str| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, "invalid_request_error", m);
    let Some(start) = one("starting_at") else { return bad("starting_at: field required") };
    let Ok(start) = DateTime::parse_from_rfc3339(&start).map(|t| t.with_timezone(&Utc)) else {
        return bad("starting_at: invalid datetime");
    };
    let end = match one("ending_at").map(|e| DateTime::parse_from_rfc3339(&e)) {
        None => Utc::now(),
        Some(Ok(e)) if e > start => e.with_timezone(&Utc),
        Some(_) => return bad("ending_at: must be a datetime after starting_at"),
    };
    if one("bucket_width").is_some_and(|w| w != "1d") {
        return bad("bucket_width: only '1d' is supported for the cost report");
    }
    let limit = match one("limit").map(|v| v.parse::<usize>()) {
        None => 7,
        Some(Ok(n)) if (1..=31).contains(&n) => n,
        Some(_) => return bad("limit: must be between 1 and 31"),
    };
    let mut by_workspace = false;
    let mut by_description = false;
    for (k, v) in &pairs {
        if k == "group_by" {
            match v.as_str() {
                "workspace_id" => by_workspace = true,
                "description" => by_description = true,
                other => return bad(&format!("group_by: invalid value '{other}'")),
            }
        }
    }
    let mut days = Vec::new();
    let mut d = start.date_naive();
    while d.and_hms_opt(0, 0, 0).expect("midnight").and_utc() < end {
        days.push(d);
        d += Duration::days(1);
    }
    let first = match one("page") {
        None => 0,
        Some(p) => match p.strip_prefix("page_").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= days.len() => n,
            _ => return bad("page: invalid page token"),
        },
    };
    let lines = state.lock().expect("sim state").lines.clone();
    let page: Vec<NaiveDate> = days.iter().copied().skip(first).take(limit).collect();
    let mut buckets = Vec::new();
    for day in &page {
        let mut grouped: BTreeMap<GroupKey, Decimal> = BTreeMap::new();
        for l in lines.iter().filter(|l| l.day == *day) {
            let key = (
                by_workspace.then(|| l.group.clone()).flatten(),
                by_description.then(|| l.item.clone()),
                by_description.then(|| l.model.clone()).flatten(),
            );
            *grouped.entry(key).or_default() += l.amount;
        }
        let results: Vec<String> = grouped
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
        buckets.push(format!(
            r#"{{"starting_at":"{}","ending_at":"{}","results":[{}]}}"#,
            rfc3339(*day),
            rfc3339(*day + Duration::days(1)),
            results.join(",")
        ));
    }
    let next = first + page.len();
    let (has_more, next_page) =
        if next < days.len() { (true, format!("\"page_{next}\"")) } else { (false, "null".into()) };
    let body = format!(r#"{{"data":[{}],"has_more":{has_more},"next_page":{next_page}}}"#, buckets.join(","));
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

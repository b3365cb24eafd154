//! OpenRouter's management endpoints of providers.md §6: `GET /api/v1/activity` (the last 30
//! completed UTC days, one row per day × model × provider endpoint, and workspace with
//! `group_by=workspace`), `GET /api/v1/credits`, with the two key classes: the management key is
//! answered, an inference key ([`INFERENCE_KEY`]) is refused with 403.
//!
//! A fixture line is one day's spend on one model: `item` is the provider endpoint
//! (`provider_name`), `group` the workspace. Token counts are its `quantity` or follow from the
//! amount ([`tokens_of`]), so tests can total them too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Duration, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::{CostLine, Fault, State, query_pairs, record};

/// An inference key of the same account: valid, but not for the management endpoints.
pub const INFERENCE_KEY: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789inf0";
/// Credits bought, unless a test sets others.
pub const DEFAULT_CREDITS: Decimal = Decimal::from_parts(25_000, 0, 0, false, 2);

/// (prompt tokens, completion tokens, requests) of a fixture line: its `quantity` prompt tokens
/// (derived from its amount when it has none) and a tenth as many completion tokens.
pub fn tokens_of(line: &CostLine) -> (i64, i64, i64) {
    let prompt =
        line.quantity.unwrap_or_else(|| (line.amount * Decimal::from(100_000)).trunc().try_into().unwrap_or(0i64));
    (prompt, prompt / 10, prompt / 5_000 + 1)
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": status.as_u16(), "message": message }, "user_id": null });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

pub(crate) fn router(state: Arc<Mutex<State>>, api_key: String) -> Router {
    Router::new()
        .route("/api/v1/activity", get(activity))
        .route("/api/v1/credits", get(credits))
        .with_state((state, api_key))
}

type Shared = AxState<(Arc<Mutex<State>>, String)>;

/// Authentication and faults, common to both endpoints.
#[allow(clippy::result_large_err)]
fn preamble(state: &Mutex<State>, api_key: &str, req: &Request) -> Result<String, Response> {
    let key = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let fault = record(state, key.clone());
    let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match bearer.and_then(|b| b.strip_prefix("Bearer ")) {
        None => return Err(error(StatusCode::UNAUTHORIZED, "Missing Authentication header")),
        Some(k) if k == INFERENCE_KEY => {
            return Err(error(StatusCode::FORBIDDEN, "Only management keys can perform this operation"));
        }
        Some(k) if k != api_key => return Err(error(StatusCode::UNAUTHORIZED, "User not found.")),
        Some(_) => {}
    }
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded: too many requests");
            r.headers_mut().insert("retry-after", retry_after_secs.to_string().parse().expect("digits"));
            Err(r)
        }
        Some(Fault::ServerError(code)) => {
            Err(error(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "Internal Server Error"))
        }
        Some(Fault::MalformedJson) => {
            Err((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{\"data\": [{\"date\": \"20")
                .into_response())
        }
        Some(Fault::Pass) | None => Ok(key),
    }
}

/// The rows of one day: spend summed by workspace, model and provider endpoint, amounts written
/// from decimal text as JSON numbers.
fn rows_of(lines: &[CostLine], by_workspace: bool) -> Vec<String> {
    // (workspace, model, provider) → (spend, prompt tokens, completion tokens, requests)
    type Totals = (Decimal, i64, i64, i64);
    let mut grouped: BTreeMap<(Option<String>, String, String), Totals> = BTreeMap::new();
    for l in lines {
        let workspace = if by_workspace { l.group.clone() } else { None };
        let model = l.model.clone().unwrap_or_else(|| "openrouter/auto".into());
        let (prompt, completion, requests) = tokens_of(l);
        let e = grouped.entry((workspace, model, l.item.clone())).or_default();
        e.0 += l.amount;
        e.1 += prompt;
        e.2 += completion;
        e.3 += requests;
    }
    grouped
        .into_iter()
        .enumerate()
        .map(|(i, ((workspace, model, provider), (usage, prompt, completion, requests)))| {
            let day = lines[0].day;
            let workspace = match (by_workspace, workspace) {
                (false, _) => String::new(),
                // The default workspace's id, as OpenRouter gives every account one.
                (true, w) => format!(
                    ",\"workspace_id\":{}",
                    serde_json::to_string(&w.unwrap_or_else(|| "00000000-0000-4000-8000-000000000000".into()))
                        .expect("a string")
                ),
            };
            format!(
                "{{\"date\":\"{day}\",\"model\":{m},\"model_permaslug\":{p},\"endpoint_id\":\"e1b2c3d4-0000-4a5b-8c9d-{i:012}\",\
                 \"provider_name\":{provider},\"usage\":{usage},\"byok_usage_inference\":0,\"requests\":{requests},\
                 \"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"reasoning_tokens\":0{workspace}}}",
                m = serde_json::to_string(&model).expect("a string"),
                p = serde_json::to_string(&format!("{model}-20250514")).expect("a string"),
                provider = serde_json::to_string(&provider).expect("a string"),
            )
        })
        .collect()
}

async fn activity(AxState((state, api_key)): Shared, req: Request) -> Response {
    let key = match preamble(&state, &api_key, &req) {
        Ok(key) => key,
        Err(r) => return r,
    };
    if let Some(remembered) = crate::recall(&state, &key) {
        return remembered;
    }
    let pairs = query_pairs(req.uri().query());
    let one = |k: &str| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    let today = Utc::now().date_naive();
    let first = today - Duration::days(30);
    let days: Vec<NaiveDate> = match one("date") {
        None => (0..30).map(|d| first + Duration::days(d)).collect(),
        Some(d) => match d.parse::<NaiveDate>() {
            Ok(day) if day >= first && day < today => vec![day],
            Ok(_) => {
                return error(StatusCode::BAD_REQUEST, "date must be within the last 30 completed UTC days");
            }
            Err(_) => return error(StatusCode::BAD_REQUEST, "date must be YYYY-MM-DD"),
        },
    };
    let by_workspace = match one("group_by").as_deref() {
        None => false,
        Some("workspace") => true,
        Some(other) => return error(StatusCode::BAD_REQUEST, &format!("group_by: invalid value '{other}'")),
    };
    let mut rows = Vec::new();
    {
        let s = state.lock().expect("sim state");
        for day in days {
            let lines = s.lines_of(day);
            if !lines.is_empty() {
                rows.extend(rows_of(&lines, by_workspace));
            }
        }
    }
    crate::answer(&state, key, format!("{{\"data\":[{}]}}", rows.join(",")))
}

async fn credits(AxState((state, api_key)): Shared, req: Request) -> Response {
    let key = match preamble(&state, &api_key, &req) {
        Ok(key) => key,
        Err(r) => return r,
    };
    let (total, used) = {
        let s = state.lock().expect("sim state");
        (s.openrouter_credits.unwrap_or(DEFAULT_CREDITS), s.lines.iter().map(|l| l.amount).sum::<Decimal>())
    };
    crate::answer(&state, key, format!("{{\"data\":{{\"total_credits\":{total},\"total_usage\":{used}}}}}"))
}

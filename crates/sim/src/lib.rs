//! Simulated provider billing APIs, following `providers.md` to the letter: authentication,
//! parameter validation (both array spellings), bucket alignment, empty buckets, cursor paging,
//! and error bodies. Tests queue faults (429 with `Retry-After`, 5xx, malformed JSON) and read the
//! request log; the demo will serve seeded spend from the same servers.
//!
//! Money is written into responses from decimal text, never through a float, so a fixture's
//! amounts reach the connector digit for digit.

mod anthropic;
pub mod aws;
pub mod azure;
pub mod demo;
pub mod fixture;
pub mod gcp;
mod openai;
pub mod openrouter;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// One fixture cost line: a day's spend on one line item.
#[derive(Clone, Debug, Default)]
pub struct CostLine {
    pub day: NaiveDate,
    /// OpenAI `project_id` / Anthropic `workspace_id` (`None`: the default workspace).
    pub group: Option<String>,
    /// OpenAI `line_item` / Anthropic `description`.
    pub item: String,
    pub model: Option<String>,
    /// In currency units (dollars), exact.
    pub amount: Decimal,
    /// AWS: the linked account (`None`: the management account itself, [`aws::PAYER_ACCOUNT`]).
    pub account: Option<String>,
    /// The tokens billed: OpenAI's `quantity` (in `tokens`, when grouped by line item);
    /// OpenRouter's prompt tokens, see [`openrouter::tokens_of`].
    pub quantity: Option<i64>,
}

/// What the next response should be instead of a normal answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this request normally (to place a fault on a later one).
    Pass,
    RateLimited {
        retry_after_secs: u64,
    },
    ServerError(u16),
    MalformedJson,
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub at: Instant,
    pub path_and_query: String,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) lines: Vec<CostLine>,
    /// AWS: the role (ARN, external id) that must be assumed to read Cost Explorer, if any.
    pub(crate) aws_role: Option<(String, String)>,
    /// Azure: the application the token endpoint knows, and the tokens it issued.
    pub(crate) azure: Option<azure::Azure>,
    /// Google Cloud: the service account, its jobs and tokens.
    pub(crate) gcp: Option<gcp::Gcp>,
    /// OpenRouter: credits bought ([`openrouter::DEFAULT_CREDITS`] unless set).
    pub(crate) openrouter_credits: Option<Decimal>,
    pub(crate) usage: Vec<UsageLine>,
    /// Answer usage without the split fields, as responses did before 2026.
    pub(crate) legacy_usage: bool,
    pub(crate) faults: VecDeque<Fault>,
    pub(crate) requests: Vec<RecordedRequest>,
    /// Answers already rendered, by request path and query (see [`SimProvider::remember_answers`]).
    pub(crate) remembered: Option<std::collections::HashMap<String, bytes::Bytes>>,
}

/// The index range of `day` in lines sorted by day.
fn day_range<T>(v: &[T], day_of: impl Fn(&T) -> NaiveDate, day: NaiveDate) -> std::ops::Range<usize> {
    v.partition_point(|x| day_of(x) < day)..v.partition_point(|x| day_of(x) <= day)
}

impl State {
    /// The cost lines of `day`.
    pub(crate) fn lines_of(&self, day: NaiveDate) -> Vec<CostLine> {
        self.lines[day_range(&self.lines, |l| l.day, day)].to_vec()
    }

    /// The usage lines of `day`.
    pub(crate) fn usage_of(&self, day: NaiveDate) -> Vec<UsageLine> {
        self.usage[day_range(&self.usage, |u| u.day, day)].to_vec()
    }
}

/// A successful JSON answer; remembered when the simulator was asked to.
pub(crate) fn answer(state: &Mutex<State>, key: String, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = bytes::Bytes::from(body);
    if let Some(cache) = state.lock().expect("sim state").remembered.as_mut() {
        cache.insert(key, body.clone());
    }
    (axum::http::StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The remembered answer to `key`, if answers are remembered and this one was given before.
pub(crate) fn recall(state: &Mutex<State>, key: &str) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    let body = state.lock().expect("sim state").remembered.as_ref()?.get(key)?.clone();
    Some((axum::http::StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A running simulated provider on a loopback port.
#[derive(Clone)]
pub struct SimProvider {
    pub addr: SocketAddr,
    pub api_key: String,
    state: Arc<Mutex<State>>,
}

impl SimProvider {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_lines(&self, mut lines: Vec<CostLine>) {
        lines.sort_by_key(|l| l.day);
        self.state.lock().expect("sim state").lines = lines;
    }

    /// Serves each distinct request's answer from memory after rendering it once, so a benchmark
    /// measures the client rather than the simulator. Faults and the request log work as before;
    /// fixture changes after an answer was remembered are not seen by that request.
    pub fn remember_answers(&self) {
        self.state.lock().expect("sim state").remembered = Some(Default::default());
    }

    /// Changes a past day (a provider restatement): every line of `day` is scaled by `factor`.
    pub fn restate(&self, day: NaiveDate, factor: Decimal) {
        for l in self.state.lock().expect("sim state").lines.iter_mut().filter(|l| l.day == day) {
            l.amount *= factor;
        }
    }

    pub fn push_fault(&self, fault: Fault) {
        self.state.lock().expect("sim state").faults.push_back(fault);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().expect("sim state").requests.clone()
    }

    async fn start(router: axum::Router, state: Arc<Mutex<State>>, api_key: &str) -> SimProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        SimProvider { addr, api_key: api_key.to_owned(), state }
    }

    /// The OpenAI Costs API (`GET /v1/organization/costs`).
    pub async fn openai(api_key: &str) -> SimProvider {
        let state = Arc::new(Mutex::new(State::default()));
        Self::start(openai::router(Arc::clone(&state), api_key.to_owned()), state, api_key).await
    }

    /// AWS Cost Explorer (`POST /`, `GetDimensionValues` and `GetCostAndUsage`) and STS for the
    /// access key `access_key_id` with `secret`: every request's SigV4 signature is verified.
    pub async fn aws(access_key_id: &str, secret: &str) -> SimProvider {
        let state = Arc::new(Mutex::new(State::default()));
        let router = aws::router(Arc::clone(&state), access_key_id.to_owned(), secret.to_owned());
        Self::start(router, state, access_key_id).await
    }

    /// AWS: Cost Explorer answers only credentials from STS `AssumeRole` of `role_arn` with
    /// `external_id` (the access key itself is refused, as a user without Cost Explorer rights).
    pub fn set_aws_role(&self, role_arn: &str, external_id: &str) {
        self.state.lock().expect("sim state").aws_role = Some((role_arn.to_owned(), external_id.to_owned()));
    }

    /// Azure's token endpoint and Cost Management Query API, for the application `client_id` with
    /// `client_secret` in `tenant`, allowed to read `scope` (`subscriptions/<id>`, …).
    pub async fn azure(tenant: &str, client_id: &str, client_secret: &str, scope: &str) -> SimProvider {
        let azure = azure::Azure {
            tenant: tenant.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: scope.trim_matches('/').into(),
            tokens: Vec::new(),
            next_link_host: None,
        };
        let state = Arc::new(Mutex::new(State { azure: Some(azure), ..State::default() }));
        Self::start(azure::router(Arc::clone(&state)), state, client_secret).await
    }

    /// BigQuery over the billing export `table`, queried from `project` (`jobs.query` there is
    /// refused for any other project), with a token endpoint that knows one service account's
    /// key: [`SimProvider::gcp_key`].
    pub async fn gcp(project: &str, table: &str) -> SimProvider {
        let (private_pem, public_key) = gcp::generate_key();
        let gcp = gcp::Gcp {
            public_key,
            private_pem,
            project: project.into(),
            table: table.into(),
            tokens: Vec::new(),
            jobs: Vec::new(),
            slow_polls: 0,
        };
        let state = Arc::new(Mutex::new(State { gcp: Some(gcp), ..State::default() }));
        Self::start(gcp::router(Arc::clone(&state)), state, project).await
    }

    /// Google Cloud: the service account's JSON key file, its `token_uri` on this simulator.
    pub fn gcp_key(&self) -> String {
        let s = self.state.lock().expect("sim state");
        let gcp = s.gcp.as_ref().expect("a Google Cloud simulator");
        gcp::key_json(&gcp.project, &gcp.private_pem, &format!("{}/token", self.base_url()))
    }

    /// Google Cloud: each new job answers `jobComplete: false` this many times first.
    pub fn set_gcp_slow_polls(&self, polls: u32) {
        if let Some(gcp) = self.state.lock().expect("sim state").gcp.as_mut() {
            gcp.slow_polls = polls;
        }
    }

    /// Azure: `nextLink` points to `host` instead of this simulator.
    pub fn set_azure_next_link_host(&self, host: &str) {
        if let Some(azure) = self.state.lock().expect("sim state").azure.as_mut() {
            azure.next_link_host = Some(host.to_owned());
        }
    }

    /// Azure: every token issued so far is answered as expired from now on.
    pub fn expire_azure_tokens(&self) {
        if let Some(azure) = self.state.lock().expect("sim state").azure.as_mut() {
            azure.tokens.iter_mut().for_each(|t| t.1 = false);
        }
    }

    /// OpenRouter's `/api/v1/activity` and `/api/v1/credits`, answering the management key
    /// `api_key` (and refusing [`openrouter::INFERENCE_KEY`] with 403).
    pub async fn openrouter(api_key: &str) -> SimProvider {
        let state = Arc::new(Mutex::new(State::default()));
        Self::start(openrouter::router(Arc::clone(&state), api_key.to_owned()), state, api_key).await
    }

    /// OpenRouter: the credits bought; `/credits` answers this and the fixture's total spend.
    pub fn set_openrouter_credits(&self, total: Decimal) {
        self.state.lock().expect("sim state").openrouter_credits = Some(total);
    }

    /// The Anthropic cost report (`GET /v1/organizations/cost_report`).
    pub async fn anthropic(api_key: &str) -> SimProvider {
        let state = Arc::new(Mutex::new(State::default()));
        Self::start(anthropic::router(Arc::clone(&state), api_key.to_owned()), state, api_key).await
    }
}

/// Query pairs with `key[]=` folded into `key`, so both array spellings read the same.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url_pairs(query.unwrap_or(""))
        .into_iter()
        .map(|(k, v)| (k.strip_suffix("[]").map(str::to_owned).unwrap_or(k), v))
        .collect()
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An amount as Azure and BigQuery write a double: with float noise past the 9th decimal when
/// `noise` (as sums of doubles come out), which rounding to 9 decimals takes away again.
pub(crate) fn float_text(amount: Decimal, noise: bool) -> String {
    let mut text = amount.round_dp(9).to_string();
    if !noise {
        return text;
    }
    if !text.contains('.') {
        text.push('.');
    }
    let decimals = text.len() - text.find('.').expect("a point") - 1;
    text.push_str(&"0".repeat(15 - decimals.min(14)));
    text.push('1');
    text
}

/// The part of a day's `total` that falls in the hour bucket `[start, end)` (Unix seconds) of the
/// day starting at `day_start`: spread evenly over the day, so a day's hours add up to `total`.
pub(crate) fn hour_share(total: i64, (start, end): (i64, i64), day_start: i64) -> i64 {
    let upto = |t: i64| (i128::from(total) * i128::from((t - day_start).clamp(0, DAY_SECONDS)) / 86_400) as i64;
    upto(end) - upto(start)
}

const DAY_SECONDS: i64 = 86_400;

/// Takes the next queued fault, recording the request either way.
pub(crate) fn record(state: &Mutex<State>, path_and_query: String) -> Option<Fault> {
    let mut s = state.lock().expect("sim state");
    s.requests.push(RecordedRequest { at: Instant::now(), path_and_query });
    s.faults.pop_front()
}

/// One fixture usage line: a day's tokens for one model (and project / workspace, API key).
#[derive(Clone, Debug, Default)]
pub struct UsageLine {
    /// The OpenAI usage endpoint it belongs to (`embeddings`, `images`, …); empty for completions
    /// (and for Anthropic's messages report).
    pub endpoint: String,
    /// The endpoint's own unit: images, characters, seconds, bytes or sessions.
    pub units: i64,
    pub day: NaiveDate,
    pub group: Option<String>,
    pub api_key: Option<String>,
    pub model: String,
    pub uncached: i64,
    pub cached: i64,
    pub cache_write: i64,
    pub output: i64,
    pub requests: i64,
    pub web_searches: i64,
}

impl SimProvider {
    pub fn set_usage(&self, mut lines: Vec<UsageLine>) {
        lines.sort_by_key(|l| l.day);
        self.state.lock().expect("sim state").usage = lines;
    }

    /// OpenAI: answer usage in the older shape, without `input_uncached_tokens` and
    /// `input_cache_write_tokens` (providers.md §1: connectors must treat them as optional).
    pub fn set_legacy_usage(&self, legacy: bool) {
        self.state.lock().expect("sim state").legacy_usage = legacy;
    }
}

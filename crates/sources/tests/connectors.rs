//! The connectors against the simulated providers of `burnrate-sim`, which reproduce the wire
//! formats of providers.md.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use burnrate_core::CostRecord;
use burnrate_core::SyncWindow;
use burnrate_net::{ClientOptions, EgressGuard, HttpClient};
use burnrate_sim::{CostLine, Fault, SimProvider};
use burnrate_sources::{Anthropic, OpenAi, Pulled, SourceErrorKind};
use chrono::{Duration as Days, NaiveDate};
use rust_decimal::Decimal;

const OPENAI_KEY: &str = "sk-admin-TESTKEY0123456789abcdef";
const ANTHROPIC_KEY: &str = "sk-ant-admin01-TESTKEY0123456789abcdef";

fn day0() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

/// `days` days of spend over two groups and two items, with awkward decimals.
fn fixture(days: i64, groups: [Option<&str>; 2], items: [(&str, &str); 2]) -> Vec<CostLine> {
    let mut lines = Vec::new();
    for d in 0..days {
        for (gi, group) in groups.iter().enumerate() {
            for (ii, (item, model)) in items.iter().enumerate() {
                // Nine decimals at most: exactly representable in the lake.
                let amount = Decimal::from_str(&format!(
                    "{}.{:09}",
                    3 + d % 7 + gi as i64,
                    (d * 7919 + ii as i64 * 104_729 + 1) % 1_000_000_000
                ))
                .unwrap();
                lines.push(CostLine {
                    day: day0() + Days::days(d),
                    group: group.map(str::to_owned),
                    item: (*item).into(),
                    model: Some((*model).into()),
                    amount,
                    account: None,
                    quantity: None,
                });
            }
        }
    }
    lines
}

fn client(allow_loopback: bool) -> HttpClient {
    let guard = if allow_loopback { EgressGuard::new(&["127.0.0.1/32"]).unwrap() } else { EgressGuard::default() };
    HttpClient::new(
        guard,
        ClientOptions { base_backoff: Duration::from_millis(10), max_attempts: 4, ..Default::default() },
    )
}

type Key = (NaiveDate, Option<String>, Option<String>);

fn totals_of_pull(pull: &Pulled<CostRecord>) -> BTreeMap<Key, Decimal> {
    let mut t = BTreeMap::new();
    for r in &pull.records {
        *t.entry((r.charge_period_start.date_naive(), r.sub_account_id.clone(), r.model.clone())).or_default() +=
            r.billed_cost.amount();
    }
    t
}

fn totals_of_fixture(lines: &[CostLine], window: &SyncWindow) -> BTreeMap<Key, Decimal> {
    let mut t = BTreeMap::new();
    for l in lines.iter().filter(|l| l.day >= window.start() && l.day < window.end()) {
        *t.entry((l.day, l.group.clone(), l.model.clone())).or_default() += l.amount;
    }
    t
}

#[tokio::test]
async fn openai_costs_over_several_pages_equal_the_fixture_exactly() {
    let sim = SimProvider::openai(OPENAI_KEY).await;
    let lines = fixture(
        200,
        [Some("proj_alpha"), Some("proj_beta")],
        [("gpt-4o-2024-08-06, input", "gpt-4o-2024-08-06"), ("o3-mini, output", "o3-mini")],
    );
    sim.set_lines(lines.clone());
    let window = SyncWindow::new(day0(), day0() + Days::days(200)).unwrap();
    let source = OpenAi { base_url: sim.base_url().parse().unwrap(), admin_key: OPENAI_KEY.to_owned().into() };
    let pull = source.pull_costs(&client(true), window).await.unwrap();
    assert_eq!(pull.pages, 2, "180 daily buckets a page");
    assert_eq!(pull.rounded_values, 0);
    assert_eq!(pull.records.len(), 200 * 4);
    assert_eq!(totals_of_pull(&pull), totals_of_fixture(&lines, &window));
    let r = &pull.records[0];
    assert_eq!((r.provider_name.as_str(), r.billed_cost.currency().as_str()), ("OpenAI", "USD"));
    assert!(
        sim.requests()[0].path_and_query.contains("group_by%5B%5D=project_id"),
        "bracket spelling, as OpenAI's SDK sends"
    );
}

#[tokio::test]
async fn anthropic_cents_become_dollars_exactly_over_several_pages() {
    let sim = SimProvider::anthropic(ANTHROPIC_KEY).await;
    let lines = fixture(
        70,
        [Some("wrkspc_01Jw"), None],
        [
            ("Claude Sonnet 4 Usage - Input Tokens", "claude-sonnet-4-20250514"),
            ("Claude Haiku 4.5 Usage - Output Tokens", "claude-haiku-4-5"),
        ],
    );
    sim.set_lines(lines.clone());
    let window = SyncWindow::new(day0(), day0() + Days::days(70)).unwrap();
    let source = Anthropic { base_url: sim.base_url().parse().unwrap(), admin_key: ANTHROPIC_KEY.to_owned().into() };
    let pull = source.pull_costs(&client(true), window).await.unwrap();
    assert_eq!(pull.pages, 3, "31 daily buckets a page");
    assert_eq!(totals_of_pull(&pull), totals_of_fixture(&lines, &window));
    assert!(pull.records.iter().any(|r| r.sub_account_id.is_none()), "the default workspace has no id");
}

#[tokio::test]
async fn retry_after_is_honoured_and_server_errors_are_retried() {
    let sim = SimProvider::openai(OPENAI_KEY).await;
    let lines = fixture(3, [Some("p"), None], [("m, input", "m"), ("m, output", "m")]);
    sim.set_lines(lines.clone());
    sim.push_fault(Fault::RateLimited { retry_after_secs: 1 });
    sim.push_fault(Fault::ServerError(503));
    let window = SyncWindow::new(day0(), day0() + Days::days(3)).unwrap();
    let source = OpenAi { base_url: sim.base_url().parse().unwrap(), admin_key: OPENAI_KEY.to_owned().into() };
    let pull = source.pull_costs(&client(true), window).await.unwrap();
    assert_eq!(totals_of_pull(&pull), totals_of_fixture(&lines, &window));
    let requests = sim.requests();
    assert_eq!(requests.len(), 3, "429, 503, then the answer");
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_millis(950), "waited {waited:?} after Retry-After: 1");
}

#[tokio::test]
async fn malformed_json_fails_the_pull_naming_provider_endpoint_and_window() {
    let sim = SimProvider::anthropic(ANTHROPIC_KEY).await;
    sim.set_lines(fixture(3, [None, Some("w")], [("a", "m"), ("b", "m")]));
    sim.push_fault(Fault::MalformedJson);
    let window = SyncWindow::new(day0(), day0() + Days::days(3)).unwrap();
    let source = Anthropic { base_url: sim.base_url().parse().unwrap(), admin_key: ANTHROPIC_KEY.to_owned().into() };
    let err = source.pull_costs(&client(true), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Malformed(_)));
    let text = err.to_string();
    assert!(text.starts_with("Anthropic GET /v1/organizations/cost_report for 2026-01-01..2026-01-04: the response is not the documented JSON"), "{text}");
}

#[tokio::test]
async fn a_wrong_key_is_a_credential_error_that_never_shows_a_key() {
    for provider in ["openai", "anthropic"] {
        let wrong = "sk-admin-WRONGKEY-000000000000000000000000";
        let window = SyncWindow::new(day0(), day0() + Days::days(1)).unwrap();
        let err = if provider == "openai" {
            let sim = SimProvider::openai(OPENAI_KEY).await;
            OpenAi { base_url: sim.base_url().parse().unwrap(), admin_key: wrong.to_owned().into() }
                .pull_costs(&client(true), window)
                .await
                .unwrap_err()
        } else {
            let sim = SimProvider::anthropic(ANTHROPIC_KEY).await;
            Anthropic { base_url: sim.base_url().parse().unwrap(), admin_key: wrong.to_owned().into() }
                .pull_costs(&client(true), window)
                .await
                .unwrap_err()
        };
        assert!(matches!(err.kind, SourceErrorKind::Credential { status: 401, .. }), "{provider}: {err}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("WRONGKEY") && !text.contains("TESTKEY"), "{provider}: {text}");
        assert!(text.contains("check that it is a valid admin key"));
    }
}

#[tokio::test]
async fn a_loopback_base_url_is_refused_unless_the_operator_allows_it() {
    let sim = SimProvider::openai(OPENAI_KEY).await;
    let window = SyncWindow::new(day0(), day0() + Days::days(1)).unwrap();
    let source = OpenAi { base_url: sim.base_url().parse().unwrap(), admin_key: OPENAI_KEY.to_owned().into() };
    let err = source.pull_costs(&client(false), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Egress(_)), "{err}");
    assert!(sim.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_restated_day_comes_back_with_its_new_value() {
    let sim = SimProvider::openai(OPENAI_KEY).await;
    let lines = fixture(5, [Some("p"), Some("q")], [("m, input", "m"), ("m, output", "m")]);
    sim.set_lines(lines);
    let window = SyncWindow::new(day0(), day0() + Days::days(5)).unwrap();
    let source = OpenAi { base_url: sim.base_url().parse().unwrap(), admin_key: OPENAI_KEY.to_owned().into() };
    let before = source.pull_costs(&client(true), window).await.unwrap();
    let restated_day = day0() + Days::days(2);
    sim.restate(restated_day, Decimal::TWO);
    let after = source.pull_costs(&client(true), window).await.unwrap();
    let day_total = |p: &Pulled<CostRecord>, d: NaiveDate| -> Decimal {
        p.records.iter().filter(|r| r.charge_period_start.date_naive() == d).map(|r| r.billed_cost.amount()).sum()
    };
    assert_eq!(day_total(&after, restated_day), day_total(&before, restated_day) * Decimal::TWO);
    assert_eq!(after.rounded_values, 0);
    assert_eq!(day_total(&after, day0()), day_total(&before, day0()), "other days unchanged");
}

fn usage_fixture(days: i64) -> Vec<burnrate_sim::UsageLine> {
    let mut lines = Vec::new();
    for d in 0..days {
        for (g, group) in [Some("proj_a"), None].into_iter().enumerate() {
            for (m, model) in ["gpt-4o", "o3-mini"].into_iter().enumerate() {
                let base = 1_000 + d * 37 + g as i64 * 11 + m as i64 * 7;
                lines.push(burnrate_sim::UsageLine {
                    endpoint: String::new(),
                    units: 0,
                    day: day0() + Days::days(d),
                    group: group.map(str::to_owned),
                    api_key: Some(format!("key_{m}")),
                    model: model.into(),
                    uncached: base * 100,
                    cached: base * 30,
                    cache_write: base * 8,
                    output: base * 20,
                    requests: base / 10,
                    web_searches: d % 3,
                });
            }
        }
    }
    lines
}

type UsageKey = (NaiveDate, Option<String>, Option<String>);

fn usage_totals_of_fixture(lines: &[burnrate_sim::UsageLine]) -> BTreeMap<UsageKey, [i64; 4]> {
    let mut t: BTreeMap<UsageKey, [i64; 4]> = BTreeMap::new();
    for l in lines {
        let e = t.entry((l.day, l.group.clone(), Some(l.model.clone()))).or_default();
        for (slot, v) in e.iter_mut().zip([l.uncached, l.cached, l.cache_write, l.output]) {
            *slot += v;
        }
    }
    t
}

fn usage_totals_of_pull(records: &[burnrate_core::UsageRecord]) -> BTreeMap<UsageKey, [i64; 4]> {
    let mut t: BTreeMap<UsageKey, [i64; 4]> = BTreeMap::new();
    for r in records {
        let e = t.entry((r.bucket_start.date_naive(), r.project_id.clone(), r.model.clone())).or_default();
        for (slot, v) in e.iter_mut().zip([
            r.input_uncached_tokens,
            r.input_cached_tokens,
            r.input_cache_write_tokens,
            r.output_tokens,
        ]) {
            *slot += v;
        }
    }
    t
}

#[tokio::test]
async fn usage_token_classes_come_out_disjoint_and_exact_for_both_providers() {
    let lines = usage_fixture(40);
    let window = SyncWindow::new(day0(), day0() + Days::days(40)).unwrap();

    let openai = SimProvider::openai(OPENAI_KEY).await;
    openai.set_usage(lines.clone());
    let pull = OpenAi { base_url: openai.base_url().parse().unwrap(), admin_key: OPENAI_KEY.to_owned().into() }
        .pull_usage(&client(true), window)
        .await
        .unwrap();
    assert_eq!(pull.pages, 2 * 8, "31 daily buckets a page, for each of the eight usage endpoints");
    assert_eq!(usage_totals_of_pull(&pull.records), usage_totals_of_fixture(&lines));
    let requests: i64 = pull.records.iter().map(|r| r.requests.unwrap()).sum();
    assert_eq!(requests, lines.iter().map(|l| l.requests).sum::<i64>());
    assert!(pull.records.iter().all(|r| r.api_key_id.is_some()), "grouped by API key");

    let anthropic = SimProvider::anthropic(ANTHROPIC_KEY).await;
    anthropic.set_usage(lines.clone());
    let pull =
        Anthropic { base_url: anthropic.base_url().parse().unwrap(), admin_key: ANTHROPIC_KEY.to_owned().into() }
            .pull_usage(&client(true), window)
            .await
            .unwrap();
    assert_eq!(pull.pages, 2);
    assert_eq!(
        usage_totals_of_pull(&pull.records),
        usage_totals_of_fixture(&lines),
        "5-minute and 1-hour cache writes are one class"
    );
    assert!(
        pull.records.iter().all(|r| r.requests.is_none()),
        "no request count in the messages report: unknown, not zero"
    );
    let searches: i64 = pull.records.iter().map(|r| r.extra["web_search_requests"]).sum();
    assert_eq!(searches, lines.iter().map(|l| l.web_searches).sum::<i64>(), "server tool use is kept");
    assert!(
        anthropic.requests()[0]
            .path_and_query
            .starts_with("/v1/organizations/usage_report/messages?starting_at=2026-01-01T00%3A00%3A00Z")
    );
}

#[tokio::test]
async fn a_page_over_the_response_limit_is_asked_again_in_smaller_pages_with_the_same_totals() {
    let lines = usage_fixture(40);
    let window = SyncWindow::new(day0(), day0() + Days::days(40)).unwrap();
    let sim = SimProvider::anthropic(ANTHROPIC_KEY).await;
    sim.set_usage(lines.clone());
    let api = Anthropic { base_url: sim.base_url().parse().unwrap(), admin_key: ANTHROPIC_KEY.to_owned().into() };
    let capped = |max_body_bytes| {
        HttpClient::new(
            EgressGuard::new(&["127.0.0.1/32"]).unwrap(),
            ClientOptions { base_backoff: Duration::from_millis(10), max_body_bytes, ..Default::default() },
        )
    };
    let whole = api.pull_usage(&client(true), window).await.unwrap();
    assert_eq!(sim.requests().len(), 2, "31 days a page without a limit");

    // A limit a few days of this fixture fit in, but not 31.
    let pull = api.pull_usage(&capped(8 * 1024), window).await.unwrap();
    assert_eq!(usage_totals_of_pull(&pull.records), usage_totals_of_fixture(&lines));
    assert_eq!(pull.records.len(), whole.records.len(), "no day twice, none missed");
    let asked: Vec<String> = sim.requests()[2..].iter().map(|r| r.path_and_query.clone()).collect();
    let limits: Vec<u32> =
        asked.iter().map(|q| q.split('&').find_map(|kv| kv.strip_prefix("limit=")).unwrap().parse().unwrap()).collect();
    assert_eq!(limits[0], 31);
    assert!(*limits.last().unwrap() < 31, "smaller pages after the first refused one: {limits:?}");
    assert!(limits.windows(2).all(|w| w[1] <= w[0]), "the smaller size is kept: {limits:?}");

    // A single day over the limit cannot be split further: the error says so.
    let err = api.pull_usage(&capped(300), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::TooLarge(300)), "{err:?}");
    assert!(err.to_string().contains("one day's report is larger than the response limit (300 bytes)"), "{err}");
}

#[tokio::test]
async fn usage_of_older_openai_responses_without_split_fields_is_derived_not_zeroed() {
    // input_tokens includes cached tokens; without input_uncached_tokens the connector subtracts.
    let sim = SimProvider::openai(OPENAI_KEY).await;
    let mut line = usage_fixture(1).remove(0);
    line.cache_write = 0;
    sim.set_usage(vec![line.clone()]);
    sim.set_legacy_usage(true);
    let window = SyncWindow::new(day0(), day0() + Days::days(1)).unwrap();
    let pull = OpenAi { base_url: sim.base_url().parse().unwrap(), admin_key: OPENAI_KEY.to_owned().into() }
        .pull_usage(&client(true), window)
        .await
        .unwrap();
    let r = &pull.records[0];
    assert_eq!((r.input_uncached_tokens, r.input_cached_tokens), (line.uncached, line.cached));
}

/// The simulators answer the way providers.md says the real APIs do: a test against them means
/// something only if they refuse what the real ones refuse.
#[tokio::test]
async fn simulators_accept_both_array_spellings_and_refuse_what_the_apis_refuse() {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let openai = SimProvider::openai(OPENAI_KEY).await;
    openai.set_lines(fixture(3, [Some("p"), None], [("m, input", "m"), ("m, output", "m")]));
    let get = |path: String| {
        let req = http.get(format!("{}{path}", openai.base_url())).bearer_auth(OPENAI_KEY);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let range = "start_time=1767225600&end_time=1767484800";
    let repeated = get(format!("/v1/organization/costs?{range}&group_by=project_id&group_by=line_item")).await;
    let brackets =
        get(format!("/v1/organization/costs?{range}&group_by%5B%5D=project_id&group_by%5B%5D=line_item")).await;
    assert_eq!(repeated.0, 200);
    assert_eq!(repeated, brackets, "repeated keys and [] keys mean the same");
    let (status, body) = get(format!("/v1/organization/costs?{range}&group_by=model")).await;
    assert_eq!(status, 400, "costs cannot be grouped by model");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    for key in ["message", "type", "param", "code"] {
        assert!(error["error"].get(key).is_some(), "the 4-key error body has {key}");
    }
    assert_eq!(get(format!("/v1/organization/costs?{range}&limit=181")).await.0, 400);
    assert_eq!(
        get(format!("/v1/organization/usage/completions?{range}&limit=32")).await.0,
        400,
        "usage pages hold at most 31 days"
    );
    assert_eq!(get("/v1/organization/costs".into()).await.0, 400, "start_time is required");

    let anthropic = SimProvider::anthropic(ANTHROPIC_KEY).await;
    let url = format!("{}/v1/organizations/cost_report?starting_at=2026-01-01T00:00:00Z", anthropic.base_url());
    let no_version = http.get(&url).header("x-api-key", ANTHROPIC_KEY).send().await.unwrap();
    assert_eq!(no_version.status().as_u16(), 400, "anthropic-version is required");
    let no_key = http.get(&url).header("anthropic-version", "2023-06-01").send().await.unwrap();
    assert_eq!(no_key.status().as_u16(), 401);
    let body: serde_json::Value = no_key.json().await.unwrap();
    assert_eq!((body["type"].as_str(), body["error"]["type"].as_str()), (Some("error"), Some("authentication_error")));
    let bad_group = http
        .get(format!("{url}&group_by[]=model"))
        .header("x-api-key", ANTHROPIC_KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_group.status().as_u16(), 400, "the cost report groups by workspace and description only");
}

/// Benchmarks ask the simulator to remember its answers; the connector must still see exactly the
/// fixture, and faults and authentication still apply.
#[tokio::test]
async fn a_simulator_that_remembers_its_answers_still_serves_the_fixture_and_its_faults() {
    let lines = fixture(200, [Some("proj_a"), None], [("gpt-4o, input", "gpt-4o"), ("o3, output", "o3")]);
    let sim = SimProvider::openai(OPENAI_KEY).await;
    sim.set_lines(lines.clone());
    sim.remember_answers();
    let api = OpenAi { base_url: sim.base_url().parse().unwrap(), admin_key: OPENAI_KEY.to_owned().into() };
    let window = SyncWindow::new(day0(), day0() + Days::days(200)).unwrap();
    let first = api.pull_costs(&client(true), window).await.unwrap();
    sim.push_fault(Fault::ServerError(503));
    let second = api.pull_costs(&client(true), window).await.unwrap();
    assert_eq!(totals_of_pull(&second), totals_of_pull(&first));
    assert_eq!(totals_of_pull(&second), totals_of_fixture(&lines, &window));
    assert_eq!(sim.requests().len(), 2 * first.pages as usize + 1, "the fault was served, then retried");
    let wrong = OpenAi { base_url: sim.base_url().parse().unwrap(), admin_key: "sk-admin-wrong".to_owned().into() };
    assert!(matches!(
        wrong.pull_costs(&client(true), window).await.unwrap_err().kind,
        SourceErrorKind::Credential { status: 401, .. }
    ));
}

#[tokio::test]
async fn every_openai_usage_endpoint_is_pulled_with_its_own_unit() {
    let sim = SimProvider::openai(OPENAI_KEY).await;
    let endpoints = [
        ("embeddings", "input_tokens", true),
        ("moderations", "input_tokens", true),
        ("images", "images", true),
        ("audio_speeches", "characters", true),
        ("audio_transcriptions", "seconds", true),
        ("vector_stores", "usage_bytes", false),
        ("code_interpreter_sessions", "num_sessions", false),
    ];
    let mut lines = Vec::new();
    for (i, (endpoint, _, _)) in endpoints.iter().enumerate() {
        for d in 0..3 {
            lines.push(burnrate_sim::UsageLine {
                endpoint: (*endpoint).into(),
                units: 1_000 * (i as i64 + 1) + d,
                requests: 10 + d,
                day: day0() + Days::days(d),
                group: Some("proj_a".into()),
                api_key: Some("key_1".into()),
                model: "m".into(),
                ..Default::default()
            });
        }
    }
    sim.set_usage(lines.clone());
    let window = SyncWindow::new(day0(), day0() + Days::days(3)).unwrap();
    let pull = OpenAi { base_url: sim.base_url().parse().unwrap(), admin_key: OPENAI_KEY.to_owned().into() }
        .pull_usage(&client(true), window)
        .await
        .unwrap();
    for (endpoint, unit, has_requests) in endpoints {
        let records: Vec<_> = pull.records.iter().filter(|r| r.usage_type == endpoint).collect();
        let fixture: Vec<_> = lines.iter().filter(|l| l.endpoint == endpoint).collect();
        assert_eq!(records.len(), 3, "{endpoint}: a record a day");
        let expected: i64 = fixture.iter().map(|l| l.units).sum();
        let got: i64 = if unit == "input_tokens" {
            records.iter().map(|r| r.input_uncached_tokens).sum()
        } else {
            records.iter().map(|r| r.extra[unit]).sum()
        };
        assert_eq!(got, expected, "{endpoint}: {unit}");
        if has_requests {
            assert_eq!(
                records.iter().map(|r| r.requests.unwrap()).sum::<i64>(),
                fixture.iter().map(|l| l.requests).sum::<i64>()
            );
        } else {
            assert!(records.iter().all(|r| r.requests.is_none()), "{endpoint} reports no request count");
        }
        assert!(
            sim.requests().iter().any(|r| r.path_and_query.starts_with(&format!("/v1/organization/usage/{endpoint}?")))
        );
    }
    assert!(pull.records.iter().all(|r| r.usage_type != "completions"), "no completions fixture, no completions rows");
}

const AWS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn cost_explorer(sim: &SimProvider, key_id: &str) -> burnrate_sources::CostExplorer {
    burnrate_sources::CostExplorer {
        base_url: sim.base_url().parse().unwrap(),
        credentials: burnrate_sources::aws::AwsCredentials {
            access_key_id: key_id.into(),
            secret_access_key: AWS_SECRET.to_owned().into(),
            session_token: None,
        },
        role: None,
        cost_allocation_tag: None,
    }
}

/// Bedrock spend in both of its shapes — Amazon's own models under "Amazon Bedrock", a
/// marketplace model under its own service — beside an EC2 line that is no AI spend.
fn aws_fixture(days: i64) -> Vec<CostLine> {
    let mut lines = fixture(
        days,
        [Some("Amazon Bedrock"), Some("Claude 3.5 Sonnet (Amazon Bedrock Edition)")],
        [("USE1-MP:USE1_InputTokenCount-Units", "-"), ("USE1-MP:USE1_OutputTokenCount-Units", "-")],
    );
    // Amazon's own models in a member account, the marketplace model in the management account.
    for l in &mut lines {
        l.model = None;
        if l.group.as_deref() == Some("Amazon Bedrock") {
            l.account = Some("444455556666".into());
        }
    }
    lines.extend((0..days).map(|d| CostLine {
        day: day0() + Days::days(d),
        group: Some("Amazon Elastic Compute Cloud - Compute".into()),
        item: "USE1-BoxUsage:m5.large".into(),
        model: None,
        amount: Decimal::new(9_216, 3),
        account: None,
        quantity: None,
    }));
    lines
}

#[tokio::test]
async fn aws_bedrock_costs_over_several_pages_equal_the_fixture_exactly_and_nothing_else() {
    let sim = SimProvider::aws(AWS_KEY_ID, AWS_SECRET).await;
    let lines = aws_fixture(10);
    sim.set_lines(lines.clone());
    let window = SyncWindow::new(day0(), day0() + Days::days(10)).unwrap();
    let pull = cost_explorer(&sim, AWS_KEY_ID).pull_costs(&client(true), window).await.unwrap();
    // Per account, 10 days × 2 groups at 5 groups a page, after the service and account listings.
    assert_eq!(pull.pages, 2 + 4 + 4);
    assert_eq!(pull.records.len(), 40);
    let payer = burnrate_sim::aws::PAYER_ACCOUNT.to_owned();
    let mut want: BTreeMap<(NaiveDate, String, String, String), Decimal> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.group.as_deref().is_some_and(|g| g.contains("Bedrock"))) {
        let account = l.account.clone().unwrap_or(payer.clone());
        *want.entry((l.day, l.group.clone().unwrap(), l.item.clone(), account)).or_default() += l.amount;
    }
    let mut got: BTreeMap<(NaiveDate, String, String, String), Decimal> = BTreeMap::new();
    for r in &pull.records {
        let account = r.sub_account_id.clone().expect("every line names its account");
        let key = (r.charge_period_start.date_naive(), r.service_name.clone(), r.sku_id.clone().unwrap(), account);
        *got.entry(key).or_default() += r.billed_cost.amount();
        assert_eq!(r.billed_cost, r.effective_cost, "unblended and amortized come from their own metrics");
        assert_eq!(r.provider_name, "Amazon Web Services");
    }
    assert_eq!(got, want, "every Bedrock line exactly, by day × service × usage type × account, and no EC2");
    let claude = pull.records.iter().find(|r| r.service_name.contains("Edition")).unwrap();
    assert_eq!(claude.model.as_deref(), Some("Claude 3.5 Sonnet"));
    let first = &sim.requests()[0].path_and_query;
    assert!(first.contains("GetDimensionValues") && first.contains("\"SearchString\":\"Bedrock\""), "{first}");
    let requests = sim.requests();
    let accounts = &requests[1].path_and_query;
    assert!(accounts.contains("\"Dimension\":\"LINKED_ACCOUNT\""), "then the accounts with such spend: {accounts}");
    let cost = &requests.iter().find(|r| r.path_and_query.contains("GetCostAndUsage")).unwrap().path_and_query;
    assert!(
        cost.contains("\"Amazon Bedrock\"") && !cost.contains("Elastic Compute") && cost.contains("LINKED_ACCOUNT"),
        "filtered to the found services, one account at a time: {cost}"
    );
}

#[tokio::test]
async fn aws_with_a_cost_allocation_tag_keeps_every_line_and_tags_it() {
    let sim = SimProvider::aws(AWS_KEY_ID, AWS_SECRET).await;
    let lines = aws_fixture(3);
    sim.set_lines(lines.clone());
    let window = SyncWindow::new(day0(), day0() + Days::days(3)).unwrap();
    let mut api = cost_explorer(&sim, AWS_KEY_ID);
    api.cost_allocation_tag = Some("team".into());
    let pull = api.pull_costs(&client(true), window).await.unwrap();
    type Key = (NaiveDate, String, String, String, Option<String>);
    let payer = burnrate_sim::aws::PAYER_ACCOUNT.to_owned();
    let mut want: BTreeMap<Key, Decimal> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.group.as_deref().is_some_and(|g| g.contains("Bedrock"))) {
        let account = l.account.clone().unwrap_or(payer.clone());
        let team = burnrate_sim::aws::tag_of(l, "team").map(str::to_owned);
        *want.entry((l.day, l.group.clone().unwrap(), l.item.clone(), account, team)).or_default() += l.amount;
    }
    let mut got: BTreeMap<Key, Decimal> = BTreeMap::new();
    for r in &pull.records {
        let key = (
            r.charge_period_start.date_naive(),
            r.service_name.clone(),
            r.sku_id.clone().unwrap(),
            r.sub_account_id.clone().unwrap(),
            r.tags.get("team").cloned(),
        );
        *got.entry(key).or_default() += r.billed_cost.amount();
    }
    assert_eq!(got, want, "day × service × usage type × account exactly, each with its team");
    let costs: Vec<_> = sim.requests().into_iter().filter(|r| r.path_and_query.contains("GetCostAndUsage")).collect();
    // One pull per account and service (2 × 2): the two with spend hold 6 groups, two pages of 5.
    assert_eq!(costs.len(), 2 * 2 + 2);
    assert!(costs.iter().all(|r| r.path_and_query.contains("{\"Key\":\"team\",\"Type\":\"TAG\"}")), "{:?}", costs[0]);
}

#[tokio::test]
async fn aws_throttling_is_waited_out_and_a_wrong_key_says_so_without_the_secret() {
    let sim = SimProvider::aws(AWS_KEY_ID, AWS_SECRET).await;
    sim.set_lines(aws_fixture(2));
    sim.push_fault(Fault::Pass);
    sim.push_fault(Fault::RateLimited { retry_after_secs: 0 });
    let window = SyncWindow::new(day0(), day0() + Days::days(2)).unwrap();
    let pull = cost_explorer(&sim, AWS_KEY_ID).pull_costs(&client(true), window).await.unwrap();
    assert_eq!(pull.records.len(), 8, "the throttled request was asked again");
    let requests = sim.requests();
    assert_eq!(requests[1].path_and_query, requests[2].path_and_query, "the same request again");
    assert!(requests[2].at - requests[1].at >= Duration::from_millis(200), "after a wait");

    let err = cost_explorer(&sim, "AKIAWRONGKEY00000000").pull_costs(&client(true), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Credential { status: 400, .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("UnrecognizedClientException") && text.contains("ce:GetCostAndUsage"), "{text}");
    assert!(!text.contains(AWS_SECRET) && !text.contains("AKIAWRONGKEY"), "{text}");

    // The right key id with a wrong secret: AWS recomputes the signature and refuses it.
    let mut wrong_secret = cost_explorer(&sim, AWS_KEY_ID);
    wrong_secret.credentials.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET".to_owned().into();
    let err = wrong_secret.pull_costs(&client(true), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Credential { status: 403, .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("InvalidSignatureException") && text.contains("secret"), "{text}");
    assert!(!text.contains("WRONGSECRET"), "{text}");
}

#[tokio::test]
async fn aws_reads_through_an_assumed_role_and_a_wrong_external_id_says_what_to_fix() {
    let sim = SimProvider::aws(AWS_KEY_ID, AWS_SECRET).await;
    sim.set_lines(aws_fixture(3));
    let role = "arn:aws:iam::210987654321:role/BurnrateCostReader";
    sim.set_aws_role(role, "burnrate-org-42");
    let window = SyncWindow::new(day0(), day0() + Days::days(3)).unwrap();
    let direct = cost_explorer(&sim, AWS_KEY_ID).pull_costs(&client(true), window).await.unwrap_err();
    assert!(direct.to_string().contains("AccessDeniedException"), "the user itself may not read costs: {direct}");

    let with_role = |external_id: &str| {
        let mut ce = cost_explorer(&sim, AWS_KEY_ID);
        ce.role = Some(burnrate_sources::aws::AssumeRole {
            role_arn: role.into(),
            external_id: Some(external_id.into()),
            sts_url: sim.base_url().parse().unwrap(),
        });
        ce
    };
    let pull = with_role("burnrate-org-42").pull_costs(&client(true), window).await.unwrap();
    assert_eq!(pull.records.len(), 12, "3 days × 4 Bedrock groups, read with the role's credentials");
    let assumed = &sim.requests().iter().find(|r| r.path_and_query.contains("sts")).unwrap().path_and_query.clone();
    assert!(assumed.contains("Action=AssumeRole") && assumed.contains("ExternalId=burnrate-org-42"), "{assumed}");

    let err = with_role("someone-else").pull_costs(&client(true), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Credential { status: 403, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("AccessDenied") && text.contains("trust policy"), "{text}");
    assert!(!text.contains(AWS_SECRET), "{text}");
}

const OPENROUTER_KEY: &str = "sk-or-v1-TESTMANAGEMENTKEY0123456789abcdef";

/// Spend on two models through two providers in two workspaces, for each of the last `days`
/// days (yesterday first) — and 5 older days the activity no longer covers.
fn openrouter_fixture(days: i64) -> Vec<CostLine> {
    let today = chrono::Utc::now().date_naive();
    let mut lines = Vec::new();
    for back in 1..=days + 5 {
        for (workspace, model, provider, base) in [
            (None, "anthropic/claude-sonnet-4", "Anthropic", 12_842_130_001i64),
            (Some("ws-research"), "anthropic/claude-sonnet-4", "Amazon Bedrock", 3_000_000_007),
            (Some("ws-research"), "openai/gpt-4.1-mini", "OpenAI", 907_620_003),
        ] {
            lines.push(CostLine {
                day: today - Days::days(back),
                group: workspace.map(str::to_owned),
                item: provider.into(),
                model: Some(model.into()),
                amount: Decimal::new(base + back * 1_000_003, 9),
                account: None,
                quantity: None,
            });
        }
    }
    lines
}

fn openrouter(sim: &SimProvider, key: &str) -> burnrate_sources::OpenRouter {
    burnrate_sources::OpenRouter::new(sim.base_url().parse().unwrap(), key.to_owned().into())
}

#[tokio::test]
async fn openrouter_activity_by_day_model_and_workspace_equals_the_fixture_and_usage_reuses_the_days() {
    use burnrate_sim::openrouter::{DEFAULT_CREDITS, tokens_of};
    let sim = SimProvider::openrouter(OPENROUTER_KEY).await;
    let lines = openrouter_fixture(30);
    sim.set_lines(lines.clone());
    let today = chrono::Utc::now().date_naive();
    let first = burnrate_sources::OpenRouter::reaches_back(today);
    // Through tomorrow: today is not complete and is not asked for.
    let window = SyncWindow::new(first, today + Days::days(1)).unwrap();
    let api = openrouter(&sim, OPENROUTER_KEY);
    let http = client(true);
    let costs = api.pull_costs(&http, window).await.unwrap();
    assert_eq!(costs.pages, 30, "one request per completed day");
    type DayKey = (NaiveDate, Option<String>, Option<String>);
    let mut got: BTreeMap<DayKey, Decimal> = BTreeMap::new();
    for r in &costs.records {
        assert_eq!((r.provider_name.as_str(), r.service_name.as_str()), ("OpenRouter", "OpenRouter"));
        *got.entry((r.charge_period_start.date_naive(), r.model.clone(), r.sub_account_id.clone())).or_default() +=
            r.billed_cost.amount();
    }
    let default_workspace = Some("00000000-0000-4000-8000-000000000000".to_owned());
    let mut want: BTreeMap<DayKey, Decimal> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.day >= first) {
        let workspace = l.group.clone().or(default_workspace.clone());
        *want.entry((l.day, l.model.clone(), workspace)).or_default() += l.amount;
    }
    assert_eq!(got, want, "every day × model × workspace exactly, nothing older than 30 days");
    let bedrock = costs.records.iter().find(|r| r.charge_description.as_deref().unwrap().contains("Bedrock")).unwrap();
    assert_eq!(bedrock.sku_id.as_deref(), Some("anthropic/claude-sonnet-4-20250514"));

    // The usage pull of the same sync reads the days already fetched.
    let usage = api.pull_usage(&http, window).await.unwrap().records;
    assert_eq!(sim.requests().len(), 30, "no second request for a day");
    let prompt: i64 = usage.iter().map(|u| u.input_uncached_tokens).sum();
    let want: i64 = lines.iter().filter(|l| l.day >= first).map(|l| tokens_of(l).0).sum();
    assert_eq!(prompt, want);

    let credits = api.credits(&http, window).await.unwrap();
    let spent: Decimal = lines.iter().map(|l| l.amount).sum();
    assert_eq!(credits.remaining(), DEFAULT_CREDITS - spent);
}

#[tokio::test]
async fn openrouter_throttling_is_waited_out_and_an_inference_key_is_told_to_use_a_management_key() {
    let sim = SimProvider::openrouter(OPENROUTER_KEY).await;
    sim.set_lines(openrouter_fixture(3));
    let today = chrono::Utc::now().date_naive();
    let window = SyncWindow::new(today - Days::days(3), today).unwrap();
    sim.push_fault(Fault::Pass);
    sim.push_fault(Fault::RateLimited { retry_after_secs: 1 });
    let pull = openrouter(&sim, OPENROUTER_KEY).pull_costs(&client(true), window).await.unwrap();
    assert_eq!(pull.records.len(), 9, "3 days × 3 lines, the throttled day asked again");
    let requests = sim.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[1].path_and_query, requests[2].path_and_query, "the same day again");
    assert!(requests[2].at - requests[1].at >= Duration::from_millis(900), "after Retry-After");

    let err = openrouter(&sim, burnrate_sim::openrouter::INFERENCE_KEY).pull_costs(&client(true), window).await;
    let err = err.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Credential { status: 403, .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("management key") && text.contains("Only management keys"), "{text}");
    assert!(!text.contains(burnrate_sim::openrouter::INFERENCE_KEY), "{text}");
    let wrong =
        openrouter(&sim, "sk-or-v1-wrongwrongwrongwrongwrongwrongwrong").pull_costs(&client(true), window).await;
    assert!(matches!(wrong.unwrap_err().kind, SourceErrorKind::Credential { status: 401, .. }));

    // A day the activity no longer covers is refused by OpenRouter, and said so.
    let old = SyncWindow::new(today - Days::days(40), today - Days::days(39)).unwrap();
    let err = openrouter(&sim, OPENROUTER_KEY).pull_costs(&client(true), old).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Rejected { status: 400, .. }), "{err}");
}

const AZURE_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AZURE_CLIENT: &str = "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b";
const AZURE_SECRET: &str = "Qx8Q~AZURESECRETvalue0123456789abcdefgh";
const AZURE_SCOPE: &str = "subscriptions/00000000-0000-0000-0000-000000000001";

/// Two Azure OpenAI accounts in two subscriptions and a virtual machine, over `days` days from
/// `day0` (spanning a month end when `days` > 31).
fn azure_fixture(days: i64) -> Vec<CostLine> {
    let aoai = |sub: u32, name: &str| {
        format!(
            "/subscriptions/00000000-0000-0000-0000-00000000000{sub}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/{name}"
        )
    };
    let vm = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/web1";
    let mut lines = Vec::new();
    for d in 0..days {
        for (resource, meter, nanos) in [
            (aoai(1, "contoso-aoai"), "gpt-4o-0806-Inp-glbl 1K Tokens", 12_482_310_000i64),
            (aoai(1, "contoso-aoai"), "gpt-4o-0806-Outp-glbl 1K Tokens", 19_800_000_001),
            (aoai(2, "research-aoai"), "gpt-4o-mini-0718-Inp-regnl 1K Tokens", 910_492_007),
            (vm.to_owned(), "D2s v5", 2_304_000_000),
        ] {
            lines.push(CostLine {
                day: day0() + Days::days(d),
                group: Some(resource),
                item: meter.into(),
                model: None,
                amount: Decimal::new(nanos + d * 1_000_003, 9),
                account: None,
                quantity: None,
            });
        }
    }
    lines
}

fn cost_management(sim: &SimProvider, secret: &str) -> burnrate_sources::CostManagement {
    let base: url::Url = sim.base_url().parse().unwrap();
    burnrate_sources::CostManagement::new(
        base.clone(),
        base,
        AZURE_TENANT.into(),
        AZURE_CLIENT.into(),
        secret.to_owned().into(),
        AZURE_SCOPE.into(),
    )
}

#[tokio::test]
async fn azure_costs_over_pages_and_a_month_end_equal_the_fixture_exactly_with_one_token() {
    let sim = SimProvider::azure(AZURE_TENANT, AZURE_CLIENT, AZURE_SECRET, AZURE_SCOPE).await;
    let lines = azure_fixture(40);
    sim.set_lines(lines.clone());
    let window = SyncWindow::new(day0(), day0() + Days::days(40)).unwrap();
    let api = cost_management(&sim, AZURE_SECRET);
    let pull = api.pull_costs(&client(true), window).await.unwrap();

    type LineKey = (NaiveDate, Option<String>, Option<String>);
    let mut got: BTreeMap<LineKey, (Decimal, Decimal)> = BTreeMap::new();
    for r in &pull.records {
        assert_eq!((r.provider_name.as_str(), r.service_name.as_str()), ("Microsoft", "Azure AI Services"));
        let e =
            got.entry((r.charge_period_start.date_naive(), r.sku_id.clone(), r.sub_account_id.clone())).or_default();
        e.0 += r.billed_cost.amount();
        e.1 += r.effective_cost.amount();
    }
    let mut want: BTreeMap<LineKey, (Decimal, Decimal)> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.group.as_deref().unwrap().contains("CognitiveServices")) {
        let sub = l.group.as_deref().unwrap().split('/').nth(2).map(str::to_owned);
        let e = want.entry((l.day, Some(l.item.clone()), sub)).or_default();
        e.0 += l.amount;
        e.1 += l.amount;
    }
    assert_eq!(got, want, "every day × meter × subscription exactly, billed and effective, no virtual machine");
    assert!(pull.rounded_values > 0, "float noise past 9 decimals was rounded away");
    let gpt = pull.records.iter().find(|r| r.sku_id.as_deref() == Some("gpt-4o-0806-Inp-glbl 1K Tokens")).unwrap();
    assert_eq!((gpt.model.as_deref(), gpt.consumed_unit.as_deref()), (Some("gpt-4o-0806"), Some("1K Tokens")));

    let requests = sim.requests();
    let tokens = requests.iter().filter(|r| r.path_and_query.contains("/oauth2/v2.0/token")).count();
    assert_eq!(tokens, 1, "one token for the whole pull");
    let pages = requests.iter().filter(|r| r.path_and_query.contains("$skiptoken")).count();
    assert!(pages >= 4, "nextLink followed: {pages}");
    assert!(
        requests
            .iter()
            .all(|r| r.path_and_query.contains("api-version=2025-03-01") || r.path_and_query.contains("oauth2"))
    );

    // Tokens Azure expires before their time are renewed once, and the pull goes on.
    sim.expire_azure_tokens();
    let again = api.pull_costs(&client(true), window).await.unwrap();
    assert_eq!(again.records.len(), pull.records.len());
    let tokens = sim.requests().iter().filter(|r| r.path_and_query.contains("/oauth2/v2.0/token")).count();
    assert_eq!(tokens, 2);
}

#[tokio::test]
async fn azure_throttling_waits_for_its_own_retry_header_and_bad_credentials_say_what_to_fix() {
    let sim = SimProvider::azure(AZURE_TENANT, AZURE_CLIENT, AZURE_SECRET, AZURE_SCOPE).await;
    sim.set_lines(azure_fixture(2));
    let window = SyncWindow::new(day0(), day0() + Days::days(2)).unwrap();
    // The token request, then a 429 whose Retry-After says 0 and Azure's own header 1 s.
    sim.push_fault(Fault::Pass);
    sim.push_fault(Fault::RateLimited { retry_after_secs: 1 });
    let started = std::time::Instant::now();
    let pull = cost_management(&sim, AZURE_SECRET).pull_costs(&client(true), window).await.unwrap();
    assert_eq!(pull.records.len(), 6, "2 days × 3 AI meters");
    assert!(started.elapsed() >= Duration::from_millis(950), "waited as Azure's header asked");

    let err = cost_management(&sim, "wrong-secret").pull_costs(&client(true), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Credential { status: 401, .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("AADSTS7000215") && text.contains("Cost Management Reader"), "{text}");
    assert!(!text.contains("wrong-secret") && !text.contains(AZURE_SECRET), "{text}");

    let mut elsewhere = cost_management(&sim, AZURE_SECRET);
    elsewhere.scope = "subscriptions/00000000-0000-0000-0000-000000000009".into();
    let err = elsewhere.pull_costs(&client(true), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Credential { status: 403, .. }), "{err}");
    assert!(err.to_string().contains("AuthorizationFailed"), "{err}");

    // A nextLink to another host is not followed: the bearer token would go with it.
    let decoy = SimProvider::azure(AZURE_TENANT, AZURE_CLIENT, AZURE_SECRET, AZURE_SCOPE).await;
    sim.set_azure_next_link_host(&decoy.addr.to_string());
    let wide = SyncWindow::new(day0(), day0() + Days::days(2)).unwrap();
    let err = cost_management(&sim, AZURE_SECRET).pull_costs(&client(true), wide).await.unwrap_err();
    assert!(err.to_string().contains("nextLink points to another host"), "{err}");
    assert!(decoy.requests().is_empty(), "nothing was sent to the other host");

    // Nothing in the window: Azure answers 204, which is no rows.
    let empty = SyncWindow::new(day0() + Days::days(100), day0() + Days::days(101)).unwrap();
    assert!(cost_management(&sim, AZURE_SECRET).pull_costs(&client(true), empty).await.unwrap().records.is_empty());
}

const GCP_PROJECT: &str = "acme-billing";
const GCP_TABLE: &str = "acme-billing.billing_export.gcp_billing_export_v1_01ABCD_23EF45_6789AB";

/// Vertex AI and Gemini API spend in two projects, and Compute Engine beside them, over `days`
/// days from `day0` (spanning a month end when `days` > 31).
fn gcp_fixture(days: i64) -> Vec<CostLine> {
    let mut lines = Vec::new();
    for d in 0..days {
        for (project, service, sku, nanos) in [
            ("acme-prod", "Vertex AI", "Gemini 2.5 Flash Input Text Tokens", 18_421_600_000i64),
            ("acme-prod", "Vertex AI", "Gemini 2.5 Flash Output Text Tokens", 7_300_000_009),
            ("acme-research", "Gemini API", "Gemini 2.5 Pro Input Tokens", 2_500_000_011),
            ("acme-prod", "Compute Engine", "N2 Instance Core running in Americas", 9_100_000_000),
        ] {
            lines.push(CostLine {
                day: day0() + Days::days(d),
                group: Some(project.into()),
                item: sku.into(),
                model: Some(service.into()),
                amount: Decimal::new(nanos + d * 1_000_003, 9),
                account: None,
                quantity: None,
            });
        }
    }
    lines
}

fn bigquery(sim: &SimProvider, key_json: &str, table: &str) -> burnrate_sources::BigQueryBilling {
    burnrate_sources::BigQueryBilling::new(
        sim.base_url().parse().unwrap(),
        key_json.to_owned().into(),
        None,
        table.into(),
        Some("US".into()),
    )
}

#[tokio::test]
async fn gcp_billing_export_costs_and_credits_equal_the_fixture_over_polls_pages_and_a_month_end() {
    use burnrate_core::ChargeCategory;
    use burnrate_sim::gcp::{credits_of, list_cost_of, sku_id_of};
    let sim = SimProvider::gcp(GCP_PROJECT, GCP_TABLE).await;
    let lines = gcp_fixture(40);
    sim.set_lines(lines.clone());
    sim.set_gcp_slow_polls(2);
    let window = SyncWindow::new(day0(), day0() + Days::days(40)).unwrap();
    let pull = bigquery(&sim, &sim.gcp_key(), GCP_TABLE).pull_costs(&client(true), window).await.unwrap();

    type LineKey = (NaiveDate, Option<String>, Option<String>, ChargeCategory);
    let mut got: BTreeMap<LineKey, (Decimal, Decimal)> = BTreeMap::new();
    for r in &pull.records {
        assert_eq!(r.provider_name, "Google Cloud");
        let key = (r.charge_period_start.date_naive(), r.sku_id.clone(), r.sub_account_id.clone(), r.charge_category);
        let e = got.entry(key).or_default();
        e.0 += r.billed_cost.amount();
        e.1 += r.list_cost.amount();
    }
    let mut want: BTreeMap<LineKey, (Decimal, Decimal)> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.model.as_deref() != Some("Compute Engine")) {
        let key = |c| (l.day, Some(sku_id_of(&l.item)), l.group.clone(), c);
        let e = want.entry(key(ChargeCategory::Usage)).or_default();
        e.0 += l.amount;
        e.1 += list_cost_of(l);
        if !credits_of(l).is_zero() {
            want.entry(key(ChargeCategory::Credit)).or_default().0 += credits_of(l);
        }
    }
    assert_eq!(got, want, "day × SKU × project exactly, credits as lines of their own, no Compute Engine");
    let flash =
        pull.records.iter().find(|r| r.charge_description.as_deref() == Some("Gemini 2.5 Flash Input Text Tokens"));
    assert_eq!(flash.unwrap().model.as_deref(), Some("Gemini 2.5 Flash"));
    for r in &pull.records {
        let line = lines.iter().find(|l| Some(sku_id_of(&l.item)) == r.sku_id).unwrap();
        let labels: BTreeMap<String, String> =
            burnrate_sim::gcp::labels_of(line).into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        assert_eq!(r.tags, labels, "labels become tags: {:?}", r.sku_id);
    }

    let requests = sim.requests();
    let count = |needle: &str| requests.iter().filter(|r| r.path_and_query.contains(needle)).count();
    assert_eq!(count("/token"), 1, "one token for the whole pull");
    assert!(count("pageToken=") >= 4, "pages followed");
    assert_eq!(requests.iter().filter(|r| r.path_and_query.ends_with("/queries")).count(), 2, "one query a month");
    assert!(requests.iter().filter(|r| r.path_and_query.contains("/queries/job_sim")).count() >= 4, "polled");
}

#[tokio::test]
async fn gcp_throttling_is_waited_out_and_a_foreign_key_a_missing_table_or_permission_say_what_to_fix() {
    let sim = SimProvider::gcp(GCP_PROJECT, GCP_TABLE).await;
    sim.set_lines(gcp_fixture(2));
    let window = SyncWindow::new(day0(), day0() + Days::days(2)).unwrap();
    // The token, then BigQuery's 403 rateLimitExceeded.
    sim.push_fault(Fault::Pass);
    sim.push_fault(Fault::RateLimited { retry_after_secs: 0 });
    let pull = bigquery(&sim, &sim.gcp_key(), GCP_TABLE).pull_costs(&client(true), window).await.unwrap();
    assert_eq!(pull.records.len(), 10, "2 days × 3 AI SKUs and 2 credit lines, after the wait");

    // A key Google does not know (deleted, or another account's): the signature is refused.
    let (pem, _) = burnrate_sim::gcp::generate_key();
    let foreign = burnrate_sim::gcp::key_json(GCP_PROJECT, &pem, &format!("{}/token", sim.base_url()));
    let err = bigquery(&sim, &foreign, GCP_TABLE).pull_costs(&client(true), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Credential { status: 400, .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("Invalid JWT Signature") && text.contains("service account key"), "{text}");
    assert!(!text.contains("PRIVATE KEY") && !text.contains(&pem[40..80]), "{text}");

    let missing = GCP_TABLE.replace("6789AB", "000000");
    let err = bigquery(&sim, &sim.gcp_key(), &missing).pull_costs(&client(true), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Rejected { status: 404, .. }), "{err}");
    assert!(err.to_string().contains("notFound"), "{err}");

    let mut elsewhere = bigquery(&sim, &sim.gcp_key(), GCP_TABLE);
    elsewhere.project_id = Some("acme-other".into());
    let err = elsewhere.pull_costs(&client(true), window).await.unwrap_err();
    assert!(matches!(err.kind, SourceErrorKind::Credential { status: 403, .. }), "{err}");
    assert!(err.to_string().contains("roles/bigquery.jobUser"), "{err}");
}

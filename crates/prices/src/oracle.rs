//! burnrate's pricing against an oracle nobody here wrote: the `genai-prices` package's own
//! `calc_price` (pinned in scripts/test with the snapshot's version), run by
//! `oracle/calc_price.py` on the cases generated here.

use std::io::Write;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::{Catalogue, Context, Found, Tiering, Usage};

/// A small deterministic generator: the same cases every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}

struct Case {
    provider: String,
    model_ref: String,
    model_id: String,
    at: DateTime<Utc>,
    context: Context,
    usage: Usage,
    tiering: Tiering,
}

impl Case {
    fn json(&self) -> Value {
        json!({
            "provider": self.provider,
            "model": self.model_ref,
            "at": self.at.to_rfc3339(),
            "context": self.context,
            "usage": self.usage.iter().collect::<std::collections::BTreeMap<_, _>>(),
            "mode": match self.tiering { Tiering::Request => "request", Tiering::Aggregate => "row" },
        })
    }
}

/// Models of the providers burnrate connects (and a few gateways serve), found by their own
/// id, with the dates their rates change and the contexts their variants name.
fn models(catalogue: &Catalogue) -> Vec<Found<'_>> {
    let mut found = Vec::new();
    for provider in ["openai", "anthropic", "google", "aws", "azure", "openrouter", "mistral", "x-ai", "deepseek"] {
        let provider = catalogue.provider(provider).expect("in the catalogue");
        for model in &provider.models {
            // Only models a name of their own finds (an earlier model may match it first).
            if let Some(f) = catalogue.find(provider, &model.id)
                && std::ptr::eq(f.model, model)
            {
                found.push(f);
            }
        }
    }
    found
}

fn usage_row(rng: &mut Lcg) -> Usage {
    let uncached = rng.next(5_000_000);
    let cache_read = if rng.next(3) > 0 { rng.next(20_000_000) } else { 0 };
    let cache_write = if rng.next(2) > 0 { rng.next(3_000_000) } else { 0 };
    let write_1h = if cache_write > 0 && rng.next(2) > 0 { rng.next(cache_write + 1) } else { 0 };
    Usage::new()
        .with("input_tokens", uncached + cache_read + cache_write)
        .with("cache_read_tokens", cache_read)
        .with("cache_write_tokens", cache_write)
        .with("cache_write_1h_tokens", write_1h)
        .with("output_tokens", rng.next(2_000_000))
        .with("web_searches", if rng.next(4) == 0 { rng.next(500) } else { 0 })
}

fn cases(catalogue: &Catalogue) -> Vec<Case> {
    let mut rng = Lcg(0x6275_726e_7261_7465);
    let mut cases = Vec::new();
    let day = |d: NaiveDate, hour: i64| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc() + Duration::hours(hour);
    for found in models(catalogue) {
        let model = found.model;
        // Days either side of the last change of rates, or one fixed day.
        let mut days = vec![NaiveDate::from_ymd_opt(2026, 11, 3).expect("a date")];
        if let Some(change) = model.price_changes().last() {
            days = vec![*change - Duration::days(1), *change];
        }
        let mut contexts = vec![Context::new()];
        contexts.extend(model.variant_contexts().into_iter().cloned());
        for d in &days {
            for context in &contexts {
                let base = |usage, tiering| Case {
                    provider: found.provider.id.clone(),
                    model_ref: model.id.clone(),
                    model_id: model.id.clone(),
                    at: day(*d, 13),
                    context: context.clone(),
                    usage,
                    tiering,
                };
                cases.push(base(usage_row(&mut rng), Tiering::Aggregate));
                // One request either side of each size tier's start.
                if model.has_tiers() {
                    for input in [128_000, 200_000, 200_001, 272_000, 272_001, 1_000_001] {
                        let cache_read = rng.next(input / 2);
                        let usage = Usage::new()
                            .with("input_tokens", input)
                            .with("cache_read_tokens", cache_read)
                            .with("output_tokens", rng.next(64_000));
                        cases.push(base(usage, Tiering::Request));
                    }
                }
            }
        }
    }
    cases
}

#[test]
fn every_cost_equals_what_genai_prices_calc_price_gives() {
    let catalogue = Catalogue::shipped().expect("the shipped catalogue");
    let catalogue = catalogue.as_ref();
    let cases = cases(catalogue);
    let models: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.model_id.as_str()).collect();
    assert!(models.len() >= 30, "{} models", models.len());
    assert!(cases.iter().any(|c| c.context.get("processing").is_some_and(|p| p == "batch")), "batch rates");
    assert!(cases.iter().any(|c| c.usage.get("cache_write_1h_tokens") > 0), "1-hour cache writes");
    assert!(cases.iter().any(|c| c.tiering == Tiering::Request), "requests across tiers");

    let python = std::env::var("BURNRATE_TEST_PYTHON")
        .expect("BURNRATE_TEST_PYTHON: a Python with genai-prices 0.2.3 (scripts/test installs it)");
    // Where the crate is now (cargo and nextest say so when they run a test): a binary built from
    // another checkout of the same sources is not rebuilt and knows only where that one was.
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let script = format!("{crate_dir}/oracle/calc_price.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the oracle runs");
    let input = serde_json::to_vec(&cases.iter().map(Case::json).collect::<Vec<_>>()).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the oracle failed");
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answers.len(), cases.len());

    let mut compared = 0;
    let mut differences = Vec::new();
    for (case, answer) in cases.iter().zip(&answers) {
        let provider = catalogue.provider(&case.provider).unwrap();
        let found = catalogue.find(provider, &case.model_ref).unwrap();
        let ours = catalogue.price(&found, case.at, &case.context, &case.usage, case.tiering);
        let label = format!("{}/{} {} {:?} {:?}", case.provider, case.model_ref, case.at, case.context, case.usage);
        match (answer.get("cost").and_then(Value::as_str), &ours) {
            (Some(theirs), Ok(ours)) => {
                let theirs = Decimal::from_str(theirs).unwrap();
                assert_eq!(answer["model"], json!(found.model.id), "{label}: the same model");
                if theirs != ours.cost {
                    differences.push(format!("{label}: ours {} theirs {theirs}", ours.cost));
                }
                compared += 1;
            }
            (None, ours) => differences.push(format!("{label}: the oracle says {}, ours {ours:?}", answer["error"])),
            (Some(theirs), Err(e)) => differences.push(format!("{label}: ours failed ({e}), theirs {theirs}")),
        }
    }
    assert!(differences.is_empty(), "{} of {} differ:\n{}", differences.len(), cases.len(), differences.join("\n"));
    assert!(compared >= 200, "{compared} cases");
}

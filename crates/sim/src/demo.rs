//! Seeded spend for `burnrate demo`: about 90 days that look like a real team's — several
//! projects and models, busier weekdays, steady growth, and one spike worth an alert. OpenAI's and
//! Anthropic's bills are their usage at the shipped price catalogue's rates, but for a few
//! [`planted`] discrepancies that reconciliation finds.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use rust_decimal::Decimal;

use crate::CostLine;

/// (group, item, model, dollars on an ordinary weekday at the start of the period)
type Line = (Option<&'static str>, &'static str, &'static str, i64);

/// A model used by a project (OpenAI) or workspace (Anthropic, `None`: the default one): its
/// dollars on an ordinary weekday at the start of the period, and its tokens' shares in percent
/// of uncached input, cache reads, cache writes and output.
struct Use {
    group: Option<&'static str>,
    model: &'static str,
    /// The name the provider's cost lines give the model.
    billed_as: &'static str,
    cents: i64,
    shares: [i64; 4],
}

const OPENAI: &[Use] = &[
    Use {
        group: Some("proj_support_bot"),
        model: "gpt-4o-2024-08-06",
        billed_as: "gpt-4o-2024-08-06",
        cents: 10_300,
        shares: [55, 25, 0, 20],
    },
    Use {
        group: Some("proj_support_bot"),
        model: "gpt-4o-mini",
        billed_as: "gpt-4o-mini",
        cents: 650,
        shares: [60, 20, 0, 20],
    },
    Use {
        group: Some("proj_search"),
        model: "gpt-4o-mini",
        billed_as: "gpt-4o-mini",
        cents: 1_630,
        shares: [70, 10, 0, 20],
    },
    Use {
        group: Some("proj_internal_tools"),
        model: "o3-mini",
        billed_as: "o3-mini",
        cents: 3_200,
        shares: [50, 10, 0, 40],
    },
];

const ANTHROPIC: &[Use] = &[
    Use {
        group: Some("wrkspc_analytics"),
        model: "claude-sonnet-4-20250514",
        billed_as: "Claude Sonnet 4",
        cents: 9_100,
        shares: [40, 35, 5, 20],
    },
    Use {
        group: None,
        model: "claude-haiku-4-5",
        billed_as: "Claude Haiku 4.5",
        cents: 1_950,
        shares: [55, 20, 5, 20],
    },
];

/// A model newer than the price catalogue: its usage is unpriced, whatever it is billed.
pub const DEMO_UNPRICED_MODEL: &str = "claude-nova-preview-1";

/// What the demo's providers bill wrongly, all inside the last 30 complete days, so the
/// reconciliation view has something true to show.
pub mod planted {
    /// Days before today on which OpenAI's usage report misses an hour of the support bot's
    /// GPT-4o requests that its cost report bills: a quantity gap.
    pub const MISSING_HOUR_DAYS_AGO: i64 = 4;
    pub const MISSING_HOUR_MODEL: &str = "gpt-4o-2024-08-06";
    /// Days before today on which Anthropic bills the analytics workspace's Sonnet cache reads
    /// at the uncached input rate: a price gap.
    pub const WRONG_CACHE_RATE_DAYS_AGO: i64 = 7;
    pub const WRONG_CACHE_RATE_MODEL: &str = "claude-sonnet-4-20250514";
    /// The days [`super::DEMO_UNPRICED_MODEL`] was tried, counting back from yesterday.
    pub const UNPRICED_MODEL_DAYS: i64 = 10;
}

/// Cost lines and usage lines that agree, day by day, at the shipped price catalogue's rates —
/// but for the [`planted`] discrepancies.
struct Billed {
    lines: Vec<CostLine>,
    usage: Vec<crate::UsageLine>,
}

/// The four token classes, in the order of [`Use::shares`].
const CLASSES: [&str; 4] = ["input", "cache read", "cache write", "output"];

/// What the catalogue charges for `tokens` of one class of `model` on `day`, to the micro-dollar;
/// the classes' usage record as `source_kind`'s connector writes it.
fn priced(source_kind: &str, model: &str, day: NaiveDate, class: usize, tokens: i64) -> Decimal {
    let mut record = burnrate_core::UsageRecord {
        bucket_start: day.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
        bucket_end: (day + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
        model: Some(model.into()),
        ..Default::default()
    };
    match class {
        0 => record.input_uncached_tokens = tokens,
        1 => record.input_cached_tokens = tokens,
        2 => {
            record.input_cache_write_tokens = tokens;
            record.input_cache_write_1h_tokens = crate::anthropic::one_hour_part(tokens);
        }
        _ => record.output_tokens = tokens,
    }
    burnrate_prices::PriceBook::shipped().price(source_kind, &mut record);
    record.computed_cost.expect("every demo model but the unpriced one is in the catalogue").round_dp(6)
}

/// Dollars per million tokens of `u`'s mix at the catalogue's rates on `day`.
fn per_million(source_kind: &str, u: &Use, day: NaiveDate) -> Decimal {
    (0..4).map(|c| priced(source_kind, u.model, day, c, u.shares[c] * 10_000)).sum()
}

fn billed(source_kind: &str, uses: &[Use], today: NaiveDate, days: i64, spike_group: &str) -> Billed {
    use rust_decimal::prelude::ToPrimitive;
    let mut out = Billed { lines: Vec::new(), usage: Vec::new() };
    for back in 0..days {
        let day = today - Duration::days(back);
        for (i, u) in uses.iter().enumerate() {
            let dollars = Decimal::new(u.cents, 2) * scale(day, back, days, i, u.group == Some(spike_group));
            let total = (dollars / per_million(source_kind, u, day) * Decimal::from(1_000_000))
                .to_i64()
                .expect("a day's demo tokens fit in an i64");
            let tokens = u.shares.map(|share| total * share / 100);
            let mut used = tokens;
            if source_kind == "openai"
                && back == planted::MISSING_HOUR_DAYS_AGO
                && u.model == planted::MISSING_HOUR_MODEL
            {
                used = tokens.map(|t| t * 23 / 24);
            }
            out.usage.push(crate::UsageLine {
                day,
                group: u.group.map(str::to_owned),
                api_key: Some("key_demo_prod".into()),
                model: u.model.into(),
                uncached: used[0],
                cached: used[1],
                cache_write: used[2],
                output: used[3],
                requests: (total / 2_500).max(1),
                ..Default::default()
            });
            for (class, name) in CLASSES.iter().enumerate().filter(|(c, _)| tokens[*c] > 0) {
                let mut amount = priced(source_kind, u.model, day, class, tokens[class]);
                if source_kind == "anthropic"
                    && class == 1
                    && back == planted::WRONG_CACHE_RATE_DAYS_AGO
                    && u.model == planted::WRONG_CACHE_RATE_MODEL
                {
                    amount = priced(source_kind, u.model, day, 0, tokens[class]);
                }
                out.lines.push(CostLine {
                    day,
                    group: u.group.map(str::to_owned),
                    item: item_name(source_kind, u.billed_as, name),
                    model: Some(u.model.into()),
                    amount,
                    quantity: (source_kind == "openai").then_some(tokens[class]),
                    ..Default::default()
                });
            }
        }
    }
    out
}

/// The line item (OpenAI) or description (Anthropic) of one token class.
fn item_name(source_kind: &str, billed_as: &str, class: &str) -> String {
    match source_kind {
        "openai" => format!("{billed_as}, {}", if class == "cache read" { "cached input" } else { class }),
        _ => {
            let class = match class {
                "input" => "Input Tokens",
                "cache read" => "Cache Read Tokens",
                "cache write" => "Cache Write Tokens",
                _ => "Output Tokens",
            };
            format!("{billed_as} Usage - {class}")
        }
    }
}

/// Bedrock through AWS: Amazon's own model under "Amazon Bedrock", a marketplace model under its
/// own service; the item is the usage type (the simulator ignores the model column).
const AWS: &[Line] = &[
    (Some("Amazon Bedrock"), "USE1-Nova-Pro-input-tokens", "-", 1_100),
    (Some("Amazon Bedrock"), "USE1-Nova-Pro-output-tokens", "-", 2_400),
    (Some("Claude 3.5 Sonnet (Amazon Bedrock Edition)"), "USE1-MP:USE1_InputTokenCount-Units", "-", 2_800),
    (Some("Claude 3.5 Sonnet (Amazon Bedrock Edition)"), "USE1-MP:USE1_OutputTokenCount-Units", "-", 4_300),
];

/// Azure OpenAI: two accounts' meters; the item is the meter, the group the resource.
const AZURE: &[Line] = &[
    (Some(DEMO_AZURE_RESOURCE), "gpt-4o-0806-Inp-glbl 1K Tokens", "-", 1_900),
    (Some(DEMO_AZURE_RESOURCE), "gpt-4o-0806-Outp-glbl 1K Tokens", "-", 3_100),
    (Some(DEMO_AZURE_MINI), "gpt-4o-mini-0718-Inp-regnl 1K Tokens", "-", 420),
];

/// The demo's Azure OpenAI accounts (ARM ids) and subscription.
pub const DEMO_AZURE_SUBSCRIPTION: &str = "subscriptions/5f1c2b7a-6d0e-4a58-9b1f-2c3d4e5f6a7b";
const DEMO_AZURE_RESOURCE: &str = "/subscriptions/5f1c2b7a-6d0e-4a58-9b1f-2c3d4e5f6a7b/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/demo-aoai";
const DEMO_AZURE_MINI: &str = "/subscriptions/5f1c2b7a-6d0e-4a58-9b1f-2c3d4e5f6a7b/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/demo-aoai-mini";

/// Google Cloud: Gemini on Vertex AI and the Gemini API; the model column is the service.
const GCP: &[Line] = &[
    (Some("demo-prod"), "Gemini 2.5 Flash Input Text Tokens", "Vertex AI", 1_300),
    (Some("demo-prod"), "Gemini 2.5 Flash Output Text Tokens", "Vertex AI", 2_200),
    (Some("demo-research"), "Gemini 2.5 Pro Input Tokens", "Gemini API", 900),
];

/// OpenRouter: models routed to their providers; the item is the provider endpoint.
const OPENROUTER: &[Line] = &[
    (Some("ws-prototypes"), "Anthropic", "anthropic/claude-sonnet-4", 1_600),
    (Some("ws-prototypes"), "DeepInfra", "meta-llama/llama-3.3-70b-instruct", 240),
    (None, "OpenAI", "openai/gpt-4.1-mini", 380),
];

/// A deterministic jitter in [0.85, 1.15) from the day and line, so runs are reproducible.
fn jitter(day: NaiveDate, line: usize) -> Decimal {
    let mut x = (day.num_days_from_ce() as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(line as u64 * 1_442_695_040_888_963_407);
    x ^= x >> 33;
    Decimal::new(85 + (x % 30) as i64, 2)
}

/// How a line's dollars scale on `day`, `back` days before today in a period of `days`: growth,
/// jitter, quiet weekends, the spike of `spiking` 18 days ago, and today so far.
fn scale(day: NaiveDate, back: i64, days: i64, line: usize, spiking: bool) -> Decimal {
    // About 0.6 % growth a day over the period.
    let mut scale = (Decimal::ONE + Decimal::new(6 * (days - back), 3)) * jitter(day, line);
    if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        scale *= Decimal::new(35, 2);
    }
    if back == 18 && spiking {
        scale *= Decimal::from(4);
    }
    // Today is not over: a part of the day so far.
    if back == 0 {
        scale *= Decimal::new(40, 2);
    }
    scale
}

fn lines(table: &[Line], today: NaiveDate, days: i64, spike_group: &str) -> Vec<CostLine> {
    let mut out = Vec::new();
    for back in 0..days {
        let day = today - Duration::days(back);
        for (i, (group, item, model, cents)) in table.iter().enumerate() {
            let amount = Decimal::new(*cents, 2) * scale(day, back, days, i, *group == Some(spike_group));
            out.push(CostLine {
                day,
                group: group.map(str::to_owned),
                item: (*item).into(),
                model: Some((*model).into()),
                amount: amount.round_dp(6),
                ..Default::default()
            });
        }
    }
    out
}

/// OpenAI spend for the `days` days up to and including `today`.
pub fn openai_lines(today: NaiveDate, days: i64) -> Vec<CostLine> {
    billed("openai", OPENAI, today, days, "proj_support_bot").lines
}

/// Anthropic spend for the `days` days up to and including `today`: its models' tokens, web
/// search, and a model the price catalogue does not know.
pub fn anthropic_lines(today: NaiveDate, days: i64) -> Vec<CostLine> {
    let mut lines = billed("anthropic", ANTHROPIC, today, days, "wrkspc_analytics").lines;
    for back in 0..days {
        let day = today - Duration::days(back);
        let amount = Decimal::new(300, 2) * scale(day, back, days, 9, false);
        lines.push(CostLine {
            day,
            group: Some("wrkspc_analytics".into()),
            item: "Web Search Usage".into(),
            amount: amount.round_dp(6),
            ..Default::default()
        });
    }
    for usage in unpriced_usage(today, days) {
        for (item, tokens, per_million) in [
            ("Input Tokens", usage.uncached, UNPRICED_BILLED_AT.0),
            ("Output Tokens", usage.output, UNPRICED_BILLED_AT.1),
        ] {
            lines.push(CostLine {
                day: usage.day,
                group: usage.group.clone(),
                item: format!("Claude Nova Preview Usage - {item}"),
                model: Some(DEMO_UNPRICED_MODEL.into()),
                amount: Decimal::from(tokens) * Decimal::new(per_million, 2) / Decimal::from(1_000_000),
                ..Default::default()
            });
        }
    }
    lines
}

/// AWS Bedrock spend (Cost Explorer) for the `days` days up to and including `today`.
pub fn aws_lines(today: NaiveDate, days: i64) -> Vec<CostLine> {
    lines(AWS, today, days, "Amazon Bedrock")
}

/// Azure OpenAI spend (Cost Management) for the `days` days up to and including `today`.
pub fn azure_lines(today: NaiveDate, days: i64) -> Vec<CostLine> {
    lines(AZURE, today, days, DEMO_AZURE_RESOURCE)
}

/// Google Cloud AI spend (the billing export) for the `days` days up to and including `today`.
pub fn gcp_lines(today: NaiveDate, days: i64) -> Vec<CostLine> {
    lines(GCP, today, days, "demo-prod")
}

/// OpenRouter spend (its activity) for the `days` days up to and including `today`: each line's
/// prompt tokens and a tenth as many completion tokens ([`crate::openrouter::tokens_of`]) at the
/// catalogue's rates.
pub fn openrouter_lines(today: NaiveDate, days: i64) -> Vec<CostLine> {
    use rust_decimal::prelude::ToPrimitive;
    let mut lines = lines(OPENROUTER, today, days, "ws-prototypes");
    for l in &mut lines {
        let model = l.model.clone().expect("every OpenRouter line names its model");
        let price = |prompt: i64| {
            priced("openrouter", &model, l.day, 0, prompt) + priced("openrouter", &model, l.day, 3, prompt / 10)
        };
        let prompt = (l.amount / price(1_000_000) * Decimal::from(1_000_000))
            .to_i64()
            .expect("a day's demo tokens fit in an i64");
        l.amount = price(prompt);
        l.quantity = Some(prompt);
    }
    lines
}

/// OpenAI usage matching [`openai_lines`] but for the missing hour.
pub fn openai_usage(today: NaiveDate, days: i64) -> Vec<crate::UsageLine> {
    billed("openai", OPENAI, today, days, "proj_support_bot").usage
}

/// Anthropic usage matching [`anthropic_lines`].
pub fn anthropic_usage(today: NaiveDate, days: i64) -> Vec<crate::UsageLine> {
    let mut usage = billed("anthropic", ANTHROPIC, today, days, "wrkspc_analytics").usage;
    usage.extend(unpriced_usage(today, days));
    usage
}

/// What Anthropic bills [`DEMO_UNPRICED_MODEL`] per million input and output tokens, in cents.
const UNPRICED_BILLED_AT: (i64, i64) = (400, 2_000);

/// [`DEMO_UNPRICED_MODEL`]'s tokens on the days it was tried.
fn unpriced_usage(today: NaiveDate, days: i64) -> Vec<crate::UsageLine> {
    (1..=planted::UNPRICED_MODEL_DAYS.min(days - 1))
        .map(|back| {
            let day = today - Duration::days(back);
            let input = 2_000_000 + 150_000 * back;
            crate::UsageLine {
                day,
                group: Some("wrkspc_analytics".into()),
                api_key: Some("key_demo_prod".into()),
                model: DEMO_UNPRICED_MODEL.into(),
                uncached: input,
                output: input / 4,
                requests: input / 2_500,
                ..Default::default()
            }
        })
        .collect()
}

/// Who the demo's applications call models for: (customer, feature, calls on a weekday).
const DEMO_CALLERS: &[(&str, &str, u64)] =
    &[("acme", "search", 12), ("acme", "chat", 5), ("globex", "chat", 8), ("initech", "summarize", 3)];

/// What the demo's applications report over OTLP for the `days` days up to and including
/// `today`: one export (OTLP/JSON) a day of chat calls to OpenAI's `gpt-4o-mini` and
/// Anthropic's `claude-haiku-4-5`, each naming its customer and feature. They explain part of
/// those models' bills, as an organization part-way through instrumenting its services would.
/// Ids are fixed per day and call, so sending them again stores nothing twice.
pub fn requests(today: NaiveDate, days: i64) -> Vec<serde_json::Value> {
    let mut exports = Vec::new();
    for back in (0..days).rev() {
        let day = today - Duration::days(back);
        let weekday = !matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        let noon = day.and_hms_opt(12, 0, 0).expect("noon").and_utc().timestamp_nanos_opt().expect("in range");
        let mut spans = Vec::new();
        for (c, (customer, feature, calls)) in DEMO_CALLERS.iter().enumerate() {
            let calls = if weekday { *calls } else { calls.div_ceil(3) };
            for call in 0..calls {
                let (provider, model) =
                    if call % 3 == 2 { ("anthropic", "claude-haiku-4-5") } else { ("openai", "gpt-4o-mini") };
                let start = noon + i64::try_from(call * 60 + c as u64).unwrap_or(0) * 1_000_000_000;
                let text = |k: &str, v: &str| serde_json::json!({ "key": k, "value": { "stringValue": v } });
                let int = |k: &str, v: u64| serde_json::json!({ "key": k, "value": { "intValue": v.to_string() } });
                spans.push(serde_json::json!({
                    "traceId": format!("{:016x}{:016x}", day.num_days_from_ce(), c),
                    "spanId": format!("{:016x}", call + 1),
                    "name": format!("chat {model}"),
                    "kind": 3,
                    "startTimeUnixNano": start.to_string(),
                    "endTimeUnixNano": (start + 900_000_000).to_string(),
                    "attributes": [
                        text("gen_ai.operation.name", "chat"),
                        text("gen_ai.provider.name", provider),
                        text("gen_ai.request.model", model),
                        int("gen_ai.usage.input_tokens", 40_000 + 1_000 * call),
                        int("gen_ai.usage.cache_read.input_tokens", 10_000),
                        int("gen_ai.usage.output_tokens", 2_000 + 100 * call),
                        text("burnrate.customer", customer),
                        text("burnrate.feature", feature),
                    ],
                }));
            }
        }
        exports.push(serde_json::json!({
            "resourceSpans": [{
                "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "assistant" } }] },
                "scopeSpans": [{ "scope": { "name": "burnrate-demo" }, "spans": spans }],
            }],
        }));
    }
    exports
}

//! Seeded spend for `burnrate demo`: about 90 days that look like a real team's — several
//! projects and models, busier weekdays, steady growth, and one spike worth an alert.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use rust_decimal::Decimal;

use crate::CostLine;

/// (group, item, model, dollars on an ordinary weekday at the start of the period)
type Line = (Option<&'static str>, &'static str, &'static str, i64);

const OPENAI: &[Line] = &[
    (Some("proj_support_bot"), "gpt-4o-2024-08-06, input", "gpt-4o-2024-08-06", 4_200),
    (Some("proj_support_bot"), "gpt-4o-2024-08-06, output", "gpt-4o-2024-08-06", 6_100),
    (Some("proj_support_bot"), "gpt-4o-mini, input", "gpt-4o-mini", 650),
    (Some("proj_search"), "text-embedding-3-large, input", "text-embedding-3-large", 1_150),
    (Some("proj_search"), "gpt-4o-mini, output", "gpt-4o-mini", 480),
    (Some("proj_internal_tools"), "o3-mini, input", "o3-mini", 900),
    (Some("proj_internal_tools"), "o3-mini, output", "o3-mini", 2_300),
];

const ANTHROPIC: &[Line] = &[
    (Some("wrkspc_analytics"), "Claude Sonnet 4 Usage - Input Tokens", "claude-sonnet-4-20250514", 3_300),
    (Some("wrkspc_analytics"), "Claude Sonnet 4 Usage - Output Tokens", "claude-sonnet-4-20250514", 5_800),
    (None, "Claude Haiku 4.5 Usage - Input Tokens", "claude-haiku-4-5", 700),
    (None, "Claude Haiku 4.5 Usage - Output Tokens", "claude-haiku-4-5", 1_250),
    (Some("wrkspc_analytics"), "Web Search Usage", "claude-sonnet-4-20250514", 300),
];

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

fn lines(table: &[Line], today: NaiveDate, days: i64, spike_group: &str) -> Vec<CostLine> {
    let mut out = Vec::new();
    for back in 0..days {
        let day = today - Duration::days(back);
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        // About 0.6 % growth a day over the period.
        let growth = Decimal::ONE + Decimal::new(6 * (days - back), 3);
        for (i, (group, item, model, cents)) in table.iter().enumerate() {
            let mut amount = Decimal::new(*cents, 2) * growth * jitter(day, i);
            if weekend {
                amount *= Decimal::new(35, 2);
            }
            if back == 18 && *group == Some(spike_group) {
                amount *= Decimal::from(4);
            }
            // Today is not over: a part of the day so far.
            if back == 0 {
                amount *= Decimal::new(40, 2);
            }
            out.push(CostLine {
                day,
                group: group.map(str::to_owned),
                item: (*item).into(),
                model: Some((*model).into()),
                amount: amount.round_dp(6),
                account: None,
            });
        }
    }
    out
}

/// OpenAI spend for the `days` days up to and including `today`.
pub fn openai_lines(today: NaiveDate, days: i64) -> Vec<CostLine> {
    lines(OPENAI, today, days, "proj_support_bot")
}

/// Anthropic spend for the `days` days up to and including `today`.
pub fn anthropic_lines(today: NaiveDate, days: i64) -> Vec<CostLine> {
    lines(ANTHROPIC, today, days, "wrkspc_analytics")
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

/// OpenRouter spend (its activity) for the `days` days up to and including `today`.
pub fn openrouter_lines(today: NaiveDate, days: i64) -> Vec<CostLine> {
    lines(OPENROUTER, today, days, "ws-prototypes")
}

/// Token usage consistent with the seeded spend: about a token per 0.0001 dollars of each line's
/// model, split into the usual shares of cached input, cache writes and output.
fn usage_from(costs: &[CostLine]) -> Vec<crate::UsageLine> {
    use rust_decimal::prelude::ToPrimitive;
    let mut by_key: std::collections::BTreeMap<(NaiveDate, Option<String>, String), Decimal> = Default::default();
    for c in costs {
        *by_key.entry((c.day, c.group.clone(), c.model.clone().unwrap_or_default())).or_default() += c.amount;
    }
    by_key
        .into_iter()
        .map(|((day, group, model), dollars)| {
            let total = (dollars * Decimal::from(10_000)).to_i64().unwrap_or(0);
            crate::UsageLine {
                endpoint: String::new(),
                units: 0,
                day,
                group,
                api_key: Some("key_demo_prod".into()),
                model,
                uncached: total * 55 / 100,
                cached: total * 20 / 100,
                cache_write: total * 5 / 100,
                output: total * 20 / 100,
                requests: (total / 2_500).max(1),
                web_searches: 0,
            }
        })
        .collect()
}

/// OpenAI usage matching [`openai_lines`].
pub fn openai_usage(today: NaiveDate, days: i64) -> Vec<crate::UsageLine> {
    usage_from(&openai_lines(today, days))
}

/// Anthropic usage matching [`anthropic_lines`].
pub fn anthropic_usage(today: NaiveDate, days: i64) -> Vec<crate::UsageLine> {
    usage_from(&anthropic_lines(today, days))
}

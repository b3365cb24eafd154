//! One model call as an application reported it: an OpenTelemetry GenAI span, reduced to what
//! spend needs — who and what it was for, the model, its token classes — and nothing it said.
//! Prompt and completion content never reaches this type (S26).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// A span's identity: its trace id and span id, as OTLP carries them. An exporter that retries
/// sends the same key, so a request is stored once per key.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanKey {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

impl fmt::Debug for SpanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for SpanKey {
    /// Both ids in lowercase hex, as OTLP/JSON and every trace viewer show them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.trace_id {
            write!(f, "{b:02x}")?;
        }
        f.write_str("/")?;
        for b in self.span_id {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// One request to a model. The input classes are disjoint, as in [`crate::UsageRecord`]:
/// uncached + cache read + cache write is all input, whatever the instrumentation counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestRecord {
    pub key: SpanKey,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// `gen_ai.operation.name`: `chat`, `embeddings`, `text_completion`, …
    pub operation: Option<String>,
    /// The provider as the instrumentation named it (`gen_ai.provider.name`, else `gen_ai.system`).
    pub gen_ai_provider: Option<String>,
    /// The provider as burnrate's cost lines name it (FOCUS `ProviderName`), when it is one
    /// burnrate connects to: what attribution joins on.
    pub provider: Option<String>,
    pub request_model: Option<String>,
    /// The model that answered; the request's model when the answer did not say.
    pub model: Option<String>,
    pub input_uncached_tokens: i64,
    pub input_cached_tokens: i64,
    pub input_cache_write_tokens: i64,
    pub output_tokens: i64,
    /// The part of `output_tokens` spent reasoning, where reported.
    pub reasoning_tokens: i64,
    pub customer: Option<String>,
    pub feature: Option<String>,
    pub team: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub conversation_id: Option<String>,
    pub agent: Option<String>,
    /// The resource's `service.name`.
    pub service: Option<String>,
    /// Attributes the organization promoted to tags.
    pub tags: BTreeMap<String, String>,
    /// What the request costs at the price book's rates in force when it started, in US dollars;
    /// `None` when nothing prices its model.
    pub computed_cost: Option<Decimal>,
    /// The rates that priced it, as in [`crate::UsageRecord::price_ref`].
    pub price_ref: Option<std::sync::Arc<str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_key_reads_as_its_ids_in_hex() {
        let key = SpanKey { trace_id: [0xab; 16], span_id: [1, 2, 3, 4, 5, 6, 7, 0xff] };
        assert_eq!(key.to_string(), format!("{}/01020304050607ff", "ab".repeat(16)));
    }
}

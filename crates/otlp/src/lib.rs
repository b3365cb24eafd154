//! OTLP/HTTP trace exports, read into [`RequestRecord`]s.
//!
//! ```text
//!   body (protobuf | JSON, gzip or not) ──decode──▶ ExportTraceServiceRequest
//!        ──read──▶ one RequestRecord per model-call span  + what was rejected, skipped, dropped
//! ```
//!
//! This crate owns the OpenTelemetry GenAI conventions in all the spellings instrumentations
//! send (the current conventions, their older names, OpenLIT's and Traceloop's), and turns
//! overlapping token counts into the disjoint classes burnrate stores. It must never let
//! content through: a record has no field for a prompt or a completion, and nothing here puts
//! an attribute's value into an error message — a malformed body is reported by position and
//! kind only, since what is malformed may be someone's prompt (S26).

mod attributes;
mod decode;

pub use attributes::{AttributeName, TagAttributes, content_attribute};
pub use decode::{Body, DecodeError, Encoding, MAX_BODY_BYTES, decode, encode_response};
/// OTLP's generated messages, for those who build exports (tests, benchmarks, the demo).
pub use opentelemetry_proto::tonic as proto;
pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use burnrate_core::{RequestRecord, SpanKey};
use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;

use attributes::{Attributes, Slot};

/// What an export held.
#[derive(Debug, Default)]
pub struct Reading {
    /// One per model-call span, each key once (a span repeated in the export counts once).
    pub records: Vec<RequestRecord>,
    /// Model-call spans refused, and why (the first few reasons, without values).
    pub rejected: Vec<String>,
    pub rejected_spans: usize,
    /// Spans that are not model calls (no `gen_ai.` attribute): the application's other
    /// spans, which an exporter sends along. Not stored.
    pub other_spans: usize,
    /// Content attributes and events (prompts, completions, instructions) seen and dropped.
    pub content_dropped: usize,
}

/// Reasons kept for the answer: enough to fix an exporter, not a copy of the export.
const REASONS_KEPT: usize = 5;

impl Reading {
    fn reject(&mut self, reason: String) {
        self.rejected_spans += 1;
        if self.rejected.len() < REASONS_KEPT && !self.rejected.contains(&reason) {
            self.rejected.push(reason);
        }
    }

    /// The answer's `partial_success`: spans rejected and why; with none rejected, a warning
    /// of what was not stored (the spec's way to say so), or nothing.
    pub fn partial_success(&self) -> Option<ExportTracePartialSuccess> {
        let mut notes = self.rejected.clone();
        if self.content_dropped > 0 {
            notes.push(format!(
                "{} prompt or completion content attribute(s) or event(s) dropped: burnrate never stores content",
                self.content_dropped
            ));
        }
        if self.other_spans > 0 {
            notes.push(format!(
                "{} span(s) without gen_ai attributes are not model calls and were not stored",
                self.other_spans
            ));
        }
        (!notes.is_empty()).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(self.rejected_spans).unwrap_or(i64::MAX),
            error_message: notes.join("; "),
        })
    }
}

/// Reads every span of `request`; `tags` names the attributes the organization promoted.
pub fn read(request: &ExportTraceServiceRequest, tags: &TagAttributes) -> Reading {
    let mut reading = Reading::default();
    let mut seen = std::collections::HashSet::new();
    for resource_spans in &request.resource_spans {
        let resource: &[KeyValue] = resource_spans.resource.as_ref().map_or(&[], |r| &r.attributes);
        let resource = Attributes::new(resource);
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                let attributes = Attributes::new(&span.attributes);
                reading.content_dropped +=
                    attributes.content_count() + span.events.iter().filter(|e| attributes::content_event(e)).count();
                if !attributes.is_model_call() {
                    reading.other_spans += 1;
                    continue;
                }
                match request_of(span, &attributes, &resource, tags) {
                    Ok(record) => {
                        if seen.insert(record.key) {
                            reading.records.push(record);
                        }
                    }
                    Err(reason) => reading.reject(reason),
                }
            }
        }
    }
    reading
}

/// The burnrate provider (source kind) of an instrumentation's provider name, when it is one
/// burnrate connects to: the name prices and cost lines are found by.
pub fn source_kind(gen_ai_provider: &str) -> Option<&'static str> {
    Some(match gen_ai_provider.to_ascii_lowercase().as_str() {
        "openai" => "openai",
        "anthropic" => "anthropic",
        "aws.bedrock" | "aws_bedrock" | "bedrock" => "aws",
        "azure.ai.openai" | "az.ai.openai" | "azure.ai.inference" | "az.ai.inference" | "azure_openai" => "azure",
        "gcp.vertex_ai" | "gcp.gemini" | "gcp.gen_ai" | "vertex_ai" | "vertexai" | "gemini" | "google" => "gcp",
        "openrouter" => "openrouter",
        _ => return None,
    })
}

fn request_of(
    span: &Span,
    attributes: &Attributes<'_>,
    resource: &Attributes<'_>,
    tags: &TagAttributes,
) -> Result<RequestRecord, String> {
    let key = span_key(span)?;
    let started_at = time(span.start_time_unix_nano).ok_or_else(|| format!("span {key}: no start time"))?;
    let ended_at = time(span.end_time_unix_nano).unwrap_or(started_at);
    let count = |slot: Slot| -> Result<i64, String> {
        match attributes.count(slot) {
            Ok(n) => Ok(n.unwrap_or(0)),
            Err(name) => Err(format!("span {key}: {name} is not a count of tokens")),
        }
    };
    let input = count(Slot::Input)?;
    let cache_read = count(Slot::CacheRead)?;
    let cache_write = count(Slot::CacheWrite)?;
    let output = count(Slot::Output)?;
    let reasoning = count(Slot::Reasoning)?;
    // The current conventions count cached input within input tokens; some instrumentations
    // report input without it (as Anthropic's API does). Stored classes are disjoint: what
    // input cannot hold besides the cached tokens was counted apart from them.
    let cached = cache_read.saturating_add(cache_write);
    let uncached = if input >= cached { input - cached } else { input };
    // Either side of the span may say who it was for; the span's own word wins. Baggage that a
    // `BaggageSpanProcessor` copied arrives as span attributes.
    let said = |slot: Slot| attributes.text(slot).or_else(|| resource.text(slot));
    let request_model = attributes.text(Slot::RequestModel);
    let gen_ai_provider = attributes.text(Slot::Provider).map(|p| p.to_ascii_lowercase());
    Ok(RequestRecord {
        key,
        started_at,
        ended_at,
        operation: attributes.text(Slot::Operation),
        model: attributes.text(Slot::ResponseModel).or_else(|| request_model.clone()),
        request_model,
        provider: None,
        gen_ai_provider,
        input_uncached_tokens: uncached,
        input_cached_tokens: cache_read,
        input_cache_write_tokens: cache_write,
        output_tokens: output,
        reasoning_tokens: reasoning,
        customer: said(Slot::Customer),
        feature: said(Slot::Feature),
        team: said(Slot::Team),
        user_id: said(Slot::User),
        session_id: said(Slot::Session),
        conversation_id: said(Slot::Conversation),
        agent: said(Slot::Agent),
        service: resource.text(Slot::Service).or_else(|| attributes.text(Slot::Service)),
        tags: tags.of(attributes, resource),
        computed_cost: None,
        price_ref: None,
    })
}

fn span_key(span: &Span) -> Result<SpanKey, String> {
    let trace_id: [u8; 16] = span
        .trace_id
        .as_slice()
        .try_into()
        .map_err(|_| format!("a span's trace id has {} bytes, not 16", span.trace_id.len()))?;
    let span_id: [u8; 8] = span
        .span_id
        .as_slice()
        .try_into()
        .map_err(|_| format!("a span's span id has {} bytes, not 8", span.span_id.len()))?;
    // All zeroes is the spec's invalid id.
    if trace_id == [0; 16] || span_id == [0; 8] {
        return Err("a span's trace or span id is all zeroes (invalid)".into());
    }
    Ok(SpanKey { trace_id, span_id })
}

/// A span time: nanoseconds since the epoch, zero meaning unset.
fn time(nanos: u64) -> Option<DateTime<Utc>> {
    let nanos = i64::try_from(nanos).ok().filter(|n| *n > 0)?;
    Some(DateTime::from_timestamp_nanos(nanos))
}

#[cfg(test)]
mod tests;

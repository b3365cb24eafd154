//! The attributes a span carries, found in one pass: each name burnrate reads maps to a slot,
//! and where several spellings of one thing are present the conventions' current name wins.
//!
//! Spellings: the OpenTelemetry GenAI conventions as they stand (`gen_ai.provider.name`,
//! `gen_ai.usage.cache_read.input_tokens`), their older names (`gen_ai.system`,
//! `gen_ai.usage.prompt_tokens`), OpenLIT's (`gen_ai.usage.cache_read_input_tokens`) and
//! Traceloop's (`llm.request.type`, `llm.usage.*`).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::Event;

/// What burnrate reads from a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Operation,
    Provider,
    RequestModel,
    ResponseModel,
    Input,
    Output,
    CacheRead,
    CacheWrite,
    Reasoning,
    Customer,
    Feature,
    Team,
    User,
    Session,
    Conversation,
    Agent,
    Service,
}

const SLOTS: usize = Slot::Service as usize + 1;

/// The slot of an attribute name and its rank among the slot's spellings (0 wins).
fn slot(key: &str) -> Option<(Slot, u8)> {
    use Slot::*;
    Some(match key {
        "gen_ai.operation.name" => (Operation, 0),
        "llm.request.type" => (Operation, 1),
        "gen_ai.provider.name" => (Provider, 0),
        "gen_ai.system" => (Provider, 1),
        "gen_ai.request.model" => (RequestModel, 0),
        "gen_ai.response.model" => (ResponseModel, 0),
        "gen_ai.usage.input_tokens" => (Input, 0),
        "gen_ai.usage.prompt_tokens" => (Input, 1),
        "llm.usage.prompt_tokens" => (Input, 2),
        "gen_ai.usage.output_tokens" => (Output, 0),
        "gen_ai.usage.completion_tokens" => (Output, 1),
        "llm.usage.completion_tokens" => (Output, 2),
        "gen_ai.usage.cache_read.input_tokens" => (CacheRead, 0),
        "gen_ai.usage.cache_read_input_tokens" => (CacheRead, 1),
        "gen_ai.usage.cache_write.input_tokens" => (CacheWrite, 0),
        "gen_ai.usage.cache_creation.input_tokens" => (CacheWrite, 1),
        "gen_ai.usage.cache_creation_input_tokens" => (CacheWrite, 2),
        "gen_ai.usage.cache_write_input_tokens" => (CacheWrite, 3),
        "gen_ai.usage.reasoning.output_tokens" => (Reasoning, 0),
        "gen_ai.usage.reasoning_tokens" => (Reasoning, 1),
        "burnrate.customer" => (Customer, 0),
        "burnrate.feature" => (Feature, 0),
        "burnrate.team" => (Team, 0),
        "user.id" => (User, 0),
        "enduser.id" => (User, 1),
        "session.id" => (Session, 0),
        "gen_ai.conversation.id" => (Conversation, 0),
        "gen_ai.agent.name" => (Agent, 0),
        "service.name" => (Service, 0),
        _ => return None,
    })
}

/// Whether an attribute carries what was said to or by a model: prompts, completions, system
/// instructions, tool arguments and results. Never stored, and never promoted to a tag.
pub fn content_attribute(key: &str) -> bool {
    const CONTENT: &[&str] = &[
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.content.",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.tool.definitions",
        "llm.prompts",
        "llm.completions",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "input.value",
        "output.value",
    ];
    CONTENT.iter().any(|c| key.starts_with(c))
}

/// Whether a span event carries content: the GenAI message events (`gen_ai.user.message`,
/// `gen_ai.choice`, `gen_ai.content.prompt`, …) or any event with a content attribute.
pub(crate) fn content_event(event: &Event) -> bool {
    event.name.starts_with("gen_ai.") || event.attributes.iter().any(|a| content_attribute(&a.key))
}

/// Operations that are not a call to a model: an agent's or a tool's span may repeat the token
/// counts of the model calls beneath it, which would count them twice.
const NOT_MODEL_CALLS: &[&str] = &["invoke_agent", "create_agent", "execute_tool", "workflow", "agent", "tool", "task"];

/// One span's (or resource's) attributes, found once.
pub(crate) struct Attributes<'a> {
    found: [Option<(u8, &'a KeyValue)>; SLOTS],
    all: &'a [KeyValue],
    content: usize,
}

impl<'a> Attributes<'a> {
    pub(crate) fn new(all: &'a [KeyValue]) -> Self {
        let mut found = [None; SLOTS];
        let mut content = 0;
        for kv in all {
            match slot(&kv.key) {
                Some((slot, rank)) => {
                    let place: &mut Option<(u8, &KeyValue)> = &mut found[slot as usize];
                    if place.is_none_or(|(r, _)| rank < r) {
                        *place = Some((rank, kv));
                    }
                }
                None if content_attribute(&kv.key) => content += 1,
                None => {}
            }
        }
        Self { found, all, content }
    }

    pub(crate) fn content_count(&self) -> usize {
        self.content
    }

    fn get(&self, slot: Slot) -> Option<&'a KeyValue> {
        self.found[slot as usize].map(|(_, kv)| kv)
    }

    /// A model call: a model or a token count, and not an agent's or a tool's span.
    pub(crate) fn is_model_call(&self) -> bool {
        use Slot::*;
        let calls = [RequestModel, ResponseModel, Input, Output].iter().any(|s| self.get(*s).is_some());
        let operation = self.text(Slot::Operation);
        calls && !operation.is_some_and(|o| NOT_MODEL_CALLS.contains(&o.to_ascii_lowercase().as_str()))
    }

    /// The slot's value as text: strings as they are, numbers and booleans written out; `None`
    /// when absent or empty.
    pub(crate) fn text(&self, slot: Slot) -> Option<String> {
        self.get(slot).and_then(|kv| text_of(kv.value.as_ref()?)).filter(|s| !s.is_empty())
    }

    /// The slot's value as a count: an integer, an integral double or a decimal string, not
    /// negative; `Err` names the attribute (never its value) when it is none of these.
    pub(crate) fn count(&self, slot: Slot) -> Result<Option<i64>, &'a str> {
        let Some(kv) = self.get(slot) else { return Ok(None) };
        let n = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            None => return Ok(None),
            Some(Value::IntValue(n)) => Some(*n),
            Some(Value::DoubleValue(d)) if d.fract() == 0.0 && d.abs() < 9.0e15 => Some(*d as i64),
            Some(Value::StringValue(s)) => s.trim().parse::<i64>().ok(),
            Some(_) => None,
        };
        match n {
            Some(n) if n >= 0 => Ok(Some(n)),
            _ => Err(kv.key.as_str()),
        }
    }

    pub(crate) fn all(&self) -> &'a [KeyValue] {
        self.all
    }
}

/// A scalar value written out; arrays and maps are not one value.
fn text_of(value: &AnyValue) -> Option<String> {
    Some(match value.value.as_ref()? {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(n) => n.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        Value::BoolValue(b) => b.to_string(),
        // A string-table index (profiles only) names no string here.
        Value::ArrayValue(_) | Value::KvlistValue(_) | Value::BytesValue(_) | Value::StringValueStrindex(_) => {
            return None;
        }
    })
}

/// The longest attribute name and value kept as a tag.
const TAG_NAME_MAX: usize = 128;
const TAG_VALUE_MAX: usize = 256;

/// An attribute name an organization may promote to a tag: 1 to 128 characters of letters,
/// digits, `.`, `_`, `-` and `/`, and not one that carries content.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttributeName(String);

impl AttributeName {
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
        if name.is_empty() || name.len() > TAG_NAME_MAX || !name.chars().all(ok) {
            return Err(format!(
                "{name:?} is not an attribute name (1 to {TAG_NAME_MAX} letters, digits, '.', '_', '-', '/')"
            ));
        }
        if content_attribute(name) {
            return Err(format!("{name} carries prompt or completion content, which burnrate never stores"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The attributes an organization promotes to tags of its requests.
#[derive(Clone, Debug, Default)]
pub struct TagAttributes(Vec<AttributeName>);

impl TagAttributes {
    pub fn new(names: Vec<AttributeName>) -> Self {
        Self(names)
    }

    /// The promoted attributes of a span, else of its resource; values cut to a bounded length.
    pub(crate) fn of(&self, span: &Attributes<'_>, resource: &Attributes<'_>) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        if self.0.is_empty() {
            return tags;
        }
        for kv in resource.all().iter().chain(span.all()) {
            if self.0.iter().any(|n| n.as_str() == kv.key)
                && let Some(value) = kv.value.as_ref().and_then(text_of)
            {
                let value: String = value.chars().take(TAG_VALUE_MAX).collect();
                // The span's own value, read after the resource's, wins.
                tags.insert(kv.key.clone(), value);
            }
        }
        tags
    }
}

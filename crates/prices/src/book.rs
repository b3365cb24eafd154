//! The price book a sync prices usage with: the instance's catalogue, and how a usage record of
//! a source reads as catalogue usage (its classes, its context, its provider).

use std::sync::Arc;

use burnrate_core::UsageRecord;

use crate::{Catalogue, Context, Tiering, Usage};

/// Counters a usage record may carry that pricing reads or that cost nothing apart; any other
/// (images, seconds, characters) leaves the record unpriced rather than priced without it.
const PRICED_EXTRAS: &[&str] = &["batch", "web_search_requests", "reasoning_tokens"];

/// Prices usage records.
#[derive(Clone, Debug)]
pub struct PriceBook {
    catalogue: Option<Arc<Catalogue>>,
}

impl PriceBook {
    pub fn new(catalogue: Arc<Catalogue>) -> Self {
        Self { catalogue: Some(catalogue) }
    }

    /// The shipped catalogue's book; one that prices nothing if the snapshot does not load
    /// (the server refuses to start then, see `Catalogue::shipped`).
    pub fn shipped() -> Self {
        Self { catalogue: Catalogue::shipped().ok() }
    }

    pub fn catalogue(&self) -> Option<&Catalogue> {
        self.catalogue.as_deref()
    }

    /// Sets `record`'s computed cost and the rates it came from, at the rates in force at its
    /// bucket's start; leaves both `None` (unpriced) when no rate prices it.
    pub fn price(&self, source_kind: &str, record: &mut UsageRecord) {
        (record.computed_cost, record.price_ref) = match self.priced(source_kind, record) {
            Some((cost, reference)) => (Some(cost), Some(reference)),
            None => (None, None),
        };
    }

    fn priced(&self, source_kind: &str, record: &UsageRecord) -> Option<(rust_decimal::Decimal, String)> {
        let catalogue = self.catalogue.as_deref()?;
        let model = record.model.as_deref()?;
        if record.extra.keys().any(|k| !PRICED_EXTRAS.contains(&k.as_str())) {
            return None;
        }
        let provider = catalogue.provider(catalogue_provider(source_kind)?)?;
        let found = catalogue.find(provider, model)?;
        let usage = usage_of(record)?;
        let priced = catalogue
            .price(&found, record.bucket_start, &context_of(source_kind, record), &usage, Tiering::Aggregate)
            .ok()?;
        let tier = if priced.at_base_tier { ", base tier" } else { "" };
        let reference =
            format!("{} {} {}/{}{tier}", catalogue.source, catalogue.version, found.provider.id, found.model.id);
        // Token rates divided by a million keep far fewer decimals than this; the lake holds 18.
        Some((priced.cost.round_dp(18).normalize(), reference))
    }
}

/// The catalogue's provider of a source kind.
fn catalogue_provider(source_kind: &str) -> Option<&'static str> {
    Some(match source_kind {
        "openai" => "openai",
        "anthropic" => "anthropic",
        "aws" => "aws",
        "azure" => "azure",
        "gcp" => "google",
        "openrouter" => "openrouter",
        _ => return None,
    })
}

/// A record's classes as the catalogue counts them: each input class within all input.
fn usage_of(r: &UsageRecord) -> Option<Usage> {
    let n = |v: i64| u64::try_from(v).ok();
    let (uncached, cached, write, write_1h) = (
        n(r.input_uncached_tokens)?,
        n(r.input_cached_tokens)?,
        n(r.input_cache_write_tokens)?,
        n(r.input_cache_write_1h_tokens)?,
    );
    Some(
        Usage::new()
            .with("input_tokens", uncached.checked_add(cached)?.checked_add(write)?)
            .with("cache_read_tokens", cached)
            .with("cache_write_tokens", write)
            .with("cache_write_1h_tokens", write_1h.min(write))
            .with("output_tokens", n(r.output_tokens)?)
            .with("web_searches", n(r.extra.get("web_search_requests").copied().unwrap_or(0))?),
    )
}

/// What a record's requests were sent as: batch, or a service tier with rates of its own.
fn context_of(source_kind: &str, r: &UsageRecord) -> Context {
    let mut context = Context::new();
    if r.extra.get("batch") == Some(&1) {
        context.insert("processing".into(), "batch".into());
    }
    match (source_kind, r.service_tier.as_deref()) {
        (_, None) => {}
        // Anthropic names batch a tier, and its standard tier is the default rates.
        ("anthropic", Some("batch")) => {
            context.insert("processing".into(), "batch".into());
        }
        ("anthropic", Some("standard")) => {}
        (_, Some(tier)) => {
            context.insert("service_tier".into(), tier.into());
        }
    }
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(model: &str, tier: Option<&str>) -> UsageRecord {
        UsageRecord {
            bucket_start: "2026-11-03T00:00:00Z".parse().unwrap(),
            bucket_end: "2026-11-04T00:00:00Z".parse().unwrap(),
            provider_name: "Anthropic".into(),
            usage_type: "messages".into(),
            model: Some(model.into()),
            service_tier: tier.map(Into::into),
            input_uncached_tokens: 1_000_000,
            input_cached_tokens: 2_000_000,
            input_cache_write_tokens: 300_000,
            input_cache_write_1h_tokens: 100_000,
            output_tokens: 50_000,
            ..Default::default()
        }
    }

    #[test]
    fn a_record_is_priced_by_its_classes_tier_and_batch_or_left_unpriced() {
        let book = PriceBook::shipped();
        let mut r = record("claude-sonnet-4-5", None);
        book.price("anthropic", &mut r);
        // $3 input, $0.30 cache read, $3.75 five-minute and $6 one-hour writes, $15 output per MTok.
        assert_eq!(r.computed_cost.unwrap().to_string(), "5.7");
        assert_eq!(r.price_ref.as_deref(), Some("genai-prices 0.2.3 anthropic/claude-sonnet-4-5, base tier"));
        let mut batch = record("claude-sonnet-4-5", Some("batch"));
        book.price("anthropic", &mut batch);
        assert_eq!(batch.computed_cost.unwrap().to_string(), "2.85", "half price in a batch");
        for (kind, model, extra) in [
            ("anthropic", "claude-from-the-future", None),
            ("anthropic", "claude-sonnet-4-5", Some("images")),
            ("nothing", "claude-sonnet-4-5", None),
        ] {
            let mut r = record(model, None);
            if let Some(extra) = extra {
                r.extra.insert(extra.into(), 3);
            }
            r.computed_cost = Some(rust_decimal::Decimal::ONE);
            book.price(kind, &mut r);
            assert_eq!((r.computed_cost, r.price_ref), (None, None), "{kind} {model} {extra:?}: unpriced, not zero");
        }
    }
}

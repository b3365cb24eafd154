//! The price book a sync prices usage with: the instance's catalogue, and how a usage record of
//! a source reads as catalogue usage (its classes, its context, its provider).

use std::collections::BTreeMap;
use std::sync::Arc;

use burnrate_core::UsageRecord;
use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::{Catalogue, Context, Tiering, Usage};

/// Counters a usage record may carry that pricing reads or that cost nothing apart; any other
/// (images, seconds, characters) leaves the record unpriced rather than priced without it.
const PRICED_EXTRAS: &[&str] = &["batch", "web_search_requests", "reasoning_tokens"];

/// An organization's own price for one provider's model over some days, winning over the
/// catalogue's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub id: String,
    /// The catalogue's provider id (`anthropic`, `openai`, `google`, …).
    pub provider: String,
    /// The model as usage names it, compared without regard to case.
    pub model: String,
    pub from: NaiveDate,
    /// The last day it holds; open-ended when `None`.
    pub through: Option<NaiveDate>,
    pub adjustment: Adjustment,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adjustment {
    /// Percent off the catalogue's price (0 < p ≤ 100).
    Discount(Decimal),
    /// Rates by price key (`input_mtok`, …) in place of the catalogue's; a model the catalogue
    /// lacks is priced by these alone.
    Rates(BTreeMap<String, Decimal>),
}

impl Override {
    fn holds(&self, provider: &str, model: &str, day: NaiveDate) -> bool {
        self.provider == provider
            && self.model.eq_ignore_ascii_case(model)
            && self.from <= day
            && self.through.is_none_or(|t| day <= t)
    }
}

/// Prices usage records.
#[derive(Clone, Debug)]
pub struct PriceBook {
    catalogue: Option<Arc<Catalogue>>,
    /// The organization's, oldest first: the newest that holds wins.
    overrides: Vec<Override>,
}

impl PriceBook {
    pub fn new(catalogue: Arc<Catalogue>) -> Self {
        Self { catalogue: Some(catalogue), overrides: Vec::new() }
    }

    /// The shipped catalogue's book; one that prices nothing if the snapshot does not load
    /// (the server refuses to start then, see `Catalogue::shipped`).
    pub fn shipped() -> Self {
        Self { catalogue: Catalogue::shipped().ok(), overrides: Vec::new() }
    }

    /// The same book with an organization's own prices.
    #[must_use]
    pub fn with_overrides(mut self, overrides: Vec<Override>) -> Self {
        self.overrides = overrides;
        self
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

    fn priced(&self, source_kind: &str, record: &UsageRecord) -> Option<(Decimal, String)> {
        let catalogue = self.catalogue.as_deref()?;
        let model = record.model.as_deref()?;
        if record.extra.keys().any(|k| !PRICED_EXTRAS.contains(&k.as_str())) {
            return None;
        }
        let provider = catalogue.provider(catalogue_provider(source_kind)?)?;
        let found = catalogue.find(provider, model);
        let usage = usage_of(record)?;
        let context = context_of(source_kind, record);
        let day = record.bucket_start.date_naive();
        let own = self.overrides.iter().rev().find(|o| o.holds(&provider.id, model, day));
        let catalogue_rates = found.map(|f| f.rates(record.bucket_start, &context));
        let rates = match (own.map(|o| &o.adjustment), catalogue_rates) {
            (Some(Adjustment::Rates(replacing)), rates) => rates.unwrap_or_default().with(replacing),
            (_, Some(rates)) => rates,
            (_, None) => return None,
        };
        // A class no rate prices would count as free: the record stays unpriced instead.
        if rates.unpriced_class(catalogue.units(), &usage).is_some() {
            return None;
        }
        let priced = catalogue.cost(&rates, &usage, Tiering::Aggregate).ok()?;
        let mut cost = priced.cost;
        let mut reference = match found {
            Some(f) => format!("{} {} {}/{}", catalogue.source, catalogue.version, f.provider.id, f.model.id),
            None => format!("{}/{model}", provider.id),
        };
        match own {
            Some(Override { id, adjustment: Adjustment::Discount(percent), .. }) => {
                cost = cost * (Decimal::ONE_HUNDRED - percent) / Decimal::ONE_HUNDRED;
                reference.push_str(&format!(", override {id}: {percent}% off"));
            }
            Some(Override { id, .. }) => reference.push_str(&format!(", override {id}: own rates")),
            None => {}
        }
        if priced.at_base_tier {
            reference.push_str(", base tier");
        }
        // Token rates divided by a million keep far fewer decimals than this; the lake holds 18.
        Some((cost.round_dp(18).normalize(), reference))
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
    fn an_organizations_own_prices_win_in_their_days_and_price_what_the_catalogue_lacks() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let own = |id: &str, model: &str, from, through, adjustment| Override {
            id: id.into(),
            provider: "anthropic".into(),
            model: model.into(),
            from,
            through,
            adjustment,
        };
        let rates = |pairs: &[(&str, &str)]| {
            Adjustment::Rates(pairs.iter().map(|(k, v)| (k.to_string(), v.parse().unwrap())).collect())
        };
        let book = PriceBook::shipped().with_overrides(vec![
            own("a", "Claude-Sonnet-4-5", day(3), Some(day(3)), Adjustment::Discount(Decimal::from(20))),
            own("b", "claude-sonnet-4-5", day(4), None, rates(&[("input_mtok", "2")])),
            own("c", "claude-from-the-future", day(1), None, rates(&[("input_mtok", "1"), ("output_mtok", "5")])),
            own("d", "claude-half-priced", day(1), None, rates(&[("output_mtok", "5")])),
        ]);
        let priced = |model: &str, d: u32| {
            let mut r = record(model, None);
            r.bucket_start = day(d).and_hms_opt(0, 0, 0).unwrap().and_utc();
            book.price("anthropic", &mut r);
            (r.computed_cost.map(|c| c.to_string()), r.price_ref)
        };
        // Before any override: the catalogue ($5.70, as above); on the 3rd 20% off it.
        assert_eq!(priced("claude-sonnet-4-5", 2).0.as_deref(), Some("5.7"));
        let (cost, reference) = priced("claude-sonnet-4-5", 3);
        assert_eq!(cost.as_deref(), Some("4.56"));
        assert!(reference.unwrap().ends_with(", override a: 20% off, base tier"));
        // From the 4th, its own input rate ($2 instead of $3 a million): $1 less.
        assert_eq!(priced("claude-sonnet-4-5", 4).0.as_deref(), Some("4.7"));
        // A model the catalogue lacks, priced by its own rates: cache reads and writes at the
        // input rate, which prices them as part of input.
        let (cost, reference) = priced("claude-from-the-future", 9);
        assert_eq!(cost.as_deref(), Some("3.55"));
        assert_eq!(reference.as_deref(), Some("anthropic/claude-from-the-future, override c: own rates"));
        // Rates that leave input unpriced would count it free: unpriced instead.
        assert_eq!(priced("claude-half-priced", 9), (None, None));
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

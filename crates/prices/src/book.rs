//! The price book a sync prices usage with: the instance's catalogue, and how a usage record of
//! a source reads as catalogue usage (its classes, its context, its provider).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use burnrate_core::UsageRecord;
use chrono::NaiveDate;
use hashbrown::HashMap;
use rust_decimal::Decimal;
use rustc_hash::FxBuildHasher;

use crate::{Catalogue, Context, Rates, Tiering, Usage};

/// Counters a usage record may carry that pricing reads or that cost nothing apart.
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
    /// Terms resolved so far, by [`TermsKey`]: a sync prices page after page of the same few
    /// models and hours, and resolving them costs far more than pricing a record.
    resolved: Arc<Mutex<Resolved>>,
}

/// Terms key → the terms (`None`: unpriced).
type Resolved = HashMap<OwnedTermsKey, Option<Arc<Terms>>, FxBuildHasher>;

/// Terms remembered before the memory is cleared (a few hundred bytes each): a backfill's
/// hours of a few dozen models.
const RESOLVED_TERMS: usize = 100_000;

impl PriceBook {
    pub fn new(catalogue: Arc<Catalogue>) -> Self {
        Self { catalogue: Some(catalogue), overrides: Vec::new(), resolved: Arc::default() }
    }

    /// The shipped catalogue's book; one that prices nothing if the snapshot does not load
    /// (the server refuses to start then, see `Catalogue::shipped`).
    pub fn shipped() -> Self {
        Self { catalogue: Catalogue::shipped().ok(), overrides: Vec::new(), resolved: Arc::default() }
    }

    /// The same book with an organization's own prices.
    #[must_use]
    pub fn with_overrides(mut self, overrides: Vec<Override>) -> Self {
        self.overrides = overrides;
        // Terms resolved without them no longer hold.
        self.resolved = Arc::default();
        self
    }

    pub fn catalogue(&self) -> Option<&Catalogue> {
        self.catalogue.as_deref()
    }

    /// Sets `record`'s computed cost and the rates it came from, at the rates in force at its
    /// bucket's start; leaves both `None` (unpriced) when no rate prices it.
    pub fn price(&self, source_kind: &str, record: &mut UsageRecord) {
        self.price_all(source_kind, std::slice::from_mut(record));
    }

    /// [`price`](Self::price) for each of `records` of one source: the terms of each distinct
    /// model, moment and context are resolved once, and each record then costs its classes'
    /// quantities times the terms' per-unit costs. A large batch is split across the cores.
    pub fn price_all(&self, source_kind: &str, records: &mut [UsageRecord]) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let share = records.len().div_ceil(threads).max(PARALLEL_FROM);
        if share >= records.len() {
            return self.price_run(source_kind, records);
        }
        std::thread::scope(|scope| {
            for part in records.chunks_mut(share) {
                scope.spawn(move || self.price_run(source_kind, part));
            }
        });
    }

    /// Prices `records` on this thread, with terms of its own.
    fn price_run(&self, source_kind: &str, records: &mut [UsageRecord]) {
        // This run's own copy of the terms it meets: no lock per record.
        let mut terms: HashMap<OwnedTermsKey, Option<Arc<Terms>>, FxBuildHasher> = HashMap::default();
        for record in records {
            let priced = TermsKey::of(source_kind, record).and_then(|key| {
                let found = match terms.get(&key) {
                    Some(found) => found,
                    None => {
                        let resolved = self.resolved_terms(key, record);
                        terms.entry(key.to_owned()).or_insert(resolved)
                    }
                };
                match found.as_deref()? {
                    Terms::Linear(linear) => {
                        linear.price(record).unwrap_or_else(|TooLarge| self.priced(source_kind, record))
                    }
                    Terms::Each => self.priced(source_kind, record),
                }
            });
            (record.computed_cost, record.price_ref) = match priced {
                Some((cost, reference)) => (Some(cost), Some(reference)),
                None => (None, None),
            };
        }
    }

    /// The terms of `key` (`record`'s), resolved once for the book.
    fn resolved_terms(&self, key: TermsKey<'_>, record: &UsageRecord) -> Option<Arc<Terms>> {
        let mut resolved = self.resolved.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(terms) = resolved.get(&key) {
            return terms.clone();
        }
        if resolved.len() >= RESOLVED_TERMS {
            resolved.clear();
        }
        let terms = self.terms(key.kind, record).map(Arc::new);
        resolved.insert(key.to_owned(), terms.clone());
        terms
    }

    /// How the records sharing `record`'s model, moment and context are priced; `None` when
    /// none of them is.
    fn terms(&self, source_kind: &str, record: &UsageRecord) -> Option<Terms> {
        let (catalogue, rates, own, mut reference) = self.rates_of(source_kind, record)?;
        if matches!(own, Some(Override { adjustment: Adjustment::Discount(_), .. })) {
            return Some(Terms::Each);
        }
        let units = catalogue.units();
        let mut per_unit = [Decimal::ZERO; CLASSES];
        let mut unpriced = [false; CLASSES];
        let mut at_base_tier = false;
        for (class, basis) in BASES.iter().enumerate() {
            let usage = Class::usage(basis);
            unpriced[class] = rates.unpriced_class(units, &usage).is_some();
            let Ok(priced) = catalogue.cost(&rates, &usage, Tiering::Aggregate) else { return Some(Terms::Each) };
            at_base_tier = priced.at_base_tier;
            per_unit[class] = priced.cost;
        }
        // The hour-long cache write is measured with the five-minute one it is part of.
        per_unit[Class::CacheWrite1h as usize] -= per_unit[Class::CacheWrite as usize];
        // The finest of the six per-unit costs: every one is written at it.
        let scale = per_unit.iter().map(Decimal::scale).fold(0, u32::max);
        if scale > COMPUTED_SCALE {
            return Some(Terms::Each);
        }
        let per_unit = per_unit.map(|d| {
            let mut d = d;
            d.rescale(scale);
            d.mantissa()
        });
        if at_base_tier {
            reference.push_str(", base tier");
        }
        Some(Terms::Linear(Linear { per_unit, scale, unpriced, reference: reference.into() }))
    }

    /// The rates pricing `record` (its model's at its bucket's start in its context, or the
    /// organization's own), the override that holds, and the reference naming them.
    fn rates_of(
        &self,
        source_kind: &str,
        record: &UsageRecord,
    ) -> Option<(&Catalogue, Rates, Option<&Override>, String)> {
        let catalogue = self.catalogue.as_deref()?;
        let model = record.model.as_deref()?;
        let provider = catalogue.provider(catalogue_provider(source_kind)?)?;
        let found = catalogue.find(provider, model);
        let context = context_of(source_kind, record);
        let day = record.bucket_start.date_naive();
        let own = self.overrides.iter().rev().find(|o| o.holds(&provider.id, model, day));
        let catalogue_rates = found.as_ref().map(|f| f.rates(record.bucket_start, &context));
        let rates = match (own.map(|o| &o.adjustment), catalogue_rates) {
            (Some(Adjustment::Rates(replacing)), rates) => rates.unwrap_or_default().with(replacing),
            (_, Some(rates)) => rates,
            (_, None) => return None,
        };
        let mut reference = match found {
            Some(f) => format!("{} {} {}/{}", catalogue.source, catalogue.version, f.provider.id, f.model.id),
            None => format!("{}/{model}", provider.id),
        };
        match own {
            Some(Override { id, adjustment: Adjustment::Discount(percent), .. }) => {
                reference.push_str(&format!(", override {id}: {percent}% off"));
            }
            Some(Override { id, .. }) => reference.push_str(&format!(", override {id}: own rates")),
            None => {}
        }
        Some((catalogue, rates, own, reference))
    }

    /// One record priced by the rules as written, class by class.
    fn priced(&self, source_kind: &str, record: &UsageRecord) -> Option<(Decimal, Arc<str>)> {
        if !only_priced_extras(record) {
            return None;
        }
        let (catalogue, rates, own, mut reference) = self.rates_of(source_kind, record)?;
        let usage = usage_of(record)?;
        // A class no rate prices would count as free: the record stays unpriced instead.
        if rates.unpriced_class(catalogue.units(), &usage).is_some() {
            return None;
        }
        let priced = catalogue.cost(&rates, &usage, Tiering::Aggregate).ok()?;
        let mut cost = priced.cost;
        if let Some(Override { adjustment: Adjustment::Discount(percent), .. }) = own {
            cost = cost * (Decimal::ONE_HUNDRED - percent) / Decimal::ONE_HUNDRED;
        }
        if priced.at_base_tier {
            reference.push_str(", base tier");
        }
        // Token rates divided by a million keep far fewer decimals than this; the lake holds 18.
        Some((cost.round_dp(COMPUTED_SCALE).normalize(), reference.into()))
    }
}

/// The decimals a computed cost keeps (the lake's column holds 18).
const COMPUTED_SCALE: u32 = 18;

/// A batch smaller than this is priced on one thread: starting threads costs more than it saves.
const PARALLEL_FROM: usize = 20_000;

/// What decides a record's terms: its source's kind, model, moment, batch or not, service tier.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct TermsKey<'r> {
    kind: &'r str,
    model: &'r str,
    at: i64,
    batch: bool,
    tier: Option<&'r str>,
}

/// A [`TermsKey`] kept beyond its record; hashes as the borrowed one does.
#[derive(Debug, PartialEq, Eq, Hash)]
struct OwnedTermsKey {
    kind: String,
    model: String,
    at: i64,
    batch: bool,
    tier: Option<String>,
}

impl<'r> TermsKey<'r> {
    /// `None`: a record that names no model is not priced.
    fn of(kind: &'r str, r: &'r UsageRecord) -> Option<Self> {
        Some(Self {
            kind,
            model: r.model.as_deref()?,
            at: r.bucket_start.timestamp_micros(),
            batch: r.extra.get("batch") == Some(&1),
            tier: r.service_tier.as_deref(),
        })
    }

    fn to_owned(self) -> OwnedTermsKey {
        OwnedTermsKey {
            kind: self.kind.to_owned(),
            model: self.model.to_owned(),
            at: self.at,
            batch: self.batch,
            tier: self.tier.map(str::to_owned),
        }
    }
}

impl hashbrown::Equivalent<OwnedTermsKey> for TermsKey<'_> {
    fn equivalent(&self, key: &OwnedTermsKey) -> bool {
        self.kind == key.kind
            && self.model == key.model
            && self.at == key.at
            && self.batch == key.batch
            && self.tier == key.tier.as_deref()
    }
}

/// How a group of records is priced.
#[derive(Debug)]
enum Terms {
    /// As a sum of per-unit costs (every rate of the group is linear in the quantities).
    Linear(Linear),
    /// Record by record, as the rules read (a percentage off, rates with more decimals than a
    /// computed cost keeps).
    Each,
}

/// A record's quantities, each class apart: the input classes disjoint, the hour-long cache
/// writes a part of the cache writes.
#[derive(Clone, Copy)]
enum Class {
    Uncached,
    CacheRead,
    CacheWrite,
    CacheWrite1h,
    Output,
    WebSearches,
}
const CLASSES: usize = 6;

/// One unit of each class as the catalogue counts it, with the classes it is part of (an
/// hour-long write is also a cache write, every input class also input).
const BASES: [&[(&str, u64)]; CLASSES] = [
    &[("input_tokens", 1)],
    &[("input_tokens", 1), ("cache_read_tokens", 1)],
    &[("input_tokens", 1), ("cache_write_tokens", 1)],
    &[("input_tokens", 1), ("cache_write_tokens", 1), ("cache_write_1h_tokens", 1)],
    &[("output_tokens", 1)],
    &[("web_searches", 1)],
];

impl Class {
    fn usage(basis: &[(&str, u64)]) -> Usage {
        basis.iter().fold(Usage::new(), |u, (class, n)| u.with(class, *n))
    }

    /// `r`'s quantity of each class; `None` for a negative count (not usage the rules price).
    fn quantities(r: &UsageRecord) -> Option<[u64; CLASSES]> {
        let n = |v: i64| u64::try_from(v).ok();
        let write = n(r.input_cache_write_tokens)?;
        let mut q = [0; CLASSES];
        q[Class::Uncached as usize] = n(r.input_uncached_tokens)?;
        q[Class::CacheRead as usize] = n(r.input_cached_tokens)?;
        q[Class::CacheWrite as usize] = write;
        q[Class::CacheWrite1h as usize] = n(r.input_cache_write_1h_tokens)?.min(write);
        q[Class::Output as usize] = n(r.output_tokens)?;
        q[Class::WebSearches as usize] = n(r.extra.get("web_search_requests").copied().unwrap_or(0))?;
        Some(q)
    }
}

/// Per-unit costs of each class at one scale, exact: a record costs the sum of its quantities
/// times them, which is what pricing it class by class gives, every rate being linear.
#[derive(Debug)]
struct Linear {
    per_unit: [i128; CLASSES],
    scale: u32,
    /// Classes no rate prices: a record with any of them is unpriced, not free.
    unpriced: [bool; CLASSES],
    reference: Arc<str>,
}

/// A cost beyond what the per-unit sum holds exactly: priced class by class instead.
struct TooLarge;

impl Linear {
    fn price(&self, record: &UsageRecord) -> Result<Option<(Decimal, Arc<str>)>, TooLarge> {
        let Some(quantities) = Class::quantities(record).filter(|_| only_priced_extras(record)) else {
            return Ok(None);
        };
        let mut cost: i128 = 0;
        for ((quantity, per_unit), unpriced) in quantities.iter().zip(&self.per_unit).zip(&self.unpriced) {
            if *quantity > 0 && *unpriced {
                return Ok(None);
            }
            let amount = per_unit.checked_mul(i128::from(*quantity)).ok_or(TooLarge)?;
            cost = cost.checked_add(amount).ok_or(TooLarge)?;
        }
        let cost = Decimal::try_from_i128_with_scale(cost, self.scale).map_err(|_| TooLarge)?;
        Ok(Some((cost.normalize(), Arc::clone(&self.reference))))
    }
}

/// Whether every counter of `r` is one pricing reads or that costs nothing apart; any other
/// (images, seconds, characters) leaves it unpriced rather than priced without it.
fn only_priced_extras(r: &UsageRecord) -> bool {
    r.extra.keys().all(|k| PRICED_EXTRAS.contains(&k.as_str()))
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

    /// Pricing many records at once (per-unit costs resolved once per model, moment and
    /// context) gives each the cost and reference pricing it alone class by class gives: every
    /// model of every provider, in and out of batch and service tiers, with the organization's
    /// rates and a discount, and the records no rate prices.
    #[test]
    fn pricing_records_together_prices_each_as_the_rules_price_it_alone() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let book = PriceBook::shipped().with_overrides(vec![
            Override {
                id: "own".into(),
                provider: "openai".into(),
                model: "gpt-4o".into(),
                from: day(2),
                through: None,
                adjustment: Adjustment::Rates([("input_mtok".to_owned(), Decimal::new(21, 1))].into()),
            },
            Override {
                id: "off".into(),
                provider: "anthropic".into(),
                model: "claude-sonnet-4-5".into(),
                from: day(2),
                through: None,
                adjustment: Adjustment::Discount(Decimal::new(125, 1)),
            },
        ]);
        let catalogue = book.catalogue().expect("the shipped catalogue");
        let kinds = [
            ("openai", "openai"),
            ("anthropic", "anthropic"),
            ("aws", "aws"),
            ("azure", "azure"),
            ("gcp", "google"),
            ("openrouter", "openrouter"),
        ];
        let (mut compared, mut priced_fast) = (0, 0);
        for (kind, provider) in kinds {
            let models = &catalogue.providers().iter().find(|p| p.id == provider).expect(provider).models;
            let mut records = Vec::new();
            for (m, model) in models.iter().enumerate() {
                for (i, tier) in [None, Some("batch"), Some("priority"), Some("flex")].into_iter().enumerate() {
                    let salt = (m * 7 + i) as i64;
                    let mut r = record(&model.id, tier);
                    r.bucket_start = day(1 + (salt % 3) as u32).and_hms_opt(0, 0, 0).unwrap().and_utc();
                    r.input_uncached_tokens = 1_234_567 * (salt % 5);
                    r.input_cached_tokens = 98_765 * (salt % 3);
                    r.input_cache_write_tokens = 4_321 * (salt % 4);
                    r.input_cache_write_1h_tokens = 1_000 * (salt % 6);
                    r.output_tokens = 55_555 * (salt % 7);
                    match salt % 11 {
                        0 => _ = r.extra.insert("web_search_requests".into(), 12),
                        1 => _ = r.extra.insert("batch".into(), 1),
                        2 => _ = r.extra.insert("images".into(), 3),
                        3 => r.output_tokens = -1,
                        4 => r.output_tokens = i64::MAX,
                        _ => {}
                    }
                    records.push(r);
                }
            }
            let alone: Vec<_> = records.iter().map(|r| book.priced(kind, r)).collect();
            book.price_all(kind, &mut records);
            for (r, alone) in records.iter().zip(alone) {
                let together = r.computed_cost.map(|c| (c, r.price_ref.clone().unwrap()));
                assert_eq!(together, alone, "{kind} {:?} {:?}", r.model, r.service_tier);
                // Equal as decimals and as written: 1.5, not 1.500.
                assert_eq!(together.map(|t| t.0.to_string()), alone.map(|a| a.0.to_string()));
                compared += 1;
                priced_fast += usize::from(r.computed_cost.is_some());
            }
        }
        assert!(compared > 1_000 && priced_fast > compared / 2, "{priced_fast} of {compared} records priced");
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

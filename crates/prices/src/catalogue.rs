//! The catalogue: providers, their models, each model's dated rates and variants; loaded from
//! JSON (the shipped snapshot or an operator's import) and checked whole before it is used.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::clause::{Clause, RawClause, dashed_dates};
use crate::rates::{Context, Priced, Rate, Rates, RawRate, Tiering, Unit, Units, Usage, UsageError};

/// The snapshot burnrate ships, and the line naming its source, version and checksum.
const SHIPPED: &[u8] = include_bytes!("../catalogue/genai-prices.json");
const SHIPPED_SNAPSHOT: &str = include_str!("../catalogue/SNAPSHOT");

/// Why a catalogue cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("the price catalogue does not read: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the price catalogue's checksum is {actual}, its SNAPSHOT line says {expected}")]
    Checksum { expected: String, actual: String },
    #[error("the price catalogue: {0}")]
    Invalid(String),
}

/// A catalogue of prices, checked whole.
#[derive(Debug)]
pub struct Catalogue {
    /// Where the data came from (`genai-prices`) and its version there.
    pub source: String,
    pub version: String,
    /// SHA-256 of the JSON it was read from, hex.
    pub checksum: String,
    units: Units,
    providers: Vec<Provider>,
    /// Where each name asked of a provider was found (provider and model index, and whether
    /// through a fallback): matching a name runs every model's clauses, regular expressions among
    /// them, and usage asks about the same few names again and again.
    found: std::sync::Mutex<FoundNames>,
}

/// Provider id → name → where it was found.
type FoundNames = std::collections::HashMap<String, std::collections::HashMap<String, Option<(usize, usize, bool)>>>;

/// Names remembered before the memory is cleared: names come from providers' reports, a few
/// dozen in practice.
const FOUND_NAMES: usize = 10_000;

#[derive(Debug)]
pub struct Provider {
    pub id: String,
    pub name: String,
    model_match: Option<Clause>,
    provider_match: Option<Clause>,
    /// Providers whose models this one also serves (Bedrock serves Anthropic's).
    fallback: Vec<String>,
    pub models: Vec<Model>,
}

#[derive(Debug)]
pub struct Model {
    pub id: String,
    pub name: Option<String>,
    pub context_window: Option<u64>,
    matcher: Clause,
    /// In the catalogue's order: the last in force wins.
    entries: Vec<Entry>,
    variants: Vec<Variant>,
}

/// Rates and when they are in force.
#[derive(Debug, PartialEq)]
struct Entry {
    window: Window,
    rates: Rates,
}

/// Rates that replace some of a model's for requests of a context.
#[derive(Debug, PartialEq)]
struct Variant {
    when: Context,
    window: Window,
    rates: Rates,
}

/// When rates are in force: always, from a day (UTC), or daily between two times (UTC; the end
/// before the start spans midnight).
#[derive(Debug, PartialEq)]
enum Window {
    Always,
    From(NaiveDate),
    Daily(NaiveTime, NaiveTime),
}

impl Window {
    fn open(&self, at: DateTime<Utc>) -> bool {
        match self {
            Window::Always => true,
            Window::From(day) => at.date_naive() >= *day,
            Window::Daily(start, end) => {
                let t = at.time();
                if end < start { t >= *start || t < *end } else { *start <= t && t < *end }
            }
        }
    }
}

/// A model found for a provider and a name.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    pub provider: &'a Provider,
    pub model: &'a Model,
    /// Found among another provider's models (the provider's fallback): its variants, which are
    /// that provider's, do not apply.
    pub via_fallback: bool,
}

impl Found<'_> {
    /// The model's rates at `at` for a request of `context`.
    pub fn rates(&self, at: DateTime<Utc>, context: &Context) -> Rates {
        let model = self.model;
        let standard = model
            .entries
            .iter()
            .rev()
            .find(|e| e.window.open(at))
            .or(model.entries.first())
            .map(|e| e.rates.clone())
            .unwrap_or_default();
        if context.is_empty() || self.via_fallback {
            return standard;
        }
        let mut rates = standard;
        let mut overridden = std::collections::BTreeSet::new();
        for variant in &model.variants {
            if !variant.window.open(at) || !variant.when.iter().all(|(k, v)| context.get(k) == Some(v)) {
                continue;
            }
            for (key, rate) in variant.rates.iter() {
                if overridden.insert(key.to_owned()) {
                    rates.0.insert(key.to_owned(), rate.clone());
                }
            }
        }
        rates
    }
}

impl Catalogue {
    /// The snapshot burnrate ships, checked against its `SNAPSHOT` line.
    pub fn shipped() -> Result<Arc<Catalogue>, &'static CatalogueError> {
        static SHIPPED_CATALOGUE: LazyLock<Result<Arc<Catalogue>, CatalogueError>> = LazyLock::new(|| {
            let expected = SHIPPED_SNAPSHOT.split_whitespace().nth(3).unwrap_or_default().to_owned();
            let catalogue = Catalogue::parse(SHIPPED)?;
            if catalogue.checksum != expected {
                return Err(CatalogueError::Checksum { expected, actual: catalogue.checksum });
            }
            Ok(Arc::new(catalogue))
        });
        SHIPPED_CATALOGUE.as_ref().map(Arc::clone)
    }

    /// A catalogue from its JSON, every rate, pattern and reference checked.
    pub fn parse(json: &[u8]) -> Result<Catalogue, CatalogueError> {
        let raw: RawCatalogue = serde_json::from_slice(json)?;
        let units = Units(raw.units);
        let invalid = |at: &str, e: String| CatalogueError::Invalid(format!("{at}: {e}"));
        let mut providers = Vec::with_capacity(raw.providers.len());
        for p in raw.providers {
            let clause = |c: Option<RawClause>| c.map(Clause::build).transpose().map_err(|e| invalid(&p.id, e));
            let (model_match, provider_match) = (clause(p.model_match)?, clause(p.provider_match)?);
            let mut models = Vec::with_capacity(p.models.len());
            for m in p.models {
                let at = format!("{}/{}", p.id, m.id);
                let rates = |raw: BTreeMap<String, RawRate>| -> Result<Rates, CatalogueError> {
                    let mut rates = BTreeMap::new();
                    for (key, rate) in raw {
                        if !units.has_price_key(&key) {
                            return Err(invalid(&at, format!("{key:?} prices no usage class")));
                        }
                        rates.insert(key, rate.build().map_err(|e| invalid(&at, e))?);
                    }
                    Ok(Rates(rates))
                };
                let window = |from: Option<NaiveDate>, daily: Option<RawDaily>| match (from, daily) {
                    (None, None) => Ok(Window::Always),
                    (Some(day), None) => Ok(Window::From(day)),
                    (None, Some(d)) => Ok(Window::Daily(d.start, d.end)),
                    (Some(_), Some(_)) => Err(invalid(&at, "a start day and a time of day at once".into())),
                };
                let entries = m
                    .prices
                    .into_iter()
                    .map(|e| Ok(Entry { window: window(e.from, e.daily)?, rates: rates(e.prices)? }))
                    .collect::<Result<Vec<_>, CatalogueError>>()?;
                if entries.is_empty() {
                    return Err(invalid(&at, "no prices".into()));
                }
                let variants = m
                    .variants
                    .into_iter()
                    .map(|v| Ok(Variant { when: v.when, window: window(v.from, v.daily)?, rates: rates(v.prices)? }))
                    .collect::<Result<Vec<_>, CatalogueError>>()?;
                let matcher = Clause::build(m.matcher).map_err(|e| invalid(&at, e))?;
                models.push(Model {
                    id: m.id,
                    name: m.name,
                    context_window: m.context_window,
                    matcher,
                    entries,
                    variants,
                });
            }
            providers.push(Provider {
                id: p.id,
                name: p.name,
                model_match,
                provider_match,
                fallback: p.fallback,
                models,
            });
        }
        for p in &providers {
            if let Some(missing) = p.fallback.iter().find(|f| !providers.iter().any(|q| &q.id == *f)) {
                return Err(invalid(&p.id, format!("falls back to {missing:?}, which is not in the catalogue")));
            }
        }
        Ok(Catalogue {
            source: raw.source,
            version: raw.version,
            checksum: hex::encode(Sha256::digest(json)),
            units,
            providers,
            found: Default::default(),
        })
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// The provider of `id`: by its id, else the first whose own matcher takes it.
    pub fn provider(&self, id: &str) -> Option<&Provider> {
        let id = id.trim().to_lowercase();
        self.providers
            .iter()
            .find(|p| p.id == id)
            .or_else(|| self.providers.iter().find(|p| p.provider_match.as_ref().is_some_and(|c| c.matches(&id))))
    }

    /// The provider a model name alone points to (the first whose model matcher takes it).
    pub fn provider_of_model(&self, model: &str) -> Option<&Provider> {
        let model = model.to_lowercase();
        self.providers.iter().find(|p| p.model_match.as_ref().is_some_and(|c| c.matches(&model)))
    }

    /// The model `name` of `provider`: the first of its models that matches, then of the
    /// providers it falls back to; a name with a compact date (`-20251211`) is tried dashed too.
    pub fn find<'a>(&'a self, provider: &'a Provider, name: &str) -> Option<Found<'a>> {
        let at = |(p, m, via_fallback): (usize, usize, bool)| Found {
            provider,
            model: &self.providers[p].models[m],
            via_fallback,
        };
        let mut found = self.found.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(hit) = found.get(provider.id.as_str()).and_then(|names| names.get(name)) {
            return hit.map(at);
        }
        let answer = self.find_by_matching(provider, name);
        let index = answer.and_then(|f| {
            self.providers.iter().enumerate().find_map(|(p, owner)| {
                let m = owner.models.iter().position(|m| std::ptr::eq(m, f.model))?;
                Some((p, m, f.via_fallback))
            })
        });
        if found.values().map(|names| names.len()).sum::<usize>() >= FOUND_NAMES {
            found.clear();
        }
        found.entry(provider.id.clone()).or_default().insert(name.to_owned(), index);
        answer
    }

    fn find_by_matching<'a>(&'a self, provider: &'a Provider, name: &str) -> Option<Found<'a>> {
        let name = name.to_lowercase();
        self.find_exactly(provider, &name).or_else(|| {
            let dashed = dashed_dates(&name);
            (dashed != name).then(|| self.find_exactly(provider, &dashed)).flatten()
        })
    }

    fn find_exactly<'a>(&'a self, provider: &'a Provider, name: &str) -> Option<Found<'a>> {
        let own = |p: &'a Provider| p.models.iter().find(|m| m.matcher.matches(name));
        if let Some(model) = own(provider) {
            return Some(Found { provider, model, via_fallback: false });
        }
        provider.fallback.iter().find_map(|id| {
            let other = self.providers.iter().find(|p| &p.id == id)?;
            own(other).map(|model| Found { provider, model, via_fallback: true })
        })
    }

    /// What `usage` of `found` costs at its rates at `at` for a request of `context`.
    pub fn price(
        &self,
        found: &Found<'_>,
        at: DateTime<Utc>,
        context: &Context,
        usage: &Usage,
        tiering: Tiering,
    ) -> Result<Priced, UsageError> {
        found.rates(at, context).cost(&self.units, usage, tiering)
    }

    /// What `usage` costs at `rates` (a model's, or an organization's own).
    pub(crate) fn cost(&self, rates: &Rates, usage: &Usage, tiering: Tiering) -> Result<Priced, UsageError> {
        rates.cost(&self.units, usage, tiering)
    }

    /// Whether `price_key` prices a usage class of this catalogue.
    pub fn prices_class(&self, price_key: &str) -> bool {
        self.units.has_price_key(price_key)
    }

    pub(crate) fn units(&self) -> &Units {
        &self.units
    }

    /// The usage classes, by usage key, and the price key of each.
    pub fn classes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.units.0.iter().map(|(k, u)| (k.as_str(), u.price_key.as_str()))
    }
}

/// How a newer catalogue differs from an older one, model by model (`provider/model`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Added(String),
    Removed(String),
    /// Its rates, their dates or its variants differ.
    Repriced(String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Added(m) => write!(f, "+ {m} (new)"),
            Change::Removed(m) => write!(f, "- {m} (no longer listed)"),
            Change::Repriced(m) => write!(f, "~ {m} (rates changed)"),
        }
    }
}

impl Catalogue {
    /// What `newer` adds, removes and reprices, by provider and model.
    pub fn changes_to(&self, newer: &Catalogue) -> Vec<Change> {
        fn models(c: &Catalogue) -> BTreeMap<String, &Model> {
            c.providers.iter().flat_map(|p| p.models.iter().map(move |m| (format!("{}/{}", p.id, m.id), m))).collect()
        }
        let (old, new) = (models(self), models(newer));
        let mut changes = Vec::new();
        for (key, after) in &new {
            match old.get(key) {
                None => changes.push(Change::Added(key.clone())),
                Some(before) if before.entries != after.entries || before.variants != after.variants => {
                    changes.push(Change::Repriced(key.clone()))
                }
                Some(_) => {}
            }
        }
        changes.extend(old.keys().filter(|k| !new.contains_key(*k)).map(|k| Change::Removed(k.clone())));
        changes
    }
}

impl Model {
    /// Whether any of the model's rates has size tiers.
    pub fn has_tiers(&self) -> bool {
        self.entries
            .iter()
            .map(|e| &e.rates)
            .chain(self.variants.iter().map(|v| &v.rates))
            .any(|r| r.iter().any(|(_, rate)| matches!(rate, Rate::Tiered { .. })))
    }

    /// The days from which dated rates take over, in order.
    pub fn price_changes(&self) -> Vec<NaiveDate> {
        self.entries
            .iter()
            .filter_map(|e| match e.window {
                Window::From(day) => Some(day),
                _ => None,
            })
            .collect()
    }

    /// The contexts its variants name (`processing: batch`, …).
    pub fn variant_contexts(&self) -> Vec<&Context> {
        self.variants.iter().map(|v| &v.when).collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    source: String,
    version: String,
    units: BTreeMap<String, Unit>,
    providers: Vec<RawProvider>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    id: String,
    name: String,
    model_match: Option<RawClause>,
    provider_match: Option<RawClause>,
    #[serde(default)]
    fallback: Vec<String>,
    models: Vec<RawModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: String,
    #[serde(rename = "match")]
    matcher: RawClause,
    name: Option<String>,
    context_window: Option<u64>,
    prices: Vec<RawEntry>,
    #[serde(default)]
    variants: Vec<RawVariant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    from: Option<NaiveDate>,
    daily: Option<RawDaily>,
    prices: BTreeMap<String, RawRate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    when: Context,
    from: Option<NaiveDate>,
    daily: Option<RawDaily>,
    prices: BTreeMap<String, RawRate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaily {
    start: NaiveTime,
    end: NaiveTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalogue of one provider and model with `prices` as its one entry.
    fn one(prices: &str, extra: &str) -> Result<Catalogue, CatalogueError> {
        let json = format!(
            r#"{{"source":"t","version":"1","units":{{
                 "input_tokens":{{"price_key":"input_mtok","per":1000000,"dimensions":{{"family":"tokens","direction":"input"}}}},
                 "cache_read_tokens":{{"price_key":"cache_read_mtok","per":1000000,"dimensions":{{"family":"tokens","direction":"input","token_type":"cache_read"}}}},
                 "output_tokens":{{"price_key":"output_mtok","per":1000000,"dimensions":{{"family":"tokens","direction":"output"}}}}}},
               "providers":[{{"id":"p","name":"P",{extra}"models":[{{"id":"m","match":{{"starts_with":"M-"}},"prices":[{prices}]}}]}}]}}"#
        );
        Catalogue::parse(json.as_bytes())
    }

    #[test]
    fn a_catalogue_with_a_bad_rate_pattern_or_reference_is_refused_naming_where() {
        let e = one(r#"{"prices":{"input_mtok":"-1"}}"#, "").unwrap_err().to_string();
        assert!(e.contains("p/m") && e.contains("\"-1\" is not a non-negative decimal"), "{e}");
        let e = one(r#"{"prices":{"input_mtok":"1e3"}}"#, "").unwrap_err().to_string();
        assert!(e.contains("not a non-negative decimal"), "{e}");
        let e = one(r#"{"prices":{"seats_mtok":"1"}}"#, "").unwrap_err().to_string();
        assert!(e.contains("\"seats_mtok\" prices no usage class"), "{e}");
        let e = one(r#"{"prices":{"input_mtok":"1"}}"#, r#""model_match":{"regex":"("},"#).unwrap_err().to_string();
        assert!(e.contains("pattern \"(\" does not compile"), "{e}");
        let e = one(r#"{"prices":{"input_mtok":"1"}}"#, r#""fallback":["q"],"#).unwrap_err().to_string();
        assert!(e.contains("falls back to \"q\""), "{e}");
        let e = one(
            r#"{"prices":{"input_mtok":{"base":"1","tiers":[{"start":9,"price":"2"},{"start":3,"price":"3"}]}}}"#,
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tiers out of order"), "{e}");
        assert!(one("", "").unwrap_err().to_string().contains("p/m: no prices"));
        assert!(Catalogue::parse(b"{").unwrap_err().to_string().contains("does not read"));
    }

    #[test]
    fn dated_rates_tiers_and_parts_price_as_the_catalogue_says() {
        let c = one(
            r#"{"prices":{"input_mtok":{"base":"2","tiers":[{"start":200000,"price":"4"}]},"output_mtok":"10"}},
               {"from":"2026-11-15","prices":{"input_mtok":"1.5","cache_read_mtok":"0.15","output_mtok":"8"}}"#,
            "",
        )
        .unwrap();
        let p = c.provider("P").unwrap();
        let found = c.find(p, "m-1").unwrap();
        assert!(c.find(p, "x-m-1").is_none());
        let at = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap().and_hms_opt(23, 59, 59).unwrap().and_utc();
        let usage =
            Usage::new().with("input_tokens", 300_000).with("cache_read_tokens", 100_000).with("output_tokens", 1000);
        let price = |d, tiering| c.price(&found, at(d), &Context::new(), &usage, tiering).unwrap();
        // The 14th: the first entry; a cache read without a rate of its own pays the input rate.
        assert_eq!(price(14, Tiering::Aggregate).cost.to_string(), "0.61");
        assert!(price(14, Tiering::Aggregate).at_base_tier);
        // As one request of 300k input tokens: the tier's rate for every input token.
        assert_eq!(price(14, Tiering::Request).cost.to_string(), "1.21");
        // From the 15th: the new rates, cache reads at theirs.
        let p15 = price(15, Tiering::Request);
        assert_eq!((p15.cost.to_string(), p15.input.to_string()), ("0.323".into(), "0.315".into()));
        // Parts beyond their whole are refused, naming both.
        let bad = Usage::new().with("input_tokens", 10).with("cache_read_tokens", 11);
        let e = c.price(&found, at(15), &Context::new(), &bad, Tiering::Aggregate).unwrap_err();
        assert_eq!(e.to_string(), "cache_read_tokens (11) is more than input_tokens (10), which includes it");
        let odd = Usage::new().with("seats", 1);
        assert!(c.price(&found, at(15), &Context::new(), &odd, Tiering::Aggregate).is_err());
    }

    #[test]
    fn changes_list_added_removed_and_repriced_models_only() {
        let old = one(r#"{"prices":{"input_mtok":"1"}}"#, "").unwrap();
        assert!(old.changes_to(&old).is_empty());
        let repriced = one(r#"{"prices":{"input_mtok":"1.5"}}"#, "").unwrap();
        assert_eq!(old.changes_to(&repriced), [Change::Repriced("p/m".into())]);
        let dated =
            one(r#"{"prices":{"input_mtok":"1"}},{"from":"2027-01-01","prices":{"input_mtok":"2"}}"#, "").unwrap();
        assert_eq!(old.changes_to(&dated), [Change::Repriced("p/m".into())], "a new dated entry is a change");
        let renamed = serde_json::json!({"source": "t", "version": "2",
            "units": {"input_tokens": {"price_key": "input_mtok", "per": 1000000, "dimensions": {"family": "tokens", "direction": "input"}}},
            "providers": [{"id": "p", "name": "P", "models": [{"id": "n", "match": {"equals": "n"}, "prices": [{"prices": {"input_mtok": "1"}}]}]}]});
        let renamed = Catalogue::parse(&serde_json::to_vec(&renamed).unwrap()).unwrap();
        let changes: Vec<String> = old.changes_to(&renamed).iter().map(ToString::to_string).collect();
        assert_eq!(changes, ["+ p/n (new)", "- p/m (no longer listed)"]);
    }

    #[test]
    fn the_shipped_snapshot_matches_its_checksum_and_names_its_source() {
        let c = Catalogue::shipped().unwrap();
        assert_eq!((c.source.as_str(), c.version.as_str()), ("genai-prices", "0.2.3"));
        assert!(SHIPPED_SNAPSHOT.starts_with(&format!("genai-prices 0.2.3 sha256 {}", c.checksum)));
        let tampered = [SHIPPED, b" "].concat();
        assert_ne!(Catalogue::parse(&tampered).unwrap().checksum, c.checksum);
    }
}

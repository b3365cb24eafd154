//! Rates and what usage costs at them: the usage classes and how they nest, tiers, and the sum.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;

/// A rate per `per` units of a class (per million tokens, per thousand searches, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rate {
    Flat(Decimal),
    /// The rate of the last tier whose start the request's input tokens pass, else `base`; the
    /// rate chosen applies to every unit of the request.
    Tiered {
        base: Decimal,
        tiers: Vec<(u64, Decimal)>,
    },
}

impl Rate {
    /// The rate for a request of `input_tokens`, or at the base tier.
    fn at(&self, input_tokens: Option<u64>) -> Decimal {
        match self {
            Rate::Flat(r) => *r,
            Rate::Tiered { base, tiers } => match input_tokens {
                Some(n) => tiers.iter().rev().find(|(start, _)| n > *start).map_or(*base, |(_, r)| *r),
                None => *base,
            },
        }
    }
}

/// The rates of a model at a moment, by price key (`input_mtok`, `cache_read_mtok`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rates(pub(crate) BTreeMap<String, Rate>);

impl Rates {
    pub fn get(&self, price_key: &str) -> Option<&Rate> {
        self.0.get(price_key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Rate)> {
        self.0.iter().map(|(k, r)| (k.as_str(), r))
    }
}

/// A rate as the catalogue writes it: a decimal string, or a base with tiers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawRate {
    Flat(String),
    Tiered { base: String, tiers: Vec<RawTier> },
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawTier {
    start: u64,
    price: String,
}

impl RawRate {
    pub(crate) fn build(self) -> Result<Rate, String> {
        let amount = |s: &str| match Decimal::from_str_exact(s) {
            Ok(d) if !d.is_sign_negative() => Ok(d.normalize()),
            _ => Err(format!("{s:?} is not a non-negative decimal")),
        };
        Ok(match self {
            RawRate::Flat(s) => Rate::Flat(amount(&s)?),
            RawRate::Tiered { base, tiers } => {
                let tiers: Vec<(u64, Decimal)> =
                    tiers.into_iter().map(|t| Ok((t.start, amount(&t.price)?))).collect::<Result<_, String>>()?;
                if tiers.windows(2).any(|w| w[0].0 > w[1].0) {
                    return Err("tiers out of order".into());
                }
                Rate::Tiered { base: amount(&base)?, tiers }
            }
        })
    }
}

/// A class of usage: what it is priced by and which classes it is part of.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Unit {
    pub(crate) price_key: String,
    pub(crate) per: u64,
    /// A class is part of another when its dimensions include all of the other's.
    pub(crate) dimensions: BTreeMap<String, String>,
}

impl Unit {
    fn within(&self, other: &Unit) -> bool {
        other.dimensions.iter().all(|(k, v)| self.dimensions.get(k) == Some(v))
    }
}

/// The usage classes, by usage key (`input_tokens`, `cache_read_tokens`, `web_searches`, …).
#[derive(Debug, Default)]
pub(crate) struct Units(pub(crate) BTreeMap<String, Unit>);

impl Units {
    /// The usage key a price key prices.
    fn of_price_key(&self, price_key: &str) -> Option<(&str, &Unit)> {
        self.0.iter().find(|(_, u)| u.price_key == price_key).map(|(k, u)| (k.as_str(), u))
    }

    pub(crate) fn has_price_key(&self, price_key: &str) -> bool {
        self.of_price_key(price_key).is_some()
    }
}

/// How much of each usage class, by usage key. A class includes its sub-classes:
/// `input_tokens` counts every input token, cached or not, and `cache_read_tokens` those read
/// from the cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage(BTreeMap<String, u64>);

impl Usage {
    pub fn new() -> Self {
        Self::default()
    }

    /// `quantity` of `class` (zero quantities are left out).
    #[must_use]
    pub fn with(mut self, class: &str, quantity: u64) -> Self {
        if quantity > 0 {
            self.0.insert(class.to_owned(), quantity);
        }
        self
    }

    pub fn get(&self, class: &str) -> u64 {
        self.0.get(class).copied().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

/// What a request was sent as, for rates that differ by it (`processing: batch`,
/// `service_tier: priority`).
pub type Context = BTreeMap<String, String>;

/// How size tiers are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiering {
    /// The usage is one request: its input tokens choose the tier.
    Request,
    /// The usage sums many requests whose sizes are not known: every rate at its base tier
    /// (marked in [`Priced::at_base_tier`] where a tier could have applied).
    Aggregate,
}

/// What usage cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priced {
    pub cost: Decimal,
    /// The part for input classes and for output classes.
    pub input: Decimal,
    pub output: Decimal,
    /// An aggregate priced at base tiers although the model has tiers: the requests' own tiers
    /// may differ.
    pub at_base_tier: bool,
}

/// Usage that cannot be priced as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsageError {
    #[error("{0:?} is not a usage class the catalogue knows")]
    UnknownClass(String),
    #[error("{part} ({part_quantity}) is more than {whole} ({whole_quantity}), which includes it")]
    PartExceedsWhole { part: String, part_quantity: u64, whole: String, whole_quantity: u64 },
    #[error("the cost is beyond what an exact decimal holds")]
    Overflow,
}

impl Rates {
    /// The first class of `usage` with a quantity that no rate prices, neither its own nor a
    /// class it is part of: pricing without it would count it as free.
    pub(crate) fn unpriced_class<'u>(&self, units: &Units, usage: &'u Usage) -> Option<&'u str> {
        let priced: Vec<&Unit> = self.0.keys().filter_map(|k| units.of_price_key(k).map(|(_, u)| u)).collect();
        usage.iter().find_map(|(class, n)| {
            let unit = units.0.get(class)?;
            (n > 0 && !priced.iter().any(|p| unit.within(p))).then_some(class)
        })
    }

    /// These rates with `replacing` in place of the same price keys.
    pub(crate) fn with(mut self, replacing: &BTreeMap<String, Decimal>) -> Self {
        for (key, rate) in replacing {
            self.0.insert(key.clone(), Rate::Flat(*rate));
        }
        self
    }

    /// What `usage` costs at these rates: each priced class pays for what is left of it after
    /// its priced sub-classes.
    pub(crate) fn cost(&self, units: &Units, usage: &Usage, tiering: Tiering) -> Result<Priced, UsageError> {
        for (class, _) in usage.iter() {
            if !units.0.contains_key(class) {
                return Err(UsageError::UnknownClass(class.to_owned()));
            }
        }
        // The priced classes, most specific first (then by key, as the catalogue's own order).
        let mut priced: Vec<(&str, &Unit, &Rate)> = self
            .0
            .iter()
            .filter_map(|(price_key, rate)| units.of_price_key(price_key).map(|(k, u)| (k, u, rate)))
            .collect();
        priced.sort_by(|a, b| b.1.dimensions.len().cmp(&a.1.dimensions.len()).then(a.0.cmp(b.0)));
        let tiered = priced.iter().any(|(_, _, r)| matches!(r, Rate::Tiered { .. }));
        let input_tokens = match tiering {
            Tiering::Request => Some(usage.get("input_tokens")),
            Tiering::Aggregate => None,
        };
        let mut left: BTreeMap<&str, u64> = BTreeMap::new();
        let (mut input, mut output) = (Decimal::ZERO, Decimal::ZERO);
        let mut cost = Decimal::ZERO;
        for (i, (class, unit, rate)) in priced.iter().enumerate() {
            // One request is one request, whatever the usage says.
            let whole = if *class == "requests" && tiering == Tiering::Request { 1 } else { usage.get(class) };
            let mut remaining = whole;
            for (part, part_unit, _) in &priced[..i] {
                if part_unit.within(unit) && !std::ptr::eq(*part_unit, *unit) {
                    let part_left = left[part];
                    remaining = remaining.checked_sub(part_left).ok_or_else(|| UsageError::PartExceedsWhole {
                        part: (*part).to_owned(),
                        part_quantity: usage.get(part),
                        whole: (*class).to_owned(),
                        whole_quantity: whole,
                    })?;
                }
            }
            left.insert(class, remaining);
            let amount = rate
                .at(input_tokens)
                .checked_mul(Decimal::from(remaining))
                .and_then(|a| a.checked_div(Decimal::from(unit.per)))
                .ok_or(UsageError::Overflow)?;
            cost = cost.checked_add(amount).ok_or(UsageError::Overflow)?;
            match unit.dimensions.get("direction").map(String::as_str) {
                Some("input") => input += amount,
                Some("output") => output += amount,
                _ => {}
            }
        }
        Ok(Priced {
            cost: cost.normalize(),
            input: input.normalize(),
            output: output.normalize(),
            at_base_tier: tiered && tiering == Tiering::Aggregate,
        })
    }
}

impl FromStr for Tiering {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "request" => Ok(Tiering::Request),
            "aggregate" => Ok(Tiering::Aggregate),
            other => Err(format!("{other:?}: expected request or aggregate")),
        }
    }
}

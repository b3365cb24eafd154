//! What usage costs: a catalogue of effective-dated prices per provider and model, and the
//! pricing of a quantity of usage at the rates in force at its time.
//!
//! ```text
//!   Catalogue ──find(provider, model)──▶ Found ──rates(at, context)──▶ Rates
//!   Rates × Usage ──cost(tiering)──▶ Priced { cost, input, output, at_base_tier }
//! ```
//!
//! The catalogue burnrate ships is a snapshot of the `genai-prices` project's data (MIT; the
//! notice is `catalogue/LICENSE-genai-prices`), made by `scripts/prices-snapshot` and checked
//! against its `SNAPSHOT` checksum when loaded. Its rules are that project's, so that its
//! `calc_price` is an independent oracle of ours:
//!
//! - usage classes nest (`cache_read_tokens` is part of `input_tokens`); each priced class pays
//!   for what is left of it after its priced sub-classes, so a class with no price of its own is
//!   paid at its parent's rate (OpenAI's cache writes at the input rate) — never at zero;
//! - of a model's dated price entries the last in force wins, the first when none is;
//! - a variant (`processing: batch`, `service_tier: priority`) overrides the rates it names,
//!   the first matching variant per rate;
//! - a size tier applies to every token of a request whose input passes its start ("cliff").
//!
//! Amounts are exact decimals in US dollars; nothing here rounds.

mod book;
mod catalogue;
mod clause;
mod rates;

#[cfg(test)]
mod oracle;

pub use book::{Adjustment, Override, PriceBook};
pub use catalogue::{Catalogue, CatalogueError, Change, Found, Model, Provider};
pub use rates::{Context, Priced, Rate, Rates, Tiering, Usage, UsageError};

//! Money: an exact decimal amount with its currency. Never a float.
//!
//! Providers send amounts as JSON numbers (OpenAI, Azure) or strings (Anthropic, AWS, BigQuery).
//! Either way the amount is parsed from the token's *text*, so `3.8715` stays `3.8715` and not the
//! nearest binary fraction. burnrate keeps 9 decimals everywhere (SQL `NUMERIC(38, 9)`, Parquet
//! `Decimal128(38, 9)`); a value with more is rounded half-even to 9 and the caller is told, so a
//! sync run can count how many values it rounded.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Decimal places kept for every amount.
pub const MONEY_SCALE: u32 = 9;

/// An ISO 4217 currency code: three ASCII letters, kept upper-case (`usd` from OpenAI is `USD`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency {0:?} is not a three-letter ISO 4217 code")]
    Currency(String),
    #[error("amount {0:?} is not a decimal number")]
    NotANumber(String),
    #[error("amount {0:?} is too large or has too many digits for an exact decimal")]
    OutOfRange(String),
    #[error("cannot add {0} to {1}: different currencies")]
    CurrencyMismatch(Currency, Currency),
}

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    pub fn parse(raw: &str) -> Result<Self, MoneyError> {
        let bytes = raw.trim().as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_alphabetic) => {
                Ok(Currency([a.to_ascii_uppercase(), b.to_ascii_uppercase(), c.to_ascii_uppercase()]))
            }
            _ => Err(MoneyError::Currency(raw.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII letters.
        std::str::from_utf8(&self.0).expect("ASCII")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

/// An amount in a currency, with at most [`MONEY_SCALE`] decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    currency: Currency,
}

/// Whether parsing had to round the amount to [`MONEY_SCALE`] decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    Exact,
    Rounded,
}

/// Parses decimal text — `12`, `-0.5`, `3.8715`, `1.5e-7` — exactly, rounding half-even to
/// [`MONEY_SCALE`] decimals when it has more.
pub fn parse_decimal(text: &str) -> Result<(Decimal, Rounding), MoneyError> {
    let t = text.trim();
    let valid = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        && t.chars().any(|c| c.is_ascii_digit());
    if !valid {
        return Err(MoneyError::NotANumber(text.to_owned()));
    }
    let parsed = if t.contains(['e', 'E']) { Decimal::from_scientific(t) } else { Decimal::from_str_exact(t) };
    let value = match parsed {
        Ok(v) => v,
        // More digits than 28 after the point: round the text itself half-even.
        Err(_) if !t.contains(['e', 'E']) => {
            Decimal::from_str(t).map_err(|_| MoneyError::OutOfRange(text.to_owned()))?
        }
        Err(_) => return Err(MoneyError::OutOfRange(text.to_owned())),
    };
    if value.scale() > MONEY_SCALE {
        let rounded = value.round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::MidpointNearestEven);
        let rounding = if rounded == value { Rounding::Exact } else { Rounding::Rounded };
        return Ok((rounded.normalize(), rounding));
    }
    Ok((value, Rounding::Exact))
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let (amount, _) = parse_decimal(&amount.to_string())?;
        Ok(Self { amount, currency })
    }

    /// Parses the raw text of a JSON token (number or string contents).
    pub fn parse(text: &str, currency: Currency) -> Result<(Self, Rounding), MoneyError> {
        let (amount, rounding) = parse_decimal(text)?;
        Ok((Self { amount, currency }, rounding))
    }

    pub fn zero(currency: Currency) -> Self {
        Self { amount: Decimal::ZERO, currency }
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Divides by 100: for providers that report in the lowest unit (Anthropic's cents).
    pub fn from_cents(cents: Decimal, currency: Currency) -> Result<(Self, Rounding), MoneyError> {
        let value = cents.checked_div(Decimal::ONE_HUNDRED).ok_or_else(|| MoneyError::OutOfRange(cents.to_string()))?;
        Self::parse(&value.to_string(), currency)
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(other.currency, self.currency));
        }
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or_else(|| MoneyError::OutOfRange(format!("{} + {}", self.amount, other.amount)))?;
        Ok(Money { amount, currency: self.currency })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(s: &str) -> Money {
        Money::parse(s, Currency::USD).unwrap().0
    }

    #[test]
    fn parses_json_number_text_exactly() {
        assert_eq!(usd("3.8715").amount().to_string(), "3.8715");
        // As an f64 this sum is 0.30000000000000004.
        assert_eq!(usd("0.1").checked_add(&usd("0.2")).unwrap().amount().to_string(), "0.3");
        assert_eq!(usd("1.5e-7").amount().to_string(), "0.00000015");
        assert_eq!(usd("-12").amount().to_string(), "-12");
    }

    #[test]
    fn more_than_nine_decimals_round_half_even_and_say_so() {
        let (m, r) = Money::parse("0.0000000025", Currency::USD).unwrap();
        assert_eq!((m.amount().to_string().as_str(), r), ("0.000000002", Rounding::Rounded));
        let (m, r) = Money::parse("0.0000000035", Currency::USD).unwrap();
        assert_eq!((m.amount().to_string().as_str(), r), ("0.000000004", Rounding::Rounded));
        let (_, r) = Money::parse("1.230000000000", Currency::USD).unwrap();
        assert_eq!(r, Rounding::Exact, "trailing zeros lose nothing");
    }

    #[test]
    fn cents_become_currency_units() {
        let (m, r) = Money::from_cents(Decimal::from_str("123.78912").unwrap(), Currency::USD).unwrap();
        assert_eq!((m.amount().to_string().as_str(), r), ("1.2378912", Rounding::Exact));
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for bad in ["", "abc", "NaN", "inf", "1,5", "$3", "0x10", "1e400"] {
            assert!(Money::parse(bad, Currency::USD).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn currencies_are_normalized_and_never_mixed() {
        assert_eq!(Currency::parse("usd").unwrap(), Currency::USD);
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("€€€").is_err());
        let eur = Money::parse("1", Currency::parse("EUR").unwrap()).unwrap().0;
        assert!(matches!(usd("1").checked_add(&eur), Err(MoneyError::CurrencyMismatch(..))));
    }
}

//! Cost lines as a connector would produce them, for tests and benchmarks that write the lake
//! directly (time series, odd hours, many organizations) instead of going through a provider.

use burnrate_core::{ChargeCategory, CostRecord, Currency, Money};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// `amount` USD of `model` on `provider`, for the `hours` from `start`; list cost estimated as
/// billed, as for a provider that reports no list price. Change any other field with
/// `CostRecord { sku_id: …, ..usd_cost(…) }`.
pub fn usd_cost(start: DateTime<Utc>, hours: i64, amount: Decimal, provider: &str, model: &str) -> CostRecord {
    let money = Money::new(amount, Currency::USD).expect("a fixture amount fits the money scale");
    CostRecord {
        charge_period_start: start,
        charge_period_end: start + chrono::Duration::hours(hours),
        billed_cost: money,
        effective_cost: money,
        list_cost: money,
        list_cost_estimated: true,
        provider_name: provider.into(),
        service_name: format!("{provider} API"),
        sub_account_id: Some("proj".into()),
        sku_id: None,
        model: Some(model.into()),
        charge_category: ChargeCategory::Usage,
        charge_description: None,
        consumed_quantity: None,
        consumed_unit: None,
        api_key_id: None,
        tags: Default::default(),
    }
}

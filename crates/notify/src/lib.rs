//! Telling people about spend. So far: webhook signatures ([`webhook`]) and the forecast and
//! anomaly tests alerts will use ([`forecast`]); budget evaluation, alert events, email and
//! delivery follow.

pub mod forecast;
pub mod webhook;

pub use forecast::{Anomaly, DaySpend, anomaly, forecast_period_end};

pub use webhook::{SignedWebhook, WebhookSecret, WebhookSecretError};

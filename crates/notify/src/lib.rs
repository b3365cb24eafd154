//! Telling people about spend. So far: webhook signatures ([`webhook`]); budget evaluation,
//! alert events, email and delivery follow.

pub mod webhook;

pub use webhook::{SignedWebhook, WebhookSecret, WebhookSecretError};

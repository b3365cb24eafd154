//! Webhook signatures, the Standard Webhooks way, so receivers can verify deliveries with any of
//! its libraries:
//!
//! ```text
//!   webhook-id:        msg_<unique id>        (the same on every retry of one event)
//!   webhook-timestamp: <unix seconds>         (when this attempt was signed)
//!   webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>
//! ```
//!
//! The key is the secret's bytes: `whsec_` + base64 of 32 random bytes, shown to the tenant once
//! and stored sealed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// Random bytes in a secret burnrate makes (Standard Webhooks asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// A webhook's signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

/// Never printed: a secret in a log would let anyone forge deliveries.
impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    #[error("a webhook secret starts with whsec_")]
    Prefix,
    #[error("a webhook secret is whsec_ and base64")]
    Base64,
    #[error("a webhook secret holds 24 to 64 bytes")]
    Length,
}

impl WebhookSecret {
    /// A new secret of random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self { key }
    }

    /// A secret as shown to the tenant (and sealed in the store).
    pub fn parse(text: &str) -> Result<Self, WebhookSecretError> {
        let encoded = text.strip_prefix(PREFIX).ok_or(WebhookSecretError::Prefix)?;
        let key = BASE64.decode(encoded).map_err(|_| WebhookSecretError::Base64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(WebhookSecretError::Length);
        }
        Ok(Self { key })
    }

    /// `whsec_…`, to show once and to seal.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", BASE64.encode(&self.key))
    }

    /// Signs one delivery attempt of message `id` with `body`, at `timestamp` (unix seconds).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> SignedWebhook {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let signature = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
        SignedWebhook { id: id.to_owned(), timestamp, signature }
    }
}

/// The headers that carry a delivery's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedWebhook {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
}

impl SignedWebhook {
    /// `(name, value)` of each header, as Standard Webhooks names them.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            ("webhook-id", self.id.clone()),
            ("webhook-timestamp", self.timestamp.to_string()),
            ("webhook-signature", self.signature.clone()),
        ]
    }
}

//! OAuth 2 access tokens for the clouds' billing APIs (Azure's client credentials, Google's
//! JWT-bearer grant): the form POST to the token endpoint, its errors as credential errors, and a
//! token kept until shortly before it expires.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use burnrate_net::HttpClient;
use secrecy::SecretString;
use serde::Deserialize;

use crate::error::{classify, fetch_error, sanitize};
use crate::{Call, SourceError, SourceErrorKind};

/// A token is renewed this long before the endpoint says it expires.
const MARGIN: Duration = Duration::from_secs(120);

/// The token held for one connector, for the length of one sync.
#[derive(Default)]
pub(crate) struct TokenCache(Mutex<Option<(SecretString, Instant)>>);

impl TokenCache {
    /// The token held, while it has more than the margin left.
    pub fn get(&self) -> Option<SecretString> {
        let held = self.0.lock().expect("token cache");
        held.as_ref().filter(|(_, until)| Instant::now() + MARGIN < *until).map(|(token, _)| token.clone())
    }

    /// Forgets the token (the API called it expired before its time).
    pub fn clear(&self) {
        *self.0.lock().expect("token cache") = None;
    }

    fn put(&self, token: SecretString, lifetime: Duration) {
        *self.0.lock().expect("token cache") = Some((token, Instant::now() + lifetime));
    }
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    /// Seconds: a number, or a number in a string (Google's answers have both).
    expires_in: serde_json::Value,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

/// POSTs `form` (the grant) to the token endpoint `url` and keeps the token in `cache`. A 400 or
/// 401 is the credential's fault (wrong client, secret, tenant or key) and says what the endpoint
/// said — its first sentence: the rest carries trace ids.
pub(crate) async fn fetch_token(
    http: &HttpClient,
    call: &Call,
    url: &url::Url,
    form: String,
    cache: &TokenCache,
) -> Result<SecretString, SourceError> {
    let reply = http
        .post_read(url, &[("content-type", "application/x-www-form-urlencoded")], form.into())
        .await
        .map_err(|e| call.error(fetch_error(e)))?;
    if !(200..300).contains(&reply.status) {
        let detail = serde_json::from_slice::<TokenError>(&reply.body)
            .map(|e| {
                let text = e.error_description.unwrap_or_default();
                sanitize(&format!("{}: {}", e.error, text.split(". ").next().unwrap_or("")))
            })
            .unwrap_or_else(|_| "no error message".into());
        let kind = match reply.status {
            400 | 401 => SourceErrorKind::Credential { status: reply.status, detail },
            status => classify(status, reply.attempts, detail),
        };
        return Err(call.error(kind));
    }
    let token: TokenReply = serde_json::from_slice(&reply.body)
        .map_err(|e| call.error(SourceErrorKind::Malformed(format!("token answer: {e}"))))?;
    let seconds = match &token.expires_in {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| call.error(SourceErrorKind::Malformed("token answer: expires_in is not a number".into())))?;
    let secret = SecretString::from(token.access_token);
    cache.put(secret.clone(), Duration::from_secs(seconds));
    Ok(secret)
}

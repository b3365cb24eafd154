//! The scrubber: what counts as a secret or personal data in free text and in JSON.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// Patterns and what replaces them, applied in order (the wider shapes first, so a private key
/// block or a cookie header goes whole before its parts could match a narrower pattern).
static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)", "[private key]"),
        (r"(?i)\b((?:set-)?cookie)\s*[:=]\s*[^\r\n]*", "$1: [redacted]"),
        (r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", "$1 [redacted]"),
        (r"\bsk-ant-[A-Za-z0-9_-]{8,}", "[key]"),
        (r"\bsk-[A-Za-z0-9_-]{8,}", "[key]"),
        (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "[key]"),
        (r"\bwhsec_[A-Za-z0-9+/=_-]{8,}", "[key]"),
        // burnrate's own API keys and SQL credentials.
        (r"\bbr[ks]_[A-Za-z0-9_-]{8,}", "[key]"),
        (
            r#"(?i)\b(password|passwd|secret|token|api[_-]?key|access[_-]?key|auth(?:orization)?|session|credential)("?\s*[:=]\s*"?)[^\s"',;&]+"#,
            "$1$2[redacted]",
        ),
        (r"(?i)\b(https?://[^\s?#/]+[^\s?#]*)\?[^\s#]+", "$1?[query]"),
        (r"(?i)[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}", "[email]"),
    ]
    .into_iter()
    .map(|(re, with)| (Regex::new(re).expect("the scrubber's patterns are valid"), with))
    .collect()
});

/// `text` with every secret or email address replaced; borrowed when there was none.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (re, with) in PATTERNS.iter() {
        if let Cow::Owned(changed) = re.replace_all(&out, *with) {
            out = Cow::Owned(changed);
        }
    }
    out
}

/// Names of fields that only ever hold secrets or personal data: dropped whole, whatever they hold.
fn is_sensitive_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    [
        "authorization",
        "proxy_authorization",
        "cookie",
        "cookies",
        "set_cookie",
        "query_string",
        "email",
        "ip_address",
        "password",
        "secret",
        "token",
        "api_key",
        "x_api_key",
        "x_goog_api_key",
        "anthropic_api_key",
        "dsn",
    ]
    .contains(&k.as_str())
}

/// Scrubs a JSON document in place: sensitive fields go, every remaining string is scrubbed.
pub fn scrub_json(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = scrub(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_json),
        Value::Object(map) => {
            map.retain(|k, _| !is_sensitive_key(k));
            // Header lists come as [name, value] pairs: a pair naming a sensitive header goes.
            map.values_mut().for_each(scrub_json);
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    if let Value::Array(items) = value {
        items.retain(|item| !matches!(item, Value::Array(pair) if pair.len() == 2 && pair[0].as_str().is_some_and(is_sensitive_key)));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_tokens_cookies_and_emails_are_replaced_and_the_rest_kept() {
        let cases = [
            ("refused key sk-admin-AbCdEf0123456789xyz for org", "refused key [key] for org"),
            ("anthropic sk-ant-admin01-Zz9_yy8-XX", "anthropic [key]"),
            ("aws AKIAIOSFODNN7EXAMPLE denied", "aws [key] denied"),
            ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secret [key]"),
            ("Authorization: Bearer brk_0123456789abcdef_tokentoken", "Authorization: [redacted] [redacted]"),
            ("Cookie: __Host-burnrate_session=abc; theme=dark\nnext line", "Cookie: [redacted]\nnext line"),
            ("login failed for Bob.Smith+x@example.co.uk today", "login failed for [email] today"),
            (
                "GET https://api.example.com/v1/costs?api_key=abc&start=1 failed",
                "GET https://api.example.com/v1/costs?[query] failed",
            ),
            ("db password=hunter2hunter2 host=x", "db password=[redacted] host=x"),
            (r#"{"token": "abc123"}"#, r#"{"token": "[redacted]"}"#),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- done", "[private key] done"),
            ("the provider answered 503 3 times", "the provider answered 503 3 times"),
        ];
        for (dirty, clean) in cases {
            assert_eq!(scrub(dirty), clean, "{dirty}");
        }
        assert!(matches!(scrub("nothing to hide"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_loses_sensitive_fields_and_keeps_its_shape() {
        let mut event = json!({
            "message": "sync failed: key sk-admin-AbCdEf0123456789xyz refused for ops@example.com",
            "request": {
                "url": "https://burnrate.example.com/sources?x=1",
                "cookies": "__Host-burnrate_session=abc",
                "query_string": "x=1",
                "headers": [["Authorization", "Bearer brk_x"], ["User-Agent", "curl/8"]],
            },
            "user": { "id": "u1", "email": "ops@example.com", "ip_address": "203.0.113.9" },
            "extra": { "error": "Cookie: session=s3cr3t", "attempts": 3 },
        });
        scrub_json(&mut event);
        assert_eq!(
            event,
            json!({
                "message": "sync failed: key [key] refused for [email]",
                "request": {
                    "url": "https://burnrate.example.com/sources?[query]",
                    "headers": [["User-Agent", "curl/8"]],
                },
                "user": { "id": "u1" },
                "extra": { "error": "Cookie: [redacted]", "attempts": 3 },
            })
        );
    }
}

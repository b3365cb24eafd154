//! Connector errors: which provider, which endpoint, which window, and what to do about it.

use burnrate_core::SyncWindow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// 401/403: the credential is wrong, revoked or lacks the admin permission.
    Credential { status: u16, detail: String },
    /// Still 429 after every retry.
    Throttled { attempts: u32 },
    /// Still 5xx after every retry.
    Server { status: u16, attempts: u32 },
    /// Another 4xx: the provider refused the request as sent.
    Rejected { status: u16, detail: String },
    /// The body is not the JSON the provider documents.
    Malformed(String),
    /// A single day's page is larger than the response cap (bytes).
    TooLarge(usize),
    /// Could not reach the provider at all.
    Network(String),
    /// The address is not allowed (S14).
    Egress(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} {endpoint} for {window}: {}", describe(provider, kind))]
pub struct SourceError {
    pub provider: &'static str,
    pub endpoint: &'static str,
    pub window: SyncWindow,
    pub kind: SourceErrorKind,
}

fn describe(provider: &str, kind: &SourceErrorKind) -> String {
    match kind {
        SourceErrorKind::Credential { status, detail } => {
            // What to check is the provider's own advice, registered beside its connector.
            let hint = crate::SourceKind::ALL
                .iter()
                .map(|k| k.provider())
                .find(|p| p.reports_as == provider)
                .map_or("check that it is a valid admin key with access to usage and costs", |p| p.credential_hint);
            format!("the credential was refused ({status}: {detail}); {hint}")
        }
        SourceErrorKind::Throttled { attempts } => {
            format!("still rate-limited after {attempts} attempts; the next sync will try again")
        }
        SourceErrorKind::Server { status, attempts } => {
            format!("the provider answered {status} {attempts} times; the next sync will try again")
        }
        SourceErrorKind::Rejected { status, detail } => {
            format!("the provider refused the request ({status}: {detail})")
        }
        SourceErrorKind::Malformed(detail) => format!("the response is not the documented JSON: {detail}"),
        SourceErrorKind::TooLarge(cap) => {
            format!("one day's report is larger than the response limit ({cap} bytes)")
        }
        SourceErrorKind::Network(detail) => format!("could not reach the provider: {detail}"),
        SourceErrorKind::Egress(detail) => format!("the address is not allowed: {detail}"),
    }
}

/// Provider error text may echo a masked key or other request data: keep it short and cut out
/// anything that looks like a key.
pub(crate) fn sanitize(message: &str) -> String {
    let cleaned: Vec<String> = message
        .split_whitespace()
        .map(|w| {
            let bare = w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
            if bare.starts_with("sk-")
                || bare.starts_with("AKIA")
                || bare.starts_with("whsec_")
                || (bare.len() >= 32 && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            {
                "[redacted]".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect();
    let joined = cleaned.join(" ");
    if joined.chars().count() > 200 { format!("{}…", joined.chars().take(200).collect::<String>()) } else { joined }
}

/// Maps a final HTTP reply that is not a success to an error kind.
pub(crate) fn classify(status: u16, attempts: u32, detail: String) -> SourceErrorKind {
    match status {
        401 | 403 => SourceErrorKind::Credential { status, detail },
        429 => SourceErrorKind::Throttled { attempts },
        500..=599 => SourceErrorKind::Server { status, attempts },
        _ => SourceErrorKind::Rejected { status, detail },
    }
}

pub(crate) fn fetch_error(e: burnrate_net::FetchError) -> SourceErrorKind {
    match e {
        burnrate_net::FetchError::Egress(e) => SourceErrorKind::Egress(e.to_string()),
        burnrate_net::FetchError::TooLarge(n) => SourceErrorKind::TooLarge(n),
        burnrate_net::FetchError::Unreachable { attempts, last } => {
            SourceErrorKind::Network(format!("{last} ({attempts} attempts)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_messages_lose_anything_key_like() {
        let s = sanitize("Incorrect API key provided: sk-admin-abc123XYZ. You can find your key at https://x");
        assert!(!s.contains("sk-admin"), "{s}");
        assert!(s.contains("Incorrect API key provided"));
        assert!(sanitize(&"word ".repeat(100)).chars().count() <= 201);
    }
}

//! Random tokens (sessions, resets, invitations, API keys) and their stored hashes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 bits from the operating system's CSPRNG, URL-safe base64 (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored instead of a token: its SHA-256. Tokens have 256 bits of entropy, so a fast
/// hash is enough (no dictionary to attack).
pub fn token_hash(token: &str) -> Vec<u8> {
    sha256(token.as_bytes()).to_vec()
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a).len(), 32);
    }
}

/// A token that names the organization it belongs to: `<prefix><org id as 32 hex>_<secret>`.
/// The organization part lets a lookup run inside that organization's scope (and its row-level
/// security) before anything is known about the caller; the secret part is what is checked, by
/// its hash. A forged organization part only finds nothing.
pub struct ScopedToken;

impl ScopedToken {
    pub fn generate(prefix: &str, org: burnrate_core::OrgId) -> String {
        format!("{prefix}{}_{}", org.as_uuid().simple(), random_token())
    }

    /// What is shown of a token so people can tell tokens apart: the prefix and the first six
    /// characters of the secret (never enough to guess the rest).
    pub fn display_prefix(prefix: &str, token: &str) -> String {
        let secret = &token[token.len().saturating_sub(43)..];
        format!("{prefix}{}", secret.chars().take(6).collect::<String>())
    }

    /// The organization a token claims, if it has the shape of a token with `prefix`.
    pub fn org(prefix: &str, token: &str) -> Option<burnrate_core::OrgId> {
        let rest = token.strip_prefix(prefix)?;
        let (org, secret) = rest.split_once('_')?;
        if org.len() != 32 || secret.len() != 43 {
            return None;
        }
        uuid::Uuid::try_parse(org).ok().map(burnrate_core::OrgId::from_uuid)
    }
}

#[cfg(test)]
mod scoped_tests {
    use super::*;

    #[test]
    fn scoped_tokens_carry_their_org() {
        let org = burnrate_core::OrgId::generate();
        let t = ScopedToken::generate("brk_", org);
        assert_eq!(ScopedToken::org("brk_", &t), Some(org));
        assert_eq!(ScopedToken::org("inv_", &t), None);
        assert_eq!(ScopedToken::org("brk_", "brk_nonsense"), None);
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn display_prefix_is_safe_for_secrets_that_contain_underscores() {
        // Base64url secrets contain '_' about one time in three per position: never split on it.
        let org = burnrate_core::OrgId::generate();
        for _ in 0..2_000 {
            let t = ScopedToken::generate("brk_", org);
            let shown = ScopedToken::display_prefix("brk_", &t);
            assert_eq!(shown.len(), 4 + 6);
            assert!(t.ends_with(&t[t.len() - 43..]) && t[t.len() - 43..].starts_with(&shown[4..]));
        }
    }
}

//! Data keys and sealed values.
//!
//! Sealed value layout: `[format = 1][data key version: u32 BE][nonce: 12][ciphertext + tag]`.
//! The associated data repeats the format and version and adds the context, so neither can be
//! swapped without the tag failing.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::CryptoError;

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 4 + 12;

/// A 256-bit data key in zeroizing memory.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::Malformed("data key is not 32 bytes"))?;
        Ok(Self(Zeroizing::new(key)))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// Seals `plaintext` for `context`; `version` is this data key's version.
    pub fn seal(&self, version: u32, context: &SealContext<'_>, plaintext: &[u8]) -> SealedSecret {
        let cipher = Aes256Gcm::new_from_slice(self.bytes()).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = context.aad(version);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .expect("AES-GCM encryption");
        let mut out = Vec::with_capacity(HEADER + ct.len());
        out.push(FORMAT);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        SealedSecret(out)
    }

    /// Opens a value sealed by this key for exactly this `context`.
    pub fn open(&self, context: &SealContext<'_>, sealed: &SealedSecret) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let version = sealed.key_version()?;
        let bytes = &sealed.0;
        let cipher = Aes256Gcm::new_from_slice(self.bytes()).expect("32-byte key");
        let aad = context.aad(version);
        cipher
            .decrypt(Nonce::from_slice(&bytes[5..HEADER]), Payload { msg: &bytes[HEADER..], aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }

    /// The keyed blind index derived from this key (S3): distinct from the sealing key.
    pub fn blind_index_key(&self) -> BlindIndexKey {
        let hk = Hkdf::<Sha256>::new(Some(b"burnrate"), self.bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(b"blind-index/v1", key.as_mut()).expect("32 bytes is a valid HKDF length");
        BlindIndexKey(key)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Where a sealed value lives; bound into the ciphertext as associated data.
#[derive(Clone, Copy, Debug)]
pub struct SealContext<'a> {
    /// The organization id, or `instance` for instance-wide rows.
    pub owner: &'a str,
    pub table: &'a str,
    pub column: &'a str,
    pub row: &'a str,
}

impl SealContext<'_> {
    fn aad(&self, version: u32) -> Vec<u8> {
        // Length-prefixed so that no two different contexts encode to the same bytes.
        let mut aad = vec![FORMAT];
        aad.extend_from_slice(&version.to_be_bytes());
        for part in [self.owner, self.table, self.column, self.row] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// A sealed value as stored. No `Display`; `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(Vec<u8>);

impl SealedSecret {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, CryptoError> {
        let s = Self(bytes);
        s.key_version()?;
        Ok(s)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn key_version(&self) -> Result<u32, CryptoError> {
        if self.0.len() < HEADER + 16 {
            return Err(CryptoError::Malformed("sealed value is too short"));
        }
        if self.0[0] != FORMAT {
            return Err(CryptoError::Malformed("unknown sealed-value format"));
        }
        Ok(u32::from_be_bytes(self.0[1..5].try_into().expect("4 bytes")))
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedSecret({} bytes)", self.0.len())
    }
}

/// HMAC-SHA-256 over a normalized value: equality lookups without storing the value (S3).
pub struct BlindIndexKey(Zeroizing<[u8; 32]>);

impl BlindIndexKey {
    pub fn index(&self, normalized: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()).expect("any key length");
        mac.update(normalized.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(owner: &'a str, row: &'a str) -> SealContext<'a> {
        SealContext { owner, table: "sources", column: "secret", row }
    }

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let key = DataKey::generate();
        let sealed = key.seal(3, &ctx("org-a", "row-1"), b"sk-live-secret");
        assert_eq!(sealed.key_version().unwrap(), 3);
        assert!(!sealed.as_bytes().windows(6).any(|w| w == b"sk-liv"));
        assert_eq!(&key.open(&ctx("org-a", "row-1"), &sealed).unwrap()[..], b"sk-live-secret");
    }

    #[test]
    fn a_value_moved_to_another_row_or_org_does_not_open() {
        let key = DataKey::generate();
        let sealed = key.seal(1, &ctx("org-a", "row-1"), b"secret");
        assert!(matches!(key.open(&ctx("org-a", "row-2"), &sealed), Err(CryptoError::Open)));
        assert!(matches!(key.open(&ctx("org-b", "row-1"), &sealed), Err(CryptoError::Open)));
        let other = SealContext { column: "other", ..ctx("org-a", "row-1") };
        assert!(matches!(key.open(&other, &sealed), Err(CryptoError::Open)));
    }

    #[test]
    fn a_tampered_version_does_not_open() {
        let key = DataKey::generate();
        let sealed = key.seal(1, &ctx("o", "r"), b"secret");
        let mut bytes = sealed.as_bytes().to_vec();
        bytes[4] = 2;
        let tampered = SealedSecret::from_bytes(bytes).unwrap();
        assert!(key.open(&ctx("o", "r"), &tampered).is_err());
    }

    #[test]
    fn blind_index_is_keyed_and_stable() {
        let a = DataKey::generate().blind_index_key();
        let b = DataKey::generate().blind_index_key();
        assert_eq!(a.index("x@example.com"), a.index("x@example.com"));
        assert_ne!(a.index("x@example.com"), b.index("x@example.com"));
    }
}

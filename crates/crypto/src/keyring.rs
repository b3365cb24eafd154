//! Master keys from `BURNRATE_MASTER_KEYS`: `kid:base64(32 bytes)`, comma-separated, the first is
//! active. The master key never wraps anything but data keys.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::envelope::DataKey;

pub struct MasterKey {
    kid: String,
    key: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    /// A fresh random key, printed by `burnrate keys generate` as `kid:base64`.
    pub fn generate(kid: &str) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self { kid: kid.to_owned(), key }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The `kid:base64` form, for the operator to put in the environment.
    pub fn export(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}:{}", self.kid, STANDARD.encode(self.key.as_ref())))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, <redacted>)", self.kid)
    }
}

/// The configured master keys; the first one wraps new data keys, all of them unwrap.
#[derive(Debug)]
pub struct MasterKeyRing {
    keys: Vec<MasterKey>,
}

/// A data key sealed by a master key, as stored in the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    pub kid: String,
    pub blob: Vec<u8>,
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl MasterKeyRing {
    /// Parses the value of `BURNRATE_MASTER_KEYS`. Errors say which entry is wrong and how, never
    /// echoing key material.
    pub fn parse(value: &str) -> Result<Self, CryptoError> {
        let mut keys = Vec::new();
        for (i, entry) in value.split(',').map(str::trim).enumerate() {
            let n = i + 1;
            if entry.is_empty() {
                return Err(CryptoError::MasterKeys(format!("entry {n} is empty")));
            }
            let (kid, b64) = entry
                .split_once(':')
                .ok_or_else(|| CryptoError::MasterKeys(format!("entry {n} is not of the form kid:base64")))?;
            if !valid_kid(kid) {
                return Err(CryptoError::MasterKeys(format!(
                    "entry {n}: key id must be 1-64 characters of letters, digits, '-', '_' or '.'"
                )));
            }
            let raw = Zeroizing::new(
                STANDARD
                    .decode(b64.trim())
                    .map_err(|_| CryptoError::MasterKeys(format!("entry {n} ({kid}): key is not valid base64")))?,
            );
            let key: [u8; 32] = raw.as_slice().try_into().map_err(|_| {
                CryptoError::MasterKeys(format!("entry {n} ({kid}): key must be 32 bytes, got {}", raw.len()))
            })?;
            if keys.iter().any(|k: &MasterKey| k.kid == kid) {
                return Err(CryptoError::MasterKeys(format!("key id {kid:?} appears twice")));
            }
            keys.push(MasterKey { kid: kid.to_owned(), key: Zeroizing::new(key) });
        }
        Ok(Self { keys })
    }

    pub fn active_kid(&self) -> &str {
        &self.keys[0].kid
    }

    fn aad(owner: &str, version: u32) -> Vec<u8> {
        format!("burnrate/data-key/v1|owner={owner}|version={version}").into_bytes()
    }

    /// Wraps `key` (owner's data key `version`) under the active master key.
    pub fn wrap(&self, key: &DataKey, owner: &str, version: u32) -> WrappedKey {
        let master = &self.keys[0];
        let cipher = Aes256Gcm::new_from_slice(master.key.as_ref()).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(owner, version);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.bytes(), aad: &aad })
            // Encryption with a valid key and nonce cannot fail for inputs of this size.
            .expect("AES-GCM encryption of a data key");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        WrappedKey { kid: master.kid.clone(), blob }
    }

    pub fn unwrap(&self, wrapped: &WrappedKey, owner: &str, version: u32) -> Result<DataKey, CryptoError> {
        let master = self
            .keys
            .iter()
            .find(|k| k.kid == wrapped.kid)
            .ok_or_else(|| CryptoError::UnknownKeyId(wrapped.kid.clone()))?;
        if wrapped.blob.len() < 12 + 16 {
            return Err(CryptoError::Malformed("wrapped data key is too short"));
        }
        let (nonce, ct) = wrapped.blob.split_at(12);
        let cipher = Aes256Gcm::new_from_slice(master.key.as_ref()).expect("32-byte key");
        let aad = Self::aad(owner, version);
        let plain = Zeroizing::new(
            cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad }).map_err(|_| CryptoError::Open)?,
        );
        DataKey::from_slice(&plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[&MasterKey]) -> MasterKeyRing {
        let spec: Vec<String> = keys.iter().map(|k| k.export().to_string()).collect();
        MasterKeyRing::parse(&spec.join(",")).unwrap()
    }

    #[test]
    fn parse_errors_name_the_entry_and_problem() {
        let e = MasterKeyRing::parse("k1:AAAA").unwrap_err().to_string();
        assert!(e.contains("entry 1 (k1): key must be 32 bytes"), "{e}");
        let e = MasterKeyRing::parse("nocolon").unwrap_err().to_string();
        assert!(e.contains("entry 1 is not of the form kid:base64"), "{e}");
        let e = MasterKeyRing::parse("k1:!!!").unwrap_err().to_string();
        assert!(e.contains("not valid base64"), "{e}");
    }

    #[test]
    fn old_key_unwraps_until_rewrapped_then_only_new_key_is_needed() {
        let old = MasterKey::generate("old");
        let new = MasterKey::generate("new");
        let data_key = DataKey::generate();
        let wrapped = ring(&[&old]).wrap(&data_key, "org-1", 1);

        let both = ring(&[&new, &old]);
        let opened = both.unwrap(&wrapped, "org-1", 1).unwrap();
        assert_eq!(opened.bytes(), data_key.bytes());

        let rewrapped = both.wrap(&opened, "org-1", 1);
        assert_eq!(rewrapped.kid, "new");
        assert!(ring(&[&new]).unwrap(&rewrapped, "org-1", 1).is_ok());
        assert!(matches!(ring(&[&new]).unwrap(&wrapped, "org-1", 1), Err(CryptoError::UnknownKeyId(_))));
    }

    #[test]
    fn wrapped_key_is_bound_to_its_owner() {
        let k = MasterKey::generate("k");
        let r = ring(&[&k]);
        let wrapped = r.wrap(&DataKey::generate(), "org-a", 1);
        assert!(matches!(r.unwrap(&wrapped, "org-b", 1), Err(CryptoError::Open)));
    }
}

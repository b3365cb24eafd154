//! Cryptography of burnrate (S1, S3, S4, S9, S12).
//!
//! Envelope encryption: the master keys from the environment wrap per-owner *data keys* (one per
//! organization, plus one for instance-wide rows such as login emails); data keys seal values.
//! Every sealed value binds its context (owner, table, column, row, key version) as associated
//! data, so a ciphertext copied to another row or tenant fails to open. Rotating the master key
//! only re-wraps data keys; deleting an organization's data key makes its sealed data unreadable.
//!
//! This crate never logs, and none of its secret-holding types implement `Display`.

mod envelope;
mod keyring;
mod password;
mod scram;
mod token;
mod totp;

pub use envelope::{BlindIndexKey, DataKey, SealContext, SealedSecret};
pub use keyring::{MasterKey, MasterKeyRing, WrappedKey};
pub use password::{PasswordHasher, PasswordHasherConfig};
pub use scram::{ScramVerifier, random_sql_password};
pub use token::{ScopedToken, random_token, sha256, token_hash};
pub use totp::{TotpSecret, totp_step};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("BURNRATE_MASTER_KEYS: {0}")]
    MasterKeys(String),
    #[error("no master key with id {0:?} is configured in BURNRATE_MASTER_KEYS")]
    UnknownKeyId(String),
    #[error("sealed value could not be opened: wrong key, or it was moved from another row or organization")]
    Open,
    #[error("sealed value is malformed: {0}")]
    Malformed(&'static str),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

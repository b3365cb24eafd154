//! SCRAM-SHA-256 verifiers for SQL credentials (S11, RFC 5802 / RFC 7677).
//!
//! Only the verifier is stored — salt, iteration count, StoredKey and ServerKey — in
//! PostgreSQL's own text form, so the server can check a client's proof and prove itself back
//! without holding anything a client could log in with.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

use crate::CryptoError;

type HmacSha256 = Hmac<Sha256>;

/// A stored SCRAM-SHA-256 verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramVerifier").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl ScramVerifier {
    /// PostgreSQL's default; the password is 40 random characters, so the count guards nothing
    /// a dictionary could reach and more would only slow every login.
    pub const ITERATIONS: u32 = 4096;

    /// A verifier for `password` with a fresh random salt.
    pub fn new(password: &str) -> Self {
        let mut salt = vec![0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        Self::derive(password, salt, Self::ITERATIONS)
    }

    /// `password` must already be in SASLprep form; the passwords burnrate generates are ASCII
    /// letters and digits, which SASLprep leaves as they are.
    pub fn derive(password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let salted = hi(password.as_bytes(), &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        Self { salt, iterations, stored_key, server_key }
    }

    /// PostgreSQL's `pg_authid.rolpassword` form:
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64 throughout.
    pub fn encode(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }

    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let bad = || CryptoError::Malformed("SCRAM verifier");
        let rest = text.strip_prefix("SCRAM-SHA-256$").ok_or_else(bad)?;
        let (params, keys) = rest.split_once('$').ok_or_else(bad)?;
        let (iterations, salt) = params.split_once(':').ok_or_else(bad)?;
        let (stored, server) = keys.split_once(':').ok_or_else(bad)?;
        let key = |s: &str| -> Result<[u8; 32], CryptoError> {
            STANDARD.decode(s).ok().and_then(|k| k.try_into().ok()).ok_or_else(bad)
        };
        Ok(Self {
            iterations: iterations.parse().ok().filter(|&i| i > 0).ok_or_else(bad)?,
            salt: STANDARD.decode(salt).map_err(|_| bad())?,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }
}

/// A password for a SQL credential: 40 letters and digits from the operating system's CSPRNG
/// (about 238 bits), safe to paste into a connection string without quoting.
pub fn random_sql_password() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 40)
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// RFC 5802's Hi(): PBKDF2 with HMAC-SHA-256 and one output block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(password).expect("HMAC takes any key length");
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        out.iter_mut().zip(u).for_each(|(o, b)| *o ^= b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3's exchange: user "user", password "pencil", this salt, 4096 iterations. The
    /// client proof and server signature below are the RFC's; both follow from the verifier.
    #[test]
    fn verifier_reproduces_the_rfc_7677_exchange() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = ScramVerifier::derive("pencil", salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = hmac(&v.server_key, auth_message.as_bytes());
        assert_eq!(STANDARD.encode(server_signature), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        // ClientProof = ClientKey XOR ClientSignature, and SHA-256(ClientKey) must be StoredKey.
        let proof = STANDARD.decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=").unwrap();
        let signature = hmac(&v.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&client_key)), v.stored_key);
    }

    #[test]
    fn verifiers_round_trip_in_postgres_text_form_and_refuse_garbage() {
        let v = ScramVerifier::new(&random_sql_password());
        let text = v.encode();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
        assert_eq!(ScramVerifier::parse(&text).unwrap(), v);
        for bad in
            ["", "md5abc", "SCRAM-SHA-256$0:c2FsdA==$AA==:AA==", &text.replace('$', "#"), &text[..text.len() - 4]]
        {
            assert!(ScramVerifier::parse(bad).is_err(), "{bad}");
        }
        assert_ne!(ScramVerifier::new("same").salt, ScramVerifier::new("same").salt);
    }

    #[test]
    fn generated_passwords_are_long_plain_and_distinct() {
        let p = random_sql_password();
        assert_eq!(p.len(), 40);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(p, random_sql_password());
    }
}

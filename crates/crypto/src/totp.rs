//! Time-based one-time passwords (RFC 6238): the second factor of operators and, when they turn it
//! on, of users. HMAC-SHA-1, 30-second steps, six digits — what every authenticator app expects.
//!
//! A code is accepted for the step it belongs to and one step either side (clock drift), and the
//! caller records the step it was accepted for, so the same code cannot be used twice.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const STEP_SECONDS: i64 = 30;
const DIGITS: u32 = 6;
/// 160 bits, the key length RFC 4226 recommends for HMAC-SHA-1.
const SECRET_BYTES: usize = 20;

/// A shared TOTP secret. Never displayed except once, when it is set up.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(Zeroizing::new(bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as people type it into an authenticator app (RFC 4648 base32, no padding).
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32(&self.0))
    }

    /// The `otpauth://` URI an authenticator app reads (usually from a QR code).
    pub fn provisioning_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        Zeroizing::new(format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            enc(issuer),
            enc(account),
            self.base32().as_str(),
            enc(issuer)
        ))
    }

    /// The code for `step` (the number of 30-second steps since the Unix epoch).
    pub fn code_at_step(&self, step: i64) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(&step.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let offset = usize::from(digest[19] & 0x0f);
        let binary =
            u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
        format!("{:0width$}", binary % 10u32.pow(DIGITS), width = DIGITS as usize)
    }

    /// The step a code typed at `unix_seconds` matches (this step or one either side), if any.
    /// Spaces in the typed code are ignored; every candidate is compared in constant time.
    pub fn verify(&self, typed: &str, unix_seconds: i64) -> Option<i64> {
        let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = unix_seconds.div_euclid(STEP_SECONDS);
        let mut found = None;
        for step in [now - 1, now, now + 1] {
            if bool::from(self.code_at_step(step).as_bytes().ct_eq(typed.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }
}

/// The current step at `unix_seconds`.
pub fn totp_step(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B (SHA-1 seed), truncated to six digits as authenticator apps show.
    #[test]
    fn codes_match_the_rfc_test_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        for (time, eight_digits) in
            [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (2000000000, "69279037")]
        {
            assert_eq!(secret.code_at_step(totp_step(time)), eight_digits[2..], "T = {time}");
        }
        assert_eq!(secret.base32().as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_not_further() {
        let secret = TotpSecret::generate();
        let t = 1_800_000_000;
        let code = secret.code_at_step(totp_step(t));
        assert_eq!(secret.verify(&code, t), Some(totp_step(t)));
        assert_eq!(secret.verify(&format!("{} {}", &code[..3], &code[3..]), t + 30), Some(totp_step(t)));
        assert_eq!(secret.verify(&code, t - 30), Some(totp_step(t)));
        assert_eq!(secret.verify(&code, t + 90), None);
        assert_eq!(secret.verify("12345", t), None);
        assert_eq!(secret.verify("abcdef", t), None);
        let uri = secret.provisioning_uri("burnrate", "ops@example.com");
        assert!(uri.starts_with("otpauth://totp/burnrate:ops@example.com?secret="), "{}", uri.as_str());
    }
}

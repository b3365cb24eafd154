//! The password policy of S4: 12 to 128 characters and not guessable.
//!
//! Length is counted in characters, not bytes, so a passphrase in any script gets the same room;
//! bcrypt's 72-byte input limit is handled by pre-hashing in `crypto`, never by truncation.

use std::fmt;

use zxcvbn::Score;

pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// A password that has passed the policy. It has no `Display`, and its `Debug` is redacted.
pub struct NewPassword(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {PASSWORD_MIN_CHARS} characters long")]
    TooShort,
    #[error("password must be at most {PASSWORD_MAX_CHARS} characters long")]
    TooLong,
    #[error("password is too easy to guess{0}; try a longer phrase of unrelated words")]
    Weak(String),
}

impl NewPassword {
    /// Checks `raw` against the policy; `context` holds words a guesser would try first (the
    /// email address, the organization name).
    pub fn parse(raw: &str, context: &[&str]) -> Result<Self, PasswordError> {
        let chars = raw.chars().count();
        if chars < PASSWORD_MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > PASSWORD_MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        let estimate = zxcvbn::zxcvbn(raw, context);
        if estimate.score() < Score::Three {
            let hint = estimate.feedback().and_then(|f| f.warning()).map(|w| format!(" ({w})")).unwrap_or_default();
            return Err(PasswordError::Weak(hint));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_length_in_characters() {
        assert_eq!(NewPassword::parse("short", &[]).unwrap_err(), PasswordError::TooShort);
        assert_eq!(NewPassword::parse(&"x".repeat(200), &[]).unwrap_err(), PasswordError::TooLong);
        // 40 characters of a non-Latin script are 120 bytes: allowed, no truncation concern here.
        assert!(NewPassword::parse("ключевая фраза для проверки длины пароля", &[]).is_ok());
    }

    #[test]
    fn refuses_guessable_passwords() {
        assert!(matches!(NewPassword::parse("password1234", &[]), Err(PasswordError::Weak(_))));
        assert!(matches!(NewPassword::parse("alice@example.com", &["alice@example.com"]), Err(PasswordError::Weak(_))));
        assert!(NewPassword::parse("correct horse battery staple", &[]).is_ok());
    }
}

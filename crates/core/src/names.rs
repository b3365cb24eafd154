//! Human-chosen names (organizations), bounded and free of control characters.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgName(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("organization name is empty")]
    Empty,
    #[error("organization name is longer than 100 characters")]
    TooLong,
    #[error("organization name contains a control character")]
    BadCharacter,
}

impl OrgName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.chars().count() > 100 {
            return Err(NameError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(NameError::BadCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

//! A provider setting that only ever holds a valid value: parsed when a person enters it and again
//! when it is read back from storage, so a corrupt row is refused by name instead of reaching a
//! provider's API.

/// Declares a setting type: `$check` turns raw text into the value kept (trimmed, normalized) or
/// says, for a person, what was expected.
macro_rules! setting {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, &'static str> {
                let check: fn(&str) -> Result<String, &'static str> = $check;
                check(raw).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = &'static str;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub(crate) use setting;

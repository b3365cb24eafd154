//! Identifiers: UUIDv7 (time-ordered) newtypes, one per entity, so an organization id can never be
//! passed where a user id is expected. Ids are not secrets; tokens come from the CSPRNG in `crypto`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A connected source: a provider's billing API or one of the organization's databases.
    SourceId
);
id_type!(
    /// A webhook destination of one organization.
    WebhookId
);
id_type!(
    /// One event's delivery to one webhook destination, with its attempts.
    DeliveryId
);
id_type!(
    /// A budget of one organization.
    BudgetId
);
id_type!(
    /// An organization: the tenant. Every tenant-scoped row carries one.
    OrgId
);
id_type!(
    /// A person's account; it may belong to several organizations through memberships.
    UserId
);
id_type!(
    /// A public API key of one organization.
    ApiKeyId
);
id_type!(
    /// An OpenTelemetry ingest key of one organization: it writes requests and reads nothing (S26).
    IngestKeyId
);
id_type!(
    /// An invitation of an email address into an organization.
    InvitationId
);
id_type!(
    /// An instance operator (staff of whoever runs the instance); not a member of any organization.
    OperatorId
);
id_type!(
    /// A support grant: an operator's time-boxed, read-only access to one organization (S18).
    SupportGrantId
);

/// A credential for external SQL clients (S11). It is also the Postgres user name the client
/// logs in with, `brs_` and 32 hex digits: random (UUIDv4, not time-ordered), so a user name
/// says nothing about when or for whom it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SqlCredentialId(Uuid);

impl SqlCredentialId {
    const PREFIX: &'static str = "brs_";

    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for SqlCredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0.simple())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a SQL credential id: expected brs_ followed by 32 hex digits")]
pub struct SqlCredentialIdError;

impl FromStr for SqlCredentialId {
    type Err = SqlCredentialIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix(Self::PREFIX).ok_or(SqlCredentialIdError)?;
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SqlCredentialIdError);
        }
        Uuid::try_parse(hex).map(Self).map_err(|_| SqlCredentialIdError)
    }
}

impl Serialize for SqlCredentialId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SqlCredentialId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_credential_ids_round_trip_as_user_names() {
        let id = SqlCredentialId::generate();
        let name = id.to_string();
        assert!(name.starts_with("brs_") && name.len() == 36, "{name}");
        assert_eq!(name.parse::<SqlCredentialId>().unwrap(), id);
        for bad in ["", "brs_", "postgres", "brs_zz", &name.replace("brs_", "brk_"), &format!("{name}0")] {
            assert!(bad.parse::<SqlCredentialId>().is_err(), "{bad}");
        }
    }
}

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
    /// An invitation of an email address into an organization.
    InvitationId
);

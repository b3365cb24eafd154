//! Roles of a member in an organization (S10) and scopes of API keys (S12).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role. Ordered from most to least powerful: `Owner > Admin > Member > Viewer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Member => 1,
            Role::Viewer => 0,
        }
    }

    /// True when this role is at least as powerful as `other`.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    /// Owners and admins manage members, credentials and budgets.
    pub fn is_admin(self) -> bool {
        self.at_least(Role::Admin)
    }

    /// Whether a member with this role may give `target` to someone: admins may grant up to admin,
    /// only owners may make owners.
    pub fn may_grant(self, target: Role) -> bool {
        self.is_admin() && self.at_least(target)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// The weaker of two roles: what a credential created by a member may do once that member's
    /// own role has dropped.
    pub fn min(self, other: Role) -> Role {
        if self.rank() <= other.rank() { self } else { other }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}: expected owner, admin, member or viewer")]
pub struct ParseRoleError(String);

impl FromStr for Role {
    type Err = ParseRoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "viewer" => Ok(Role::Viewer),
            _ => Err(ParseRoleError(s.to_owned())),
        }
    }
}

/// What a public API key may do. `Read ⊂ Write ⊂ Admin`; the key's power is also capped by the
/// current role of the member who created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiScope {
    Read,
    Write,
    Admin,
}

impl ApiScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Read => "read",
            ApiScope::Write => "write",
            ApiScope::Admin => "admin",
        }
    }

    fn rank(self) -> u8 {
        match self {
            ApiScope::Read => 0,
            ApiScope::Write => 1,
            ApiScope::Admin => 2,
        }
    }

    pub fn allows(self, needed: ApiScope) -> bool {
        self.rank() >= needed.rank()
    }

    /// The most a member of `role` may hand to a key.
    pub fn ceiling_for(role: Role) -> Option<ApiScope> {
        match role {
            Role::Owner | Role::Admin => Some(ApiScope::Admin),
            Role::Member => Some(ApiScope::Write),
            Role::Viewer => Some(ApiScope::Read),
        }
    }
}

impl FromStr for ApiScope {
    type Err = ParseRoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(ApiScope::Read),
            "write" => Ok(ApiScope::Write),
            "admin" => Ok(ApiScope::Admin),
            _ => Err(ParseRoleError(s.to_owned())),
        }
    }
}

impl fmt::Display for ApiScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_cannot_make_owners_but_owners_can() {
        assert!(Role::Owner.may_grant(Role::Owner));
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(Role::Admin.may_grant(Role::Admin));
        assert!(!Role::Member.may_grant(Role::Viewer));
    }

    #[test]
    fn scopes_nest() {
        assert!(ApiScope::Admin.allows(ApiScope::Write));
        assert!(!ApiScope::Read.allows(ApiScope::Write));
    }
}

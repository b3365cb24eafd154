//! Who acts: a member in one organization, through a browser session or an API key. Every
//! service takes one; its scope is the only way to the organization's data, and its audit entry
//! is written from it.

use burnrate_core::{ApiKeyId, Role, UserId};
use burnrate_store::{ActorType, AuditAction, NewAuditEntry, OrgScope};
use serde_json::Value;

use crate::error::{Error, Result};

/// How the actor reached us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// A logged-in browser session.
    Session,
    /// A public API key, acting with its scope capped by its creator's current role.
    ApiKey { id: ApiKeyId, name: String },
    /// A command run on the instance on the member's behalf (`burnrate demo` seeding its
    /// organization as its owner would).
    Command(&'static str),
}

#[derive(Clone, Debug)]
pub struct Actor {
    pub scope: OrgScope,
    /// The role this actor acts with (an API key: the role its scope stands for).
    pub role: Role,
    /// The member behind the act (for an API key, the member who made it).
    pub member: UserId,
    pub via: Via,
    /// Where the request came from, for the audit log.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Actor {
    /// The actor as the audit log names it: never an email or a secret.
    pub fn audit_actor(&self) -> burnrate_store::Actor {
        match &self.via {
            Via::Session => burnrate_store::Actor {
                kind: ActorType::User,
                id: Some(self.member.to_string()),
                label: format!("user {}", &self.member.to_string()[..8]),
            },
            Via::ApiKey { id, name } => burnrate_store::Actor {
                kind: ActorType::ApiKey,
                id: Some(id.to_string()),
                label: format!("API key {name}"),
            },
            Via::Command(command) => burnrate_store::Actor {
                kind: ActorType::User,
                id: Some(self.member.to_string()),
                label: format!("user {} ({command})", &self.member.to_string()[..8]),
            },
        }
    }

    /// An audit entry for an action of this actor on a target.
    pub fn entry(
        &self,
        action: AuditAction,
        target_type: &'static str,
        target_id: String,
        details: Value,
    ) -> NewAuditEntry {
        NewAuditEntry {
            actor: self.audit_actor(),
            action,
            target_type: Some(target_type),
            target_id: Some(target_id),
            details,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }

    pub fn require_admin(&self) -> Result<()> {
        if self.role.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("This needs the admin or owner role; you act as {}.", self.role)))
        }
    }
}

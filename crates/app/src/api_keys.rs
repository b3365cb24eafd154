//! API keys (S12): made by admins up to their own role's scope, shown once, stored hashed,
//! revocable. A key acts with its scope capped by its creator's current role, and dies with its
//! creator's membership ([`crate::members`]).

use burnrate_core::{ApiKeyId, ApiScope};
use burnrate_crypto::{ScopedToken, token_hash};
pub use burnrate_store::ApiKeyRecord;
use burnrate_store::AuditAction;
use serde_json::json;

use crate::{Actor, App, Error, Result};

pub const API_KEY_PREFIX: &str = "brk_";

/// A label people give a key or a credential: 1 to 100 characters, no control characters.
pub fn label(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid("name", "Name: 1 to 100 characters, no control characters."));
    }
    Ok(name.to_owned())
}

/// A key as it is handed over, once.
pub struct NewApiKey {
    pub id: ApiKeyId,
    /// The key itself: exists only in this value.
    pub key: String,
    /// What lists show of it.
    pub prefix: String,
}

impl App {
    pub async fn create_api_key(&self, actor: &Actor, name: &str, scope: ApiScope) -> Result<NewApiKey> {
        actor.require_admin()?;
        let name = label(name)?;
        let ceiling = ApiScope::ceiling_for(actor.role).unwrap_or(ApiScope::Read);
        if !ceiling.allows(scope) {
            return Err(Error::Forbidden(format!("You can create keys up to the {ceiling} scope.")));
        }
        let org = actor.scope;
        let key = ScopedToken::generate(API_KEY_PREFIX, org.org_id());
        let prefix = ScopedToken::display_prefix(API_KEY_PREFIX, &key);
        let mut tx = self.store.tenant(org).await?;
        let id = tx.create_api_key(&name, &prefix, &token_hash(&key), scope, actor.member).await?;
        tx.audit(actor.entry(
            AuditAction::ApiKeyCreated,
            "api_key",
            id.to_string(),
            json!({ "name": name, "scope": scope }),
        ))
        .await?;
        tx.commit().await?;
        Ok(NewApiKey { id, key, prefix })
    }

    pub async fn revoke_api_key(&self, actor: &Actor, id: ApiKeyId) -> Result<()> {
        self.admin_change(actor, ("api_key", id.to_string()), AuditAction::ApiKeyRevoked, async |tx| {
            Ok(tx.revoke_api_key(id).await?)
        })
        .await
    }
}

impl App {
    /// The organization's API keys, revoked ones too (admins).
    pub async fn api_keys(&self, actor: &Actor) -> Result<Vec<ApiKeyRecord>> {
        actor.require_admin()?;
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let keys = tx.api_keys().await?;
        tx.commit().await?;
        Ok(keys)
    }
}

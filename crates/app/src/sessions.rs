//! Who is calling: a member's browser session, or an API key. Read on every request, so that a
//! demotion, a removal or a revoked key takes effect at once.

use burnrate_core::{ApiKeyId, ApiScope, EmailAddress, Role, UserId};
use burnrate_crypto::{ScopedToken, token_hash};
use burnrate_store::OrgScope;
use chrono::{Duration, Utc};
use uuid::Uuid;

use crate::api_keys::API_KEY_PREFIX;
use crate::{App, Result};

/// A member signed in to one organization, as their session says on this request.
pub struct SignedIn {
    pub user_id: UserId,
    pub scope: OrgScope,
    /// Read now: a role changed since sign-in applies to this request.
    pub role: Role,
    pub org_name: String,
    pub email: EmailAddress,
    /// The session's handle (not its secret), to mark it as "this browser".
    pub handle: Uuid,
    /// Sources whose last sync failed, named on every page.
    pub failing_sources: Vec<String>,
}

/// An API key that may be used now.
pub struct KeyHolder {
    pub scope: OrgScope,
    pub key_id: ApiKeyId,
    pub key_name: String,
    /// The key's scope, capped by the current role of the member who created it.
    pub allowed: ApiScope,
    pub created_by: UserId,
}

/// Writes a session's or a key's last use at most once a minute, not on every request.
const LAST_USE_GRANULARITY: i64 = 60;

impl App {
    /// The member whose session `token` is, while it is neither expired nor idle longer than
    /// `idle` and they are still a member; an ended session is deleted.
    pub async fn signed_in(&self, token: &str, idle: Duration) -> Result<Option<SignedIn>> {
        let hash = token_hash(token);
        // Every page reads; only an ended session or, once a minute, its last-seen time writes,
        // each in a transaction of its own after this one.
        let mut tx = self.store.read_instance().await?;
        let Some(session) = tx.session(&hash).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        let membership = tx.membership(session.user_id, session.org_id).await?;
        let Some((scope, role)) = membership.filter(|_| now < session.expires_at && now - session.last_seen_at <= idle)
        else {
            drop(tx);
            let mut tx = self.store.instance().await?;
            tx.delete_session(&hash).await?;
            tx.commit().await?;
            return Ok(None);
        };
        let org_name = tx.org(session.org_id).await?.map(|o| o.name).unwrap_or_default();
        let email = tx.user_email(&self.vault, session.user_id).await?;
        // The same transaction, now in the organization's scope: one round of the database per request.
        let mut tx = tx.into_tenant(scope).await?;
        let failing_sources = tx.failing_source_names().await?;
        tx.commit().await?;
        if now - session.last_seen_at > Duration::seconds(LAST_USE_GRANULARITY) {
            let mut tx = self.store.instance().await?;
            tx.touch_session(&hash, now).await?;
            tx.commit().await?;
        }
        Ok(Some(SignedIn {
            user_id: session.user_id,
            scope,
            role,
            org_name,
            email,
            handle: session.handle,
            failing_sources,
        }))
    }

    /// The key `token` is, while it is not revoked and its creator is still a member (the key
    /// dies with the membership); `None` otherwise.
    pub async fn api_key_holder(&self, token: &str) -> Result<Option<KeyHolder>> {
        let Some(org) = ScopedToken::org(API_KEY_PREFIX, token) else { return Ok(None) };
        let mut tx = self.store.read_tenant(OrgScope::trusted(org)).await?;
        let Some(holder) = tx.api_key_by_hash(&token_hash(token)).await? else { return Ok(None) };
        let key = holder.key;
        let (None, Some(creator_role)) = (key.revoked_at, holder.creator_role) else { return Ok(None) };
        let ceiling = ApiScope::ceiling_for(creator_role).unwrap_or(ApiScope::Read);
        let allowed = if key.scope.allows(ceiling) { ceiling } else { key.scope };
        let scope = tx.scope();
        tx.commit().await?;
        if key.last_used_at.is_none_or(|t| Utc::now() - t > Duration::seconds(LAST_USE_GRANULARITY)) {
            let mut tx = self.store.tenant(scope).await?;
            tx.touch_api_key(key.id).await?;
            tx.commit().await?;
        }
        Ok(Some(KeyHolder { scope, key_id: key.id, key_name: key.name, allowed, created_by: key.created_by }))
    }
}

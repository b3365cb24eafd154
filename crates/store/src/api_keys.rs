//! Public API keys (S12): random, shown once, stored as SHA-256, scoped, revocable, last use kept.

use burnrate_core::{ApiKeyId, ApiScope, Role, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::accounts::{now, parse_role};
use crate::{Result, StoreError, TenantTx, on};

#[derive(Clone, Debug)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub name: String,
    /// The first characters of the key, shown so a person can tell keys apart.
    pub prefix: String,
    pub scope: ApiScope,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    scope: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// A key found by its hash, with the current role of the member who made it (`None` once they
/// have left the organization): all that authenticating a call reads, in one query.
#[derive(Clone, Debug)]
pub struct ApiKeyHolder {
    pub key: ApiKeyRecord,
    pub creator_role: Option<Role>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyHolderRow {
    #[sqlx(flatten)]
    key: ApiKeyRow,
    creator_role: Option<String>,
}

impl TryFrom<ApiKeyRow> for ApiKeyRecord {
    type Error = StoreError;
    fn try_from(r: ApiKeyRow) -> Result<Self> {
        Ok(Self {
            id: ApiKeyId::from_uuid(r.id),
            name: r.name,
            prefix: r.prefix,
            scope: r.scope.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))?,
            created_by: UserId::from_uuid(r.created_by),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        })
    }
}

impl TenantTx {
    pub async fn create_api_key(
        &mut self,
        name: &str,
        prefix: &str,
        key_hash: &[u8],
        scope: ApiScope,
        created_by: UserId,
    ) -> Result<ApiKeyId> {
        let id = ApiKeyId::generate();
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO api_keys (id, org_id, name, prefix, key_hash, scope, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(id.as_uuid()).bind(self.scope.org_id().as_uuid()).bind(name).bind(prefix).bind(key_hash).bind(scope.as_str())
            .bind(created_by.as_uuid()).bind(now()).execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    pub async fn api_keys(&mut self) -> Result<Vec<ApiKeyRecord>> {
        let rows: Vec<ApiKeyRow> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT id, name, prefix, scope, created_by, created_at, last_used_at, revoked_at FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC")
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// The key with this hash in this organization, revoked or not, and its creator's role.
    pub async fn api_key_by_hash(&mut self, key_hash: &[u8]) -> Result<Option<ApiKeyHolder>> {
        let row: Option<ApiKeyHolderRow> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT k.id, k.name, k.prefix, k.scope, k.created_by, k.created_at, k.last_used_at, k.revoked_at, m.role AS creator_role \
             FROM api_keys k LEFT JOIN memberships m ON m.org_id = k.org_id AND m.user_id = k.created_by \
             WHERE k.org_id = $1 AND k.key_hash = $2")
            .bind(self.scope.org_id().as_uuid()).bind(key_hash).fetch_optional(c).await)?;
        row.map(|r| {
            Ok(ApiKeyHolder {
                key: r.key.try_into()?,
                creator_role: r.creator_role.as_deref().map(parse_role).transpose()?,
            })
        })
        .transpose()
    }

    pub async fn api_key(&mut self, id: ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        let row: Option<ApiKeyRow> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT id, name, prefix, scope, created_by, created_at, last_used_at, revoked_at FROM api_keys WHERE org_id = $1 AND id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).fetch_optional(c).await)?;
        row.map(TryInto::try_into).transpose()
    }

    /// Revokes a live key of this organization; false if there is none with that id.
    pub async fn revoke_api_key(&mut self, id: ApiKeyId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(now()).bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Revokes every live key `user` made in this organization; returns how many.
    pub async fn revoke_api_keys_of(&mut self, user: UserId) -> Result<u64> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND created_by = $3 AND revoked_at IS NULL")
            .bind(now()).bind(self.scope.org_id().as_uuid()).bind(user.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }

    pub async fn touch_api_key(&mut self, id: ApiKeyId) -> Result<()> {
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(now()).bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }
}

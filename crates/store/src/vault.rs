//! Data keys: created on first use, wrapped by the active master key, cached unwrapped in memory.
//!
//! The instance data key seals instance-wide rows (login emails, queued mail) and derives the
//! blind index of emails; each organization's data key seals that organization's rows. Rotating the
//! master key ([`Vault::rewrap_all`]) re-wraps data keys and leaves sealed values untouched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use burnrate_core::EmailAddress;
use burnrate_crypto::{DataKey, MasterKeyRing, SealContext, SealedSecret, WrappedKey};
use chrono::Utc;
use zeroize::Zeroizing;

use crate::{InstanceTx, OrgScope, Result, Store, StoreError, TenantTx, Tx, on};

const INSTANCE: &str = "instance";

pub struct Vault {
    ring: MasterKeyRing,
    cache: Mutex<HashMap<(String, u32), Arc<DataKey>>>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    version: i64,
    kid: String,
    wrapped: Vec<u8>,
}

impl Vault {
    pub fn new(ring: MasterKeyRing) -> Self {
        Self { ring, cache: Mutex::new(HashMap::new()) }
    }

    pub fn ring(&self) -> &MasterKeyRing {
        &self.ring
    }

    fn cached(&self, owner: &str, version: u32) -> Option<Arc<DataKey>> {
        self.cache.lock().expect("vault cache lock").get(&(owner.to_owned(), version)).cloned()
    }

    fn remember(&self, owner: &str, version: u32, key: DataKey) -> Arc<DataKey> {
        let key = Arc::new(key);
        self.cache.lock().expect("vault cache lock").insert((owner.to_owned(), version), Arc::clone(&key));
        key
    }

    /// The data key of `owner` (an org id or `instance`) at `version`, or the newest when `None`,
    /// creating version 1 when the owner has none yet.
    async fn key(&self, tx: &mut Tx, owner: &str, version: Option<u32>) -> Result<(u32, Arc<DataKey>)> {
        if let Some(v) = version
            && let Some(k) = self.cached(owner, v)
        {
            return Ok((v, k));
        }
        // Instance keys have no owner column; an organization's keys are always looked up with
        // its id (SQLite has no row-level security to fall back on).
        let org: Option<uuid::Uuid> = match owner {
            INSTANCE => None,
            _ => Some(owner.parse().map_err(|_| StoreError::Corrupt(format!("bad key owner {owner}")))?),
        };
        let row: Option<KeyRow> = match (org, version) {
            (None, None) => {
                on!(tx, c => sqlx::query_as("SELECT version, kid, wrapped FROM instance_keys ORDER BY version DESC LIMIT 1").fetch_optional(c).await)?
            }
            (None, Some(v)) => {
                on!(tx, c => sqlx::query_as("SELECT version, kid, wrapped FROM instance_keys WHERE version = $1").bind(i64::from(v)).fetch_optional(c).await)?
            }
            (Some(org), None) => {
                on!(tx, c => sqlx::query_as("SELECT version, kid, wrapped FROM org_keys WHERE org_id = $1 ORDER BY version DESC LIMIT 1").bind(org).fetch_optional(c).await)?
            }
            (Some(org), Some(v)) => {
                on!(tx, c => sqlx::query_as("SELECT version, kid, wrapped FROM org_keys WHERE org_id = $1 AND version = $2").bind(org).bind(i64::from(v)).fetch_optional(c).await)?
            }
        };
        let row = match (row, version) {
            (Some(row), _) => row,
            (None, Some(v)) => {
                return Err(StoreError::Corrupt(format!("data key version {v} of {owner} is missing (shredded?)")));
            }
            (None, None) => self.create(tx, owner).await?,
        };
        let version = u32::try_from(row.version).map_err(|_| StoreError::Corrupt("negative key version".into()))?;
        if let Some(k) = self.cached(owner, version) {
            return Ok((version, k));
        }
        let key = self.ring.unwrap(&WrappedKey { kid: row.kid, blob: row.wrapped }, owner, version)?;
        Ok((version, self.remember(owner, version, key)))
    }

    async fn create(&self, tx: &mut Tx, owner: &str) -> Result<KeyRow> {
        let key = DataKey::generate();
        let wrapped = self.ring.wrap(&key, owner, 1);
        let now = Utc::now();
        if owner == INSTANCE {
            on!(tx, c => sqlx::query("INSERT INTO instance_keys (version, kid, wrapped, created_at) VALUES (1, $1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(&wrapped.kid).bind(&wrapped.blob).bind(now).execute(c).await.map(|_| ()))?;
            on!(tx, c => sqlx::query_as("SELECT version, kid, wrapped FROM instance_keys WHERE version = 1").fetch_one(c).await).map_err(Into::into)
        } else {
            let org: uuid::Uuid = owner.parse().map_err(|_| StoreError::Corrupt(format!("bad key owner {owner}")))?;
            on!(tx, c => sqlx::query("INSERT INTO org_keys (org_id, version, kid, wrapped, created_at) VALUES ($1, 1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(org).bind(&wrapped.kid).bind(&wrapped.blob).bind(now).execute(c).await.map(|_| ()))?;
            on!(tx, c => sqlx::query_as("SELECT version, kid, wrapped FROM org_keys WHERE org_id = $1 AND version = 1").bind(org).fetch_one(c).await).map_err(Into::into)
        }
    }

    pub(crate) async fn seal_instance(
        &self,
        tx: &mut InstanceTx,
        table: &str,
        column: &str,
        row: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>> {
        let (version, key) = self.key(&mut tx.tx, INSTANCE, None).await?;
        let ctx = SealContext { owner: INSTANCE, table, column, row };
        Ok(key.seal(version, &ctx, plain).as_bytes().to_vec())
    }

    pub(crate) async fn open_instance(
        &self,
        tx: &mut InstanceTx,
        table: &str,
        column: &str,
        row: &str,
        sealed: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let sealed = SealedSecret::from_bytes(sealed)?;
        let (_, key) = self.key(&mut tx.tx, INSTANCE, Some(sealed.key_version()?)).await?;
        let ctx = SealContext { owner: INSTANCE, table, column, row };
        Ok(key.open(&ctx, &sealed)?)
    }

    pub(crate) async fn seal_org(
        &self,
        tx: &mut TenantTx,
        table: &str,
        column: &str,
        row: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>> {
        let owner = tx.org_id().to_string();
        let (version, key) = self.key(&mut tx.inner.tx, &owner, None).await?;
        let ctx = SealContext { owner: &owner, table, column, row };
        Ok(key.seal(version, &ctx, plain).as_bytes().to_vec())
    }

    pub(crate) async fn open_org(
        &self,
        tx: &mut TenantTx,
        table: &str,
        column: &str,
        row: &str,
        sealed: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let owner = tx.org_id().to_string();
        let sealed = SealedSecret::from_bytes(sealed)?;
        let (_, key) = self.key(&mut tx.inner.tx, &owner, Some(sealed.key_version()?)).await?;
        let ctx = SealContext { owner: &owner, table, column, row };
        Ok(key.open(&ctx, &sealed)?)
    }

    /// The blind index of an email address (S3), keyed by the instance data key, version 1.
    pub(crate) async fn email_index(&self, tx: &mut Tx, email: &EmailAddress) -> Result<Vec<u8>> {
        // The index key never changes with rotation: it derives from instance data key version 1.
        self.key(tx, INSTANCE, None).await?;
        let (_, key) = self.key(tx, INSTANCE, Some(1)).await?;
        Ok(key.blind_index_key().index(email.as_str()))
    }

    /// Re-wraps every data key not wrapped by the active master key (`burnrate keys rotate`).
    /// Until it finishes, the old master key must stay configured: it still unwraps what is left.
    pub async fn rewrap_all(&self, store: &Store) -> Result<usize> {
        let active = self.ring.active_kid().to_owned();
        let mut count = 0;
        let mut tx = store.instance().await?;
        let rows: Vec<KeyRow> =
            on!(&mut tx.tx, c => sqlx::query_as("SELECT version, kid, wrapped FROM instance_keys").fetch_all(c).await)?;
        for row in rows.into_iter().filter(|r| r.kid != active) {
            let version = row.version as u32;
            let key = self.ring.unwrap(&WrappedKey { kid: row.kid, blob: row.wrapped }, INSTANCE, version)?;
            let w = self.ring.wrap(&key, INSTANCE, version);
            on!(&mut tx.tx, c => sqlx::query("UPDATE instance_keys SET kid = $1, wrapped = $2 WHERE version = $3")
                .bind(&w.kid).bind(&w.blob).bind(row.version).execute(c).await.map(|_| ()))?;
            count += 1;
        }
        let orgs = tx.list_org_ids().await?;
        tx.commit().await?;
        for org in orgs {
            let owner = org.to_string();
            let mut t = store.tenant(OrgScope::trusted(org)).await?;
            let rows: Vec<KeyRow> = on!(&mut t.inner.tx, c => sqlx::query_as("SELECT version, kid, wrapped FROM org_keys WHERE org_id = $1").bind(org.as_uuid()).fetch_all(c).await)?;
            for row in rows.into_iter().filter(|r| r.kid != active) {
                let version = row.version as u32;
                let key = self.ring.unwrap(&WrappedKey { kid: row.kid, blob: row.wrapped }, &owner, version)?;
                let w = self.ring.wrap(&key, &owner, version);
                on!(&mut t.inner.tx, c => sqlx::query("UPDATE org_keys SET kid = $1, wrapped = $2 WHERE org_id = $3 AND version = $4")
                    .bind(&w.kid).bind(&w.blob).bind(org.as_uuid()).bind(row.version).execute(c).await.map(|_| ()))?;
                count += 1;
            }
            t.commit().await?;
        }
        Ok(count)
    }
}

impl Vault {
    /// A blind index keyed by the organization's own data key.
    pub(crate) async fn org_index(&self, tx: &mut TenantTx, normalized: &str) -> Result<Vec<u8>> {
        let owner = tx.org_id().to_string();
        self.key(&mut tx.inner.tx, &owner, None).await?;
        let (_, key) = self.key(&mut tx.inner.tx, &owner, Some(1)).await?;
        Ok(key.blind_index_key().index(normalized))
    }
}

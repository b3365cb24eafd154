//! SQL credentials (S11): the Postgres user name is the credential id; only a SCRAM verifier is
//! kept. A login looks its credential up before the organization is known, through the row the
//! user name names (on PostgreSQL a row-level-security policy of its own admits exactly it).

use burnrate_core::{OrgId, Role, SqlCredentialId, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::accounts::{now, parse_role};
use crate::{InstanceTx, OrgScope, Result, TenantTx, on};

#[derive(Clone, Debug)]
pub struct SqlCredentialRecord {
    pub id: SqlCredentialId,
    pub name: String,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a login needs: whose credential it is, its verifier, and whether it still counts.
#[derive(Clone, Debug)]
pub struct SqlLogin {
    pub id: SqlCredentialId,
    pub scope: OrgScope,
    /// PostgreSQL's text form of the SCRAM-SHA-256 verifier.
    pub verifier: String,
    pub revoked: bool,
    /// The current role of the member who made it; `None` once they left the organization.
    pub creator_role: Option<Role>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<Row> for SqlCredentialRecord {
    fn from(r: Row) -> Self {
        Self {
            id: SqlCredentialId::from_uuid(r.id),
            name: r.name,
            created_by: UserId::from_uuid(r.created_by),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

const COLUMNS: &str = "id, name, created_by, created_at, last_used_at, revoked_at";

impl TenantTx {
    /// Stores credential `id` (made with [`SqlCredentialId::generate`] by whoever shows it: a
    /// credential waiting for approval is shown before it exists).
    pub async fn create_sql_credential(
        &mut self,
        id: SqlCredentialId,
        name: &str,
        verifier: &str,
        created_by: UserId,
    ) -> Result<SqlCredentialId> {
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO sql_credentials (id, org_id, name, verifier, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id.as_uuid()).bind(self.scope.org_id().as_uuid()).bind(name).bind(verifier).bind(created_by.as_uuid())
            .bind(now()).execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    /// This organization's credentials, newest first, revoked ones included.
    pub async fn sql_credentials(&mut self) -> Result<Vec<SqlCredentialRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM sql_credentials WHERE org_id = $1 ORDER BY created_at DESC, id");
        let rows: Vec<Row> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn sql_credential(&mut self, id: SqlCredentialId) -> Result<Option<SqlCredentialRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM sql_credentials WHERE org_id = $1 AND id = $2");
        let row: Option<Row> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).fetch_optional(c).await)?;
        Ok(row.map(Into::into))
    }

    /// Revokes a live credential of this organization; false if there is none with that id.
    pub async fn revoke_sql_credential(&mut self, id: SqlCredentialId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE sql_credentials SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(now()).bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn touch_sql_credential(&mut self, id: SqlCredentialId) -> Result<()> {
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE sql_credentials SET last_used_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(now()).bind(self.scope.org_id().as_uuid()).bind(id.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Revokes every live credential `user` made in this organization; returns how many.
    pub async fn revoke_sql_credentials_of(&mut self, user: UserId) -> Result<u64> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE sql_credentials SET revoked_at = $1 WHERE org_id = $2 AND created_by = $3 AND revoked_at IS NULL")
            .bind(now()).bind(self.scope.org_id().as_uuid()).bind(user.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }

    /// This organization's credentials that are not revoked, each with the current role of the
    /// member who made it (`None` once they left): what live connections are checked against.
    pub async fn sql_credential_standing(&mut self) -> Result<Vec<(SqlCredentialId, Option<Role>)>> {
        let rows: Vec<(Uuid, Option<String>)> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT c.id, m.role FROM sql_credentials c LEFT JOIN memberships m ON m.org_id = c.org_id AND m.user_id = c.created_by \
             WHERE c.org_id = $1 AND c.revoked_at IS NULL")
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(id, role)| Ok((SqlCredentialId::from_uuid(id), role.as_deref().map(parse_role).transpose()?)))
            .collect()
    }
}

impl InstanceTx {
    /// The credential a client names as its user, whichever organization it belongs to.
    pub async fn sql_login(&mut self, id: SqlCredentialId) -> Result<Option<SqlLogin>> {
        self.tx.set_local("app.sql_login", &id.as_uuid().to_string()).await?;
        let row: Option<(Uuid, String, Option<DateTime<Utc>>, Uuid)> = on!(&mut self.tx, c => sqlx::query_as(
            "SELECT org_id, verifier, revoked_at, created_by FROM sql_credentials WHERE id = $1")
            .bind(id.as_uuid()).fetch_optional(c).await)?;
        let Some((org, verifier, revoked_at, created_by)) = row else { return Ok(None) };
        let org = OrgId::from_uuid(org);
        let creator_role = self.membership(UserId::from_uuid(created_by), org).await?.map(|(_, role)| role);
        Ok(Some(SqlLogin { id, scope: OrgScope::trusted(org), verifier, revoked: revoked_at.is_some(), creator_role }))
    }
}

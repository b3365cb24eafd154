//! Invitations of an email address into an organization. The address is sealed with the
//! organization's data key; the token is stored hashed and names its organization.

use burnrate_core::{EmailAddress, InvitationId, Role, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::accounts::{now, parse_role};
use crate::{Result, StoreError, TenantTx, Vault, on};

#[derive(Clone, Debug)]
pub struct InvitationRecord {
    pub id: InvitationId,
    pub email: EmailAddress,
    pub role: Role,
    pub invited_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl InvitationRecord {
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.accepted_at.is_none() && self.revoked_at.is_none() && self.expires_at > at
    }
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: Uuid,
    email_sealed: Vec<u8>,
    role: String,
    invited_by: Uuid,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TenantTx {
    async fn invitation_from_row(&mut self, vault: &Vault, row: InvitationRow) -> Result<InvitationRecord> {
        let plain = vault.open_org(self, "invitations", "email", &row.id.to_string(), row.email_sealed).await?;
        let email = std::str::from_utf8(&plain)
            .ok()
            .and_then(|s| EmailAddress::parse(s).ok())
            .ok_or_else(|| StoreError::Corrupt("invitation email".into()))?;
        Ok(InvitationRecord {
            id: InvitationId::from_uuid(row.id),
            email,
            role: parse_role(&row.role)?,
            invited_by: UserId::from_uuid(row.invited_by),
            created_at: row.created_at,
            expires_at: row.expires_at,
            accepted_at: row.accepted_at,
            revoked_at: row.revoked_at,
        })
    }

    pub async fn create_invitation(
        &mut self,
        vault: &Vault,
        email: &EmailAddress,
        role: Role,
        invited_by: UserId,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<InvitationId> {
        let id = InvitationId::generate();
        let sealed = vault.seal_org(self, "invitations", "email", &id.to_string(), email.as_str().as_bytes()).await?;
        // Keyed per organization, so the same address invited to two organizations is unlinkable.
        let index = vault.org_index(self, email.as_str()).await?;
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO invitations (id, org_id, token_hash, email_sealed, email_index, role, invited_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(id.as_uuid()).bind(self.scope.org_id().as_uuid()).bind(token_hash).bind(sealed).bind(index).bind(role.as_str())
            .bind(invited_by.as_uuid()).bind(now()).bind(expires_at).execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    pub async fn invitation_by_token(&mut self, vault: &Vault, token_hash: &[u8]) -> Result<Option<InvitationRecord>> {
        let sql = "SELECT id, email_sealed, role, invited_by, created_at, expires_at, accepted_at, revoked_at FROM invitations WHERE org_id = $1 AND token_hash = $2";
        let row: Option<InvitationRow> = on!(&mut self.inner.tx, c => sqlx::query_as(sql)
            .bind(self.scope.org_id().as_uuid()).bind(token_hash).fetch_optional(c).await)?;
        match row {
            Some(row) => Ok(Some(self.invitation_from_row(vault, row).await?)),
            None => Ok(None),
        }
    }

    pub async fn open_invitations(&mut self, vault: &Vault) -> Result<Vec<InvitationRecord>> {
        let rows: Vec<InvitationRow> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT id, email_sealed, role, invited_by, created_at, expires_at, accepted_at, revoked_at FROM invitations WHERE org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL ORDER BY created_at DESC")
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        let mut out = Vec::new();
        let at = now();
        for row in rows {
            let inv = self.invitation_from_row(vault, row).await?;
            if inv.is_open(at) {
                out.push(inv);
            }
        }
        Ok(out)
    }

    /// Marks an open invitation accepted; false if it was already used or revoked.
    pub async fn accept_invitation(&mut self, id: InvitationId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE invitations SET accepted_at = $1 WHERE id = $2 AND org_id = $3 AND accepted_at IS NULL AND revoked_at IS NULL")
            .bind(now()).bind(id.as_uuid()).bind(self.scope.org_id().as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn revoke_invitation(&mut self, id: InvitationId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE invitations SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND accepted_at IS NULL AND revoked_at IS NULL")
            .bind(now()).bind(id.as_uuid()).bind(self.scope.org_id().as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}

//! Organizations, users, memberships, sessions and one-time tokens (S3, S4, S9, S10).

use burnrate_core::{EmailAddress, OrgId, OrgName, Role, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{InstanceTx, OrgScope, Result, StoreError, TenantTx, Vault, on};

#[derive(Clone, Debug)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl From<OrgRow> for Organization {
    fn from(r: OrgRow) -> Self {
        Self { id: OrgId::from_uuid(r.id), name: r.name, created_at: r.created_at }
    }
}

/// A user as needed to log in. The email stays sealed until someone needs to read it.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub id: UserId,
    pub password_hash: String,
    pub email_verified: bool,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    password_hash: String,
    email_verified_at: Option<DateTime<Utc>>,
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> Self {
        Self {
            id: UserId::from_uuid(r.id),
            password_hash: r.password_hash,
            email_verified: r.email_verified_at.is_some(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Member {
    pub user_id: UserId,
    pub email: EmailAddress,
    pub role: Role,
    pub since: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub handle: Uuid,
    pub user_id: UserId,
    pub org_id: OrgId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    handle: Uuid,
    user_id: Uuid,
    org_id: Uuid,
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl From<SessionRow> for SessionRecord {
    fn from(r: SessionRow) -> Self {
        Self {
            handle: r.handle,
            user_id: UserId::from_uuid(r.user_id),
            org_id: OrgId::from_uuid(r.org_id),
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            ip: r.ip,
            user_agent: r.user_agent,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    PasswordReset,
    EmailVerification,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailVerification => "email_verification",
        }
    }
}

pub(crate) fn parse_role(s: &str) -> Result<Role> {
    s.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))
}

/// Times are kept to the microsecond, which both databases store exactly.
pub(crate) fn now() -> DateTime<Utc> {
    let t = Utc::now();
    t - chrono::Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1000))
}

impl InstanceTx {
    /// Creates an organization and returns the scope to fill it.
    pub async fn create_org(&mut self, name: &OrgName) -> Result<OrgScope> {
        let id = OrgId::generate();
        // The policy is written out, not left to the column's default, which SQLite cannot change.
        let policy = serde_json::to_string(&crate::approvals::DEFAULT_APPROVAL_ACTIONS)?;
        on!(&mut self.tx, c => sqlx::query("INSERT INTO organizations (id, name, created_at, approval_actions) VALUES ($1, $2, $3, $4)")
            .bind(id.as_uuid()).bind(name.as_str()).bind(now()).bind(policy).execute(c).await.map(|_| ()))?;
        Ok(OrgScope::trusted(id))
    }

    pub async fn org(&mut self, id: OrgId) -> Result<Option<Organization>> {
        let row: Option<OrgRow> = on!(&mut self.tx, c => sqlx::query_as("SELECT id, name, created_at FROM organizations WHERE id = $1")
            .bind(id.as_uuid()).fetch_optional(c).await)?;
        Ok(row.map(Into::into))
    }

    /// Finds an organization by id or, failing that, by exact name (for `--org NAME|ID`).
    pub async fn find_org(&mut self, name_or_id: &str) -> Result<Option<Organization>> {
        if let Ok(id) = name_or_id.parse::<OrgId>()
            && let Some(org) = self.org(id).await?
        {
            return Ok(Some(org));
        }
        let rows: Vec<OrgRow> = on!(&mut self.tx, c => sqlx::query_as("SELECT id, name, created_at FROM organizations WHERE name = $1 ORDER BY created_at")
            .bind(name_or_id).fetch_all(c).await)?;
        Ok(rows.into_iter().next().map(Into::into))
    }

    pub async fn list_org_ids(&mut self) -> Result<Vec<OrgId>> {
        let ids: Vec<Uuid> = on!(&mut self.tx, c => sqlx::query_scalar("SELECT id FROM organizations ORDER BY created_at").fetch_all(c).await)?;
        Ok(ids.into_iter().map(OrgId::from_uuid).collect())
    }

    pub async fn find_user_by_email(&mut self, vault: &Vault, email: &EmailAddress) -> Result<Option<UserRecord>> {
        let index = vault.email_index(&mut self.tx, email).await?;
        let row: Option<UserRow> = on!(&mut self.tx, c => sqlx::query_as("SELECT id, password_hash, email_verified_at FROM users WHERE email_index = $1")
            .bind(index).fetch_optional(c).await)?;
        Ok(row.map(Into::into))
    }

    pub async fn user(&mut self, id: UserId) -> Result<Option<UserRecord>> {
        let row: Option<UserRow> = on!(&mut self.tx, c => sqlx::query_as("SELECT id, password_hash, email_verified_at FROM users WHERE id = $1")
            .bind(id.as_uuid()).fetch_optional(c).await)?;
        Ok(row.map(Into::into))
    }

    /// Creates a user with a sealed email and its blind index. `Conflict` if the address is taken.
    pub async fn create_user(
        &mut self,
        vault: &Vault,
        email: &EmailAddress,
        password_hash: &str,
        verified: bool,
    ) -> Result<UserId> {
        let id = UserId::generate();
        let index = vault.email_index(&mut self.tx, email).await?;
        let sealed = vault.seal_instance(self, "users", "email", &id.to_string(), email.as_str().as_bytes()).await?;
        let now = now();
        let verified_at = verified.then_some(now);
        let res = on!(&mut self.tx, c => sqlx::query("INSERT INTO users (id, email_sealed, email_index, email_index_version, password_hash, email_verified_at, created_at) VALUES ($1, $2, $3, 1, $4, $5, $6)")
            .bind(id.as_uuid()).bind(sealed).bind(index).bind(password_hash).bind(verified_at).bind(now).execute(c).await.map(|_| ()));
        match res {
            Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::Conflict("an account with this email")),
            other => Ok(other.map(|_| id)?),
        }
    }

    pub async fn user_email(&mut self, vault: &Vault, id: UserId) -> Result<EmailAddress> {
        let sealed: Option<Vec<u8>> = on!(&mut self.tx, c => sqlx::query_scalar("SELECT email_sealed FROM users WHERE id = $1")
            .bind(id.as_uuid()).fetch_optional(c).await)?;
        let sealed = sealed.ok_or(StoreError::NotFound("user"))?;
        let plain = vault.open_instance(self, "users", "email", &id.to_string(), sealed).await?;
        let text = std::str::from_utf8(&plain).map_err(|_| StoreError::Corrupt("email is not UTF-8".into()))?;
        EmailAddress::parse(text).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub async fn mark_email_verified(&mut self, id: UserId) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
            .bind(now()).bind(id.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn set_password_hash(&mut self, id: UserId, hash: &str) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash).bind(id.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// The organizations the user belongs to, with their role, oldest membership first.
    pub async fn user_orgs(&mut self, user: UserId) -> Result<Vec<(Organization, Role)>> {
        self.act_as_user(user).await?;
        let rows: Vec<(Uuid, String, DateTime<Utc>, String)> = on!(&mut self.tx, c => sqlx::query_as(
            "SELECT o.id, o.name, o.created_at, m.role FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY m.created_at")
            .bind(user.as_uuid()).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(id, name, created_at, role)| {
                Ok((Organization { id: OrgId::from_uuid(id), name, created_at }, parse_role(&role)?))
            })
            .collect()
    }

    /// The membership check that yields an [`OrgScope`]: `None` when `user` is not a member.
    pub async fn membership(&mut self, user: UserId, org: OrgId) -> Result<Option<(OrgScope, Role)>> {
        self.act_as_user(user).await?;
        let role: Option<String> = on!(&mut self.tx, c => sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1 AND org_id = $2")
            .bind(user.as_uuid()).bind(org.as_uuid()).fetch_optional(c).await)?;
        role.map(|r| Ok((OrgScope::trusted(org), parse_role(&r)?))).transpose()
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_session(
        &mut self,
        token_hash: &[u8],
        user: UserId,
        org: OrgId,
        expires_at: DateTime<Utc>,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<Uuid> {
        let handle = Uuid::now_v7();
        let now = now();
        on!(&mut self.tx, c => sqlx::query("INSERT INTO sessions (token_hash, handle, user_id, org_id, created_at, last_seen_at, expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)")
            .bind(token_hash).bind(handle).bind(user.as_uuid()).bind(org.as_uuid()).bind(now).bind(expires_at).bind(ip).bind(user_agent).execute(c).await.map(|_| ()))?;
        Ok(handle)
    }

    pub async fn session(&mut self, token_hash: &[u8]) -> Result<Option<SessionRecord>> {
        let row: Option<SessionRow> = on!(&mut self.tx, c => sqlx::query_as("SELECT handle, user_id, org_id, created_at, last_seen_at, expires_at, ip, user_agent FROM sessions WHERE token_hash = $1")
            .bind(token_hash).fetch_optional(c).await)?;
        Ok(row.map(Into::into))
    }

    pub async fn touch_session(&mut self, token_hash: &[u8], at: DateTime<Utc>) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(at).bind(token_hash).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn delete_session(&mut self, token_hash: &[u8]) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Ends one of the user's own sessions by its public handle; false if it is not theirs.
    pub async fn end_user_session(&mut self, user: UserId, handle: Uuid) -> Result<bool> {
        let n = on!(&mut self.tx, c => sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND handle = $2")
            .bind(user.as_uuid()).bind(handle).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn end_all_user_sessions(&mut self, user: UserId) -> Result<u64> {
        let n = on!(&mut self.tx, c => sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }

    pub async fn user_sessions(&mut self, user: UserId) -> Result<Vec<SessionRecord>> {
        let rows: Vec<SessionRow> = on!(&mut self.tx, c => sqlx::query_as("SELECT handle, user_id, org_id, created_at, last_seen_at, expires_at, ip, user_agent FROM sessions WHERE user_id = $1 ORDER BY created_at DESC")
            .bind(user.as_uuid()).fetch_all(c).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn create_one_time_token(
        &mut self,
        purpose: TokenPurpose,
        token_hash: &[u8],
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("INSERT INTO one_time_tokens (token_hash, purpose, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash).bind(purpose.as_str()).bind(user.as_uuid()).bind(now()).bind(expires_at).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Uses a one-time token: marks it used (so it can never work twice) and returns its user if
    /// it was unused and unexpired.
    pub async fn use_one_time_token(&mut self, purpose: TokenPurpose, token_hash: &[u8]) -> Result<Option<UserId>> {
        let at = now();
        let row: Option<(Uuid, DateTime<Utc>)> = on!(&mut self.tx, c => sqlx::query_as(
            "UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL RETURNING user_id, expires_at")
            .bind(at).bind(token_hash).bind(purpose.as_str()).fetch_optional(c).await)?;
        Ok(row.filter(|(_, expires)| *expires > at).map(|(u, _)| UserId::from_uuid(u)))
    }

    /// Whether a one-time token would be accepted now, without using it (to show the form).
    pub async fn one_time_token_valid(&mut self, purpose: TokenPurpose, token_hash: &[u8]) -> Result<bool> {
        let row: Option<(Option<DateTime<Utc>>, DateTime<Utc>)> = on!(&mut self.tx, c => sqlx::query_as(
            "SELECT used_at, expires_at FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2")
            .bind(token_hash).bind(purpose.as_str()).fetch_optional(c).await)?;
        Ok(matches!(row, Some((None, expires)) if expires > now()))
    }
}

impl TenantTx {
    pub async fn add_member(&mut self, user: UserId, role: Role) -> Result<()> {
        let res = on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(self.scope.org_id().as_uuid()).bind(user.as_uuid()).bind(role.as_str()).bind(now()).execute(c).await.map(|_| ()));
        match res {
            Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::Conflict("this membership")),
            other => Ok(other?),
        }
    }

    pub async fn member_role(&mut self, user: UserId) -> Result<Option<Role>> {
        let role: Option<String> = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(user.as_uuid()).fetch_optional(c).await)?;
        role.map(|r| parse_role(&r)).transpose()
    }

    pub async fn members(&mut self, vault: &Vault) -> Result<Vec<Member>> {
        let rows: Vec<(Uuid, String, DateTime<Utc>)> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT user_id, role, created_at FROM memberships WHERE org_id = $1 ORDER BY created_at")
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        let mut members = Vec::with_capacity(rows.len());
        for (user, role, since) in rows {
            let user_id = UserId::from_uuid(user);
            let email = self.user_email(vault, user_id).await?;
            members.push(Member { user_id, email, role: parse_role(&role)?, since });
        }
        Ok(members)
    }

    pub async fn count_owners(&mut self) -> Result<i64> {
        let n: i64 = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'")
            .bind(self.scope.org_id().as_uuid()).fetch_one(c).await)?;
        Ok(n)
    }

    pub async fn count_admins(&mut self) -> Result<i64> {
        let n: i64 = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role IN ('owner', 'admin')")
            .bind(self.scope.org_id().as_uuid()).fetch_one(c).await)?;
        Ok(n)
    }

    pub async fn set_member_role(&mut self, user: UserId, role: Role) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
            .bind(role.as_str()).bind(self.scope.org_id().as_uuid()).bind(user.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn remove_member(&mut self, user: UserId) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(user.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Ends the sessions that a removed member had open in this organization.
    pub async fn end_member_sessions(&mut self, user: UserId) -> Result<()> {
        on!(&mut self.inner.tx, c => sqlx::query("DELETE FROM sessions WHERE org_id = $1 AND user_id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(user.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }
}

//! Operators, support grants (S18) and operators' notices (S20): instance-wide rows, reached
//! through the instance scope.
//!
//! A grant moves forward only through conditional UPDATEs (consent, approval, activation,
//! decline, revocation each happen at most once), and whether it lets its operator in is decided
//! by [`SupportGrant::status`] at the time of each request, so expiry needs no background job.

use burnrate_core::{EmailAddress, OperatorId, OrgId, SupportGrantId, UserId};
use burnrate_crypto::TotpSecret;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;

use crate::accounts::now;
use crate::{InstanceTx, Result, StoreError, TenantTx, Vault, on};

/// How long a request waits for consent and approval before it lapses.
pub const SUPPORT_REQUEST_LAPSES_AFTER: Duration = Duration::days(7);

#[derive(Clone, Debug)]
pub struct OperatorRecord {
    pub id: OperatorId,
    pub name: String,
    pub password_hash: String,
}

#[derive(sqlx::FromRow)]
struct OperatorRow {
    id: Uuid,
    name: String,
    password_hash: String,
}

impl From<OperatorRow> for OperatorRecord {
    fn from(r: OperatorRow) -> Self {
        Self { id: OperatorId::from_uuid(r.id), name: r.name, password_hash: r.password_hash }
    }
}

#[derive(Clone, Debug)]
pub struct OperatorSession {
    pub operator_id: OperatorId,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct OperatorSessionRow {
    operator_id: Uuid,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// Where a grant stands at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantStatus {
    /// Needs the organization's consent and a second operator's approval.
    AwaitingBoth,
    AwaitingConsent,
    AwaitingApproval,
    Active,
    Declined,
    Revoked,
    Expired,
    /// Not consented and approved within [`SUPPORT_REQUEST_LAPSES_AFTER`].
    Lapsed,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::AwaitingBoth => "awaiting_consent_and_approval",
            GrantStatus::AwaitingConsent => "awaiting_consent",
            GrantStatus::AwaitingApproval => "awaiting_approval",
            GrantStatus::Active => "active",
            GrantStatus::Declined => "declined",
            GrantStatus::Revoked => "revoked",
            GrantStatus::Expired => "expired",
            GrantStatus::Lapsed => "lapsed",
        }
    }

    /// Still waiting for a decision (consent, approval or both).
    pub fn is_waiting(self) -> bool {
        matches!(self, GrantStatus::AwaitingBoth | GrantStatus::AwaitingConsent | GrantStatus::AwaitingApproval)
    }
}

#[derive(Clone, Debug)]
pub struct SupportGrant {
    pub id: SupportGrantId,
    pub org_id: OrgId,
    /// The customer-reported issue the access is for.
    pub issue: String,
    pub duration: Duration,
    pub requested_by: OperatorId,
    pub requested_at: DateTime<Utc>,
    pub consented_by: Option<UserId>,
    pub consented_at: Option<DateTime<Utc>>,
    pub declined_by: Option<UserId>,
    pub declined_at: Option<DateTime<Utc>>,
    pub approved_by: Option<OperatorId>,
    pub approved_at: Option<DateTime<Utc>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who revoked it, as the audit log labels them.
    pub revoked_by: Option<String>,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: Uuid,
    org_id: Uuid,
    issue: String,
    duration_secs: i64,
    requested_by: Uuid,
    requested_at: DateTime<Utc>,
    consented_by: Option<Uuid>,
    consented_at: Option<DateTime<Utc>>,
    declined_by: Option<Uuid>,
    declined_at: Option<DateTime<Utc>>,
    approved_by: Option<Uuid>,
    approved_at: Option<DateTime<Utc>>,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    revoked_by: Option<String>,
}

impl From<GrantRow> for SupportGrant {
    fn from(r: GrantRow) -> Self {
        Self {
            id: SupportGrantId::from_uuid(r.id),
            org_id: OrgId::from_uuid(r.org_id),
            issue: r.issue,
            duration: Duration::seconds(r.duration_secs),
            requested_by: OperatorId::from_uuid(r.requested_by),
            requested_at: r.requested_at,
            consented_by: r.consented_by.map(UserId::from_uuid),
            consented_at: r.consented_at,
            declined_by: r.declined_by.map(UserId::from_uuid),
            declined_at: r.declined_at,
            approved_by: r.approved_by.map(OperatorId::from_uuid),
            approved_at: r.approved_at,
            starts_at: r.starts_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            revoked_by: r.revoked_by,
        }
    }
}

impl SupportGrant {
    pub fn status(&self, at: DateTime<Utc>) -> GrantStatus {
        if self.revoked_at.is_some() {
            return GrantStatus::Revoked;
        }
        if self.declined_at.is_some() {
            return GrantStatus::Declined;
        }
        match (self.starts_at, self.expires_at) {
            (Some(_), Some(end)) if at < end => GrantStatus::Active,
            (Some(_), _) => GrantStatus::Expired,
            _ if at >= self.requested_at + SUPPORT_REQUEST_LAPSES_AFTER => GrantStatus::Lapsed,
            _ => match (self.consented_at.is_some(), self.approved_at.is_some()) {
                (false, false) => GrantStatus::AwaitingBoth,
                (false, true) => GrantStatus::AwaitingConsent,
                (true, false) => GrantStatus::AwaitingApproval,
                // Both given: activation happens in the same transaction as the second of them.
                (true, true) => GrantStatus::Active,
            },
        }
    }
}

const GRANT_COLUMNS: &str = "id, org_id, issue, duration_secs, requested_by, requested_at, consented_by, consented_at, \
     declined_by, declined_at, approved_by, approved_at, starts_at, expires_at, revoked_at, revoked_by";

impl InstanceTx {
    /// Creates an operator with a sealed email, its blind index and a sealed TOTP secret.
    /// `Conflict` if an operator with this email exists.
    pub async fn create_operator(
        &mut self,
        vault: &Vault,
        name: &str,
        email: &EmailAddress,
        password_hash: &str,
        totp: &TotpSecret,
    ) -> Result<OperatorId> {
        let id = OperatorId::generate();
        let index = vault.email_index(&mut self.tx, email).await?;
        let row = id.to_string();
        let email_sealed = vault.seal_instance(self, "operators", "email", &row, email.as_str().as_bytes()).await?;
        let totp_sealed = vault.seal_instance(self, "operators", "totp", &row, totp.expose_bytes()).await?;
        let res = on!(&mut self.tx, c => sqlx::query("INSERT INTO operators (id, name, email_sealed, email_index, password_hash, totp_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id.as_uuid()).bind(name).bind(email_sealed).bind(index).bind(password_hash).bind(totp_sealed).bind(now())
            .execute(c).await.map(|_| ()));
        match res {
            Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::Conflict("an operator with this email")),
            other => Ok(other.map(|_| id)?),
        }
    }

    pub async fn find_operator_by_email(
        &mut self,
        vault: &Vault,
        email: &EmailAddress,
    ) -> Result<Option<OperatorRecord>> {
        let index = vault.email_index(&mut self.tx, email).await?;
        let row: Option<OperatorRow> = on!(&mut self.tx, c => sqlx::query_as("SELECT id, name, password_hash FROM operators WHERE email_index = $1 AND disabled_at IS NULL")
            .bind(index).fetch_optional(c).await)?;
        Ok(row.map(Into::into))
    }

    /// An operator who may still act (a disabled one is `None`, so their sessions end).
    pub async fn operator(&mut self, id: OperatorId) -> Result<Option<OperatorRecord>> {
        let row: Option<OperatorRow> = on!(&mut self.tx, c => sqlx::query_as("SELECT id, name, password_hash FROM operators WHERE id = $1 AND disabled_at IS NULL")
            .bind(id.as_uuid()).fetch_optional(c).await)?;
        Ok(row.map(Into::into))
    }

    /// An operator's name for the record, disabled or not (grants name who asked and approved).
    pub async fn operator_name(&mut self, id: OperatorId) -> Result<Option<String>> {
        Ok(on!(&mut self.tx, c => sqlx::query_scalar("SELECT name FROM operators WHERE id = $1")
            .bind(id.as_uuid()).fetch_optional(c).await)?)
    }

    /// Disables an operator: no login from now on and their sessions ended, so a grant they hold
    /// can no longer be used. False when no active operator has this id.
    pub async fn disable_operator(&mut self, id: OperatorId, at: DateTime<Utc>) -> Result<bool> {
        let n = on!(&mut self.tx, c => sqlx::query("UPDATE operators SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
            .bind(at).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        on!(&mut self.tx, c => sqlx::query("DELETE FROM operator_sessions WHERE operator_id = $1")
            .bind(id.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(n == 1)
    }

    /// Gives an operator a new TOTP secret (a lost phone); codes of the old one stop working.
    pub async fn reset_operator_totp(&mut self, vault: &Vault, id: OperatorId, totp: &TotpSecret) -> Result<()> {
        let sealed = vault.seal_instance(self, "operators", "totp", &id.to_string(), totp.expose_bytes()).await?;
        on!(&mut self.tx, c => sqlx::query("UPDATE operators SET totp_sealed = $1, totp_last_step = NULL WHERE id = $2")
            .bind(sealed).bind(id.as_uuid()).execute(c).await.map(|_| ()))?;
        on!(&mut self.tx, c => sqlx::query("DELETE FROM operator_sessions WHERE operator_id = $1")
            .bind(id.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn operator_totp(&mut self, vault: &Vault, id: OperatorId) -> Result<TotpSecret> {
        let sealed: Option<Vec<u8>> = on!(&mut self.tx, c => sqlx::query_scalar("SELECT totp_sealed FROM operators WHERE id = $1")
            .bind(id.as_uuid()).fetch_optional(c).await)?;
        let sealed = sealed.ok_or(StoreError::NotFound("operator"))?;
        let plain = vault.open_instance(self, "operators", "totp", &id.to_string(), sealed).await?;
        Ok(TotpSecret::from_bytes(&plain))
    }

    /// Records that a TOTP code of `step` was used; false when a code of this step or a later
    /// one was used already (a replayed or older code).
    pub async fn use_operator_totp_step(&mut self, id: OperatorId, step: i64) -> Result<bool> {
        let n = on!(&mut self.tx, c => sqlx::query("UPDATE operators SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)")
            .bind(step).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn create_operator_session(
        &mut self,
        token_hash: &[u8],
        operator: OperatorId,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let at = now();
        on!(&mut self.tx, c => sqlx::query("INSERT INTO operator_sessions (token_hash, operator_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $3, $4)")
            .bind(token_hash).bind(operator.as_uuid()).bind(at).bind(expires_at).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn operator_session(&mut self, token_hash: &[u8]) -> Result<Option<OperatorSession>> {
        let row: Option<OperatorSessionRow> = on!(&mut self.tx, c => sqlx::query_as("SELECT operator_id, last_seen_at, expires_at FROM operator_sessions WHERE token_hash = $1")
            .bind(token_hash).fetch_optional(c).await)?;
        Ok(row.map(|r| OperatorSession {
            operator_id: OperatorId::from_uuid(r.operator_id),
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
        }))
    }

    pub async fn touch_operator_session(&mut self, token_hash: &[u8], at: DateTime<Utc>) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("UPDATE operator_sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(at).bind(token_hash).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn delete_operator_session(&mut self, token_hash: &[u8]) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("DELETE FROM operator_sessions WHERE token_hash = $1")
            .bind(token_hash).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn create_support_grant(
        &mut self,
        org: OrgId,
        requested_by: OperatorId,
        issue: &str,
        duration: Duration,
    ) -> Result<SupportGrantId> {
        let id = SupportGrantId::generate();
        on!(&mut self.tx, c => sqlx::query("INSERT INTO support_grants (id, org_id, issue, duration_secs, requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id.as_uuid()).bind(org.as_uuid()).bind(issue).bind(duration.num_seconds()).bind(requested_by.as_uuid()).bind(now())
            .execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    pub async fn support_grant(&mut self, id: SupportGrantId) -> Result<Option<SupportGrant>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM support_grants WHERE id = $1");
        let row: Option<GrantRow> = on!(&mut self.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id.as_uuid()).fetch_optional(c).await)?;
        Ok(row.map(Into::into))
    }

    /// Every organization's grants, newest first (for operators).
    pub async fn all_support_grants(&mut self, limit: i64) -> Result<Vec<SupportGrant>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM support_grants ORDER BY requested_at DESC, id DESC LIMIT $1");
        let rows: Vec<GrantRow> =
            on!(&mut self.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(c).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The grant through which `operator` may see `org` at `at`, if there is one.
    pub async fn active_support_grant(
        &mut self,
        operator: OperatorId,
        org: OrgId,
        at: DateTime<Utc>,
    ) -> Result<Option<SupportGrant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM support_grants WHERE requested_by = $1 AND org_id = $2 AND starts_at IS NOT NULL AND revoked_at IS NULL ORDER BY starts_at DESC"
        );
        let rows: Vec<GrantRow> = on!(&mut self.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(operator.as_uuid()).bind(org.as_uuid()).fetch_all(c).await)?;
        Ok(rows.into_iter().map(SupportGrant::from).find(|g| g.status(at) == GrantStatus::Active))
    }

    /// A second operator's approval of a waiting grant: true for the one call that gives it.
    /// Never the requester's own (the table refuses that too).
    pub async fn approve_support_grant(
        &mut self,
        id: SupportGrantId,
        by: OperatorId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on!(&mut self.tx, c => sqlx::query("UPDATE support_grants SET approved_by = $1, approved_at = $2 WHERE id = $3 AND approved_at IS NULL AND requested_by <> $1 AND revoked_at IS NULL AND declined_at IS NULL AND requested_at > $4")
            .bind(by.as_uuid()).bind(at).bind(id.as_uuid()).bind(at - SUPPORT_REQUEST_LAPSES_AFTER)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Starts the grant's time box at `at` once it has both consent and approval; true if this
    /// call started it.
    pub async fn activate_support_grant(&mut self, grant: &SupportGrant, at: DateTime<Utc>) -> Result<bool> {
        let n = on!(&mut self.tx, c => sqlx::query("UPDATE support_grants SET starts_at = $1, expires_at = $2 WHERE id = $3 AND consented_at IS NOT NULL AND approved_at IS NOT NULL AND starts_at IS NULL AND revoked_at IS NULL")
            .bind(at).bind(at + grant.duration).bind(grant.id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Ends a grant that is waiting or active; true for the one call that does.
    pub async fn revoke_support_grant(&mut self, id: SupportGrantId, by: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = on!(&mut self.tx, c => sqlx::query("UPDATE support_grants SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL AND declined_at IS NULL AND (expires_at IS NULL OR expires_at > $1)")
            .bind(at).bind(by).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

impl TenantTx {
    /// This organization's grants, newest first.
    pub async fn support_grants(&mut self, limit: i64) -> Result<Vec<SupportGrant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM support_grants WHERE org_id = $1 ORDER BY requested_at DESC, id DESC LIMIT $2"
        );
        let org = self.scope.org_id().as_uuid();
        let rows: Vec<GrantRow> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(limit).fetch_all(c).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One of this organization's grants.
    pub async fn org_support_grant(&mut self, id: SupportGrantId) -> Result<Option<SupportGrant>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM support_grants WHERE org_id = $1 AND id = $2");
        let org = self.scope.org_id().as_uuid();
        let row: Option<GrantRow> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(id.as_uuid()).fetch_optional(c).await)?;
        Ok(row.map(Into::into))
    }

    /// The organization's consent to a waiting grant: true for the one call that gives it.
    pub async fn consent_support_grant(&mut self, id: SupportGrantId, by: UserId, at: DateTime<Utc>) -> Result<bool> {
        let org = self.scope.org_id().as_uuid();
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE support_grants SET consented_by = $1, consented_at = $2 WHERE org_id = $3 AND id = $4 AND consented_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL AND requested_at > $5")
            .bind(by.as_uuid()).bind(at).bind(org).bind(id.as_uuid()).bind(at - SUPPORT_REQUEST_LAPSES_AFTER)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The organization says no to a grant that has not started.
    pub async fn decline_support_grant(&mut self, id: SupportGrantId, by: UserId, at: DateTime<Utc>) -> Result<bool> {
        let org = self.scope.org_id().as_uuid();
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE support_grants SET declined_by = $1, declined_at = $2 WHERE org_id = $3 AND id = $4 AND starts_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL")
            .bind(by.as_uuid()).bind(at).bind(org).bind(id.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

/// A notice from the instance's operators to every organization (S20).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Notice {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    pub effective_on: NaiveDate,
    pub published_at: DateTime<Utc>,
}

impl InstanceTx {
    pub async fn publish_notice(
        &mut self,
        title: &str,
        body: &str,
        effective_on: NaiveDate,
        by: OperatorId,
    ) -> Result<Notice> {
        let notice =
            Notice { id: Uuid::now_v7(), title: title.into(), body: body.into(), effective_on, published_at: now() };
        on!(&mut self.tx, c => sqlx::query("INSERT INTO notices (id, title, body, effective_on, published_by, published_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(notice.id).bind(title).bind(body).bind(effective_on).bind(by.as_uuid()).bind(notice.published_at)
            .execute(c).await.map(|_| ()))?;
        Ok(notice)
    }

    /// Notices published since `since`, newest first.
    pub async fn notices_since(&mut self, since: DateTime<Utc>) -> Result<Vec<Notice>> {
        Ok(
            on!(&mut self.tx, c => sqlx::query_as("SELECT id, title, body, effective_on, published_at FROM notices WHERE published_at >= $1 ORDER BY published_at DESC")
            .bind(since).fetch_all(c).await)?,
        )
    }
}

/// A price catalogue an operator imported.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredCatalogue {
    pub id: Uuid,
    pub source: String,
    pub version: String,
    /// SHA-256 of `body`, hex.
    pub checksum: String,
    /// The catalogue's JSON as imported.
    pub body: String,
    pub imported_at: DateTime<Utc>,
}

impl InstanceTx {
    /// Records an imported catalogue; from now on it is the newest.
    pub async fn record_price_catalogue(
        &mut self,
        source: &str,
        version: &str,
        checksum: &str,
        body: &str,
    ) -> Result<StoredCatalogue> {
        let stored = StoredCatalogue {
            id: Uuid::now_v7(),
            source: source.into(),
            version: version.into(),
            checksum: checksum.into(),
            body: body.into(),
            imported_at: now(),
        };
        on!(&mut self.tx, c => sqlx::query("INSERT INTO price_catalogues (id, source, version, checksum, body, imported_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(stored.id).bind(source).bind(version).bind(checksum).bind(body).bind(stored.imported_at)
            .execute(c).await.map(|_| ()))?;
        Ok(stored)
    }

    /// The checksum of the newest imported catalogue: a cheap check of whether it changed.
    pub async fn newest_price_catalogue_checksum(&mut self) -> Result<Option<String>> {
        Ok(
            on!(&mut self.tx, c => sqlx::query_scalar("SELECT checksum FROM price_catalogues ORDER BY imported_at DESC, id DESC LIMIT 1")
            .fetch_optional(c).await)?,
        )
    }

    /// The newest imported catalogue, if any was.
    pub async fn newest_price_catalogue(&mut self) -> Result<Option<StoredCatalogue>> {
        Ok(
            on!(&mut self.tx, c => sqlx::query_as("SELECT id, source, version, checksum, body, imported_at FROM price_catalogues ORDER BY imported_at DESC, id DESC LIMIT 1")
            .fetch_optional(c).await)?,
        )
    }
}

//! The approval queue (S17). A request holds the proposed change sealed with the organization's
//! data key (it may carry a credential) and a summary without secrets for approvers. Deciding is
//! one conditional UPDATE: of two concurrent approvals exactly one finds the request pending and
//! unexpired, so a change is applied once.

use burnrate_core::UserId;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::accounts::now;
use crate::{Result, StoreError, TenantTx, Vault, on};

/// The changes every new organization sends for approval (its policy may list fewer later).
pub const DEFAULT_APPROVAL_ACTIONS: [&str; 6] = [
    "budget_raise",
    "source_credentials",
    "webhook_create",
    "sql_credential_create",
    "member_promote",
    "price_override",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
    /// Approved, but the change could no longer be applied (the world changed since).
    Failed,
    /// Its requester left or is no longer an admin: it can never be approved.
    Withdrawn,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
            ApprovalState::Failed => "failed",
            ApprovalState::Withdrawn => "withdrawn",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ApprovalState::Pending),
            "approved" => Some(ApprovalState::Approved),
            "rejected" => Some(ApprovalState::Rejected),
            "failed" => Some(ApprovalState::Failed),
            "withdrawn" => Some(ApprovalState::Withdrawn),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub id: Uuid,
    /// What kind of change (`budget_raise`, `webhook_create`, …).
    pub action: String,
    /// The change in words and before/after values, without secrets (JSON).
    pub summary: String,
    pub requested_by: UserId,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: ApprovalState,
    pub decided_by: Option<UserId>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    /// What applying it did, or why it could not.
    pub outcome: Option<String>,
}

impl ApprovalRequest {
    /// Pending and not yet expired at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.state == ApprovalState::Pending && at < self.expires_at
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    action: String,
    summary: String,
    requested_by: Uuid,
    requested_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    state: String,
    decided_by: Option<Uuid>,
    decided_at: Option<DateTime<Utc>>,
    comment: Option<String>,
    outcome: Option<String>,
}

impl TryFrom<Row> for ApprovalRequest {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            state: ApprovalState::parse(&r.state)
                .ok_or_else(|| StoreError::Corrupt(format!("approval request {}: state", r.id)))?,
            id: r.id,
            action: r.action,
            summary: r.summary,
            requested_by: UserId::from_uuid(r.requested_by),
            requested_at: r.requested_at,
            expires_at: r.expires_at,
            decided_by: r.decided_by.map(UserId::from_uuid),
            decided_at: r.decided_at,
            comment: r.comment,
            outcome: r.outcome,
        })
    }
}

const COLUMNS: &str =
    "id, action, summary, requested_by, requested_at, expires_at, state, decided_by, decided_at, comment, outcome";

impl TenantTx {
    /// The actions this organization sends for approval (JSON list of names).
    pub async fn approval_actions(&mut self) -> Result<Vec<String>> {
        let raw: String = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT approval_actions FROM organizations WHERE id = $1")
            .bind(self.scope.org_id().as_uuid()).fetch_one(c).await)?;
        serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("approval policy: {e}")))
    }

    pub async fn set_approval_actions(&mut self, actions: &[String]) -> Result<()> {
        let raw = serde_json::to_string(actions)?;
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE organizations SET approval_actions = $1 WHERE id = $2")
            .bind(raw).bind(self.scope.org_id().as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Until when the single-admin shortcut is closed (an admin was demoted or removed then).
    pub async fn four_eyes_until(&mut self) -> Result<Option<DateTime<Utc>>> {
        let until: Option<DateTime<Utc>> = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT four_eyes_until FROM organizations WHERE id = $1")
            .bind(self.scope.org_id().as_uuid()).fetch_one(c).await)?;
        Ok(until)
    }

    /// Closes the single-admin shortcut until `until` (never shortens an earlier hold).
    pub async fn hold_four_eyes(&mut self, until: DateTime<Utc>) -> Result<()> {
        let held = self.four_eyes_until().await?;
        if held.is_none_or(|h| h < until) {
            on!(&mut self.inner.tx, c => sqlx::query("UPDATE organizations SET four_eyes_until = $1 WHERE id = $2")
                .bind(until).bind(self.scope.org_id().as_uuid()).execute(c).await.map(|_| ()))?;
        }
        Ok(())
    }

    /// Withdraws the pending requests `user` made, saying why; returns their ids.
    pub async fn withdraw_approval_requests_of(&mut self, user: UserId, why: &str) -> Result<Vec<Uuid>> {
        let ids: Vec<Uuid> = on!(&mut self.inner.tx, c => sqlx::query_scalar("UPDATE approval_requests SET state = 'withdrawn', outcome = $1 WHERE org_id = $2 AND requested_by = $3 AND state = 'pending' RETURNING id")
            .bind(why).bind(self.scope.org_id().as_uuid()).bind(user.as_uuid()).fetch_all(c).await)?;
        Ok(ids)
    }

    /// Queues a request for `change` (sealed) until `expires_at`.
    pub async fn create_approval_request(
        &mut self,
        vault: &Vault,
        action: &str,
        summary: &serde_json::Value,
        change: &[u8],
        requested_by: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let sealed = vault.seal_org(self, "approval_requests", "change", &id.to_string(), change).await?;
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO approval_requests (id, org_id, action, summary, change_sealed, requested_by, requested_at, expires_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')")
            .bind(id).bind(self.scope.org_id().as_uuid()).bind(action).bind(summary.to_string()).bind(sealed)
            .bind(requested_by.as_uuid()).bind(now()).bind(expires_at).execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    pub async fn approval_request(&mut self, id: Uuid) -> Result<Option<ApprovalRequest>> {
        let sql = format!("SELECT {COLUMNS} FROM approval_requests WHERE org_id = $1 AND id = $2");
        let row: Option<Row> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).bind(id).fetch_optional(c).await)?;
        row.map(TryInto::try_into).transpose()
    }

    /// The organization's requests, newest first.
    pub async fn approval_requests(&mut self, limit: i64) -> Result<Vec<ApprovalRequest>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM approval_requests WHERE org_id = $1 ORDER BY requested_at DESC, id DESC LIMIT $2"
        );
        let rows: Vec<Row> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).bind(limit).fetch_all(c).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Decides a request that is pending and unexpired at `at`: true for the one caller that
    /// does, false for everyone else (decided already, expired, or not this organization's).
    pub async fn decide_approval(
        &mut self,
        id: Uuid,
        state: ApprovalState,
        by: UserId,
        comment: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("UPDATE approval_requests SET state = $1, decided_by = $2, decided_at = $3, comment = $4 WHERE org_id = $5 AND id = $6 AND state = 'pending' AND expires_at > $3")
            .bind(state.as_str()).bind(by.as_uuid()).bind(at).bind(comment).bind(self.scope.org_id().as_uuid()).bind(id)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Records what applying an approved request did (or, with `Failed`, why it could not).
    pub async fn finish_approval(&mut self, id: Uuid, state: ApprovalState, outcome: &str) -> Result<()> {
        on!(&mut self.inner.tx, c => sqlx::query("UPDATE approval_requests SET state = $1, outcome = $2 WHERE org_id = $3 AND id = $4")
            .bind(state.as_str()).bind(outcome).bind(self.scope.org_id().as_uuid()).bind(id).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// The proposed change of a request, opened.
    pub async fn open_approval_change(&mut self, vault: &Vault, id: Uuid) -> Result<Zeroizing<Vec<u8>>> {
        let sealed: Option<Vec<u8>> = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT change_sealed FROM approval_requests WHERE org_id = $1 AND id = $2")
            .bind(self.scope.org_id().as_uuid()).bind(id).fetch_optional(c).await)?;
        let plain = vault
            .open_org(
                self,
                "approval_requests",
                "change",
                &id.to_string(),
                sealed.ok_or(StoreError::NotFound("approval request"))?,
            )
            .await?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

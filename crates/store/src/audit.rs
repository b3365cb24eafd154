//! The append-only, hash-chained audit log (S16).
//!
//! Each organization has its own chain: entry `n` stores the hash of entry `n-1` and its own hash
//! over every field, so changing, removing or reordering any entry breaks the chain from there on,
//! and `burnrate audit verify` names the first broken entry. The database refuses UPDATE and DELETE
//! (triggers in both backends; on PostgreSQL the application role also lacks the privilege).
//! Appends are serialized per organization (SQLite: the write lock; PostgreSQL: an advisory lock).
//! Details never contain secrets or email addresses: callers pass ids.

use burnrate_core::OrgId;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::accounts::now;
use crate::{Backend, Result, StoreError, TenantTx, on};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorType {
    User,
    ApiKey,
    Operator,
    System,
    /// Someone not logged in (a failed login, a password reset request).
    Anonymous,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::User => "user",
            ActorType::ApiKey => "api_key",
            ActorType::Operator => "operator",
            ActorType::System => "system",
            ActorType::Anonymous => "anonymous",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Actor {
    pub kind: ActorType,
    pub id: Option<String>,
    /// What a person reading the log sees for the actor; never an email or a secret.
    pub label: String,
}

impl Actor {
    pub fn system(label: &str) -> Self {
        Self { kind: ActorType::System, id: None, label: label.to_owned() }
    }
}

/// Every action the audit log records (S16). One list: a new action is a new variant here, and
/// the suite's audited-action table (`audit::every_audit_action_is_caused_counted_well_formed_and_free_of_secrets`) then fails until it says how
/// the action is caused and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A member logged in.
    Login,
    /// A login was refused.
    LoginFailed,
    /// A member logged out.
    Logout,
    /// An address was verified.
    EmailVerified,
    /// A password reset link was asked for.
    PasswordResetRequested,
    /// A password was reset.
    PasswordResetCompleted,
    /// Two-step login turned on.
    SecondFactorEnabled,
    /// Two-step login turned off.
    SecondFactorDisabled,
    /// An organization was created.
    OrganizationCreated,
    /// The organization's settings changed.
    OrgSettingsChanged,
    /// A member joined.
    MemberJoined,
    /// A member's role changed.
    MemberRoleChanged,
    /// A member was removed.
    MemberRemoved,
    /// An invitation was sent.
    InvitationCreated,
    /// An invitation was revoked.
    InvitationRevoked,
    /// An invitation was accepted.
    InvitationAccepted,
    /// An api key was made.
    ApiKeyCreated,
    /// An api key was revoked.
    ApiKeyRevoked,
    /// An OpenTelemetry ingest key was made.
    IngestKeyCreated,
    /// An OpenTelemetry ingest key was revoked.
    IngestKeyRevoked,
    /// A sql credential was made.
    SqlCredentialCreated,
    /// A sql credential was revoked.
    SqlCredentialRevoked,
    /// A source was connected.
    SourceCreated,
    /// A source's sync settings changed.
    SourceSettingsChanged,
    /// A source's credential, or where it is sent, changed.
    SourceCredentialRotated,
    /// A source's syncs were paused.
    SourcePaused,
    /// A source's syncs were resumed.
    SourceResumed,
    /// A sync was asked for.
    SourceSyncRequested,
    /// A source was removed, its data kept.
    SourceDeletedDataKept,
    /// A source was removed with its data.
    SourceDeletedDataRemoved,
    /// A budget was made.
    BudgetCreated,
    /// A budget changed.
    BudgetUpdated,
    /// A budget was removed.
    BudgetDeleted,
    /// A webhook destination was added.
    WebhookCreated,
    /// A webhook destination was removed.
    WebhookDeleted,
    /// A dead delivery was sent again.
    WebhookRedelivered,
    /// A destination that kept failing was paused.
    WebhookPaused,
    /// A paused destination was resumed.
    WebhookResumed,
    /// A change was sent for approval.
    ApprovalRequested,
    /// A request was approved.
    ApprovalApproved,
    /// A request was rejected.
    ApprovalRejected,
    /// An approved change could no longer be applied.
    ApprovalFailed,
    /// A request was withdrawn (its author left or is no longer an admin).
    ApprovalWithdrawn,
    /// The audit log was exported.
    AuditExported,
    /// Costs were exported.
    CostsExported,
    /// A query's rows were downloaded.
    QueryExported,
    /// An explorer view was downloaded.
    ExplorerExported,
    /// An operator asked for support access.
    SupportRequested,
    /// An admin consented to support access.
    SupportConsented,
    /// An admin declined support access.
    SupportDeclined,
    /// A second operator approved support access.
    SupportApproved,
    /// An operator opened a page under a grant.
    SupportAccess,
    /// Support access ended.
    SupportRevoked,
    /// An operator published a notice.
    NoticePublished,
    /// The operator granted the organization a private network.
    EgressGranted,
    /// The operator took a granted network back.
    EgressRevoked,
    /// The operator imported a price catalogue: the instance's rates changed.
    PriceCatalogueImported,
    /// The organization set prices of its own for a model.
    PriceOverrideCreated,
    /// The organization removed prices of its own.
    PriceOverrideRemoved,
    /// Usage already synced was priced again at the current rates, as an admin asked.
    UsageRepriced,
}

impl AuditAction {
    pub const ALL: &[AuditAction] = &[
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::Logout,
        AuditAction::EmailVerified,
        AuditAction::PasswordResetRequested,
        AuditAction::PasswordResetCompleted,
        AuditAction::SecondFactorEnabled,
        AuditAction::SecondFactorDisabled,
        AuditAction::OrganizationCreated,
        AuditAction::OrgSettingsChanged,
        AuditAction::MemberJoined,
        AuditAction::MemberRoleChanged,
        AuditAction::MemberRemoved,
        AuditAction::InvitationCreated,
        AuditAction::InvitationRevoked,
        AuditAction::InvitationAccepted,
        AuditAction::ApiKeyCreated,
        AuditAction::ApiKeyRevoked,
        AuditAction::IngestKeyCreated,
        AuditAction::IngestKeyRevoked,
        AuditAction::SqlCredentialCreated,
        AuditAction::SqlCredentialRevoked,
        AuditAction::SourceCreated,
        AuditAction::SourceSettingsChanged,
        AuditAction::SourceCredentialRotated,
        AuditAction::SourcePaused,
        AuditAction::SourceResumed,
        AuditAction::SourceSyncRequested,
        AuditAction::SourceDeletedDataKept,
        AuditAction::SourceDeletedDataRemoved,
        AuditAction::BudgetCreated,
        AuditAction::BudgetUpdated,
        AuditAction::BudgetDeleted,
        AuditAction::WebhookCreated,
        AuditAction::WebhookDeleted,
        AuditAction::WebhookRedelivered,
        AuditAction::WebhookPaused,
        AuditAction::WebhookResumed,
        AuditAction::ApprovalRequested,
        AuditAction::ApprovalApproved,
        AuditAction::ApprovalRejected,
        AuditAction::ApprovalFailed,
        AuditAction::ApprovalWithdrawn,
        AuditAction::AuditExported,
        AuditAction::CostsExported,
        AuditAction::QueryExported,
        AuditAction::ExplorerExported,
        AuditAction::SupportRequested,
        AuditAction::SupportConsented,
        AuditAction::SupportDeclined,
        AuditAction::SupportApproved,
        AuditAction::SupportAccess,
        AuditAction::SupportRevoked,
        AuditAction::NoticePublished,
        AuditAction::EgressGranted,
        AuditAction::EgressRevoked,
        AuditAction::PriceCatalogueImported,
        AuditAction::PriceOverrideCreated,
        AuditAction::PriceOverrideRemoved,
        AuditAction::UsageRepriced,
    ];

    /// The action's name in the log, its CSV and its filters.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::Logout => "logout",
            AuditAction::EmailVerified => "email_verified",
            AuditAction::PasswordResetRequested => "password_reset_requested",
            AuditAction::PasswordResetCompleted => "password_reset_completed",
            AuditAction::SecondFactorEnabled => "second_factor_enabled",
            AuditAction::SecondFactorDisabled => "second_factor_disabled",
            AuditAction::OrganizationCreated => "organization_created",
            AuditAction::OrgSettingsChanged => "org_settings_changed",
            AuditAction::MemberJoined => "member_joined",
            AuditAction::MemberRoleChanged => "member_role_changed",
            AuditAction::MemberRemoved => "member_removed",
            AuditAction::InvitationCreated => "invitation_created",
            AuditAction::InvitationRevoked => "invitation_revoked",
            AuditAction::InvitationAccepted => "invitation_accepted",
            AuditAction::ApiKeyCreated => "api_key_created",
            AuditAction::ApiKeyRevoked => "api_key_revoked",
            AuditAction::IngestKeyCreated => "ingest_key_created",
            AuditAction::IngestKeyRevoked => "ingest_key_revoked",
            AuditAction::SqlCredentialCreated => "sql_credential_created",
            AuditAction::SqlCredentialRevoked => "sql_credential_revoked",
            AuditAction::SourceCreated => "source_created",
            AuditAction::SourceSettingsChanged => "source_settings_changed",
            AuditAction::SourceCredentialRotated => "source_credential_rotated",
            AuditAction::SourcePaused => "source_paused",
            AuditAction::SourceResumed => "source_resumed",
            AuditAction::SourceSyncRequested => "source_sync_requested",
            AuditAction::SourceDeletedDataKept => "source_deleted_data_kept",
            AuditAction::SourceDeletedDataRemoved => "source_deleted_data_removed",
            AuditAction::BudgetCreated => "budget_created",
            AuditAction::BudgetUpdated => "budget_updated",
            AuditAction::BudgetDeleted => "budget_deleted",
            AuditAction::WebhookCreated => "webhook_created",
            AuditAction::WebhookDeleted => "webhook_deleted",
            AuditAction::WebhookRedelivered => "webhook_redelivered",
            AuditAction::WebhookPaused => "webhook_paused",
            AuditAction::WebhookResumed => "webhook_resumed",
            AuditAction::ApprovalRequested => "approval_requested",
            AuditAction::ApprovalApproved => "approval_approved",
            AuditAction::ApprovalRejected => "approval_rejected",
            AuditAction::ApprovalFailed => "approval_failed",
            AuditAction::ApprovalWithdrawn => "approval_withdrawn",
            AuditAction::AuditExported => "audit_exported",
            AuditAction::CostsExported => "costs_exported",
            AuditAction::QueryExported => "query_exported",
            AuditAction::ExplorerExported => "explorer_exported",
            AuditAction::SupportRequested => "support_requested",
            AuditAction::SupportConsented => "support_consented",
            AuditAction::SupportDeclined => "support_declined",
            AuditAction::SupportApproved => "support_approved",
            AuditAction::SupportAccess => "support_access",
            AuditAction::SupportRevoked => "support_revoked",
            AuditAction::NoticePublished => "notice_published",
            AuditAction::EgressGranted => "egress_granted",
            AuditAction::EgressRevoked => "egress_revoked",
            AuditAction::PriceCatalogueImported => "price_catalogue_imported",
            AuditAction::PriceOverrideCreated => "price_override_created",
            AuditAction::PriceOverrideRemoved => "price_override_removed",
            AuditAction::UsageRepriced => "usage_repriced",
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry to append.
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    pub actor: Actor,
    pub action: AuditAction,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub details: Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub type AuditEntry = NewAuditEntry;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRecord {
    pub org_id: Uuid,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The first entry of an organization's chain that does not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditBreak {
    pub org_id: OrgId,
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "organization {}: audit entry {} {}", self.org_id, self.seq, self.reason)
    }
}

/// Which entries a search returns; every part is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The actor's type (`operator`), label or id, exactly.
    pub actor: Option<String>,
    /// The action, exactly (`budget_created`).
    pub action: Option<String>,
    /// The target's type or id, exactly.
    pub target: Option<String>,
    /// From this time on (included).
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
}

/// Where a page of a search starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditPage {
    /// Newest first, from before entry `before` (from the newest when `None`).
    Newest { before: Option<i64> },
    /// Oldest first, after entry `after` (0: from the first).
    Oldest { after: i64 },
}

/// The CSV export's columns, in order.
pub const AUDIT_CSV_COLUMNS: [&str; 13] = [
    "seq",
    "at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "details",
    "ip",
    "user_agent",
    "prev_hash",
    "hash",
];

impl AuditRecord {
    /// This entry as a CSV record of [`AUDIT_CSV_COLUMNS`] (UTC RFC 3339 time).
    pub fn csv_record(&self) -> String {
        let seq = self.seq.to_string();
        let at = self.at.to_rfc3339_opts(SecondsFormat::Micros, true);
        burnrate_core::csv::record([
            Some(seq.as_str()),
            Some(&at),
            Some(&self.actor_type),
            self.actor_id.as_deref(),
            Some(&self.actor_label),
            Some(&self.action),
            self.target_type.as_deref(),
            self.target_id.as_deref(),
            Some(&self.details),
            self.ip.as_deref(),
            self.user_agent.as_deref(),
            Some(&self.prev_hash),
            Some(&self.hash),
        ])
    }

    /// SHA-256 over the previous hash and every field, each length-prefixed so that no two
    /// different entries hash the same input.
    pub fn compute_hash(&self) -> String {
        let at = self.at.to_rfc3339_opts(SecondsFormat::Micros, true);
        let seq = self.seq.to_string();
        let org = self.org_id.to_string();
        let fields: [Option<&str>; 14] = [
            Some(&self.prev_hash),
            Some(&org),
            Some(&seq),
            Some(&at),
            Some(&self.actor_type),
            self.actor_id.as_deref(),
            Some(&self.actor_label),
            Some(&self.action),
            self.target_type.as_deref(),
            self.target_id.as_deref(),
            Some(&self.details),
            self.ip.as_deref(),
            self.user_agent.as_deref(),
            Some("v1"),
        ];
        let mut h = Sha256::new();
        for field in fields {
            match field {
                None => h.update([0u8]),
                Some(s) => {
                    h.update([1u8]);
                    h.update((s.len() as u64).to_be_bytes());
                    h.update(s.as_bytes());
                }
            }
        }
        hex::encode(h.finalize())
    }
}

impl TenantTx {
    /// Appends an entry to this organization's chain, in the caller's transaction: the action and
    /// its audit entry commit together or not at all.
    pub async fn audit(&mut self, entry: NewAuditEntry) -> Result<i64> {
        let org = self.scope.org_id().as_uuid();
        if self.inner.tx.backend() == Backend::Postgres {
            on!(&mut self.inner.tx, c => sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 16))")
                .bind(org.to_string()).execute(c).await.map(|_| ()))?;
        }
        let last: Option<(i64, String)> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT seq, hash FROM audit_log WHERE org_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(org).fetch_optional(c).await)?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, GENESIS.to_owned()),
        };
        let mut record = AuditRecord {
            org_id: org,
            seq,
            at: now(),
            actor_type: entry.actor.kind.as_str().to_owned(),
            actor_id: entry.actor.id,
            actor_label: entry.actor.label,
            action: entry.action.as_str().to_owned(),
            target_type: entry.target_type.map(str::to_owned),
            target_id: entry.target_id,
            details: entry.details.to_string(),
            ip: entry.ip,
            user_agent: entry.user_agent.map(|ua| ua.chars().take(512).collect()),
            prev_hash,
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        let r = &record;
        on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO audit_log (org_id, seq, at, actor_type, actor_id, actor_label, action, target_type, target_id, details, ip, user_agent, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
            .bind(r.org_id).bind(r.seq).bind(r.at).bind(&r.actor_type).bind(&r.actor_id).bind(&r.actor_label).bind(&r.action)
            .bind(&r.target_type).bind(&r.target_id).bind(&r.details).bind(&r.ip).bind(&r.user_agent).bind(&r.prev_hash).bind(&r.hash)
            .execute(c).await.map(|_| ()))?;
        Ok(seq)
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_entries(&mut self, limit: i64) -> Result<Vec<AuditRecord>> {
        self.audit_search(&AuditFilter::default(), AuditPage::Newest { before: None }, limit).await
    }

    /// Entries matching `filter`, a page at a time: newest first (a listing) or oldest first (an
    /// export, page after page until one comes back short).
    pub async fn audit_search(
        &mut self,
        filter: &AuditFilter,
        page: AuditPage,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        let (cursor, order) = match page {
            AuditPage::Newest { before } => (format!("seq < {}", before.unwrap_or(i64::MAX)), "DESC"),
            AuditPage::Oldest { after } => (format!("seq > {after}"), "ASC"),
        };
        let sql = format!(
            "SELECT org_id, seq, at, actor_type, actor_id, actor_label, action, target_type, target_id, details, ip, user_agent, prev_hash, hash FROM audit_log WHERE org_id = $1 AND {cursor} AND ($2 IS NULL OR actor_type = $2 OR actor_label = $2 OR actor_id = $2) AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR target_id = $4 OR target_type = $4) AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6) ORDER BY seq {order} LIMIT $7"
        );
        let f = filter;
        let rows: Vec<AuditRecord> = on!(&mut self.inner.tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.scope.org_id().as_uuid()).bind(&f.actor).bind(&f.action).bind(&f.target).bind(f.from).bind(f.to)
            .bind(limit).fetch_all(c).await)?;
        Ok(rows)
    }

    /// Walks this organization's whole chain; `Ok(None)` when every entry verifies.
    pub async fn verify_audit_chain(&mut self) -> Result<(u64, Option<AuditBreak>)> {
        let org = self.scope.org_id();
        let rows: Vec<AuditRecord> = on!(&mut self.inner.tx, c => sqlx::query_as(
            "SELECT org_id, seq, at, actor_type, actor_id, actor_label, action, target_type, target_id, details, ip, user_agent, prev_hash, hash FROM audit_log WHERE org_id = $1 ORDER BY seq")
            .bind(org.as_uuid()).fetch_all(c).await)?;
        let mut expected_prev = GENESIS.to_owned();
        let mut count = 0u64;
        for (i, row) in rows.iter().enumerate() {
            let brk = |reason: String| Ok((count, Some(AuditBreak { org_id: org, seq: row.seq, reason })));
            let want_seq = i as i64 + 1;
            if row.seq != want_seq {
                return brk(format!("is out of sequence: expected entry {want_seq} (entries missing?)"));
            }
            if row.prev_hash != expected_prev {
                return brk("does not link to the entry before it (that entry was changed or removed)".into());
            }
            if row.compute_hash() != row.hash {
                return brk("was changed after it was written (its hash does not match its contents)".into());
            }
            expected_prev = row.hash.clone();
            count += 1;
        }
        Ok((count, None))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

//! Support access (S18): how an operator signs in, asks for access to an organization, and how a
//! second operator approves. The web pages and the `burnrate support` commands both act through
//! these functions, so the rules and the audit entries are written once.
//!
//! Everything that happens to a grant is written to the audit log of the organization it is for,
//! so the customer sees it next to their own actions.

use burnrate_core::{EmailAddress, SupportGrantId};
use burnrate_crypto::PasswordHasher;
use burnrate_store::{
    Actor, ActorType, AuditAction, GrantStatus, NewAuditEntry, OperatorRecord, OrgScope, OutboxMessage, Store,
    SupportGrant, Vault,
};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::AppError;
use crate::security::ClientInfo;

/// How long a grant lasts unless the request asks for less or more.
pub const DEFAULT_GRANT_HOURS: i64 = 4;
/// The longest a grant may last; a longer investigation asks again.
pub const MAX_GRANT_HOURS: i64 = 24;
const ISSUE_MAX_CHARS: usize = 500;

/// How the audit log names an operator: by the name they were added with, never their email.
pub fn operator_actor(op: &OperatorRecord) -> Actor {
    Actor { kind: ActorType::Operator, id: Some(op.id.to_string()), label: format!("operator {}", op.name) }
}

/// Checks an operator's email, password and TOTP code. Any wrong part gives the same answer, and
/// a code is accepted once: replaying it (or an older one) fails.
pub async fn authenticate_operator(
    store: &Store,
    vault: &Vault,
    hasher: &PasswordHasher,
    email: &str,
    password: &str,
    code: &str,
) -> Result<OperatorRecord, AppError> {
    let refused = || AppError::Forbidden("Wrong email, password or authenticator code.".into());
    let Ok(email) = EmailAddress::parse(email) else {
        hasher.verify(password, None).await;
        return Err(refused());
    };
    let mut tx = store.instance().await?;
    let operator = tx.find_operator_by_email(vault, &email).await?;
    tx.commit().await?;
    let ok = hasher.verify(password, operator.as_ref().map(|o| o.password_hash.as_str())).await;
    let Some(operator) = operator.filter(|_| ok) else {
        return Err(refused());
    };
    let mut tx = store.instance().await?;
    let secret = tx.operator_totp(vault, operator.id).await?;
    let Some(step) = secret.verify(code, Utc::now().timestamp()) else {
        return Err(refused());
    };
    if !tx.use_operator_totp_step(operator.id, step).await? {
        return Err(AppError::Forbidden("This authenticator code was used already; wait for the next one.".into()));
    }
    tx.commit().await?;
    Ok(operator)
}

/// An operator's entry in an organization's audit log, about one grant.
fn operator_entry(
    operator: &OperatorRecord,
    action: AuditAction,
    grant: SupportGrantId,
    client: Option<&ClientInfo>,
    details: Value,
) -> NewAuditEntry {
    NewAuditEntry {
        actor: operator_actor(operator),
        action,
        target_type: Some("support_grant"),
        target_id: Some(grant.to_string()),
        details,
        ip: client.map(|c| c.ip.clone()),
        user_agent: client.and_then(|c| c.user_agent.clone()),
    }
}

/// What an operator asks for.
pub struct AccessRequest<'a> {
    /// Organization name or id.
    pub org: &'a str,
    /// The customer-reported issue, in words (ticket number and summary).
    pub issue: &'a str,
    pub hours: Option<i64>,
}

/// Records a request for access and tells the organization's admins by email (`support_page` is
/// the link they follow to consent or decline).
pub async fn request_access(
    store: &Store,
    vault: &Vault,
    operator: &OperatorRecord,
    request: &AccessRequest<'_>,
    support_page: &str,
    client: Option<&ClientInfo>,
) -> Result<SupportGrant, AppError> {
    let issue = request.issue.trim();
    if issue.is_empty() {
        return Err(AppError::Validation(
            "issue: name the customer-reported issue this access is for (ticket and summary)".into(),
        ));
    }
    if issue.chars().count() > ISSUE_MAX_CHARS {
        return Err(AppError::Validation(format!("issue: at most {ISSUE_MAX_CHARS} characters")));
    }
    let hours = request.hours.unwrap_or(DEFAULT_GRANT_HOURS);
    if !(1..=MAX_GRANT_HOURS).contains(&hours) {
        return Err(AppError::Validation(format!("hours: from 1 to {MAX_GRANT_HOURS}")));
    }
    let mut tx = store.instance().await?;
    let org = tx
        .find_org(request.org)
        .await?
        .ok_or_else(|| AppError::Validation(format!("org: no organization named or with id {:?}", request.org)))?;
    let id = tx.create_support_grant(org.id, operator.id, issue, Duration::hours(hours)).await?;
    let grant = tx.support_grant(id).await?.ok_or(AppError::NotFound)?;
    let mut tx = tx.into_tenant(OrgScope::trusted(org.id)).await?;
    let details = json!({ "issue": issue, "hours": hours });
    tx.audit(operator_entry(operator, AuditAction::SupportRequested, id, client, details)).await?;
    for admin in tx.members(vault).await?.into_iter().filter(|m| m.role.is_admin()) {
        let body = format!(
            "{} of this burnrate instance asks to see {} read-only for {hours} hours, about:\n\n  {issue}\n\n\
             Nothing is visible to them unless an admin of your organization consents and a second operator \
             approves. Consent or decline: {support_page}\nYou can end the access there at any time; everything \
             done under it appears in your audit log.\n",
            operator_actor(operator).label,
            org.name,
        );
        let mail = OutboxMessage {
            to: admin.email.as_str().to_owned(),
            subject: "[burnrate] Support asks for access to your organization".into(),
            body,
            org: Some(org.id.as_uuid()),
        };
        tx.enqueue_mail(vault, &mail).await?;
    }
    tx.commit().await?;
    Ok(grant)
}

/// A second operator's approval. The requester cannot approve their own request.
pub async fn approve_access(
    store: &Store,
    operator: &OperatorRecord,
    id: SupportGrantId,
    client: Option<&ClientInfo>,
) -> Result<SupportGrant, AppError> {
    let mut tx = store.instance().await?;
    let grant = tx.support_grant(id).await?.ok_or(AppError::NotFound)?;
    if grant.requested_by == operator.id {
        return Err(AppError::Forbidden("You asked for this access: a different operator must approve it.".into()));
    }
    let now = Utc::now();
    if !tx.approve_support_grant(id, operator.id, now).await? {
        return Err(AppError::Conflict(not_waiting(&grant, now, "approved")));
    }
    let started = start_if_complete(&mut tx, &grant, now).await?;
    let grant = tx.support_grant(id).await?.ok_or(AppError::NotFound)?;
    let mut tx = tx.into_tenant(OrgScope::trusted(grant.org_id)).await?;
    let details = json!({ "active_until": started });
    tx.audit(operator_entry(operator, AuditAction::SupportApproved, id, client, details)).await?;
    tx.commit().await?;
    Ok(grant)
}

/// The organization's consent, given by one of its admins.
pub(crate) async fn consent_to_access(
    store: &Store,
    caller: &impl Caller,
    id: SupportGrantId,
) -> Result<SupportGrant, AppError> {
    caller.require_admin()?;
    let mut tx = store.tenant(caller.scope()).await?;
    let grant = tx.org_support_grant(id).await?.ok_or(AppError::NotFound)?;
    let now = Utc::now();
    if !tx.consent_support_grant(id, caller.member(), now).await? {
        return Err(AppError::Conflict(not_waiting(&grant, now, "consented to")));
    }
    let started = start_if_complete(&mut tx, &grant, now).await?;
    let details = json!({ "active_until": started });
    tx.audit(caller.entry(AuditAction::SupportConsented, "support_grant", id.to_string(), details)).await?;
    let grant = tx.org_support_grant(id).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(grant)
}

/// The organization says no to a request that has not started.
pub(crate) async fn decline_access(
    store: &Store,
    caller: &impl Caller,
    id: SupportGrantId,
) -> Result<SupportGrant, AppError> {
    caller.require_admin()?;
    let mut tx = store.tenant(caller.scope()).await?;
    let grant = tx.org_support_grant(id).await?.ok_or(AppError::NotFound)?;
    let now = Utc::now();
    if !tx.decline_support_grant(id, caller.member(), now).await? {
        return Err(AppError::Conflict(not_waiting(&grant, now, "declined")));
    }
    tx.audit(caller.entry(AuditAction::SupportDeclined, "support_grant", id.to_string(), json!({}))).await?;
    let grant = tx.org_support_grant(id).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(grant)
}

/// The organization ends a waiting or active grant at once (an admin, or an admin API key).
pub(crate) async fn revoke_for_org(
    store: &Store,
    caller: &impl Caller,
    id: SupportGrantId,
) -> Result<SupportGrant, AppError> {
    caller.require_admin()?;
    let audit = caller.entry(AuditAction::SupportRevoked, "support_grant", id.to_string(), json!({}));
    revoke(store, Some(caller.scope()), audit, id).await
}

/// An operator ends a grant (their own when the work is done, or any they see misused).
pub async fn revoke_as_operator(
    store: &Store,
    operator: &OperatorRecord,
    id: SupportGrantId,
    client: Option<&ClientInfo>,
) -> Result<SupportGrant, AppError> {
    revoke(store, None, operator_entry(operator, AuditAction::SupportRevoked, id, client, json!({})), id).await
}

/// Ends the waiting and active grants of an operator who is being removed, each recorded in its
/// organization's log as done by `by` (the command that removes them). Returns how many.
pub async fn revoke_all_of(store: &Store, operator: &OperatorRecord, by: &str) -> Result<usize, AppError> {
    let now = Utc::now();
    let mut tx = store.instance().await?;
    let grants = tx.all_support_grants(10_000).await?;
    tx.commit().await?;
    let mut ended = 0;
    for grant in grants.iter().filter(|g| g.requested_by == operator.id) {
        let status = grant.status(now);
        if !(status.is_waiting() || status == GrantStatus::Active) {
            continue;
        }
        let audit = NewAuditEntry {
            actor: Actor::system(by),
            action: AuditAction::SupportRevoked,
            target_type: Some("support_grant"),
            target_id: Some(grant.id.to_string()),
            details: json!({ "reason": "operator removed", "operator": operator_actor(operator).label }),
            ip: None,
            user_agent: None,
        };
        revoke(store, None, audit, grant.id).await?;
        ended += 1;
    }
    Ok(ended)
}

async fn revoke(
    store: &Store,
    org: Option<OrgScope>,
    audit: NewAuditEntry,
    id: SupportGrantId,
) -> Result<SupportGrant, AppError> {
    let mut tx = store.instance().await?;
    let grant = tx.support_grant(id).await?.ok_or(AppError::NotFound)?;
    if org.is_some_and(|s| s.org_id() != grant.org_id) {
        return Err(AppError::NotFound);
    }
    let now = Utc::now();
    if !tx.revoke_support_grant(id, &audit.actor.label, now).await? {
        return Err(AppError::Conflict(not_waiting(&grant, now, "revoked")));
    }
    let grant = tx.support_grant(id).await?.ok_or(AppError::NotFound)?;
    let mut tx = tx.into_tenant(OrgScope::trusted(grant.org_id)).await?;
    tx.audit(audit).await?;
    tx.commit().await?;
    Ok(grant)
}

/// Starts the time box when the second of consent and approval has just been given (the UPDATE
/// checks both); returns when it ends. `grant` is the grant as read before: only its fixed
/// duration is used.
async fn start_if_complete(
    tx: &mut burnrate_store::InstanceTx,
    grant: &SupportGrant,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    if tx.activate_support_grant(grant, now).await? { Ok(Some(now + grant.duration)) } else { Ok(None) }
}

fn not_waiting(grant: &SupportGrant, now: DateTime<Utc>, verb: &str) -> String {
    let why = match grant.status(now) {
        GrantStatus::Active => "it is active already".to_owned(),
        GrantStatus::AwaitingApproval if verb == "consented to" => "it has the organization's consent already".into(),
        GrantStatus::AwaitingConsent if verb == "approved" => "a second operator approved it already".into(),
        s => format!("it is {}", s.as_str().replace('_', " ")),
    };
    format!("This request cannot be {verb}: {why}.")
}

/// How far ahead a notice takes effect unless its publisher says otherwise.
pub const NOTICE_LEAD_DAYS: i64 = 30;

/// What publishing a notice did.
pub struct Published {
    pub notice: burnrate_store::Notice,
    pub organizations: usize,
    pub emails: usize,
}

/// What an operator publishes.
pub struct NewNotice<'a> {
    pub title: &'a str,
    pub body: &'a str,
    /// [`NOTICE_LEAD_DAYS`] ahead when not given.
    pub effective_on: Option<chrono::NaiveDate>,
}

/// Publishes a notice (S20): recorded once, written to every organization's audit log, and
/// emailed to every organization's admins (`overview` is the link they follow), in one
/// transaction.
pub async fn publish_notice(
    store: &Store,
    vault: &Vault,
    operator: &OperatorRecord,
    new: &NewNotice<'_>,
    overview: &str,
    client: Option<&ClientInfo>,
) -> Result<Published, AppError> {
    let (title, body) = (new.title.trim(), new.body.trim());
    if title.is_empty() || title.chars().count() > 120 || title.chars().any(char::is_control) {
        return Err(AppError::Validation("title: 1 to 120 characters on one line".into()));
    }
    if body.is_empty() || body.chars().count() > 5000 {
        return Err(AppError::Validation("body: 1 to 5000 characters".into()));
    }
    let today = Utc::now().date_naive();
    let effective_on = new.effective_on.unwrap_or(today + Duration::days(NOTICE_LEAD_DAYS));
    if effective_on < today {
        return Err(AppError::Validation(format!("effective: {effective_on} is in the past")));
    }
    let mut tx = store.instance().await?;
    let notice = tx.publish_notice(title, body, effective_on, operator.id).await?;
    let orgs = tx.list_org_ids().await?;
    let mut emails = 0;
    for org in &orgs {
        let mut t = tx.into_tenant(OrgScope::trusted(*org)).await?;
        let details = json!({ "title": title, "effective_on": effective_on });
        t.audit(NewAuditEntry {
            actor: operator_actor(operator),
            action: AuditAction::NoticePublished,
            target_type: Some("notice"),
            target_id: Some(notice.id.to_string()),
            details,
            ip: client.map(|c| c.ip.clone()),
            user_agent: client.and_then(|c| c.user_agent.clone()),
        })
        .await?;
        for admin in t.members(vault).await?.into_iter().filter(|m| m.role.is_admin()) {
            let mail = OutboxMessage {
                to: admin.email.as_str().to_owned(),
                subject: format!("[burnrate] Notice: {title} (effective {effective_on})"),
                body: format!(
                    "{body}\n\nThis takes effect on {effective_on}.\n\nYou receive this notice from the operators of \
                     this burnrate instance as an admin of your organization. It is also shown on the overview: \
                     {overview}\n"
                ),
                org: Some(org.as_uuid()),
            };
            t.enqueue_mail(vault, &mail).await?;
            emails += 1;
        }
        tx = t.into_instance();
    }
    tx.commit().await?;
    Ok(Published { notice, organizations: orgs.len(), emails })
}

/// A notice as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct NoticeView {
    id: Uuid,
    title: String,
    body: String,
    effective_on: chrono::NaiveDate,
    published_at: DateTime<Utc>,
}

impl From<&burnrate_store::Notice> for NoticeView {
    fn from(n: &burnrate_store::Notice) -> Self {
        NoticeView {
            id: n.id,
            title: n.title.clone(),
            body: n.body.clone(),
            effective_on: n.effective_on,
            published_at: n.published_at,
        }
    }
}

/// How long a notice stays on the overview after it was published.
pub const NOTICE_SHOWN_DAYS: i64 = 180;

/// A grant as the API and the command line show it.
#[derive(Serialize, ToSchema)]
pub struct SupportGrantView {
    id: Uuid,
    organization_id: Uuid,
    /// The customer-reported issue the access is for.
    issue: String,
    /// awaiting_consent_and_approval, awaiting_consent, awaiting_approval, active, declined,
    /// revoked, expired or lapsed.
    status: &'static str,
    /// How long the access lasts once it starts.
    hours: i64,
    /// The operator who asked (and who sees the organization while it is active).
    requested_by: Uuid,
    requested_at: DateTime<Utc>,
    consented_by: Option<Uuid>,
    consented_at: Option<DateTime<Utc>>,
    declined_by: Option<Uuid>,
    declined_at: Option<DateTime<Utc>>,
    /// The second operator.
    approved_by: Option<Uuid>,
    approved_at: Option<DateTime<Utc>>,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    revoked_by: Option<String>,
}

impl SupportGrantView {
    pub fn new(grant: &SupportGrant, now: DateTime<Utc>) -> Self {
        SupportGrantView {
            id: grant.id.as_uuid(),
            organization_id: grant.org_id.as_uuid(),
            issue: grant.issue.clone(),
            status: grant.status(now).as_str(),
            hours: grant.duration.num_hours(),
            requested_by: grant.requested_by.as_uuid(),
            requested_at: grant.requested_at,
            consented_by: grant.consented_by.map(|u| u.as_uuid()),
            consented_at: grant.consented_at,
            declined_by: grant.declined_by.map(|u| u.as_uuid()),
            declined_at: grant.declined_at,
            approved_by: grant.approved_by.map(|o| o.as_uuid()),
            approved_at: grant.approved_at,
            starts_at: grant.starts_at,
            expires_at: grant.expires_at,
            revoked_at: grant.revoked_at,
            revoked_by: grant.revoked_by.clone(),
        }
    }
}

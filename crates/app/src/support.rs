//! Support access (S18): how an operator signs in, asks for access to an organization, how a
//! second operator approves and the organization consents, and the notices operators publish
//! (S20). The web pages and the `burnrate support` and `operator` commands all act through
//! [`Support`], so the rules and the audit entries are written once.
//!
//! Everything that happens to a grant is written to the audit log of the organization it is for,
//! so the customer sees it next to their own actions.

use std::collections::HashMap;
use std::sync::Arc;

use burnrate_core::{EmailAddress, OperatorId, OrgId, SupportGrantId};
use burnrate_crypto::{PasswordHasher, random_token, token_hash};
use burnrate_store::{
    Actor as AuditActor, ActorType, AuditAction, InstanceTx, NewAuditEntry, OrgScope, OutboxMessage, Store, Vault,
};
pub use burnrate_store::{GrantStatus, Notice, OperatorRecord, SupportGrant};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Actor, Error, Result};

/// The support-access service: what operators and organizations do about grants and notices.
/// The command line builds it without the rest of the application.
#[derive(Clone)]
pub struct Support {
    store: Store,
    vault: Arc<Vault>,
    hasher: PasswordHasher,
    public_url: url::Url,
}

/// An instance operator acting, and from where (nowhere on the command line).
#[derive(Clone, Debug)]
pub struct Operator {
    pub record: OperatorRecord,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Operator {
    /// An operator acting through a command on the server.
    pub fn at_command_line(record: OperatorRecord) -> Self {
        Self { record, ip: None, user_agent: None }
    }
}

/// How long a grant lasts unless the request asks for less or more.
pub const DEFAULT_GRANT_HOURS: i64 = 4;
/// The longest a grant may last; a longer investigation asks again.
pub const MAX_GRANT_HOURS: i64 = 24;
const ISSUE_MAX_CHARS: usize = 500;

/// An operator's session lasts a working day at most, and ends sooner when left idle.
pub const OPERATOR_SESSION_HOURS: i64 = 8;

/// An operator inside one organization through an active grant of theirs; only
/// [`Support::enter`] makes one.
#[derive(Clone)]
pub struct UnderGrant {
    pub grant: SupportGrant,
    scope: OrgScope,
    pub org_name: String,
}

impl UnderGrant {
    pub fn org_id(&self) -> OrgId {
        self.scope.org_id()
    }
}

/// What the operators' page shows.
pub struct Dashboard {
    pub grants: Grants,
    pub org_names: HashMap<OrgId, String>,
    pub notices: Vec<Notice>,
}

/// An organization as an operator sees it under a grant.
pub struct OrganizationSeen {
    pub sources: Vec<burnrate_store::SourceRecord>,
    pub budgets: Vec<burnrate_store::BudgetRecord>,
    pub members: Vec<burnrate_store::Member>,
}

/// The grants an organization's page and API show, newest first.
const GRANTS_SHOWN: i64 = 200;

/// Grants, and how to name the operators they mention.
pub struct Grants {
    pub grants: Vec<SupportGrant>,
    pub operators: HashMap<OperatorId, String>,
}

/// "operator NAME" for each operator who asked for or approved one of `grants` (the first
/// characters of the id for one since deleted).
async fn operator_names(tx: &mut InstanceTx, grants: &[SupportGrant]) -> Result<HashMap<OperatorId, String>> {
    let mut ids: Vec<OperatorId> =
        grants.iter().flat_map(|g| std::iter::once(g.requested_by).chain(g.approved_by)).collect();
    ids.sort();
    ids.dedup();
    let mut names = HashMap::new();
    for id in ids {
        let name = tx.operator_name(id).await?.map(|n| format!("operator {n}"));
        names.insert(id, name.unwrap_or_else(|| format!("operator {}", &id.to_string()[..8])));
    }
    Ok(names)
}

/// How the audit log names an operator: by the name they were added with, never their email.
pub fn operator_actor(op: &OperatorRecord) -> AuditActor {
    AuditActor { kind: ActorType::Operator, id: Some(op.id.to_string()), label: format!("operator {}", op.name) }
}

/// An operator's entry in an organization's audit log, about one grant.
fn operator_entry(operator: &Operator, action: AuditAction, grant: SupportGrantId, details: Value) -> NewAuditEntry {
    operator.entry(action, "support_grant", grant.to_string(), details)
}

impl Operator {
    fn entry(&self, action: AuditAction, target_type: &'static str, target: String, details: Value) -> NewAuditEntry {
        NewAuditEntry {
            actor: operator_actor(&self.record),
            action,
            target_type: Some(target_type),
            target_id: Some(target),
            details,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
        }
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

impl Support {
    pub fn new(store: Store, vault: Arc<Vault>, hasher: PasswordHasher, public_url: url::Url) -> Self {
        Self { store, vault, hasher, public_url }
    }

    fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.origin().ascii_serialization())
    }

    /// Checks an operator's email, password and TOTP code. Any wrong part gives the same answer,
    /// and a code is accepted once: replaying it (or an older one) fails.
    pub async fn authenticate_operator(&self, email: &str, password: &str, code: &str) -> Result<OperatorRecord> {
        let refused = || Error::Forbidden("Wrong email, password or authenticator code.".into());
        let Ok(email) = EmailAddress::parse(email) else {
            self.hasher.verify(password, None).await;
            return Err(refused());
        };
        let mut tx = self.store.instance().await?;
        let operator = tx.find_operator_by_email(&self.vault, &email).await?;
        tx.commit().await?;
        let ok = self.hasher.verify(password, operator.as_ref().map(|o| o.password_hash.as_str())).await;
        let Some(operator) = operator.filter(|_| ok) else {
            return Err(refused());
        };
        let mut tx = self.store.instance().await?;
        let secret = tx.operator_totp(&self.vault, operator.id).await?;
        let Some(step) = secret.verify(code, Utc::now().timestamp()) else {
            return Err(refused());
        };
        if !tx.use_operator_totp_step(operator.id, step).await? {
            return Err(Error::Forbidden("This authenticator code was used already; wait for the next one.".into()));
        }
        tx.commit().await?;
        Ok(operator)
    }

    /// The operator a signed-in session belongs to, while they are still an operator.
    pub async fn operator(&self, id: OperatorId) -> Result<Option<OperatorRecord>> {
        let mut tx = self.store.read_instance().await?;
        let operator = tx.operator(id).await?;
        tx.commit().await?;
        Ok(operator)
    }

    /// Records a request for access and tells the organization's admins by email, with the link
    /// they follow to consent or decline.
    pub async fn request_access(&self, operator: &Operator, request: &AccessRequest<'_>) -> Result<SupportGrant> {
        let issue = request.issue.trim();
        if issue.is_empty() {
            return Err(Error::invalid(
                "issue",
                "issue: name the customer-reported issue this access is for (ticket and summary)",
            ));
        }
        if issue.chars().count() > ISSUE_MAX_CHARS {
            return Err(Error::invalid("issue", format!("issue: at most {ISSUE_MAX_CHARS} characters")));
        }
        let hours = request.hours.unwrap_or(DEFAULT_GRANT_HOURS);
        if !(1..=MAX_GRANT_HOURS).contains(&hours) {
            return Err(Error::invalid("hours", format!("hours: from 1 to {MAX_GRANT_HOURS}")));
        }
        let support_page = self.link("/support");
        let mut tx = self.store.instance().await?;
        let org = tx
            .find_org(request.org)
            .await?
            .ok_or_else(|| Error::invalid("org", format!("org: no organization named or with id {:?}", request.org)))?;
        let id = tx.create_support_grant(org.id, operator.record.id, issue, Duration::hours(hours)).await?;
        let grant = tx.support_grant(id).await?.ok_or(Error::NotFound)?;
        let mut tx = tx.into_tenant(OrgScope::trusted(org.id)).await?;
        let details = json!({ "issue": issue, "hours": hours });
        tx.audit(operator_entry(operator, AuditAction::SupportRequested, id, details)).await?;
        for admin in tx.members(&self.vault).await?.into_iter().filter(|m| m.role.is_admin()) {
            let body = format!(
                "{} of this burnrate instance asks to see {} read-only for {hours} hours, about:\n\n  {issue}\n\n\
                 Nothing is visible to them unless an admin of your organization consents and a second operator \
                 approves. Consent or decline: {support_page}\nYou can end the access there at any time; everything \
                 done under it appears in your audit log.\n",
                operator_actor(&operator.record).label,
                org.name,
            );
            let mail = OutboxMessage {
                to: admin.email.as_str().to_owned(),
                subject: "[burnrate] Support asks for access to your organization".into(),
                body,
                org: Some(org.id.as_uuid()),
            };
            tx.enqueue_mail(&self.vault, &mail).await?;
        }
        tx.commit().await?;
        Ok(grant)
    }

    /// A second operator's approval. The requester cannot approve their own request.
    pub async fn approve_access(&self, operator: &Operator, id: SupportGrantId) -> Result<SupportGrant> {
        let mut tx = self.store.instance().await?;
        let grant = tx.support_grant(id).await?.ok_or(Error::NotFound)?;
        if grant.requested_by == operator.record.id {
            return Err(Error::Forbidden("You asked for this access: a different operator must approve it.".into()));
        }
        let now = Utc::now();
        if !tx.approve_support_grant(id, operator.record.id, now).await? {
            return Err(Error::Conflict(not_waiting(&grant, now, "approved")));
        }
        let started = start_if_complete(&mut tx, &grant, now).await?;
        let grant = tx.support_grant(id).await?.ok_or(Error::NotFound)?;
        let mut tx = tx.into_tenant(OrgScope::trusted(grant.org_id)).await?;
        let details = json!({ "active_until": started });
        tx.audit(operator_entry(operator, AuditAction::SupportApproved, id, details)).await?;
        tx.commit().await?;
        Ok(grant)
    }

    /// The organization's consent, given by one of its admins.
    pub async fn consent_to_access(&self, actor: &Actor, id: SupportGrantId) -> Result<SupportGrant> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let grant = tx.org_support_grant(id).await?.ok_or(Error::NotFound)?;
        let now = Utc::now();
        if !tx.consent_support_grant(id, actor.member, now).await? {
            return Err(Error::Conflict(not_waiting(&grant, now, "consented to")));
        }
        let started = start_if_complete(&mut tx, &grant, now).await?;
        let details = json!({ "active_until": started });
        tx.audit(actor.entry(AuditAction::SupportConsented, "support_grant", id.to_string(), details)).await?;
        let grant = tx.org_support_grant(id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(grant)
    }

    /// The organization says no to a request that has not started.
    pub async fn decline_access(&self, actor: &Actor, id: SupportGrantId) -> Result<SupportGrant> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let grant = tx.org_support_grant(id).await?.ok_or(Error::NotFound)?;
        let now = Utc::now();
        if !tx.decline_support_grant(id, actor.member, now).await? {
            return Err(Error::Conflict(not_waiting(&grant, now, "declined")));
        }
        tx.audit(actor.entry(AuditAction::SupportDeclined, "support_grant", id.to_string(), json!({}))).await?;
        let grant = tx.org_support_grant(id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(grant)
    }

    /// The organization ends a waiting or active grant at once (an admin, or an admin API key).
    pub async fn revoke_for_org(&self, actor: &Actor, id: SupportGrantId) -> Result<SupportGrant> {
        actor.require_admin()?;
        let audit = actor.entry(AuditAction::SupportRevoked, "support_grant", id.to_string(), json!({}));
        self.revoke(Some(actor.scope), audit, id).await
    }

    /// An operator ends a grant (their own when the work is done, or any they see misused).
    pub async fn revoke_as_operator(&self, operator: &Operator, id: SupportGrantId) -> Result<SupportGrant> {
        self.revoke(None, operator_entry(operator, AuditAction::SupportRevoked, id, json!({})), id).await
    }

    /// Ends the waiting and active grants of an operator who is being removed, each recorded in
    /// its organization's log as done by `by` (the command that removes them). Returns how many.
    pub async fn revoke_all_of(&self, operator: &OperatorRecord, by: &str) -> Result<usize> {
        let now = Utc::now();
        let mut tx = self.store.instance().await?;
        let grants = tx.all_support_grants(10_000).await?;
        tx.commit().await?;
        let mut ended = 0;
        for grant in grants.iter().filter(|g| g.requested_by == operator.id) {
            let status = grant.status(now);
            if !(status.is_waiting() || status == GrantStatus::Active) {
                continue;
            }
            let audit = NewAuditEntry {
                actor: AuditActor::system(by),
                action: AuditAction::SupportRevoked,
                target_type: Some("support_grant"),
                target_id: Some(grant.id.to_string()),
                details: json!({ "reason": "operator removed", "operator": operator_actor(operator).label }),
                ip: None,
                user_agent: None,
            };
            self.revoke(None, audit, grant.id).await?;
            ended += 1;
        }
        Ok(ended)
    }

    async fn revoke(&self, org: Option<OrgScope>, audit: NewAuditEntry, id: SupportGrantId) -> Result<SupportGrant> {
        let mut tx = self.store.instance().await?;
        let grant = tx.support_grant(id).await?.ok_or(Error::NotFound)?;
        if org.is_some_and(|s| s.org_id() != grant.org_id) {
            return Err(Error::NotFound);
        }
        let now = Utc::now();
        if !tx.revoke_support_grant(id, &audit.actor.label, now).await? {
            return Err(Error::Conflict(not_waiting(&grant, now, "revoked")));
        }
        let grant = tx.support_grant(id).await?.ok_or(Error::NotFound)?;
        let mut tx = tx.into_tenant(OrgScope::trusted(grant.org_id)).await?;
        tx.audit(audit).await?;
        tx.commit().await?;
        Ok(grant)
    }

    /// Every grant of the instance, newest first (the operators' page and `support list`), with
    /// the names of the operators they mention.
    pub async fn all_grants(&self, limit: i64) -> Result<Grants> {
        let mut tx = self.store.read_instance().await?;
        let grants = tx.all_support_grants(limit).await?;
        let operators = operator_names(&mut tx, &grants).await?;
        tx.commit().await?;
        Ok(Grants { grants, operators })
    }

    /// The organization's grants, newest first, with the names of the operators they mention.
    pub async fn org_grants(&self, actor: &Actor) -> Result<Grants> {
        let mut tx = self.store.tenant(actor.scope).await?;
        let grants = tx.support_grants(GRANTS_SHOWN).await?;
        let operators = operator_names(&mut tx, &grants).await?;
        tx.commit().await?;
        Ok(Grants { grants, operators })
    }

    /// Opens an operator's session (ending `replacing`, the one the browser had); returns its
    /// token, which only the browser keeps.
    pub async fn sign_in(&self, operator: &OperatorRecord, replacing: Option<&str>) -> Result<String> {
        let mut tx = self.store.instance().await?;
        if let Some(old) = replacing {
            tx.delete_operator_session(&token_hash(old)).await?;
        }
        let token = random_token();
        let expires = Utc::now() + Duration::hours(OPERATOR_SESSION_HOURS);
        tx.create_operator_session(&token_hash(&token), operator.id, expires).await?;
        tx.commit().await?;
        tracing::info!(operator = %operator.id, "operator logged in");
        Ok(token)
    }

    pub async fn sign_out(&self, token: &str) -> Result<()> {
        let mut tx = self.store.instance().await?;
        tx.delete_operator_session(&token_hash(token)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The operator whose session `token` is, while it is neither expired nor idle longer than
    /// `idle` and they are still an operator; an ended session is deleted.
    pub async fn session(&self, token: &str, idle: Duration) -> Result<Option<OperatorRecord>> {
        let hash = token_hash(token);
        let mut tx = self.store.instance().await?;
        let Some(session) = tx.operator_session(&hash).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        let operator = tx.operator(session.operator_id).await?;
        let Some(operator) = operator.filter(|_| now < session.expires_at && now - session.last_seen_at <= idle) else {
            tx.delete_operator_session(&hash).await?;
            tx.commit().await?;
            return Ok(None);
        };
        if now - session.last_seen_at > Duration::seconds(60) {
            tx.touch_operator_session(&hash, now).await?;
        }
        tx.commit().await?;
        Ok(Some(operator))
    }

    /// What the operators' page shows: every grant with its organization's name, and the notices
    /// still shown.
    pub async fn dashboard(&self) -> Result<Dashboard> {
        let Grants { grants, operators } = self.all_grants(200).await?;
        let mut tx = self.store.read_instance().await?;
        let mut org_names = HashMap::new();
        for org in grants.iter().map(|g| g.org_id) {
            if let std::collections::hash_map::Entry::Vacant(e) = org_names.entry(org) {
                e.insert(tx.org(org).await?.map(|o| o.name).unwrap_or_else(|| org.to_string()));
            }
        }
        let notices = tx.notices_since(Utc::now() - Duration::days(NOTICE_SHOWN_DAYS)).await?;
        tx.commit().await?;
        Ok(Dashboard { grants: Grants { grants, operators }, org_names, notices })
    }

    /// Lets an operator into an organization only under an active grant of theirs (not found
    /// otherwise, saying nothing about whether it exists), and writes what they open (`method`,
    /// `path`) to the organization's audit log in the same transaction as the check.
    pub async fn enter(&self, operator: &Operator, org: OrgId, method: &str, path: &str) -> Result<UnderGrant> {
        let mut tx = self.store.instance().await?;
        let Some(grant) = tx.active_support_grant(operator.record.id, org, Utc::now()).await? else {
            return Err(Error::NotFound);
        };
        let org_name = tx.org(org).await?.map(|o| o.name).ok_or(Error::NotFound)?;
        let scope = OrgScope::trusted(org);
        let mut tx = tx.into_tenant(scope).await?;
        let details = json!({ "method": method, "path": path });
        tx.audit(operator_entry(operator, AuditAction::SupportAccess, grant.id, details)).await?;
        tx.commit().await?;
        Ok(UnderGrant { grant, scope, org_name })
    }

    /// What an operator sees of an organization under a grant: its sources, budgets and members.
    pub async fn organization(&self, g: &UnderGrant) -> Result<OrganizationSeen> {
        let mut tx = self.store.read_tenant(g.scope).await?;
        let seen = OrganizationSeen {
            sources: tx.sources().await?,
            budgets: tx.budgets().await?,
            members: tx.members(&self.vault).await?,
        };
        tx.commit().await?;
        Ok(seen)
    }

    /// The organization's latest audit entries, under a grant.
    pub async fn audit_log(&self, g: &UnderGrant) -> Result<Vec<burnrate_store::AuditRecord>> {
        let mut tx = self.store.read_tenant(g.scope).await?;
        let entries = tx.audit_entries(200).await?;
        tx.commit().await?;
        Ok(entries)
    }

    /// Notices of the instance's operators still shown (published in the last half year),
    /// newest first.
    pub async fn recent_notices(&self) -> Result<Vec<Notice>> {
        let mut tx = self.store.read_instance().await?;
        let notices = tx.notices_since(Utc::now() - Duration::days(NOTICE_SHOWN_DAYS)).await?;
        tx.commit().await?;
        Ok(notices)
    }

    /// Publishes a notice (S20): recorded once, written to every organization's audit log, and
    /// emailed to every organization's admins with a link to the overview, in one transaction.
    pub async fn publish_notice(&self, operator: &Operator, new: &NewNotice<'_>) -> Result<Published> {
        let (title, body) = (new.title.trim(), new.body.trim());
        if title.is_empty() || title.chars().count() > 120 || title.chars().any(char::is_control) {
            return Err(Error::invalid("title", "title: 1 to 120 characters on one line"));
        }
        if body.is_empty() || body.chars().count() > 5000 {
            return Err(Error::invalid("body", "body: 1 to 5000 characters"));
        }
        let today = Utc::now().date_naive();
        let effective_on = new.effective_on.unwrap_or(today + Duration::days(NOTICE_LEAD_DAYS));
        if effective_on < today {
            return Err(Error::invalid("effective", format!("effective: {effective_on} is in the past")));
        }
        let overview = self.link("/");
        let mut tx = self.store.instance().await?;
        let notice = tx.publish_notice(title, body, effective_on, operator.record.id).await?;
        let orgs = tx.list_org_ids().await?;
        let mut emails = 0;
        for org in &orgs {
            let mut t = tx.into_tenant(OrgScope::trusted(*org)).await?;
            let details = json!({ "title": title, "effective_on": effective_on });
            t.audit(operator.entry(AuditAction::NoticePublished, "notice", notice.id.to_string(), details)).await?;
            for admin in t.members(&self.vault).await?.into_iter().filter(|m| m.role.is_admin()) {
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
                t.enqueue_mail(&self.vault, &mail).await?;
                emails += 1;
            }
            tx = t.into_instance();
        }
        tx.commit().await?;
        Ok(Published { notice, organizations: orgs.len(), emails })
    }
}

/// Starts the time box when the second of consent and approval has just been given (the UPDATE
/// checks both); returns when it ends. `grant` is the grant as read before: only its fixed
/// duration is used.
async fn start_if_complete(
    tx: &mut InstanceTx,
    grant: &SupportGrant,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
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
    pub notice: Notice,
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

/// A notice as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct NoticeView {
    id: Uuid,
    title: String,
    body: String,
    effective_on: chrono::NaiveDate,
    published_at: DateTime<Utc>,
}

impl From<&Notice> for NoticeView {
    fn from(n: &Notice) -> Self {
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

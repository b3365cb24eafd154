//! Members and invitations. Access follows membership (S22): removing a member revokes their API
//! keys and SQL credentials (their wire sessions close: [`crate::sql_access`]) and withdraws their
//! pending requests, at once and audited; demoting one caps what their credentials reach at the
//! new role. Promotions wait for a second admin; demotions and removals never do (a removal must
//! not wait on the person removed), but demoting or removing an admin closes the single-admin
//! shortcut for the approval window ([`crate::policy`]).

use burnrate_core::{EmailAddress, InvitationId, Role, UserId};
use burnrate_crypto::{ScopedToken, token_hash};
use burnrate_store::AuditAction;
pub use burnrate_store::{InvitationRecord, Member, SessionRecord};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::approvals::withdraw_requests;
use crate::policy::{self, require_may_grant};
use crate::{Actor, App, Change, Error, Result, Submitted};

pub const INVITATION_PREFIX: &str = "inv_";
const INVITATION_DAYS: i64 = 7;

impl App {
    /// Invites `email` as `role`; mails the link. Returns the invitation and when it expires.
    pub async fn invite(&self, actor: &Actor, email: &str, role: Role) -> Result<(InvitationId, DateTime<Utc>)> {
        actor.require_admin()?;
        require_may_grant(actor, role)?;
        let email = EmailAddress::parse(email).map_err(|e| Error::invalid("email", format!("Email: {e}.")))?;
        let scope = actor.scope;
        let token = ScopedToken::generate(INVITATION_PREFIX, scope.org_id());
        let expires = Utc::now() + Duration::days(INVITATION_DAYS);
        let mut tx = self.store.tenant(scope).await?;
        if let Some(user) = tx.find_user_by_email(&self.vault, &email).await?
            && tx.member_role(user.id).await?.is_some()
        {
            return Err(Error::Conflict("That address is already a member of this organization.".into()));
        }
        let id = tx.create_invitation(&self.vault, &email, role, actor.member, &token_hash(&token), expires).await?;
        let org_name = tx.org(scope.org_id()).await?.map(|o| o.name).unwrap_or_default();
        let link = self.link(&format!("/invitations/{token}"));
        let body = format!(
            "You have been invited to join {org_name} on burnrate as {role}.\n\n\
             Accept the invitation here:\n{link}\n\n\
             The link works once and expires in {INVITATION_DAYS} days. If you were not expecting this, ignore this message."
        );
        self.mailer.enqueue(&mut tx, &email, &format!("Invitation to {org_name} on burnrate"), body).await?;
        tx.audit(actor.entry(AuditAction::InvitationCreated, "invitation", id.to_string(), json!({ "role": role })))
            .await?;
        tx.commit().await?;
        self.mailer.wake();
        Ok((id, expires))
    }

    pub async fn revoke_invitation(&self, actor: &Actor, id: InvitationId) -> Result<()> {
        self.admin_change(actor, ("invitation", id.to_string()), AuditAction::InvitationRevoked, async |tx| {
            Ok(tx.revoke_invitation(id).await?)
        })
        .await
    }

    /// Gives `target` the role `role`: a promotion goes through the approval policy, anything
    /// else applies at once. `Applied` carries the member's id.
    pub async fn change_role(&self, actor: &Actor, target: UserId, role: Role) -> Result<Submitted> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let current = tx.member_role(target).await?.ok_or(Error::NotFound)?;
        require_may_grant(actor, role)?;
        require_may_grant(actor, current)?;
        if current == role {
            return Ok(Submitted::Applied(target.as_uuid()));
        }
        if current == Role::Owner && tx.count_owners().await? <= 1 {
            return Err(Error::Conflict(
                "An organization needs at least one owner; make someone else owner first.".into(),
            ));
        }
        if policy::is_promotion(current, role) {
            drop(tx);
            return self
                .submit(actor, Change::MemberPromote { user: target.as_uuid(), from: current, to: role }, None)
                .await;
        }
        tx.set_member_role(target, role).await?;
        let mut details = json!({ "from": current, "to": role });
        if current.is_admin() && !role.is_admin() {
            policy::admin_lost(&mut tx, Utc::now()).await?;
            let withdrawn = withdraw_requests(&mut tx, actor, target, "its requester is no longer an admin").await?;
            details["requests_withdrawn"] = json!(withdrawn);
        }
        tx.audit(actor.entry(AuditAction::MemberRoleChanged, "user", target.to_string(), details)).await?;
        tx.commit().await?;
        Ok(Submitted::Applied(target.as_uuid()))
    }

    /// Removes `target` from the organization, with everything that let them in: web sessions,
    /// API keys, SQL credentials (their open wire sessions close within a second), and their
    /// pending requests.
    pub async fn remove_member(&self, actor: &Actor, target: UserId) -> Result<()> {
        actor.require_admin()?;
        let mut tx = self.store.tenant(actor.scope).await?;
        let current = tx.member_role(target).await?.ok_or(Error::NotFound)?;
        require_may_grant(actor, current)?;
        if current == Role::Owner && tx.count_owners().await? <= 1 {
            return Err(Error::Conflict("The last owner cannot be removed; make someone else owner first.".into()));
        }
        tx.remove_member(target).await?;
        tx.end_member_sessions(target).await?;
        let api_keys = tx.revoke_api_keys_of(target).await?;
        let sql_credentials = tx.revoke_sql_credentials_of(target).await?;
        let withdrawn = withdraw_requests(&mut tx, actor, target, "its requester left the organization").await?;
        if current.is_admin() {
            policy::admin_lost(&mut tx, Utc::now()).await?;
        }
        let details = json!({
            "role": current,
            "api_keys_revoked": api_keys,
            "sql_credentials_revoked": sql_credentials,
            "requests_withdrawn": withdrawn,
        });
        tx.audit(actor.entry(AuditAction::MemberRemoved, "user", target.to_string(), details)).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl App {
    /// The organization's members, and how many of them are admins or owners.
    pub async fn members(&self, actor: &Actor) -> Result<(Vec<Member>, i64)> {
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let members = tx.members(&self.vault).await?;
        let admins = tx.count_admins().await?;
        tx.commit().await?;
        Ok((members, admins))
    }

    /// The invitations not yet accepted, revoked or expired (admins; nobody else sees them).
    pub async fn open_invitations(&self, actor: &Actor) -> Result<Vec<InvitationRecord>> {
        actor.require_admin()?;
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let open = tx.open_invitations(&self.vault).await?;
        tx.commit().await?;
        Ok(open)
    }

    /// A person's own sessions, in every organization.
    pub async fn own_sessions(&self, user: UserId) -> Result<Vec<SessionRecord>> {
        let mut tx = self.store.read_instance().await?;
        let sessions = tx.user_sessions(user).await?;
        tx.commit().await?;
        Ok(sessions)
    }

    /// Ends one of a person's own sessions; not found when it is not theirs (or ended already).
    pub async fn end_own_session(&self, user: UserId, handle: uuid::Uuid) -> Result<()> {
        let mut tx = self.store.instance().await?;
        if !tx.end_user_session(user, handle).await? {
            return Err(Error::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends every session of a person's but `keep` (this browser's).
    pub async fn end_other_sessions(&self, user: UserId, keep: uuid::Uuid) -> Result<()> {
        let mut tx = self.store.instance().await?;
        for s in tx.user_sessions(user).await? {
            if s.handle != keep {
                tx.end_user_session(user, s.handle).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

//! Changes to an organization that both the UI and the API make, with their rules in one place:
//! who may grant which role, the last owner cannot go, every change is audited in the same
//! transaction as the change itself.

use burnrate_core::{ApiKeyId, ApiScope, EmailAddress, InvitationId, Role, UserId};
use burnrate_crypto::{ScopedToken, token_hash};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::AppState;
use crate::auth::{API_KEY_PREFIX, Caller};
use crate::error::AppError;

pub const INVITATION_PREFIX: &str = "inv_";
const INVITATION_DAYS: i64 = 7;

fn require_may_grant(caller: &impl Caller, role: Role) -> Result<(), AppError> {
    if caller.role().may_grant(role) {
        Ok(())
    } else {
        Err(AppError::Forbidden("Only an owner can make owners or change an owner's role.".into()))
    }
}

pub async fn invite(
    state: &AppState,
    caller: &impl Caller,
    email: &str,
    role: Role,
) -> Result<(InvitationId, DateTime<Utc>), AppError> {
    caller.require_admin()?;
    require_may_grant(caller, role)?;
    let email = EmailAddress::parse(email).map_err(|e| AppError::Validation(format!("Email: {e}.")))?;
    let scope = caller.scope();
    let token = ScopedToken::generate(INVITATION_PREFIX, scope.org_id());
    let expires = Utc::now() + Duration::days(INVITATION_DAYS);
    let mut tx = state.store.tenant(scope).await?;
    if let Some(user) = tx.find_user_by_email(&state.vault, &email).await?
        && tx.member_role(user.id).await?.is_some()
    {
        return Err(AppError::Conflict("That address is already a member of this organization.".into()));
    }
    let id = tx.create_invitation(&state.vault, &email, role, caller.member(), &token_hash(&token), expires).await?;
    let org_name = tx.org(scope.org_id()).await?.map(|o| o.name).unwrap_or_default();
    let link = state.config.link(&format!("/invitations/{token}"));
    let body = format!(
        "You have been invited to join {org_name} on burnrate as {role}.\n\n\
         Accept the invitation here:\n{link}\n\n\
         The link works once and expires in {INVITATION_DAYS} days. If you were not expecting this, ignore this message."
    );
    state.mailer.enqueue(&mut tx, &email, &format!("Invitation to {org_name} on burnrate"), body).await?;
    tx.audit(caller.entry("invitation_created", "invitation", id.to_string(), json!({ "role": role }))).await?;
    tx.commit().await?;
    state.mailer.wake();
    Ok((id, expires))
}

pub async fn revoke_invitation(state: &AppState, caller: &impl Caller, id: InvitationId) -> Result<(), AppError> {
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    if !tx.revoke_invitation(id).await? {
        return Err(AppError::NotFound);
    }
    tx.audit(caller.entry("invitation_revoked", "invitation", id.to_string(), json!({}))).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn change_role(state: &AppState, caller: &impl Caller, target: UserId, role: Role) -> Result<(), AppError> {
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let current = tx.member_role(target).await?.ok_or(AppError::NotFound)?;
    require_may_grant(caller, role)?;
    require_may_grant(caller, current)?;
    if current == role {
        return Ok(());
    }
    if current == Role::Owner && tx.count_owners().await? <= 1 {
        return Err(AppError::Conflict(
            "An organization needs at least one owner; make someone else owner first.".into(),
        ));
    }
    tx.set_member_role(target, role).await?;
    tx.audit(caller.entry("member_role_changed", "user", target.to_string(), json!({ "from": current, "to": role })))
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn remove_member(state: &AppState, caller: &impl Caller, target: UserId) -> Result<(), AppError> {
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let current = tx.member_role(target).await?.ok_or(AppError::NotFound)?;
    require_may_grant(caller, current)?;
    if current == Role::Owner && tx.count_owners().await? <= 1 {
        return Err(AppError::Conflict("The last owner cannot be removed; make someone else owner first.".into()));
    }
    tx.remove_member(target).await?;
    tx.end_member_sessions(target).await?;
    tx.audit(caller.entry("member_removed", "user", target.to_string(), json!({ "role": current }))).await?;
    tx.commit().await?;
    Ok(())
}

pub fn parse_key_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::Validation("Name: 1 to 100 characters, no control characters.".into()));
    }
    Ok(name.to_owned())
}

/// Creates a key and returns it; the plaintext exists only in this return value.
pub async fn create_api_key(
    state: &AppState,
    caller: &impl Caller,
    name: &str,
    scope: ApiScope,
) -> Result<(ApiKeyId, String, String), AppError> {
    caller.require_admin()?;
    let name = parse_key_name(name)?;
    let ceiling = ApiScope::ceiling_for(caller.role()).unwrap_or(ApiScope::Read);
    if !ceiling.allows(scope) {
        return Err(AppError::Forbidden(format!("You can create keys up to the {ceiling} scope.")));
    }
    let org = caller.scope();
    let token = ScopedToken::generate(API_KEY_PREFIX, org.org_id());
    let prefix = ScopedToken::display_prefix(API_KEY_PREFIX, &token);
    let mut tx = state.store.tenant(org).await?;
    let id = tx.create_api_key(&name, &prefix, &token_hash(&token), scope, caller.member()).await?;
    tx.audit(caller.entry("api_key_created", "api_key", id.to_string(), json!({ "name": name, "scope": scope })))
        .await?;
    tx.commit().await?;
    Ok((id, token, prefix))
}

pub async fn revoke_api_key(state: &AppState, caller: &impl Caller, id: ApiKeyId) -> Result<(), AppError> {
    caller.require_admin()?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    if !tx.revoke_api_key(id).await? {
        return Err(AppError::NotFound);
    }
    tx.audit(caller.entry("api_key_revoked", "api_key", id.to_string(), json!({}))).await?;
    tx.commit().await?;
    Ok(())
}

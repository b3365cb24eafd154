//! The one policy: who may grant which role, and which changes wait for a second admin (S17).
//!
//! A change an organization sends for approval is queued unless the organization has a single
//! admin, who cannot have a second pair of eyes. That shortcut closes for the approval window
//! whenever an admin is demoted or removed (S23): otherwise an admin could demote the others,
//! make the change alone, and restore them.

use burnrate_core::Role;
use burnrate_store::TenantTx;
use chrono::{DateTime, Utc};

use crate::actor::Actor;
use crate::error::{Error, Result};

/// The changes an organization may send for approval; all of them by default.
pub const APPROVABLE: [&str; 6] = burnrate_store::DEFAULT_APPROVAL_ACTIONS;

/// Changing the policy itself: always approved by another admin, or one could switch four eyes
/// off alone.
pub const APPROVAL_POLICY: &str = "approval_policy";

/// How long a request waits for a decision, and how long the single-admin shortcut stays closed
/// after an admin is demoted or removed.
pub const APPROVAL_WINDOW: chrono::Duration = chrono::Duration::days(7);

/// Only an owner makes owners or changes an owner's role.
pub fn require_may_grant(actor: &Actor, role: Role) -> Result<()> {
    if actor.role.may_grant(role) {
        Ok(())
    } else {
        Err(Error::Forbidden("Only an owner can make owners or change an owner's role.".into()))
    }
}

/// Whether a member of `role` sees webhook destinations' URLs (which may carry a receiver's
/// token), or only their hosts (S29).
pub fn sees_webhook_urls(role: Role) -> bool {
    role.is_admin()
}

/// Whether moving from `from` to `to` is a promotion that waits for a second admin: into the
/// admins, or to owner.
pub fn is_promotion(from: Role, to: Role) -> bool {
    (to.is_admin() && !from.is_admin()) || (to == Role::Owner && from != Role::Owner)
}

/// What happens to a change now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The organization does not send this change for approval.
    Apply,
    /// It would, but there is no second admin: applied, and audited as such.
    ApplyAsSoleAdmin,
    /// It waits for another admin.
    Queue,
}

/// Where `action` goes in the organization of `tx` at `now`.
pub async fn route(tx: &mut TenantTx, action: &str, now: DateTime<Utc>) -> Result<Route> {
    let listed = action == APPROVAL_POLICY || tx.approval_actions().await?.iter().any(|a| a == action);
    if !listed {
        return Ok(Route::Apply);
    }
    if sole_admin_shortcut(tx, now).await? { Ok(Route::ApplyAsSoleAdmin) } else { Ok(Route::Queue) }
}

/// Whether changes that need approval apply at once: the organization has a single admin, and
/// no admin was demoted or removed within the approval window.
pub async fn sole_admin_shortcut(tx: &mut TenantTx, now: DateTime<Utc>) -> Result<bool> {
    let held = tx.four_eyes_until().await?.is_some_and(|until| now < until);
    Ok(!held && tx.count_admins().await? < 2)
}

/// After an admin leaves the admins (demoted or removed): the shortcut stays closed for the window.
pub async fn admin_lost(tx: &mut TenantTx, now: DateTime<Utc>) -> Result<()> {
    tx.hold_four_eyes(now + APPROVAL_WINDOW).await?;
    Ok(())
}

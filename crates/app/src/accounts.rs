//! Accounts (S3, S4, S9): sign-up, email verification, login with an optional second factor,
//! logout, password reset, invitation acceptance. Login and reset answer the same for known and
//! unknown addresses, and cost the same (one bcrypt either way). Events about a person are written
//! to the audit log of every organization they belong to.

use burnrate_core::{EmailAddress, NewPassword, OrgName, Role, UserId};
use burnrate_crypto::{ScopedToken, TotpSecret, random_token, token_hash};
use burnrate_store::{Actor as AuditActor, ActorType, AuditAction, InstanceTx, NewAuditEntry, OrgScope, TokenPurpose};
pub use burnrate_store::{InvitationRecord, SecondFactor};
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::members::INVITATION_PREFIX;
use crate::{App, Result};

const RESET_MINUTES: i64 = 30;
const VERIFY_HOURS: i64 = 24;
/// How long the code step of a login may take.
pub const CHALLENGE_MINUTES: i64 = 5;

/// Where a request came from, for the audit log.
#[derive(Clone, Debug)]
pub struct Client {
    pub ip: String,
    pub user_agent: Option<String>,
}

/// How the audit log names a person acting for themselves.
pub fn user_actor(user: UserId) -> AuditActor {
    AuditActor { kind: ActorType::User, id: Some(user.to_string()), label: format!("user {}", &user.to_string()[..8]) }
}

fn anonymous() -> AuditActor {
    AuditActor { kind: ActorType::Anonymous, id: None, label: "unknown".into() }
}

fn entry(
    actor: AuditActor,
    action: AuditAction,
    target: (&'static str, String),
    client: &Client,
    details: Value,
) -> NewAuditEntry {
    NewAuditEntry {
        actor,
        action,
        target_type: Some(target.0),
        target_id: Some(target.1),
        details,
        ip: Some(client.ip.clone()),
        user_agent: client.user_agent.clone(),
    }
}

/// Records an event about `user` (a failed login, a reset) in every organization they belong to.
async fn audit_user_orgs(mut tx: InstanceTx, user: UserId, e: NewAuditEntry) -> Result<InstanceTx> {
    for (org, _) in tx.user_orgs(user).await? {
        let mut t = tx.into_tenant(OrgScope::trusted(org.id)).await?;
        t.audit(e.clone()).await?;
        tx = t.into_instance();
    }
    Ok(tx)
}

/// What a login step came to.
pub enum Login {
    /// Wrong email, password or code (the same answer for each).
    Failed,
    /// The password was right but the address is not confirmed: a new link was sent.
    Unverified,
    /// The password was right; the session waits for the authenticator code of this challenge.
    SecondFactor { challenge: String },
    /// The challenge expired or was used already.
    Expired,
    /// A member of no organization any more.
    NoOrganization,
    /// Signed in: the new session's token, which only the browser keeps.
    Session { token: String },
}

/// What a change of one's second factor came to.
pub enum SecondFactorChange {
    Done,
    /// Nothing to do: on already (setting up), nothing being set up (confirming), off already
    /// (turning off).
    Unchanged,
    /// The code was not right (or was used already).
    WrongCode,
}

/// A one-time link sent by mail.
#[derive(Clone, Copy)]
pub enum Link {
    EmailVerification,
    PasswordReset,
}

impl Link {
    fn purpose(self) -> TokenPurpose {
        match self {
            Link::EmailVerification => TokenPurpose::EmailVerification,
            Link::PasswordReset => TokenPurpose::PasswordReset,
        }
    }
}

/// What a sign-up came to.
pub enum SignUp {
    /// What was wrong with each field, as sentences.
    Invalid(Vec<String>),
    /// A confirmation link (or, for a known address, a note that it has an account) was sent.
    CheckInbox,
}

/// What a password reset came to.
pub enum Reset {
    Expired,
    /// The new password breaks the policy; the link stays usable.
    Refused(String),
    Done,
}

/// An invitation that can still be accepted.
pub struct OpenInvitation {
    pub invitation: InvitationRecord,
    pub org_name: String,
    /// The invited address has an account: accepting takes its password, not a new one.
    pub existing: bool,
    scope: OrgScope,
}

/// What accepting an invitation came to.
pub enum Accept {
    Expired,
    /// The password was wrong (an existing account) or breaks the policy (a new one).
    Refused(String),
    Joined {
        org_name: String,
    },
}

impl App {
    /// The first step of a login: email and password.
    pub async fn log_in(
        &self,
        email: &str,
        password: &str,
        client: &Client,
        replacing: Option<&str>,
        lifetime: Duration,
    ) -> Result<Login> {
        let Ok(email) = EmailAddress::parse(email) else {
            // Same cost as a real check, so the answer time says nothing either.
            self.hasher.verify(password, None).await;
            return Ok(Login::Failed);
        };
        let mut tx = self.store.instance().await?;
        let user = tx.find_user_by_email(&self.vault, &email).await?;
        tx.commit().await?;
        let ok = self.hasher.verify(password, user.as_ref().map(|u| u.password_hash.as_str())).await;
        let known = user.as_ref().map(|u| u.id);
        let Some(user) = user.filter(|_| ok) else {
            if let Some(user) = known {
                let e = entry(anonymous(), AuditAction::LoginFailed, ("user", user.to_string()), client, json!({}));
                audit_user_orgs(self.store.instance().await?, user, e).await?.commit().await?;
            }
            return Ok(Login::Failed);
        };
        if !user.email_verified {
            let mut tx = self.store.instance().await?;
            self.queue_verification(&mut tx, user.id, &email).await?;
            tx.commit().await?;
            self.mailer.wake();
            return Ok(Login::Unverified);
        }
        let mut tx = self.store.instance().await?;
        if tx.second_factor(user.id).await? == SecondFactor::On {
            let challenge = random_token();
            let expires = Utc::now() + Duration::minutes(CHALLENGE_MINUTES);
            tx.create_login_challenge(&token_hash(&challenge), user.id, expires).await?;
            tx.commit().await?;
            return Ok(Login::SecondFactor { challenge });
        }
        self.start_session(tx, client, user.id, replacing, lifetime).await
    }

    /// Whose login `challenge` is, while it waits for its code.
    pub async fn challenge_user(&self, challenge: &str) -> Result<Option<UserId>> {
        let mut tx = self.store.read_instance().await?;
        let user = tx.login_challenge(&token_hash(challenge)).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The second step of a login: the authenticator code for `challenge`. A wrong code may be
    /// tried again until the challenge expires; a right one is accepted once.
    pub async fn log_in_with_code(
        &self,
        challenge: &str,
        code: &str,
        client: &Client,
        replacing: Option<&str>,
        lifetime: Duration,
    ) -> Result<Login> {
        let hash = token_hash(challenge);
        let mut tx = self.store.instance().await?;
        let Some(user) = tx.login_challenge(&hash).await? else { return Ok(Login::Expired) };
        // Turned off since the password step: the password was enough.
        if !self.code_accepted(&mut tx, user, code).await?.unwrap_or(true) {
            let details = json!({ "step": "code" });
            let e = entry(anonymous(), AuditAction::LoginFailed, ("user", user.to_string()), client, details);
            audit_user_orgs(tx, user, e).await?.commit().await?;
            return Ok(Login::Failed);
        }
        tx.delete_login_challenge(&hash).await?;
        self.start_session(tx, client, user, replacing, lifetime).await
    }

    /// Signs `user` in to their first organization: a fresh session token (no fixation; the
    /// browser's old session, `replacing`, ends), audited.
    async fn start_session(
        &self,
        mut tx: InstanceTx,
        client: &Client,
        user: UserId,
        replacing: Option<&str>,
        lifetime: Duration,
    ) -> Result<Login> {
        let Some((org, _)) = tx.user_orgs(user).await?.into_iter().next() else {
            return Ok(Login::NoOrganization);
        };
        if let Some(old) = replacing {
            tx.delete_session(&token_hash(old)).await?;
        }
        let token = random_token();
        let expires = Utc::now() + lifetime;
        tx.create_session(&token_hash(&token), user, org.id, expires, Some(&client.ip), client.user_agent.as_deref())
            .await?;
        let mut t = tx.into_tenant(OrgScope::trusted(org.id)).await?;
        t.audit(entry(user_actor(user), AuditAction::Login, ("user", user.to_string()), client, json!({}))).await?;
        t.commit().await?;
        Ok(Login::Session { token })
    }

    /// Ends the session `token` is, audited in its organization.
    pub async fn log_out(&self, token: &str, client: &Client) -> Result<()> {
        let hash = token_hash(token);
        let mut tx = self.store.instance().await?;
        if let Some(session) = tx.session(&hash).await? {
            tx.delete_session(&hash).await?;
            let mut t = tx.into_tenant(OrgScope::trusted(session.org_id)).await?;
            let user = session.user_id;
            t.audit(entry(user_actor(user), AuditAction::Logout, ("user", user.to_string()), client, json!({})))
                .await?;
            t.commit().await?;
        }
        Ok(())
    }

    /// Whether `code` is a fresh code of the user's second factor (recording its step, so it
    /// works once); `None` when the user has none.
    async fn code_accepted(&self, tx: &mut InstanceTx, user: UserId, code: &str) -> Result<Option<bool>> {
        let Some(secret) = tx.user_totp(&self.vault, user, false).await? else { return Ok(None) };
        Ok(Some(match secret.verify(code, Utc::now().timestamp()) {
            Some(step) => tx.use_user_totp_step(user, step).await?,
            None => false,
        }))
    }

    /// Whether two-step login is on, off, or being set up for `user`.
    pub async fn second_factor(&self, user: UserId) -> Result<SecondFactor> {
        let mut tx = self.store.read_instance().await?;
        let state = tx.second_factor(user).await?;
        tx.commit().await?;
        Ok(state)
    }

    /// The secret being set up, to show until a code from it confirms it.
    pub async fn pending_second_factor(&self, user: UserId) -> Result<Option<TotpSecret>> {
        let mut tx = self.store.read_instance().await?;
        let secret = tx.user_totp(&self.vault, user, true).await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// Starts setting up two-step login: a new secret, pending until a code confirms it.
    pub async fn set_up_second_factor(&self, user: UserId) -> Result<SecondFactorChange> {
        let mut tx = self.store.instance().await?;
        if tx.second_factor(user).await? == SecondFactor::On {
            return Ok(SecondFactorChange::Unchanged);
        }
        tx.set_pending_totp(&self.vault, user, &TotpSecret::generate()).await?;
        tx.commit().await?;
        Ok(SecondFactorChange::Done)
    }

    /// Turns two-step login on with the first code of the secret being set up, audited.
    pub async fn confirm_second_factor(&self, user: UserId, code: &str, client: &Client) -> Result<SecondFactorChange> {
        let mut tx = self.store.instance().await?;
        let Some(secret) = tx.user_totp(&self.vault, user, true).await? else {
            return Ok(SecondFactorChange::Unchanged);
        };
        let Some(step) = secret.verify(code, Utc::now().timestamp()) else {
            return Ok(SecondFactorChange::WrongCode);
        };
        tx.enable_totp(&self.vault, user, &secret, step).await?;
        let e =
            entry(user_actor(user), AuditAction::SecondFactorEnabled, ("user", user.to_string()), client, json!({}));
        audit_user_orgs(tx, user, e).await?.commit().await?;
        Ok(SecondFactorChange::Done)
    }

    /// Turns two-step login off; it takes a current code, so a borrowed session alone cannot.
    pub async fn disable_second_factor(&self, user: UserId, code: &str, client: &Client) -> Result<SecondFactorChange> {
        let mut tx = self.store.instance().await?;
        match self.code_accepted(&mut tx, user, code).await? {
            None => return Ok(SecondFactorChange::Unchanged),
            Some(false) => return Ok(SecondFactorChange::WrongCode),
            Some(true) => {}
        }
        tx.disable_totp(user).await?;
        let e =
            entry(user_actor(user), AuditAction::SecondFactorDisabled, ("user", user.to_string()), client, json!({}));
        audit_user_orgs(tx, user, e).await?.commit().await?;
        Ok(SecondFactorChange::Done)
    }

    /// A new organization with its owner, whose address is confirmed by mail before they log in.
    /// A known address gets a note instead, and the same answer, so the form does not reveal
    /// which addresses have accounts.
    pub async fn sign_up(&self, org_name: &str, email: &str, password: &str, client: &Client) -> Result<SignUp> {
        let context: Vec<&str> = [email, org_name, "burnrate"].into();
        let (org_name, email, password) =
            match (OrgName::parse(org_name), EmailAddress::parse(email), NewPassword::parse(password, &context)) {
                (Ok(o), Ok(e), Ok(p)) => (o, e, p),
                (o, e, p) => {
                    return Ok(SignUp::Invalid(
                        [
                            o.err().map(|e| format!("Organization name: {e}.")),
                            e.err().map(|e| format!("Email: {e}.")),
                            p.err().map(|e| format!("Password: {e}.")),
                        ]
                        .into_iter()
                        .flatten()
                        .collect(),
                    ));
                }
            };
        let hash = self.hasher.hash(password.expose()).await?;
        let mut tx = self.store.instance().await?;
        if tx.find_user_by_email(&self.vault, &email).await?.is_some() {
            let body = format!(
                "Someone — perhaps you — tried to sign up for burnrate with this address, which already has an account.\n\n\
                 Log in: {}\nForgot your password? {}\n\nIf it was not you, you can ignore this message.",
                self.link("/login"),
                self.link("/password-reset")
            );
            self.mailer.enqueue(&mut tx, &email, "You already have a burnrate account", body).await?;
            tx.commit().await?;
            self.mailer.wake();
            return Ok(SignUp::CheckInbox);
        }
        let scope = tx.create_org(&org_name).await?;
        let user = tx.create_user(&self.vault, &email, &hash, false).await?;
        let mut t = tx.into_tenant(scope).await?;
        t.add_member(user, Role::Owner).await?;
        let org = ("organization", scope.org_id().to_string());
        t.audit(entry(user_actor(user), AuditAction::OrganizationCreated, org, client, json!({}))).await?;
        let details = json!({ "role": Role::Owner, "via": "signup" });
        t.audit(entry(user_actor(user), AuditAction::MemberJoined, ("user", user.to_string()), client, details))
            .await?;
        let mut tx = t.into_instance();
        self.queue_verification(&mut tx, user, &email).await?;
        tx.commit().await?;
        self.mailer.wake();
        Ok(SignUp::CheckInbox)
    }

    async fn queue_verification(&self, tx: &mut InstanceTx, user: UserId, email: &EmailAddress) -> Result<()> {
        let token = random_token();
        let expires = Utc::now() + Duration::hours(VERIFY_HOURS);
        tx.create_one_time_token(TokenPurpose::EmailVerification, &token_hash(&token), user, expires).await?;
        let body = format!(
            "Confirm your email address for burnrate by opening this link:\n{}\n\n\
             The link works once and expires in {VERIFY_HOURS} hours. If you did not sign up, ignore this message.",
            self.link(&format!("/verify-email/{token}"))
        );
        self.mailer.enqueue(tx, email, "Confirm your email for burnrate", body).await?;
        Ok(())
    }

    /// Whether a one-time link would still be accepted, without using it up.
    pub async fn link_valid(&self, link: Link, token: &str) -> Result<bool> {
        let shaped = token.len() <= 200 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !shaped {
            return Ok(false);
        }
        let mut tx = self.store.instance().await?;
        let valid = tx.one_time_token_valid(link.purpose(), &token_hash(token)).await?;
        tx.commit().await?;
        Ok(valid)
    }

    /// Confirms the address the link was sent to; false when the link expired or was used.
    pub async fn verify_email(&self, token: &str, client: &Client) -> Result<bool> {
        let mut tx = self.store.instance().await?;
        let Some(user) = tx.use_one_time_token(TokenPurpose::EmailVerification, &token_hash(token)).await? else {
            return Ok(false);
        };
        tx.mark_email_verified(user).await?;
        let e = entry(user_actor(user), AuditAction::EmailVerified, ("user", user.to_string()), client, json!({}));
        audit_user_orgs(tx, user, e).await?.commit().await?;
        Ok(true)
    }

    /// Mails a password-reset link to `email` if it has an account (the caller answers the same
    /// either way).
    pub async fn request_password_reset(&self, email: &EmailAddress, client: &Client) -> Result<()> {
        let mut tx = self.store.instance().await?;
        let Some(user) = tx.find_user_by_email(&self.vault, email).await? else {
            tx.commit().await?;
            return Ok(());
        };
        let token = random_token();
        let expires = Utc::now() + Duration::minutes(RESET_MINUTES);
        tx.create_one_time_token(TokenPurpose::PasswordReset, &token_hash(&token), user.id, expires).await?;
        let body = format!(
            "Someone asked to reset the password of your burnrate account. Choose a new password here:\n{}\n\n\
             The link works once and expires in {RESET_MINUTES} minutes. Resetting ends all your sessions.\n\
             If you did not ask for this, ignore this message: your password stays as it is.",
            self.link(&format!("/password-reset/{token}"))
        );
        self.mailer.enqueue(&mut tx, email, "Reset your burnrate password", body).await?;
        let target = ("user", user.id.to_string());
        let e = entry(anonymous(), AuditAction::PasswordResetRequested, target, client, json!({}));
        audit_user_orgs(tx, user.id, e).await?.commit().await?;
        self.mailer.wake();
        Ok(())
    }

    /// Sets a new password through a reset link, ending every session of the account.
    pub async fn reset_password(&self, token: &str, password: &str, client: &Client) -> Result<Reset> {
        if !self.link_valid(Link::PasswordReset, token).await? {
            return Ok(Reset::Expired);
        }
        // The policy is checked before the token is used, so a refused password does not burn it.
        let password = match NewPassword::parse(password, &["burnrate"]) {
            Ok(p) => p,
            Err(e) => return Ok(Reset::Refused(format!("Password: {e}."))),
        };
        let new_hash = self.hasher.hash(password.expose()).await?;
        let mut tx = self.store.instance().await?;
        let Some(user) = tx.use_one_time_token(TokenPurpose::PasswordReset, &token_hash(token)).await? else {
            return Ok(Reset::Expired);
        };
        tx.set_password_hash(user, &new_hash).await?;
        // Whoever had a session must log in again with the new password.
        let ended = tx.end_all_user_sessions(user).await?;
        // The link reached the mailbox, so the address is proven too.
        tx.mark_email_verified(user).await?;
        let details = json!({ "sessions_ended": ended });
        let e =
            entry(user_actor(user), AuditAction::PasswordResetCompleted, ("user", user.to_string()), client, details);
        audit_user_orgs(tx, user, e).await?.commit().await?;
        Ok(Reset::Done)
    }

    /// The invitation behind a link, if it is still open.
    pub async fn open_invitation(&self, token: &str) -> Result<Option<OpenInvitation>> {
        let Some(org) = ScopedToken::org(INVITATION_PREFIX, token) else {
            return Ok(None);
        };
        let mut tx = self.store.tenant(OrgScope::trusted(org)).await?;
        let Some(invitation) = tx.invitation_by_token(&self.vault, &token_hash(token)).await? else {
            return Ok(None);
        };
        if !invitation.is_open(Utc::now()) {
            return Ok(None);
        }
        let org_name = tx.org(org).await?.map(|o| o.name).unwrap_or_default();
        let existing = tx.find_user_by_email(&self.vault, &invitation.email).await?.is_some();
        let scope = tx.scope();
        tx.commit().await?;
        Ok(Some(OpenInvitation { invitation, org_name, existing, scope }))
    }

    /// Accepts an open invitation: with the password of the invited address's account, or a new
    /// account's password (only when `new_accounts` are allowed on this instance). Audited.
    pub async fn accept_invitation(
        &self,
        open: OpenInvitation,
        password: &str,
        new_accounts: bool,
        client: &Client,
    ) -> Result<Accept> {
        let OpenInvitation { invitation: inv, org_name, existing, scope } = open;
        /// Who accepts: an account that exists, or a new one with its password's hash.
        enum Joiner {
            Existing(UserId),
            New(String),
        }
        let joiner = if existing {
            let mut tx = self.store.instance().await?;
            let user = tx.find_user_by_email(&self.vault, &inv.email).await?.ok_or(crate::Error::NotFound)?;
            tx.commit().await?;
            if !self.hasher.verify(password, Some(&user.password_hash)).await {
                return Ok(Accept::Refused("That password is not correct for this account.".into()));
            }
            Joiner::Existing(user.id)
        } else {
            if !new_accounts {
                return Err(crate::Error::Forbidden("Accounts on this instance are created by its operator.".into()));
            }
            match NewPassword::parse(password, &[inv.email.as_str(), &org_name]) {
                Ok(p) => Joiner::New(self.hasher.hash(p.expose()).await?),
                Err(e) => return Ok(Accept::Refused(format!("Password: {e}."))),
            }
        };
        let mut tx = self.store.tenant(scope).await?;
        let user = match joiner {
            Joiner::Existing(user) => user,
            // Following the emailed link proves the address.
            Joiner::New(hash) => tx.create_user(&self.vault, &inv.email, &hash, true).await?,
        };
        if !tx.accept_invitation(inv.id).await? {
            return Ok(Accept::Expired);
        }
        tx.add_member(user, inv.role).await?;
        let details = json!({ "role": inv.role, "user": user });
        let target = ("invitation", inv.id.to_string());
        tx.audit(entry(user_actor(user), AuditAction::InvitationAccepted, target, client, details)).await?;
        tx.commit().await?;
        Ok(Accept::Joined { org_name })
    }
}

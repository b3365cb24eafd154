//! Accounts (S3, S4, S9): sign-up, email verification, login, logout, password reset, invitation
//! acceptance. Login and reset answer the same for known and unknown addresses, and cost the same
//! (one bcrypt either way).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use burnrate_core::{EmailAddress, NewPassword, OrgName, Role, UserId};
use burnrate_crypto::{ScopedToken, TotpSecret, random_token, token_hash};
use burnrate_store::{Actor, ActorType, AuditAction, InstanceTx, NewAuditEntry, OrgScope, StoreError, TokenPurpose};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Authed, user_actor};
use crate::error::AppError;
use crate::pages::{LoginPage, MessagePage, SecondFactorPage, SignupPage, TokenFormPage, render};
use crate::security::{ClientInfo, CsrfForm, CsrfToken, SESSION_COOKIE, clear_cookie, cookie, set_cookie};
use crate::{AppState, SignupMode};
use burnrate_app::members::INVITATION_PREFIX;

const RESET_MINUTES: i64 = 30;
const VERIFY_HOURS: i64 = 24;
const LOGIN_FAILED: &str = "Email or password is incorrect.";
const RESET_SENT: &str = "If an account exists for that address, we have sent it a link to choose a new password. The link expires in 30 minutes.";

fn entry(
    actor: Actor,
    action: AuditAction,
    target: Option<(&'static str, String)>,
    client: &ClientInfo,
    details: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        actor,
        action,
        target_type: target.as_ref().map(|t| t.0),
        target_id: target.map(|t| t.1),
        details,
        ip: Some(client.ip.clone()),
        user_agent: client.user_agent.clone(),
    }
}

/// Records a user-level event (failed login, reset) in every organization the user belongs to.
async fn audit_user_orgs(mut tx: InstanceTx, user: UserId, e: NewAuditEntry) -> Result<InstanceTx, StoreError> {
    for (org, _) in tx.user_orgs(user).await? {
        let mut t = tx.into_tenant(OrgScope::trusted(org.id)).await?;
        t.audit(e.clone()).await?;
        tx = t.into_instance();
    }
    Ok(tx)
}

async fn rate_limit(state: &AppState, key: String, quota: crate::Quota) -> Result<(), AppError> {
    state.limiter.check(&key, quota).await.map_err(|wait| {
        state.metrics.rate_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        AppError::rate_limited(wait)
    })
}

fn login_form(
    state: &AppState,
    csrf: String,
    email: String,
    error: Option<String>,
    notice: Option<String>,
) -> LoginPage {
    LoginPage { nav: None, csrf, email, error, notice, signup_open: state.config.signup == SignupMode::Open }
}

pub async fn login_page(State(state): State<AppState>, CsrfToken(csrf): CsrfToken) -> Response {
    render(&login_form(&state, csrf, String::new(), None, None))
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: axum::http::HeaderMap,
    CsrfToken(csrf): CsrfToken,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, AppError> {
    rate_limit(&state, format!("login-ip:{}", client.ip), state.config.login_per_ip).await?;
    let typed = form.email.trim().to_lowercase();
    rate_limit(&state, format!("login-account:{typed}"), state.config.login_per_account).await?;
    let failed = |state: &AppState| {
        state.metrics.logins_failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let page = login_form(state, csrf.clone(), form.email.clone(), Some(LOGIN_FAILED.into()), None);
        Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response())
    };
    let Ok(email) = EmailAddress::parse(&form.email) else {
        // Same cost as a real check, so the answer time says nothing either.
        state.hasher.verify(&form.password, None).await;
        return failed(&state);
    };
    let mut tx = state.store.instance().await?;
    let user = tx.find_user_by_email(&state.vault, &email).await?;
    tx.commit().await?;
    let ok = state.hasher.verify(&form.password, user.as_ref().map(|u| u.password_hash.as_str())).await;
    let known = user.as_ref().map(|u| u.id);
    let Some(user) = user.filter(|_| ok) else {
        if let Some(user) = known {
            let tx = state.store.instance().await?;
            let e = entry(
                Actor { kind: ActorType::Anonymous, id: None, label: "unknown".into() },
                AuditAction::LoginFailed,
                Some(("user", user.to_string())),
                &client,
                json!({}),
            );
            audit_user_orgs(tx, user, e).await?.commit().await?;
        }
        return failed(&state);
    };
    if !user.email_verified {
        send_verification(&state, user.id, &email).await?;
        let page = MessagePage::new(
            "Confirm your email first",
            "Your email address is not confirmed yet. We have sent a new confirmation link to it; open it, then log in.",
        );
        return Ok((StatusCode::FORBIDDEN, render(&page)).into_response());
    }
    let mut tx = state.store.instance().await?;
    if tx.second_factor(user.id).await? == burnrate_store::SecondFactor::On {
        // The password was right; the session waits for the authenticator code.
        let token = random_token();
        let expires = Utc::now() + Duration::minutes(CHALLENGE_MINUTES);
        tx.create_login_challenge(&token_hash(&token), user.id, expires).await?;
        tx.commit().await?;
        let mut resp = render(&SecondFactorPage { nav: None, csrf, error: None });
        let age = u64::try_from(CHALLENGE_MINUTES * 60).unwrap_or(300);
        resp.headers_mut().append(header::SET_COOKIE, set_cookie(CHALLENGE_COOKIE, &token, Some(age)));
        return Ok(resp);
    }
    start_session(&state, tx, &headers, &client, user.id).await
}

/// How long the code step of a login may take.
const CHALLENGE_MINUTES: i64 = 5;
/// Names the login waiting for its authenticator code.
const CHALLENGE_COOKIE: &str = "__Host-burnrate_login";

/// Logs `user` in to their first organization: a fresh session token (no fixation; the browser's
/// old session ends), audited.
async fn start_session(
    state: &AppState,
    mut tx: InstanceTx,
    headers: &axum::http::HeaderMap,
    client: &ClientInfo,
    user: UserId,
) -> Result<Response, AppError> {
    let orgs = tx.user_orgs(user).await?;
    let Some((org, _)) = orgs.into_iter().next() else {
        let page = MessagePage::new(
            "No organization",
            "Your account is not a member of any organization any more. Ask an admin to invite you again.",
        );
        return Ok((StatusCode::FORBIDDEN, render(&page)).into_response());
    };
    if let Some(old) = cookie(headers, SESSION_COOKIE) {
        tx.delete_session(&token_hash(&old)).await?;
    }
    let token = random_token();
    let absolute = Duration::from_std(state.config.session_absolute).unwrap_or(Duration::hours(12));
    tx.create_session(
        &token_hash(&token),
        user,
        org.id,
        Utc::now() + absolute,
        Some(&client.ip),
        client.user_agent.as_deref(),
    )
    .await?;
    let mut t = tx.into_tenant(OrgScope::trusted(org.id)).await?;
    t.audit(entry(user_actor(user), AuditAction::Login, Some(("user", user.to_string())), client, json!({}))).await?;
    t.commit().await?;
    state.metrics.logins_ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut resp = Redirect::to("/").into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, Some(absolute.num_seconds() as u64)));
    if cookie(headers, CHALLENGE_COOKIE).is_some() {
        resp.headers_mut().append(header::SET_COOKIE, clear_cookie(CHALLENGE_COOKIE));
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// The second step of a login: the authenticator code for the challenge the cookie names. A
/// wrong code may be tried again (within the login limits) until the challenge expires; a right
/// one is accepted once.
pub async fn login_code(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: axum::http::HeaderMap,
    CsrfToken(csrf): CsrfToken,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, AppError> {
    rate_limit(&state, format!("login-ip:{}", client.ip), state.config.login_per_ip).await?;
    let expired = || {
        let page = MessagePage::new("Log in again", "This login took too long or was already used. Log in again.")
            .link("/login", "Log in");
        Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response())
    };
    let Some(token) = cookie(&headers, CHALLENGE_COOKIE) else { return expired() };
    let hash = token_hash(&token);
    let mut tx = state.store.instance().await?;
    let Some(user) = tx.login_challenge(&hash).await? else { return expired() };
    rate_limit(&state, format!("login-code:{user}"), state.config.login_per_account).await?;
    // Turned off since the password step: the password was enough.
    let accepted = code_accepted(&mut tx, &state, user, &form.code).await?.unwrap_or(true);
    if !accepted {
        state.metrics.logins_failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let actor = Actor { kind: ActorType::Anonymous, id: None, label: "unknown".into() };
        let e = entry(
            actor,
            AuditAction::LoginFailed,
            Some(("user", user.to_string())),
            &client,
            json!({ "step": "code" }),
        );
        audit_user_orgs(tx, user, e).await?.commit().await?;
        let error = Some("That code is not right, or was used already. Enter the code the app shows now.".into());
        return Ok((StatusCode::UNAUTHORIZED, render(&SecondFactorPage { nav: None, csrf, error })).into_response());
    }
    tx.delete_login_challenge(&hash).await?;
    start_session(&state, tx, &headers, &client, user).await
}

/// Whether `code` is a fresh code of the user's second factor (recording its step, so it works
/// once); `None` when the user has none.
async fn code_accepted(
    tx: &mut InstanceTx,
    state: &AppState,
    user: UserId,
    code: &str,
) -> Result<Option<bool>, AppError> {
    let Some(secret) = tx.user_totp(&state.vault, user, false).await? else { return Ok(None) };
    Ok(Some(match secret.verify(code, Utc::now().timestamp()) {
        Some(step) => tx.use_user_totp_step(user, step).await?,
        None => false,
    }))
}

/// Records a change of the person's two-step login in each of their organizations, and commits.
async fn second_factor_changed(tx: InstanceTx, who: &Authed, action: AuditAction) -> Result<(), AppError> {
    let e = entry(user_actor(who.user_id), action, Some(("user", who.user_id.to_string())), &who.client, json!({}));
    audit_user_orgs(tx, who.user_id, e).await?.commit().await?;
    Ok(())
}

/// Starts setting up two-step login: a new secret, shown on the sessions page until a code
/// from it confirms it.
pub async fn second_factor_setup(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let mut tx = state.store.instance().await?;
    if tx.second_factor(who.user_id).await? == burnrate_store::SecondFactor::On {
        tx.commit().await?;
        return super::org::sessions_page(&state, &who, Some("Two-step login is on already.".into()), None).await;
    }
    tx.set_pending_totp(&state.vault, who.user_id, &TotpSecret::generate()).await?;
    tx.commit().await?;
    super::org::sessions_page(&state, &who, None, None).await
}

/// Turns two-step login on with the first code of the secret being set up.
pub async fn second_factor_confirm(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, AppError> {
    rate_limit(&state, format!("login-code:{}", who.user_id), state.config.login_per_account).await?;
    let mut tx = state.store.instance().await?;
    let Some(secret) = tx.user_totp(&state.vault, who.user_id, true).await? else {
        tx.commit().await?;
        return super::org::sessions_page(&state, &who, Some("Nothing to confirm: set it up first.".into()), None)
            .await;
    };
    let Some(step) = secret.verify(&form.code, Utc::now().timestamp()) else {
        tx.commit().await?;
        let why = "That code is not the one the app shows for this key. Check the key and the phone's clock.";
        return super::org::sessions_page(&state, &who, None, Some((StatusCode::UNPROCESSABLE_ENTITY, why.into())))
            .await;
    };
    tx.enable_totp(&state.vault, who.user_id, &secret, step).await?;
    second_factor_changed(tx, &who, AuditAction::SecondFactorEnabled).await?;
    super::org::sessions_page(&state, &who, Some("Two-step login is on.".into()), None).await
}

/// Turns two-step login off; it takes a current code, so a borrowed session alone cannot.
pub async fn second_factor_disable(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, AppError> {
    rate_limit(&state, format!("login-code:{}", who.user_id), state.config.login_per_account).await?;
    let mut tx = state.store.instance().await?;
    let Some(accepted) = code_accepted(&mut tx, &state, who.user_id, &form.code).await? else {
        tx.commit().await?;
        return super::org::sessions_page(&state, &who, Some("Two-step login is off already.".into()), None).await;
    };
    if !accepted {
        tx.commit().await?;
        let why = "That code is not right, or was used already.";
        return super::org::sessions_page(&state, &who, None, Some((StatusCode::UNPROCESSABLE_ENTITY, why.into())))
            .await;
    }
    tx.disable_totp(who.user_id).await?;
    second_factor_changed(tx, &who, AuditAction::SecondFactorDisabled).await?;
    super::org::sessions_page(&state, &who, Some("Two-step login is off.".into()), None).await
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: axum::http::HeaderMap,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let hash = token_hash(&token);
        let mut tx = state.store.instance().await?;
        if let Some(session) = tx.session(&hash).await? {
            tx.delete_session(&hash).await?;
            let mut t = tx.into_tenant(OrgScope::trusted(session.org_id)).await?;
            t.audit(entry(
                user_actor(session.user_id),
                AuditAction::Logout,
                Some(("user", session.user_id.to_string())),
                &client,
                json!({}),
            ))
            .await?;
            t.commit().await?;
        }
    }
    let mut resp = Redirect::to("/login").into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    resp.headers_mut().append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    Ok(resp)
}

fn signup_closed_message(mode: SignupMode) -> Option<String> {
    match mode {
        SignupMode::Open => None,
        SignupMode::Invite => Some(
            "Sign-up on this instance is by invitation only. Ask an admin of your organization to invite you.".into(),
        ),
        SignupMode::Closed => Some("Sign-up is closed on this instance. Accounts are created by its operator.".into()),
    }
}

pub async fn signup_page(State(state): State<AppState>, CsrfToken(csrf): CsrfToken) -> Response {
    render(&SignupPage {
        nav: None,
        csrf,
        org_name: String::new(),
        email: String::new(),
        errors: vec![],
        closed_message: signup_closed_message(state.config.signup),
    })
}

#[derive(Deserialize)]
pub struct SignupForm {
    org_name: String,
    email: String,
    password: String,
}

pub async fn signup(
    State(state): State<AppState>,
    client: ClientInfo,
    CsrfToken(csrf): CsrfToken,
    CsrfForm(form): CsrfForm<SignupForm>,
) -> Result<Response, AppError> {
    if let Some(message) = signup_closed_message(state.config.signup) {
        return Err(AppError::Forbidden(message));
    }
    rate_limit(&state, format!("signup-ip:{}", client.ip), state.config.login_per_ip).await?;
    let org_name = OrgName::parse(&form.org_name);
    let email = EmailAddress::parse(&form.email);
    let context: Vec<&str> = [form.email.as_str(), form.org_name.as_str(), "burnrate"].into();
    let password = NewPassword::parse(&form.password, &context);
    let (org_name, email, password) = match (org_name, email, password) {
        (Ok(o), Ok(e), Ok(p)) => (o, e, p),
        (o, e, p) => {
            let errors = [
                o.err().map(|e| format!("Organization name: {e}.")),
                e.err().map(|e| format!("Email: {e}.")),
                p.err().map(|e| format!("Password: {e}.")),
            ]
            .into_iter()
            .flatten()
            .collect();
            let page = SignupPage {
                nav: None,
                csrf,
                org_name: form.org_name,
                email: form.email,
                errors,
                closed_message: None,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
        }
    };
    let hash = state.hasher.hash(password.expose()).await?;
    let check_inbox = MessagePage::new(
        "Check your inbox",
        "We have sent a link to your email address. Open it to confirm the address, then log in. The link expires in 24 hours.",
    );
    let mut tx = state.store.instance().await?;
    if tx.find_user_by_email(&state.vault, &email).await?.is_some() {
        // Same page as a new sign-up: the form must not reveal which addresses have accounts.
        let body = format!(
            "Someone — perhaps you — tried to sign up for burnrate with this address, which already has an account.\n\n\
             Log in: {}\nForgot your password? {}\n\nIf it was not you, you can ignore this message.",
            state.config.link("/login"),
            state.config.link("/password-reset")
        );
        state.mailer.enqueue(&mut tx, &email, "You already have a burnrate account", body).await?;
        tx.commit().await?;
        state.mailer.wake();
        return Ok(render(&check_inbox));
    }
    let scope = tx.create_org(&org_name).await?;
    let user = tx.create_user(&state.vault, &email, &hash, false).await?;
    let mut t = tx.into_tenant(scope).await?;
    t.add_member(user, Role::Owner).await?;
    t.audit(entry(
        user_actor(user),
        AuditAction::OrganizationCreated,
        Some(("organization", scope.org_id().to_string())),
        &client,
        json!({}),
    ))
    .await?;
    t.audit(entry(
        user_actor(user),
        AuditAction::MemberJoined,
        Some(("user", user.to_string())),
        &client,
        json!({ "role": Role::Owner, "via": "signup" }),
    ))
    .await?;
    let mut tx = t.into_instance();
    queue_verification(&state, &mut tx, user, &email).await?;
    tx.commit().await?;
    state.mailer.wake();
    Ok(render(&check_inbox))
}

async fn queue_verification(
    state: &AppState,
    tx: &mut InstanceTx,
    user: UserId,
    email: &EmailAddress,
) -> Result<(), StoreError> {
    let token = random_token();
    tx.create_one_time_token(
        TokenPurpose::EmailVerification,
        &token_hash(&token),
        user,
        Utc::now() + Duration::hours(VERIFY_HOURS),
    )
    .await?;
    let body = format!(
        "Confirm your email address for burnrate by opening this link:\n{}\n\n\
         The link works once and expires in {VERIFY_HOURS} hours. If you did not sign up, ignore this message.",
        state.config.link(&format!("/verify-email/{token}"))
    );
    state.mailer.enqueue(tx, email, "Confirm your email for burnrate", body).await
}

async fn send_verification(state: &AppState, user: UserId, email: &EmailAddress) -> Result<(), AppError> {
    let mut tx = state.store.instance().await?;
    queue_verification(state, &mut tx, user, email).await?;
    tx.commit().await?;
    state.mailer.wake();
    Ok(())
}

fn token_shape_ok(token: &str) -> bool {
    token.len() <= 200 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether a one-time link would still be accepted, without using it up.
async fn link_valid(state: &AppState, purpose: TokenPurpose, token: &str) -> Result<bool, AppError> {
    if !token_shape_ok(token) {
        return Ok(false);
    }
    let mut tx = state.store.instance().await?;
    let valid = tx.one_time_token_valid(purpose, &token_hash(token)).await?;
    tx.commit().await?;
    Ok(valid)
}

fn link_expired(what: &str) -> Response {
    let page = MessagePage::new("Link expired", &format!("This {what} link has expired or has already been used."))
        .tone("error")
        .link("/login", "Go to login");
    (StatusCode::GONE, render(&page)).into_response()
}

fn token_form(title: &str, action: String, csrf: String) -> TokenFormPage {
    TokenFormPage {
        nav: None,
        title: title.into(),
        intro: None,
        error: None,
        action,
        csrf,
        ask_email: false,
        ask_password: false,
        password_label: "Password",
        password_autocomplete: "new-password",
        button: "Continue",
    }
}

pub async fn verify_page(
    State(state): State<AppState>,
    CsrfToken(csrf): CsrfToken,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    if !link_valid(&state, TokenPurpose::EmailVerification, &token).await? {
        return Ok(link_expired("confirmation"));
    }
    // A button rather than confirming on GET: mail scanners follow links, people press buttons.
    let mut page = token_form("Confirm your email", format!("/verify-email/{token}"), csrf);
    page.intro = Some("Press the button to confirm this email address.".into());
    page.button = "Confirm email";
    Ok(render(&page))
}

pub async fn verify(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(token): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let mut tx = state.store.instance().await?;
    let Some(user) = tx.use_one_time_token(TokenPurpose::EmailVerification, &token_hash(&token)).await? else {
        return Ok(link_expired("confirmation"));
    };
    tx.mark_email_verified(user).await?;
    let tx = audit_user_orgs(
        tx,
        user,
        entry(user_actor(user), AuditAction::EmailVerified, Some(("user", user.to_string())), &client, json!({})),
    )
    .await?;
    tx.commit().await?;
    Ok(render(
        &MessagePage::new("Email confirmed", "Your email address is confirmed. You can log in now.")
            .tone("ok")
            .link("/login", "Log in"),
    ))
}

pub async fn reset_request_page(CsrfToken(csrf): CsrfToken) -> Response {
    let mut page = token_form("Reset your password", "/password-reset".into(), csrf);
    page.intro =
        Some("Enter your account's email address and we will send you a link to choose a new password.".into());
    page.ask_email = true;
    page.button = "Send link";
    render(&page)
}

#[derive(Deserialize)]
pub struct EmailForm {
    email: String,
}

pub async fn reset_request(
    State(state): State<AppState>,
    client: ClientInfo,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Result<Response, AppError> {
    rate_limit(&state, format!("reset-ip:{}", client.ip), state.config.login_per_ip).await?;
    let sent = || Ok(render(&MessagePage::new("Check your inbox", RESET_SENT)));
    let Ok(email) = EmailAddress::parse(&form.email) else {
        return Err(AppError::Validation("Enter a valid email address.".into()));
    };
    rate_limit(&state, format!("reset-account:{email}"), state.config.login_per_account).await?;
    let mut tx = state.store.instance().await?;
    let Some(user) = tx.find_user_by_email(&state.vault, &email).await? else {
        tx.commit().await?;
        return sent();
    };
    let token = random_token();
    tx.create_one_time_token(
        TokenPurpose::PasswordReset,
        &token_hash(&token),
        user.id,
        Utc::now() + Duration::minutes(RESET_MINUTES),
    )
    .await?;
    let body = format!(
        "Someone asked to reset the password of your burnrate account. Choose a new password here:\n{}\n\n\
         The link works once and expires in {RESET_MINUTES} minutes. Resetting ends all your sessions.\n\
         If you did not ask for this, ignore this message: your password stays as it is.",
        state.config.link(&format!("/password-reset/{token}"))
    );
    state.mailer.enqueue(&mut tx, &email, "Reset your burnrate password", body).await?;
    let anon = Actor { kind: ActorType::Anonymous, id: None, label: "unknown".into() };
    let tx = audit_user_orgs(
        tx,
        user.id,
        entry(anon, AuditAction::PasswordResetRequested, Some(("user", user.id.to_string())), &client, json!({})),
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    sent()
}

fn reset_form(token: &str, csrf: String, error: Option<String>) -> TokenFormPage {
    let mut page = token_form("Choose a new password", format!("/password-reset/{token}"), csrf);
    page.ask_password = true;
    page.password_label = "New password";
    page.button = "Set password";
    page.error = error;
    page
}

pub async fn reset_page(
    State(state): State<AppState>,
    CsrfToken(csrf): CsrfToken,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    if !link_valid(&state, TokenPurpose::PasswordReset, &token).await? {
        return Ok(link_expired("password reset"));
    }
    Ok(render(&reset_form(&token, csrf, None)))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
}

pub async fn reset(
    State(state): State<AppState>,
    client: ClientInfo,
    CsrfToken(csrf): CsrfToken,
    Path(token): Path<String>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, AppError> {
    if !link_valid(&state, TokenPurpose::PasswordReset, &token).await? {
        return Ok(link_expired("password reset"));
    }
    let hash = token_hash(&token);
    // The policy is checked before the token is used, so a refused password does not burn it.
    let password = match NewPassword::parse(&form.password, &["burnrate"]) {
        Ok(p) => p,
        Err(e) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&reset_form(&token, csrf, Some(format!("Password: {e}.")))),
            )
                .into_response());
        }
    };
    let new_hash = state.hasher.hash(password.expose()).await?;
    let mut tx = state.store.instance().await?;
    let Some(user) = tx.use_one_time_token(TokenPurpose::PasswordReset, &hash).await? else {
        return Ok(link_expired("password reset"));
    };
    tx.set_password_hash(user, &new_hash).await?;
    // Whoever had a session must log in again with the new password.
    let ended = tx.end_all_user_sessions(user).await?;
    // The link reached the mailbox, so the address is proven too.
    tx.mark_email_verified(user).await?;
    let tx = audit_user_orgs(
        tx,
        user,
        entry(
            user_actor(user),
            AuditAction::PasswordResetCompleted,
            Some(("user", user.to_string())),
            &client,
            json!({ "sessions_ended": ended }),
        ),
    )
    .await?;
    tx.commit().await?;
    let mut resp = render(
        &MessagePage::new(
            "Password changed",
            "Your password has been changed and all your sessions have ended. Log in with the new password.",
        )
        .tone("ok")
        .link("/login", "Log in"),
    );
    resp.headers_mut().append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    Ok(resp)
}

/// The invitation behind a link, if it is still open.
async fn open_invitation(
    state: &AppState,
    token: &str,
) -> Result<Option<(OrgScope, burnrate_store::InvitationRecord, String, bool)>, AppError> {
    let Some(org) = ScopedToken::org(INVITATION_PREFIX, token) else {
        return Ok(None);
    };
    let mut tx = state.store.tenant(OrgScope::trusted(org)).await?;
    let Some(inv) = tx.invitation_by_token(&state.vault, &token_hash(token)).await? else {
        return Ok(None);
    };
    if !inv.is_open(Utc::now()) {
        return Ok(None);
    }
    let org_name = tx.org(org).await?.map(|o| o.name).unwrap_or_default();
    let existing = tx.find_user_by_email(&state.vault, &inv.email).await?.is_some();
    let scope = tx.scope();
    tx.commit().await?;
    Ok(Some((scope, inv, org_name, existing)))
}

fn invitation_form(
    token: &str,
    csrf: String,
    org_name: &str,
    inv: &burnrate_store::InvitationRecord,
    existing: bool,
    error: Option<String>,
) -> TokenFormPage {
    let mut page = token_form(&format!("Join {org_name}"), format!("/invitations/{token}"), csrf);
    page.ask_password = true;
    page.error = error;
    if existing {
        page.intro = Some(format!(
            "You were invited as {} for {}. You already have an account: enter its password to accept.",
            inv.role, inv.email
        ));
        page.password_label = "Your password";
        page.password_autocomplete = "current-password";
    } else {
        page.intro = Some(format!(
            "You were invited as {} for {}. Choose a password for your new account.",
            inv.role, inv.email
        ));
    }
    page.button = "Accept invitation";
    page
}

pub async fn invitation_page(
    State(state): State<AppState>,
    CsrfToken(csrf): CsrfToken,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let Some((_, inv, org_name, existing)) = open_invitation(&state, &token).await? else {
        return Ok(link_expired("invitation"));
    };
    if !existing && state.config.signup == SignupMode::Closed {
        return Err(AppError::Forbidden(
            "Accounts on this instance are created by its operator; ask them to create yours.".into(),
        ));
    }
    Ok(render(&invitation_form(&token, csrf, &org_name, &inv, existing, None)))
}

pub async fn accept_invitation(
    State(state): State<AppState>,
    client: ClientInfo,
    CsrfToken(csrf): CsrfToken,
    Path(token): Path<String>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, AppError> {
    rate_limit(&state, format!("login-ip:{}", client.ip), state.config.login_per_ip).await?;
    let Some((scope, inv, org_name, existing)) = open_invitation(&state, &token).await? else {
        return Ok(link_expired("invitation"));
    };
    let refuse = |msg: String| {
        let page = invitation_form(&token, csrf.clone(), &org_name, &inv, existing, Some(msg));
        Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
    };
    /// Who accepts: an account that exists, or a new one with its password's hash.
    enum Joiner {
        Existing(UserId),
        New(String),
    }
    let joiner = if existing {
        let mut tx = state.store.instance().await?;
        let user = tx.find_user_by_email(&state.vault, &inv.email).await?.ok_or(AppError::NotFound)?;
        tx.commit().await?;
        if !state.hasher.verify(&form.password, Some(&user.password_hash)).await {
            return refuse("That password is not correct for this account.".into());
        }
        Joiner::Existing(user.id)
    } else {
        if state.config.signup == SignupMode::Closed {
            return Err(AppError::Forbidden("Accounts on this instance are created by its operator.".into()));
        }
        let password = match NewPassword::parse(&form.password, &[inv.email.as_str(), &org_name]) {
            Ok(p) => p,
            Err(e) => return refuse(format!("Password: {e}.")),
        };
        Joiner::New(state.hasher.hash(password.expose()).await?)
    };
    let mut tx = state.store.tenant(scope).await?;
    let user = match joiner {
        Joiner::Existing(user) => user,
        // Following the emailed link proves the address.
        Joiner::New(hash) => tx.create_user(&state.vault, &inv.email, &hash, true).await?,
    };
    if !tx.accept_invitation(inv.id).await? {
        return Ok(link_expired("invitation"));
    }
    tx.add_member(user, inv.role).await?;
    tx.audit(entry(
        user_actor(user),
        AuditAction::InvitationAccepted,
        Some(("invitation", inv.id.to_string())),
        &client,
        json!({ "role": inv.role, "user": user }),
    ))
    .await?;
    tx.commit().await?;
    let page = MessagePage::new("Welcome", &format!("You are now a member of {org_name}. Log in to continue."))
        .tone("ok")
        .link("/login", "Log in");
    Ok(render(&page))
}

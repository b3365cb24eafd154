//! The account pages: sign-up, email verification, login with its second factor, password reset,
//! accepting an invitation, and one's own sessions.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use burnrate_app::accounts::{
    Accept, CHALLENGE_MINUTES, Client, Link, Login, OpenInvitation, Reset, SecondFactorChange, SignUp,
};
use burnrate_core::EmailAddress;
use chrono::Duration;
use serde::Deserialize;

use crate::auth::Authed;
use crate::error::AppError;
use crate::pages::{MessagePage, Nav, render, when};
use crate::routes::{parse_id, see_other};
use crate::security::{ClientInfo, CsrfForm, CsrfToken, NoFields, SESSION_COOKIE, clear_cookie, cookie, set_cookie};
use crate::{AppState, SignupMode};

const LOGIN_FAILED: &str = "Email or password is incorrect.";

const RESET_SENT: &str = "If an account exists for that address, we have sent it a link to choose a new password. The link expires in 30 minutes.";

fn client_of(c: &ClientInfo) -> Client {
    Client { ip: c.ip.clone(), user_agent: c.user_agent.clone() }
}

/// One more login of `outcome` (`ok`, `failed`) in the operator's metrics.
fn count_login(outcome: &'static str) {
    metrics::counter!("burnrate_logins_total", "outcome" => outcome).increment(1);
}

async fn rate_limit(state: &AppState, key: String, quota: crate::Quota) -> Result<(), AppError> {
    state.limiter.check(&key, quota).await.map_err(AppError::rate_limited)
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
    let login = state
        .app
        .log_in(
            &form.email,
            &form.password,
            &client_of(&client),
            cookie(&headers, SESSION_COOKIE).as_deref(),
            lifetime(&state),
        )
        .await?;
    login_outcome(&state, login, &headers, csrf, form.email)
}

/// How long a session lasts at most.
fn lifetime(state: &AppState) -> Duration {
    Duration::from_std(state.config.session_absolute).unwrap_or(Duration::hours(12))
}

/// Names the login waiting for its authenticator code.
const CHALLENGE_COOKIE: &str = "__Host-burnrate_login";

/// The page or redirect a login step comes to.
fn login_outcome(
    state: &AppState,
    login: Login,
    headers: &axum::http::HeaderMap,
    csrf: String,
    email: String,
) -> Result<Response, AppError> {
    Ok(match login {
        Login::Failed => {
            count_login("failed");
            let page = login_form(state, csrf, email, Some(LOGIN_FAILED.into()), None);
            (StatusCode::UNAUTHORIZED, render(&page)).into_response()
        }
        Login::Unverified => {
            let page = MessagePage::new(
                "Confirm your email first",
                "Your email address is not confirmed yet. We have sent a new confirmation link to it; open it, then log in.",
            );
            (StatusCode::FORBIDDEN, render(&page)).into_response()
        }
        Login::SecondFactor { challenge } => {
            let mut resp = render(&SecondFactorPage { nav: None, csrf, error: None });
            let age = u64::try_from(CHALLENGE_MINUTES * 60).unwrap_or(300);
            resp.headers_mut().append(header::SET_COOKIE, set_cookie(CHALLENGE_COOKIE, &challenge, Some(age)));
            resp
        }
        Login::Expired => {
            let page = MessagePage::new("Log in again", "This login took too long or was already used. Log in again.")
                .link("/login", "Log in");
            (StatusCode::UNAUTHORIZED, render(&page)).into_response()
        }
        Login::NoOrganization => {
            let page = MessagePage::new(
                "No organization",
                "Your account is not a member of any organization any more. Ask an admin to invite you again.",
            );
            (StatusCode::FORBIDDEN, render(&page)).into_response()
        }
        Login::Session { token } => {
            count_login("ok");
            let mut resp = Redirect::to("/").into_response();
            *resp.status_mut() = StatusCode::SEE_OTHER;
            let age = lifetime(state).num_seconds().unsigned_abs();
            resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, Some(age)));
            if cookie(headers, CHALLENGE_COOKIE).is_some() {
                resp.headers_mut().append(header::SET_COOKIE, clear_cookie(CHALLENGE_COOKIE));
            }
            resp
        }
    })
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
    let challenge = cookie(&headers, CHALLENGE_COOKIE);
    let user = match &challenge {
        Some(c) => state.app.challenge_user(c).await?,
        None => None,
    };
    let (Some(challenge), Some(user)) = (challenge, user) else {
        return login_outcome(&state, Login::Expired, &headers, csrf, String::new());
    };
    rate_limit(&state, format!("login-code:{user}"), state.config.login_per_account).await?;
    let replacing = cookie(&headers, SESSION_COOKIE);
    let login = state
        .app
        .log_in_with_code(&challenge, &form.code, &client_of(&client), replacing.as_deref(), lifetime(&state))
        .await?;
    if let Login::Failed = login {
        count_login("failed");
        let error = Some("That code is not right, or was used already. Enter the code the app shows now.".into());
        return Ok((StatusCode::UNAUTHORIZED, render(&SecondFactorPage { nav: None, csrf, error })).into_response());
    }
    login_outcome(&state, login, &headers, csrf, String::new())
}

/// Starts setting up two-step login: a new secret, shown on the sessions page until a code
/// from it confirms it.
pub async fn second_factor_setup(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let notice = match state.app.set_up_second_factor(who.user_id).await? {
        SecondFactorChange::Unchanged => Some("Two-step login is on already.".into()),
        _ => None,
    };
    sessions_page(&state, &who, notice, None).await
}

/// Turns two-step login on with the first code of the secret being set up.
pub async fn second_factor_confirm(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, AppError> {
    rate_limit(&state, format!("login-code:{}", who.user_id), state.config.login_per_account).await?;
    let change = state.app.confirm_second_factor(who.user_id, &form.code, &client_of(&who.client)).await?;
    let (notice, error) = match change {
        SecondFactorChange::Done => (Some("Two-step login is on."), None),
        SecondFactorChange::Unchanged => (Some("Nothing to confirm: set it up first."), None),
        SecondFactorChange::WrongCode => {
            (None, Some("That code is not the one the app shows for this key. Check the key and the phone's clock."))
        }
    };
    let error = error.map(|e| (StatusCode::UNPROCESSABLE_ENTITY, e.to_owned()));
    sessions_page(&state, &who, notice.map(str::to_owned), error).await
}

/// Turns two-step login off; it takes a current code, so a borrowed session alone cannot.
pub async fn second_factor_disable(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, AppError> {
    rate_limit(&state, format!("login-code:{}", who.user_id), state.config.login_per_account).await?;
    let change = state.app.disable_second_factor(who.user_id, &form.code, &client_of(&who.client)).await?;
    let (notice, error) = match change {
        SecondFactorChange::Done => (Some("Two-step login is off."), None),
        SecondFactorChange::Unchanged => (Some("Two-step login is off already."), None),
        SecondFactorChange::WrongCode => (None, Some("That code is not right, or was used already.")),
    };
    let error = error.map(|e| (StatusCode::UNPROCESSABLE_ENTITY, e.to_owned()));
    sessions_page(&state, &who, notice.map(str::to_owned), error).await
}

pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: axum::http::HeaderMap,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.app.log_out(&token, &client_of(&client)).await?;
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
    match state.app.sign_up(&form.org_name, &form.email, &form.password, &client_of(&client)).await? {
        SignUp::Invalid(errors) => {
            let page = SignupPage {
                nav: None,
                csrf,
                org_name: form.org_name,
                email: form.email,
                errors,
                closed_message: None,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        SignUp::CheckInbox => Ok(render(&MessagePage::new(
            "Check your inbox",
            "We have sent a link to your email address. Open it to confirm the address, then log in. The link expires in 24 hours.",
        ))),
    }
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
    if !state.app.link_valid(Link::EmailVerification, &token).await? {
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
    if !state.app.verify_email(&token, &client_of(&client)).await? {
        return Ok(link_expired("confirmation"));
    }
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
    state.app.request_password_reset(&email, &client_of(&client)).await?;
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
    if !state.app.link_valid(Link::PasswordReset, &token).await? {
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
    match state.app.reset_password(&token, &form.password, &client_of(&client)).await? {
        Reset::Expired => return Ok(link_expired("password reset")),
        Reset::Refused(why) => {
            let page = reset_form(&token, csrf, Some(why));
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
        }
        Reset::Done => {}
    }
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

fn invitation_form(token: &str, csrf: String, open: &OpenInvitation, error: Option<String>) -> TokenFormPage {
    let (inv, existing) = (&open.invitation, open.existing);
    let mut page = token_form(&format!("Join {}", open.org_name), format!("/invitations/{token}"), csrf);
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
    let Some(open) = state.app.open_invitation(&token).await? else {
        return Ok(link_expired("invitation"));
    };
    if !open.existing && state.config.signup == SignupMode::Closed {
        return Err(AppError::Forbidden(
            "Accounts on this instance are created by its operator; ask them to create yours.".into(),
        ));
    }
    Ok(render(&invitation_form(&token, csrf, &open, None)))
}

pub async fn accept_invitation(
    State(state): State<AppState>,
    client: ClientInfo,
    CsrfToken(csrf): CsrfToken,
    Path(token): Path<String>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, AppError> {
    rate_limit(&state, format!("login-ip:{}", client.ip), state.config.login_per_ip).await?;
    let Some(open) = state.app.open_invitation(&token).await? else {
        return Ok(link_expired("invitation"));
    };
    let form_again = invitation_form(&token, csrf, &open, None);
    let new_accounts = state.config.signup != SignupMode::Closed;
    let org_name = match state.app.accept_invitation(open, &form.password, new_accounts, &client_of(&client)).await? {
        Accept::Expired => return Ok(link_expired("invitation")),
        Accept::Refused(why) => {
            let page = TokenFormPage { error: Some(why), ..form_again };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
        }
        Accept::Joined { org_name } => org_name,
    };
    let page = MessagePage::new("Welcome", &format!("You are now a member of {org_name}. Log in to continue."))
        .tone("ok")
        .link("/login", "Log in");
    Ok(render(&page))
}

pub async fn sessions(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    sessions_page(&state, &who, None, None).await
}

/// The person's sessions and two-step login; `notice` and `error` say how an action on it went.
pub(crate) async fn sessions_page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<(axum::http::StatusCode, String)>,
) -> Result<Response, AppError> {
    use burnrate_app::accounts::SecondFactor;
    let sessions = state.app.own_sessions(who.user_id).await?;
    let factor = state.app.second_factor(who.user_id).await?;
    let setup = match factor {
        SecondFactor::Pending => state.app.pending_second_factor(who.user_id).await?.map(|secret| {
            let uri = secret.provisioning_uri("burnrate", who.email.as_str());
            (secret.base32().to_string(), uri.to_string())
        }),
        SecondFactor::On | SecondFactor::Off => None,
    };
    let status = error.as_ref().map_or(axum::http::StatusCode::OK, |(s, _)| *s);
    let page = SessionsPage {
        nav: Some(Nav::new(who, "sessions")),
        csrf: who.csrf.clone(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                handle: s.handle.to_string(),
                created: when(s.created_at),
                last_seen: when(s.last_seen_at),
                ip: s.ip.unwrap_or_default(),
                user_agent: s.user_agent.unwrap_or_default(),
                current: s.handle == who.session_handle,
            })
            .collect(),
        second_factor: match factor {
            SecondFactor::Off => "off",
            SecondFactor::Pending => "pending",
            SecondFactor::On => "on",
        },
        setup,
        notice,
        error: error.map(|(_, m)| m),
    };
    Ok((status, render(&page)).into_response())
}

pub async fn end_session(
    State(state): State<AppState>,
    who: Authed,
    Path(handle): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let handle: uuid::Uuid = parse_id(&handle)?;
    state.app.end_own_session(who.user_id, handle).await?;
    if handle == who.session_handle {
        let mut r = see_other("/login");
        r.headers_mut().append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
        return Ok(r);
    }
    Ok(see_other("/sessions"))
}

pub async fn end_other_sessions(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    state.app.end_other_sessions(who.user_id, who.session_handle).await?;
    Ok(see_other("/sessions"))
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub signup_open: bool,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub org_name: String,
    pub email: String,
    pub errors: Vec<String>,
    pub closed_message: Option<String>,
}

/// A small form reached through a one-time link or asking for one.
#[derive(Template)]
#[template(path = "token_form.html")]
pub struct TokenFormPage {
    pub nav: Option<Nav>,
    pub title: String,
    pub intro: Option<String>,
    pub error: Option<String>,
    pub action: String,
    pub csrf: String,
    pub ask_email: bool,
    pub ask_password: bool,
    pub password_label: &'static str,
    pub password_autocomplete: &'static str,
    pub button: &'static str,
}

pub struct SessionRow {
    pub handle: String,
    pub created: String,
    pub last_seen: String,
    pub ip: String,
    pub user_agent: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
pub struct SessionsPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub sessions: Vec<SessionRow>,
    /// `off`, `pending` or `on`.
    pub second_factor: &'static str,
    /// While setting up: the secret to type into the app, and its `otpauth://` URI.
    pub setup: Option<(String, String)>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// The second step of a login: the authenticator code.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub error: Option<String>,
}

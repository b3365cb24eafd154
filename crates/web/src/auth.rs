//! Who is calling: a logged-in browser session ([`Authed`]) or a public API key ([`ApiCaller`]).
//! Both end in an `OrgScope`, the only way to tenant data. An instance operator ([`OperatorAuthed`])
//! gets no scope of their own; only a support grant leads into an organization.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use burnrate_app::OrgScope;
use burnrate_app::Via;
use burnrate_app::support::Operator;
use burnrate_core::{ApiKeyId, ApiScope, EmailAddress, Role, UserId};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, AppError};
use crate::security::{ClientInfo, CsrfToken, OPERATOR_COOKIE, SESSION_COOKIE, clear_cookie, cookie};

/// A logged-in member acting in one organization.
#[derive(Clone, Debug)]
pub struct Authed {
    pub user_id: UserId,
    pub scope: OrgScope,
    pub role: Role,
    pub org_name: String,
    pub email: EmailAddress,
    pub session_handle: Uuid,
    pub csrf: String,
    pub client: ClientInfo,
    /// Sources whose last sync failed: every page says so.
    pub failing_sources: Vec<String>,
}

/// Not logged in (or the session ended): back to the login page.
pub struct LoginRedirect;

impl IntoResponse for LoginRedirect {
    fn into_response(self) -> Response {
        let mut resp = Redirect::to("/login").into_response();
        resp.headers_mut().append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
        resp
    }
}

impl From<AppError> for LoginRedirectOr {
    fn from(e: AppError) -> Self {
        LoginRedirectOr::Error(e)
    }
}

pub enum LoginRedirectOr {
    Login,
    Error(AppError),
}

impl IntoResponse for LoginRedirectOr {
    fn into_response(self) -> Response {
        match self {
            LoginRedirectOr::Login => LoginRedirect.into_response(),
            LoginRedirectOr::Error(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = LoginRedirectOr;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let client = ClientInfo::from_request_parts(parts, state).await.unwrap_or_else(|e| match e {});
        let csrf = CsrfToken::from_request_parts(parts, state).await.map(|t| t.0).unwrap_or_default();
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(LoginRedirectOr::Login)?;
        let idle = chrono::Duration::from_std(state.config.session_idle).unwrap_or(chrono::Duration::hours(2));
        let signed_in = state.app.signed_in(&token, idle).await.map_err(AppError::from)?;
        let s = signed_in.ok_or(LoginRedirectOr::Login)?;
        Ok(Authed {
            failing_sources: s.failing_sources,
            user_id: s.user_id,
            scope: s.scope,
            role: s.role,
            org_name: s.org_name,
            email: s.email,
            session_handle: s.handle,
            csrf,
            client,
        })
    }
}

/// A caller of `/api/v1` with a valid API key.
#[derive(Clone, Debug)]
pub struct ApiCaller {
    pub scope: OrgScope,
    pub key_id: ApiKeyId,
    pub key_name: String,
    /// The key's scope, capped by the current role of the member who created it.
    pub allowed: ApiScope,
    pub created_by: UserId,
    pub client: ClientInfo,
}

impl ApiCaller {
    pub fn require(&self, needed: ApiScope) -> Result<(), ApiError> {
        if self.allowed.allows(needed) {
            Ok(())
        } else {
            Err(ApiError(AppError::Forbidden(format!(
                "This API key may {} only; this endpoint needs the {needed} scope.",
                match self.allowed {
                    ApiScope::Read => "read",
                    ApiScope::Write => "read and write",
                    ApiScope::Admin => "administer",
                }
            ))))
        }
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let client = ClientInfo::from_request_parts(parts, state).await.unwrap_or_else(|e| match e {});
        state
            .limiter
            .check(&format!("api-ip:{}", client.ip), state.config.api_per_ip)
            .await
            .map_err(AppError::rate_limited)?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(AppError::Unauthorized)?;
        let holder = state.app.api_key_holder(token).await?.ok_or(AppError::Unauthorized)?;
        state
            .limiter
            .check(&format!("api-key:{}", holder.key_id), state.config.api_per_key)
            .await
            .map_err(AppError::rate_limited)?;
        Ok(ApiCaller {
            scope: holder.scope,
            key_id: holder.key_id,
            key_name: holder.key_name,
            allowed: holder.allowed,
            created_by: holder.created_by,
            client,
        })
    }
}

/// Someone acting in an organization: a logged-in member or an API key, handed to the
/// application layer as a [`burnrate_app::Actor`], which decides what they may do and audits it.
pub trait Caller {
    fn scope(&self) -> OrgScope;
    /// The role this caller acts with (an API key acts with the role its scope corresponds to).
    fn role(&self) -> Role;
    /// The member behind the call (for an API key, the member who created it).
    fn member(&self) -> UserId;
    fn via(&self) -> Via;
    fn client(&self) -> &ClientInfo;

    /// The caller as the application layer takes it.
    fn actor(&self) -> burnrate_app::Actor {
        burnrate_app::Actor {
            scope: self.scope(),
            role: self.role(),
            member: self.member(),
            via: self.via(),
            ip: Some(self.client().ip.clone()),
            user_agent: self.client().user_agent.clone(),
        }
    }

    fn require_admin(&self) -> Result<(), AppError> {
        Ok(self.actor().require_admin()?)
    }
}

impl Caller for Authed {
    fn scope(&self) -> OrgScope {
        self.scope
    }
    fn role(&self) -> Role {
        self.role
    }
    fn member(&self) -> UserId {
        self.user_id
    }
    fn via(&self) -> Via {
        Via::Session
    }
    fn client(&self) -> &ClientInfo {
        &self.client
    }
}

impl Caller for ApiCaller {
    fn scope(&self) -> OrgScope {
        self.scope
    }
    fn role(&self) -> Role {
        match self.allowed {
            ApiScope::Admin => Role::Admin,
            ApiScope::Write => Role::Member,
            ApiScope::Read => Role::Viewer,
        }
    }
    fn member(&self) -> UserId {
        self.created_by
    }
    fn via(&self) -> Via {
        Via::ApiKey { id: self.key_id, name: self.key_name.clone() }
    }
    fn client(&self) -> &ClientInfo {
        &self.client
    }
}

/// A logged-in operator (instance staff, S18). Operators are members of no organization: what
/// they may see of one comes only through a support grant (`routes::operator`).
#[derive(Clone, Debug)]
pub struct OperatorAuthed {
    pub operator: Operator,
    pub csrf: String,
}

/// Not logged in as an operator: to the operator login.
pub struct OperatorLogin;

impl IntoResponse for OperatorLogin {
    fn into_response(self) -> Response {
        let mut resp = Redirect::to("/operator/login").into_response();
        resp.headers_mut().append(header::SET_COOKIE, clear_cookie(OPERATOR_COOKIE));
        resp
    }
}

impl FromRequestParts<AppState> for OperatorAuthed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let client = ClientInfo::from_request_parts(parts, state).await.unwrap_or_else(|e| match e {});
        let csrf = CsrfToken::from_request_parts(parts, state).await.map(|t| t.0).unwrap_or_default();
        let token = cookie(&parts.headers, OPERATOR_COOKIE).ok_or_else(|| OperatorLogin.into_response())?;
        let idle = chrono::Duration::from_std(state.config.session_idle).unwrap_or(chrono::Duration::hours(2));
        let record = state.app.support().session(&token, idle).await.map_err(|e| AppError::from(e).into_response())?;
        let record = record.ok_or_else(|| OperatorLogin.into_response())?;
        let operator = Operator { record, ip: Some(client.ip), user_agent: client.user_agent };
        Ok(OperatorAuthed { operator, csrf })
    }
}

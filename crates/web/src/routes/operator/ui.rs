//! The operators' pages: login, grants, notices, and an organization's read-only view under a grant.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use burnrate_app::support::{
    AccessRequest, DEFAULT_GRANT_HOURS, Dashboard, MAX_GRANT_HOURS, NOTICE_LEAD_DAYS, NewNotice,
    OPERATOR_SESSION_HOURS, UnderGrant,
};
use burnrate_core::OrgId;
use chrono::{Duration, Utc};
use serde::Deserialize;

use crate::AppState;
use crate::auth::OperatorAuthed;
use crate::error::AppError;
use crate::pages::{AuditRow, GrantRow, Nav, NoticeRow, Viewer, grant_row, notice_row, render, when};
use crate::routes::{parse_id, see_other};
use crate::security::{ClientInfo, CsrfForm, CsrfToken, OPERATOR_COOKIE, clear_cookie, cookie, set_cookie};

pub async fn login_page(CsrfToken(csrf): CsrfToken) -> Response {
    render(&OperatorLoginPage { nav: None, csrf, email: String::new(), error: None })
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    code: String,
}

pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: axum::http::HeaderMap,
    CsrfToken(csrf): CsrfToken,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, AppError> {
    let limited = AppError::rate_limited;
    state.limiter.check(&format!("login-ip:{}", client.ip), state.config.login_per_ip).await.map_err(limited)?;
    let typed = form.email.trim().to_lowercase();
    let account = format!("operator-login:{typed}");
    state.limiter.check(&account, state.config.login_per_account).await.map_err(limited)?;
    let support = state.app.support();
    let operator = match support.authenticate_operator(&form.email, &form.password, &form.code).await {
        Ok(op) => op,
        Err(burnrate_app::Error::Forbidden(message)) => {
            tracing::warn!(ip = %client.ip, "operator login refused");
            let page = OperatorLoginPage { nav: None, csrf, email: form.email, error: Some(message) };
            return Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let token = support.sign_in(&operator, cookie(&headers, OPERATOR_COOKIE).as_deref()).await?;
    let lifetime = Duration::hours(OPERATOR_SESSION_HOURS);
    let mut resp = see_other("/operator");
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(OPERATOR_COOKIE, &token, Some(lifetime.num_seconds().unsigned_abs())));
    Ok(resp)
}

pub async fn logout(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    CsrfForm(_): CsrfForm<crate::security::NoFields>,
) -> Result<Response, AppError> {
    if let Some(token) = cookie(&headers, OPERATOR_COOKIE) {
        state.app.support().sign_out(&token).await?;
    }
    let mut resp = see_other("/operator/login");
    resp.headers_mut().append(header::SET_COOKIE, clear_cookie(OPERATOR_COOKIE));
    Ok(resp)
}

async fn dashboard(
    state: &AppState,
    op: &OperatorAuthed,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
) -> Result<Response, AppError> {
    let Dashboard { grants, org_names, notices } = state.app.support().dashboard().await?;
    let now = Utc::now();
    let viewer = Viewer::Operator(op.operator.record.id);
    let rows = grants
        .grants
        .iter()
        .map(|g| grant_row(g, now, &grants.operators, org_names[&g.org_id].clone(), &viewer))
        .collect();
    let status = error.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let page = OperatorPage {
        nav: None,
        csrf: op.csrf.clone(),
        operator: op.operator.record.name.clone(),
        grants: rows,
        notices: notices.iter().map(notice_row).collect(),
        default_effective: (now.date_naive() + Duration::days(NOTICE_LEAD_DAYS)).to_string(),
        default_hours: DEFAULT_GRANT_HOURS,
        max_hours: MAX_GRANT_HOURS,
        notice,
        error: error.map(|(_, m)| m),
    };
    Ok((status, render(&page)).into_response())
}

pub async fn home(State(state): State<AppState>, op: OperatorAuthed) -> Result<Response, AppError> {
    dashboard(&state, &op, None, None).await
}

/// Shows the outcome of an operator's action on the dashboard: what happened, or why not.
async fn outcome(
    state: &AppState,
    op: &OperatorAuthed,
    result: Result<String, AppError>,
) -> Result<Response, AppError> {
    match result {
        Ok(notice) => dashboard(state, op, Some(notice), None).await,
        Err(AppError::Conflict(m)) => dashboard(state, op, None, Some((StatusCode::CONFLICT, m))).await,
        Err(AppError::Forbidden(m)) => dashboard(state, op, None, Some((StatusCode::FORBIDDEN, m))).await,
        Err(AppError::Validation(m)) => dashboard(state, op, None, Some((StatusCode::UNPROCESSABLE_ENTITY, m))).await,
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct NoticeForm {
    title: String,
    body: String,
    /// `2027-01-01`; 30 days ahead when empty.
    #[serde(default)]
    effective: String,
}

/// Publishes a notice to every organization (S20).
pub async fn publish(
    State(state): State<AppState>,
    op: OperatorAuthed,
    CsrfForm(form): CsrfForm<NoticeForm>,
) -> Result<Response, AppError> {
    let effective = match form.effective.trim() {
        "" => Ok(None),
        d => d
            .parse::<chrono::NaiveDate>()
            .map(Some)
            .map_err(|_| AppError::Validation(format!("effective: {d:?} is not a date such as 2027-01-31"))),
    };
    let result = match effective {
        Ok(effective_on) => {
            let new = NewNotice { title: &form.title, body: &form.body, effective_on };
            state.app.support().publish_notice(&op.operator, &new).await.map_err(AppError::from)
        }
        Err(e) => Err(e),
    };
    let result = result.map(|p| {
        state.app.wake_mailer();
        format!(
            "Published: effective {}, emailed to {} admins of {} organizations.",
            p.notice.effective_on, p.emails, p.organizations
        )
    });
    outcome(&state, &op, result).await
}

#[derive(Deserialize)]
pub struct RequestForm {
    org: String,
    issue: String,
    #[serde(default)]
    hours: String,
}

pub async fn request(
    State(state): State<AppState>,
    op: OperatorAuthed,
    CsrfForm(form): CsrfForm<RequestForm>,
) -> Result<Response, AppError> {
    let hours = match form.hours.trim() {
        "" => Ok(None),
        h => h.parse().map(Some).map_err(|_| AppError::Validation(format!("hours: {h:?} is not a whole number"))),
    };
    let result = match hours {
        Ok(hours) => {
            let ask = AccessRequest { org: form.org.trim(), issue: &form.issue, hours };
            state.app.support().request_access(&op.operator, &ask).await.map_err(AppError::from).map(|g| {
                state.app.wake_mailer();
                format!(
                    "Asked for {} hours of access. The organization's admins were emailed; a second operator must approve too.",
                    g.duration.num_hours()
                )
            })
        }
        Err(e) => Err(e),
    };
    outcome(&state, &op, result).await
}

pub async fn approve(
    State(state): State<AppState>,
    op: OperatorAuthed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<crate::security::NoFields>,
) -> Result<Response, AppError> {
    let result =
        state.app.support().approve_access(&op.operator, parse_id(&id)?).await.map_err(AppError::from).map(|g| match g
            .expires_at
        {
            Some(until) => format!("Approved: access is open until {}.", when(until)),
            None => "Approved. Access opens once the organization consents.".to_owned(),
        });
    outcome(&state, &op, result).await
}

pub async fn revoke(
    State(state): State<AppState>,
    op: OperatorAuthed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<crate::security::NoFields>,
) -> Result<Response, AppError> {
    let result = state
        .app
        .support()
        .revoke_as_operator(&op.operator, parse_id(&id)?)
        .await
        .map_err(AppError::from)
        .map(|_| "Ended: nobody sees the organization through this grant any more.".to_owned());
    outcome(&state, &op, result).await
}

/// Lets a request into `/operator/orgs/{org}/…` only under an active grant of this operator's
/// for that organization (404 otherwise, saying nothing about whether it exists), and writes the
/// request to the organization's audit log in the same transaction as the check.
pub async fn under_grant(
    State(state): State<AppState>,
    op: OperatorAuthed,
    Path(params): Path<Vec<(String, String)>>,
    mut req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let org = params.iter().find(|(k, _)| k == "org").map(|(_, v)| v.as_str()).ok_or(AppError::NotFound)?;
    let org: OrgId = parse_id(org)?;
    let under = state.app.support().enter(&op.operator, org, req.method().as_str(), req.uri().path()).await?;
    req.extensions_mut().insert(under);
    Ok(next.run(req).await)
}

fn until(g: &UnderGrant) -> String {
    g.grant.expires_at.map(when).unwrap_or_default()
}

pub async fn org_overview(
    State(state): State<AppState>,
    Extension(g): Extension<UnderGrant>,
) -> Result<Response, AppError> {
    let burnrate_app::support::OrganizationSeen { sources, budgets, members } =
        state.app.support().organization(&g).await?;
    let mut by_role: Vec<(String, usize)> = Vec::new();
    for m in &members {
        let role = m.role.to_string();
        match by_role.iter_mut().find(|(r, _)| *r == role) {
            Some((_, n)) => *n += 1,
            None => by_role.push((role, 1)),
        }
    }
    let page = OperatorOrgPage {
        nav: None,
        org_id: g.org_id().to_string(),
        org_name: g.org_name.clone(),
        issue: g.grant.issue.clone(),
        until: until(&g),
        members: by_role,
        sources: sources
            .into_iter()
            .map(|s| OrgSourceRow {
                state: if s.paused { "paused".into() } else { s.progress.unwrap_or_else(|| "active".into()) },
                name: s.name,
                kind: s.kind,
                last_success: s.last_success_at.map(when).unwrap_or_else(|| "never".into()),
                last_error: s.last_error.unwrap_or_default(),
            })
            .collect(),
        budgets: budgets
            .into_iter()
            .map(|b| OrgBudgetRow { name: b.name, amount: b.amount.to_string(), period: b.period.as_str().into() })
            .collect(),
    };
    Ok(render(&page))
}

pub async fn org_audit(
    State(state): State<AppState>,
    Extension(g): Extension<UnderGrant>,
) -> Result<Response, AppError> {
    let entries = state.app.support().audit_log(&g).await?;
    let page = OperatorAuditPage {
        nav: None,
        org_id: g.org_id().to_string(),
        org_name: g.org_name.clone(),
        until: until(&g),
        entries: entries.into_iter().map(AuditRow::from).collect(),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "operator_login.html")]
pub struct OperatorLoginPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "operator.html")]
pub struct OperatorPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub operator: String,
    pub grants: Vec<GrantRow>,
    pub notices: Vec<NoticeRow>,
    /// The date a new notice takes effect unless changed.
    pub default_effective: String,
    pub default_hours: i64,
    pub max_hours: i64,
    pub notice: Option<String>,
    pub error: Option<String>,
}

pub struct OrgSourceRow {
    pub name: String,
    pub kind: String,
    pub state: String,
    pub last_success: String,
    pub last_error: String,
}

pub struct OrgBudgetRow {
    pub name: String,
    pub amount: String,
    pub period: String,
}

/// What an operator sees of an organization under a grant: read-only.
#[derive(Template)]
#[template(path = "operator_org.html")]
pub struct OperatorOrgPage {
    pub nav: Option<Nav>,
    pub org_id: String,
    pub org_name: String,
    pub issue: String,
    pub until: String,
    pub members: Vec<(String, usize)>,
    pub sources: Vec<OrgSourceRow>,
    pub budgets: Vec<OrgBudgetRow>,
}

#[derive(Template)]
#[template(path = "operator_audit.html")]
pub struct OperatorAuditPage {
    pub nav: Option<Nav>,
    pub org_id: String,
    pub org_name: String,
    pub until: String,
    pub entries: Vec<AuditRow>,
}

//! The operators' side of support access (S18), under `/operator`: their own login with a TOTP
//! second factor, asking for and approving grants, and a read-only view of an organization while
//! a grant of theirs is active. Without one, every organization route answers 404, and every
//! request made under one is written to that organization's audit log before it is served.

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use burnrate_core::OrgId;
use burnrate_crypto::{random_token, token_hash};
use burnrate_store::{AuditAction, OrgScope, SupportGrant};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use super::support::{Viewer, grant_row, operator_names};
use super::{parse_id, see_other};
use crate::AppState;
use crate::auth::{OPERATOR_SESSION_HOURS, OperatorAuthed};
use crate::error::AppError;
use crate::pages::{
    AuditRow, OperatorAuditPage, OperatorLoginPage, OperatorOrgPage, OperatorPage, OrgBudgetRow, OrgSourceRow, render,
    when,
};
use crate::security::{ClientInfo, CsrfForm, CsrfToken, OPERATOR_COOKIE, clear_cookie, cookie, set_cookie};
use crate::support::{
    AccessRequest, DEFAULT_GRANT_HOURS, MAX_GRANT_HOURS, NOTICE_LEAD_DAYS, NOTICE_SHOWN_DAYS, NewNotice,
    approve_access, authenticate_operator, operator_actor, publish_notice, request_access, revoke_as_operator,
};

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
    let limited = |w| {
        state.metrics.rate_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        AppError::rate_limited(w)
    };
    state.limiter.check(&format!("login-ip:{}", client.ip), state.config.login_per_ip).await.map_err(limited)?;
    let typed = form.email.trim().to_lowercase();
    let account = format!("operator-login:{typed}");
    state.limiter.check(&account, state.config.login_per_account).await.map_err(limited)?;
    let operator =
        match authenticate_operator(&state.store, &state.vault, &state.hasher, &form.email, &form.password, &form.code)
            .await
        {
            Ok(op) => op,
            Err(AppError::Forbidden(message)) => {
                tracing::warn!(ip = %client.ip, "operator login refused");
                let page = OperatorLoginPage { nav: None, csrf, email: form.email, error: Some(message) };
                return Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response());
            }
            Err(e) => return Err(e),
        };
    let mut tx = state.store.instance().await?;
    if let Some(old) = cookie(&headers, OPERATOR_COOKIE) {
        tx.delete_operator_session(&token_hash(&old)).await?;
    }
    let token = random_token();
    let lifetime = Duration::hours(OPERATOR_SESSION_HOURS);
    tx.create_operator_session(&token_hash(&token), operator.id, Utc::now() + lifetime).await?;
    tx.commit().await?;
    tracing::info!(operator = %operator.id, ip = %client.ip, "operator logged in");
    let mut resp = see_other("/operator");
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(OPERATOR_COOKIE, &token, Some(lifetime.num_seconds().unsigned_abs())));
    Ok(resp)
}

pub async fn logout(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    CsrfForm(_): CsrfForm<super::account::NoFields>,
) -> Result<Response, AppError> {
    if let Some(token) = cookie(&headers, OPERATOR_COOKIE) {
        let mut tx = state.store.instance().await?;
        tx.delete_operator_session(&token_hash(&token)).await?;
        tx.commit().await?;
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
    let mut tx = state.store.instance().await?;
    let grants = tx.all_support_grants(200).await?;
    let names = operator_names(&mut tx, &grants).await?;
    let mut orgs: Vec<OrgId> = grants.iter().map(|g| g.org_id).collect();
    orgs.sort();
    orgs.dedup();
    let mut org_names = std::collections::HashMap::new();
    for org in orgs {
        org_names.insert(org, tx.org(org).await?.map(|o| o.name).unwrap_or_else(|| org.to_string()));
    }
    let notices = tx.notices_since(now_minus_shown()).await?;
    tx.commit().await?;
    let now = Utc::now();
    let viewer = Viewer::Operator(op.operator.id);
    let rows = grants.iter().map(|g| grant_row(g, now, &names, org_names[&g.org_id].clone(), &viewer)).collect();
    let status = error.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let page = OperatorPage {
        nav: None,
        csrf: op.csrf.clone(),
        operator: op.operator.name.clone(),
        grants: rows,
        notices: notices.iter().map(super::org::notice_row).collect(),
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

fn now_minus_shown() -> chrono::DateTime<Utc> {
    Utc::now() - Duration::days(NOTICE_SHOWN_DAYS)
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
            publish_notice(&state.store, &state.vault, &op.operator, &new, &state.config.link("/"), Some(&op.client))
                .await
        }
        Err(e) => Err(e),
    };
    let result = result.map(|p| {
        state.mailer.wake();
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
            request_access(&state.store, &state.vault, &op.operator, &ask, &state.config.link("/support"), Some(&op.client))
                .await
                .map(|g| {
                    state.mailer.wake();
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
    CsrfForm(_): CsrfForm<super::account::NoFields>,
) -> Result<Response, AppError> {
    let result = approve_access(&state.store, &op.operator, parse_id(&id)?, Some(&op.client)).await.map(|g| {
        match g.expires_at {
            Some(until) => format!("Approved: access is open until {}.", when(until)),
            None => "Approved. Access opens once the organization consents.".to_owned(),
        }
    });
    outcome(&state, &op, result).await
}

pub async fn revoke(
    State(state): State<AppState>,
    op: OperatorAuthed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<super::account::NoFields>,
) -> Result<Response, AppError> {
    let result = revoke_as_operator(&state.store, &op.operator, parse_id(&id)?, Some(&op.client))
        .await
        .map(|_| "Ended: nobody sees the organization through this grant any more.".to_owned());
    outcome(&state, &op, result).await
}

/// An operator inside one organization through an active grant of theirs.
#[derive(Clone)]
pub struct UnderGrant {
    grant: SupportGrant,
    scope: OrgScope,
    org_name: String,
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
    let mut tx = state.store.instance().await?;
    let Some(grant) = tx.active_support_grant(op.operator.id, org, Utc::now()).await? else {
        return Err(AppError::NotFound);
    };
    let org_name = tx.org(org).await?.map(|o| o.name).ok_or(AppError::NotFound)?;
    let scope = OrgScope::trusted(org);
    let mut tx = tx.into_tenant(scope).await?;
    tx.audit(burnrate_store::NewAuditEntry {
        actor: operator_actor(&op.operator),
        action: AuditAction::SupportAccess,
        target_type: Some("support_grant"),
        target_id: Some(grant.id.to_string()),
        details: json!({ "method": req.method().as_str(), "path": req.uri().path() }),
        ip: Some(op.client.ip.clone()),
        user_agent: op.client.user_agent.clone(),
    })
    .await?;
    tx.commit().await?;
    req.extensions_mut().insert(UnderGrant { grant, scope, org_name });
    Ok(next.run(req).await)
}

fn until(g: &UnderGrant) -> String {
    g.grant.expires_at.map(when).unwrap_or_default()
}

pub async fn org_overview(
    State(state): State<AppState>,
    Extension(g): Extension<UnderGrant>,
) -> Result<Response, AppError> {
    let mut tx = state.store.tenant(g.scope).await?;
    let sources = tx.sources().await?;
    let budgets = tx.budgets().await?;
    let members = tx.members(&state.vault).await?;
    tx.commit().await?;
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
        org_id: g.scope.org_id().to_string(),
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
    let mut tx = state.store.tenant(g.scope).await?;
    let entries = tx.audit_entries(200).await?;
    tx.commit().await?;
    let page = OperatorAuditPage {
        nav: None,
        org_id: g.scope.org_id().to_string(),
        org_name: g.org_name.clone(),
        until: until(&g),
        entries: entries.into_iter().map(AuditRow::from).collect(),
    };
    Ok(render(&page))
}

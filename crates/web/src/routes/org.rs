//! Pages inside an organization: overview, members, sessions, API keys, audit log, and the
//! placeholders of features still being built.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiKeyId, ApiScope, InvitationId, Role, UserId};
use chrono::Datelike;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use burnrate_app::spend::{SpendSummary, TopSpend, previous_month_to_date};

use super::account::NoFields;
use super::explore::link;
use super::{parse_id, see_other};
use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{
    ApiKeyRow, ApiKeysPage, InvitationRow, MemberRow, MembersPage, MoverRow, Nav, OverviewPage, SessionRow,
    SessionsPage, SpendRow, TopList, TopRow, render, when,
};
use crate::security::{CsrfForm, SESSION_COOKIE, clear_cookie};

pub async fn overview(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    let (members, admins) = state.app.members(&who.actor()).await?;
    let zone = super::console::reporting_zone(&state, who.scope).await?;
    let summary = state.app.spend_summary(&who.actor(), zone).await?;
    // The organization's today: its days are the ones the numbers count.
    let today = zone.date_of(chrono::Utc::now());
    let chart = spend_chart(&summary, today);
    let spend = summary
        .days
        .iter()
        .map(|d| SpendRow {
            day: d.day.to_string(),
            provider: d.provider.clone(),
            amount: format!("{} {}", d.amount.round_dp(2), d.currency),
            link: link("model", d.day, d.day + chrono::Duration::days(1), "day", &[("provider", &d.provider)]),
        })
        .collect();
    let month_to_date = summary
        .month_to_date
        .iter()
        .map(|m| {
            (format!("{} {}", m.amount.round_dp(2), m.currency), format!("{} {}", m.amount.normalize(), m.currency))
        })
        .collect();
    let month_start = today.with_day(1).unwrap_or(today);
    let (previous_start, previous_until) = previous_month_to_date(today);
    let compared = summary
        .month_to_date
        .iter()
        .filter_map(|m| {
            let before = summary.previous_month_to_date.iter().find(|p| p.currency == m.currency)?;
            Some(crate::pages::Compared {
                amount: format!("{} {}", before.amount.round_dp(2), before.currency),
                change: percent_change(m.amount, before.amount).map(|p| format!(" ({p})")).unwrap_or_default(),
                link: link("provider", previous_start, previous_until, "day", &[]),
            })
        })
        .collect();
    let forecast = summary
        .month_forecast
        .iter()
        .map(|f| format!("{} {} forecast for the whole month", f.amount.round_dp(2), f.currency))
        .collect();
    let tomorrow = today + chrono::Duration::days(1);
    let top = |what, id, dimension: &str, list: &[TopSpend]| TopList {
        what,
        id,
        rows: list
            .iter()
            .map(|t| TopRow {
                name: t.name.clone(),
                amount: format!("{} {}", t.amount.round_dp(2), t.currency),
                link: link(t.dimension, month_start, tomorrow, "day", &[(t.dimension, &t.name)]),
            })
            .collect(),
        all: link(dimension, month_start, tomorrow, "day", &[]),
    };
    let tops = vec![
        top("models", "top-models", "model", &summary.top_models),
        top("projects", "top-projects", "project", &summary.top_projects),
        top("API keys", "top-api-keys", "api_key", &summary.top_api_keys),
    ];
    let week = today - chrono::Duration::days(7);
    let movers = summary
        .movers
        .iter()
        .map(|m| {
            let change = m.last_7_days - m.previous_7_days;
            MoverRow {
                name: m.name.clone(),
                last: format!("{} {}", m.last_7_days.round_dp(2), m.currency),
                previous: format!("{} {}", m.previous_7_days.round_dp(2), m.currency),
                change: percent_change(m.last_7_days, m.previous_7_days).unwrap_or_else(|| "new".into()),
                rising: change.is_sign_positive(),
                link: link(m.dimension, week - chrono::Duration::days(7), today, "day", &[(m.dimension, &m.name)]),
            }
        })
        .collect();
    let mut statuses = super::budgets::statuses(&state, who.scope).await?;
    let alerts = super::budgets::alert_rows(&state, &who.actor(), &statuses, 5).await?;
    statuses.sort_by_key(|b| std::cmp::Reverse(b.percent_used()));
    let budgets = statuses
        .iter()
        .map(|s| {
            let (amount, currency) = (s.budget.amount.amount(), s.budget.amount.currency());
            crate::pages::BudgetGlance {
                name: s.budget.name.clone(),
                used: format!("{} of {amount} {currency} ({} %)", s.spend.round_dp(2), s.percent_used().round_dp(1)),
                forecast: format!("{} {currency}", s.forecast.round_dp(2)),
                at_risk: s.spend >= amount || s.forecast > amount,
            }
        })
        .collect();
    Ok(render(&OverviewPage {
        nav: Some(Nav::new(&who, "overview")),
        notices: state.app.support().recent_notices().await?.iter().map(notice_row).collect(),
        spend,
        month_to_date,
        chart,
        compared,
        forecast,
        tops,
        movers,
        alerts,
        budgets,
        explore: explore_links(today),
        zone: summary.zone.clone(),
        org_name: who.org_name.clone(),
        member_count: members.len(),
        is_admin: who.role.is_admin(),
        sole_admin: who.role.is_admin() && admins == 1,
    }))
}

/// The explorer views that produce the overview's numbers (the organization's days, as both count).
fn explore_links(today: chrono::NaiveDate) -> crate::pages::ExploreLinks {
    let month_start = today.with_day(1).unwrap_or(today);
    let tomorrow = today + chrono::Duration::days(1);
    crate::pages::ExploreLinks {
        month: link("provider", month_start, tomorrow, "day", &[]),
        days: link("provider", today - chrono::Duration::days(29), tomorrow, "day", &[]),
    }
}

/// `now` against `before` as a signed percentage ("+12.5 %", "−3.1 %"); `None` when there was
/// nothing before to compare with.
fn percent_change(now: rust_decimal::Decimal, before: rust_decimal::Decimal) -> Option<String> {
    (!before.is_zero()).then(|| {
        let percent = ((now - before) / before * rust_decimal::Decimal::ONE_HUNDRED).round_dp(1);
        if percent.is_sign_negative() { format!("−{} %", percent.abs()) } else { format!("+{percent} %") }
    })
}

/// The last 30 days' spend, stacked by provider, in the currency with the most of it (a note says
/// so where there are others).
fn spend_chart(summary: &SpendSummary, today: chrono::NaiveDate) -> Option<String> {
    let mut by_currency: std::collections::BTreeMap<&str, rust_decimal::Decimal> = Default::default();
    for d in &summary.days {
        *by_currency.entry(d.currency.as_str()).or_default() += d.amount;
    }
    let currency = by_currency.iter().max_by(|a, b| a.1.cmp(b.1)).map(|(c, _)| *c)?;
    let days: Vec<chrono::NaiveDate> = (0..30).rev().map(|back| today - chrono::Duration::days(back)).collect();
    let amounts = summary
        .days
        .iter()
        .filter(|d| d.currency == currency)
        .map(|d| ((d.day, d.provider.clone()), d.amount))
        .collect();
    let title = match by_currency.len() {
        1 => format!("Spend by day and provider, last 30 days ({currency})"),
        n => format!("Spend by day and provider, last 30 days ({currency}; {} other currencies in the table)", n - 1),
    };
    crate::chart::stacked("spend-chart", &title, &days, &amounts, currency, "day")
}

pub(crate) fn notice_row(n: &burnrate_app::support::Notice) -> crate::pages::NoticeRow {
    crate::pages::NoticeRow {
        id: n.id.to_string(),
        title: n.title.clone(),
        body: n.body.clone(),
        effective_on: n.effective_on.to_string(),
        published: when(n.published_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct NoticesView {
    notices: Vec<burnrate_app::support::NoticeView>,
}

/// Notices from the instance's operators (such as a change of sub-processors), published in the
/// last half year, newest first.
#[utoipa::path(get, path = "/notices", tag = "organization",
    responses((status = 200, body = NoticesView), super::openapi::Refusals))]
pub async fn api_notices(
    State(state): State<AppState>,
    caller: crate::auth::ApiCaller,
) -> Result<Response, crate::error::ApiError> {
    caller.require(ApiScope::Read)?;
    let notices =
        state.app.support().recent_notices().await?.iter().map(burnrate_app::support::NoticeView::from).collect();
    Ok(axum::Json(NoticesView { notices }).into_response())
}

/// The overview's numbers, exact, in the organization's reporting time zone: the last 30 days by
/// day and provider, the month to date per currency beside the same days of the month before and
/// the month-end forecast, this month's top models, projects and API keys, and the week's movers.
#[utoipa::path(get, path = "/spend", tag = "spend",
    responses((status = 200, body = SpendSummary), super::openapi::Refusals))]
pub async fn api_spend(
    State(state): State<AppState>,
    caller: crate::auth::ApiCaller,
) -> Result<Response, crate::error::ApiError> {
    caller.require(ApiScope::Read)?;
    let zone = super::console::reporting_zone(&state, caller.scope()).await?;
    Ok(axum::Json(state.app.spend_summary(&caller.actor(), zone).await?).into_response())
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn notice_for(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "invited" => "Invitation sent.",
            "role" => "Role changed.",
            "queued" => "The promotion waits for another admin's approval (Approvals).",
            "removed" => "Member removed.",
            "revoked" => "Invitation revoked.",
            _ => return None,
        }
        .into(),
    )
}

async fn members_page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let (members, _) = state.app.members(&who.actor()).await?;
    let invitations = if who.role.is_admin() { state.app.open_invitations(&who.actor()).await? } else { vec![] };
    let grantable = Role::ALL.iter().filter(|r| who.role.may_grant(**r)).map(|r| r.to_string()).collect();
    let page = MembersPage {
        nav: Some(Nav::new(who, "members")),
        csrf: who.csrf.clone(),
        members: members
            .into_iter()
            .map(|m| MemberRow {
                user_id: m.user_id.to_string(),
                email: m.email.to_string(),
                role: m.role.to_string(),
                since: when(m.since),
                is_you: m.user_id == who.user_id,
            })
            .collect(),
        invitations: invitations
            .into_iter()
            .map(|i| InvitationRow {
                id: i.id.to_string(),
                email: i.email.to_string(),
                role: i.role.to_string(),
                expires: when(i.expires_at),
            })
            .collect(),
        can_manage: who.role.is_admin(),
        grantable,
        notice,
        error,
    };
    let status =
        if page.error.is_some() { axum::http::StatusCode::UNPROCESSABLE_ENTITY } else { axum::http::StatusCode::OK };
    Ok((status, render(&page)).into_response())
}

pub async fn members(State(state): State<AppState>, who: Authed, Query(q): Query<Done>) -> Result<Response, AppError> {
    members_page(&state, &who, notice_for(q.done.as_deref()), None).await
}

#[derive(Deserialize)]
pub struct InviteForm {
    email: String,
    role: String,
}

pub async fn invite(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Result<Response, AppError> {
    let role: Role = form.role.parse().map_err(|e| AppError::Validation(format!("Role: {e}.")))?;
    match state.app.invite(&who.actor(), &form.email, role).await.map_err(AppError::from) {
        Ok(_) => Ok(see_other("/members?done=invited")),
        Err(AppError::Validation(m)) | Err(AppError::Conflict(m)) => members_page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn change_role(
    State(state): State<AppState>,
    who: Authed,
    Path(user): Path<String>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<Response, AppError> {
    let target: UserId = parse_id(&user)?;
    let role: Role = form.role.parse().map_err(|e| AppError::Validation(format!("Role: {e}.")))?;
    match state.app.change_role(&who.actor(), target, role).await.map_err(AppError::from) {
        Ok(burnrate_app::Submitted::Applied(_)) => Ok(see_other("/members?done=role")),
        Ok(burnrate_app::Submitted::Queued(_)) => Ok(see_other("/members?done=queued")),
        Err(AppError::Conflict(m)) => members_page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn remove_member(
    State(state): State<AppState>,
    who: Authed,
    Path(user): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let target: UserId = parse_id(&user)?;
    match state.app.remove_member(&who.actor(), target).await.map_err(AppError::from) {
        Ok(()) => Ok(see_other("/members?done=removed")),
        Err(AppError::Conflict(m)) => members_page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn revoke_invitation(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let id: InvitationId = parse_id(&id)?;
    state.app.revoke_invitation(&who.actor(), id).await?;
    Ok(see_other("/members?done=revoked"))
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

async fn api_keys_page(
    state: &AppState,
    who: &Authed,
    new_key: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let keys = state.app.api_keys(&who.actor()).await?;
    let status =
        if error.is_some() { axum::http::StatusCode::UNPROCESSABLE_ENTITY } else { axum::http::StatusCode::OK };
    let page = ApiKeysPage {
        nav: Some(Nav::new(who, "api-keys")),
        csrf: who.csrf.clone(),
        keys: keys
            .into_iter()
            .map(|k| ApiKeyRow {
                id: k.id.to_string(),
                name: k.name,
                prefix: k.prefix,
                scope: k.scope.to_string(),
                created: when(k.created_at),
                last_used: k.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                revoked: k.revoked_at.is_some(),
            })
            .collect(),
        new_key,
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn api_keys(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    who.require_admin()?;
    api_keys_page(&state, &who, None, None).await
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    name: String,
    scope: String,
}

pub async fn create_api_key(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(form): CsrfForm<NewKeyForm>,
) -> Result<Response, AppError> {
    who.require_admin()?;
    let scope: ApiScope =
        form.scope.parse().map_err(|_| AppError::Validation("Scope: expected read, write or admin.".into()))?;
    match state.app.create_api_key(&who.actor(), &form.name, scope).await.map_err(AppError::from) {
        Ok(new) => api_keys_page(&state, &who, Some(new.key), None).await,
        Err(AppError::Validation(m)) => api_keys_page(&state, &who, None, Some(m)).await,
        Err(e) => Err(e),
    }
}

pub async fn revoke_api_key(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let id: ApiKeyId = parse_id(&id)?;
    state.app.revoke_api_key(&who.actor(), id).await?;
    Ok(see_other("/api-keys"))
}

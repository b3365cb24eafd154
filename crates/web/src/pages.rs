//! What every page shares: the navigation bar, rendering, the message page, times as shown, and the
//! pieces more than one page lists (notices, alerts, support grants). Each page's own type lives
//! beside its handler, in `routes/<resource>/ui.rs`.
//!
//! Templates are escaped HTML (askama, `.html`); none of them holds inline script, so the CSP can
//! forbid it.

use std::collections::HashMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use burnrate_app::budgets::{AlertKind, BudgetStatus};
use burnrate_app::support::{GrantStatus, SupportGrant};
use burnrate_core::OperatorId;
use chrono::{DateTime, NaiveDate, Utc};

use crate::AppState;
use crate::auth::Authed;
use crate::error::AppError;

/// What the navigation bar of a logged-in page shows.
pub struct Nav {
    pub org_name: String,
    pub email: String,
    pub role: String,
    pub csrf: String,
    pub is_admin: bool,
    pub active: &'static str,
    /// Sources whose last sync failed, for the banner: "OpenAI prod and AWS".
    pub failing: Option<String>,
}

impl Nav {
    pub fn new(who: &Authed, active: &'static str) -> Self {
        Self {
            org_name: who.org_name.clone(),
            email: who.email.to_string(),
            role: who.role.to_string(),
            csrf: who.csrf.clone(),
            is_admin: who.role.is_admin(),
            active,
            failing: match who.failing_sources.as_slice() {
                [] => None,
                [one] => Some(one.clone()),
                [rest @ .., last] => Some(format!("{} and {last}", rest.join(", "))),
            },
        }
    }
}

/// Renders a page; a template error is a bug, logged and shown as a plain 500.
pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub nav: Option<Nav>,
    pub title: String,
    pub message: String,
    /// `notice`, `error` or `ok`.
    pub tone: &'static str,
    pub link: Option<(String, String)>,
}

impl MessagePage {
    pub fn new(title: &str, message: &str) -> Self {
        Self { nav: None, title: title.into(), message: message.into(), tone: "notice", link: None }
    }

    pub fn link(mut self, href: &str, label: &str) -> Self {
        self.link = Some((href.into(), label.into()));
        self
    }

    pub fn tone(mut self, tone: &'static str) -> Self {
        self.tone = tone;
        self
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let page = MessagePage::new(title, message).tone("error").link("/", "Back to burnrate");
    render(&page)
}

pub struct NoticeRow {
    pub id: String,
    pub title: String,
    pub body: String,
    pub effective_on: String,
    pub published: String,
}

/// UTC timestamps as people read them.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub struct AlertRow {
    pub when: String,
    pub budget: String,
    /// "reached 80 %", "forecast to reach 1200.00 USD", "unusual spend on 2026-11-18".
    pub what: String,
    pub spend: String,
}

/// A support grant as the organization's page and the operators' page list it.
pub struct GrantRow {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub issue: String,
    pub hours: i64,
    pub requested_by: String,
    pub requested: String,
    /// `active`, `awaiting_consent`, … with underscores as spaces.
    pub status: String,
    pub consent: String,
    pub approval: String,
    pub until: String,
    pub revoked_by: String,
    pub mine: bool,
    pub can_consent: bool,
    pub can_approve: bool,
    pub can_revoke: bool,
    pub can_open: bool,
}

/// The latest `limit` alerts, newest first, as the budgets page and the overview list them.
pub(crate) async fn alert_rows(
    state: &AppState,
    actor: &burnrate_app::Actor,
    budgets: &[BudgetStatus],
    limit: i64,
) -> Result<Vec<AlertRow>, AppError> {
    let names: std::collections::HashMap<burnrate_core::BudgetId, String> =
        budgets.iter().map(|s| (s.budget.id, s.budget.name.clone())).collect();
    // A stored amount that does not read is an error, never shown as 0.
    let amount = |text: &str| {
        text.parse::<rust_decimal::Decimal>()
            .map(|d| d.round_dp(2))
            .map_err(|e| AppError::internal(format!("alert amount {text:?}: {e}")))
    };
    state
        .app
        .alerts(actor, limit)
        .await?
        .into_iter()
        .map(|e| {
            Ok(AlertRow {
                when: when(e.fired_at),
                budget: names.get(&e.budget_id).cloned().unwrap_or_default(),
                what: match e.kind {
                    AlertKind::Threshold => format!("reached {} %", e.threshold),
                    AlertKind::Forecast => match e.forecast.as_deref() {
                        Some(forecast) => format!("forecast to reach {} {}", amount(forecast)?, e.currency),
                        None => "forecast to pass it".to_owned(),
                    },
                    AlertKind::Anomaly => format!("unusual spend on {}", e.period_start),
                },
                spend: format!("{} {}", amount(&e.spend)?, e.currency),
            })
        })
        .collect()
}

/// The address of an explorer view: by `group`, the days `from` to `to` (exclusive) by
/// `granularity`, filtered to each (dimension, value) of `filters`.
pub(crate) fn explore_link(
    group: &str,
    from: NaiveDate,
    to: NaiveDate,
    granularity: &str,
    filters: &[(&str, &str)],
) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("group", group)
        .append_pair("from", &from.to_string())
        .append_pair("to", &to.to_string())
        .append_pair("granularity", granularity);
    for (name, value) in filters {
        q.append_pair(name, value);
    }
    format!("/explore?{}", q.finish())
}

pub(crate) fn notice_row(n: &burnrate_app::support::Notice) -> NoticeRow {
    crate::pages::NoticeRow {
        id: n.id.to_string(),
        title: n.title.clone(),
        body: n.body.clone(),
        effective_on: n.effective_on.to_string(),
        published: when(n.published_at),
    }
}

/// Who looks at a grant, for which actions a row offers.
pub(crate) enum Viewer {
    Org,
    Operator(OperatorId),
}

pub(crate) fn grant_row(
    g: &SupportGrant,
    now: DateTime<Utc>,
    names: &HashMap<OperatorId, String>,
    org_name: String,
    viewer: &Viewer,
) -> GrantRow {
    let status = g.status(now);
    let name = |id: &OperatorId| names.get(id).cloned().unwrap_or_default();
    let consent = match (g.consented_at, g.declined_at) {
        (Some(at), _) => format!("consented {}", when(at)),
        (_, Some(at)) => format!("declined {}", when(at)),
        _ => String::new(),
    };
    let approval =
        g.approved_by.map(|by| format!("approved by {} {}", name(&by), g.approved_at.map(when).unwrap_or_default()));
    let live = status.is_waiting() || status == GrantStatus::Active;
    GrantRow {
        id: g.id.to_string(),
        org_id: g.org_id.to_string(),
        org_name,
        issue: g.issue.clone(),
        hours: g.duration.num_hours(),
        requested_by: name(&g.requested_by),
        requested: when(g.requested_at),
        status: status.as_str().replace('_', " "),
        consent,
        approval: approval.unwrap_or_default(),
        until: if status == GrantStatus::Active { g.expires_at.map(when).unwrap_or_default() } else { String::new() },
        revoked_by: g.revoked_by.clone().unwrap_or_default(),
        mine: matches!(viewer, Viewer::Operator(me) if *me == g.requested_by),
        can_consent: matches!(viewer, Viewer::Org)
            && matches!(status, GrantStatus::AwaitingBoth | GrantStatus::AwaitingConsent),
        can_approve: matches!(viewer, Viewer::Operator(me) if *me != g.requested_by)
            && matches!(status, GrantStatus::AwaitingBoth | GrantStatus::AwaitingApproval),
        can_revoke: live,
        can_open: matches!(viewer, Viewer::Operator(me) if *me == g.requested_by) && status == GrantStatus::Active,
    }
}

impl From<burnrate_app::audit::AuditRecord> for AuditRow {
    fn from(e: burnrate_app::audit::AuditRecord) -> Self {
        AuditRow {
            seq: e.seq,
            at: e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            actor: e.actor_label,
            action: e.action,
            target: match (e.target_type, e.target_id) {
                (Some(t), Some(id)) => format!("{t} {}", id.chars().take(8).collect::<String>()),
                _ => String::new(),
            },
            details: e.details,
            ip: e.ip.unwrap_or_default(),
        }
    }
}

pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub ip: String,
}

//! Page types, one per template. Templates are escaped HTML (askama, `.html`); none of them holds
//! inline script, so the CSP can forbid it.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::Authed;

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

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub nav: Option<Nav>,
    /// Recent notices from the instance's operators (S20).
    pub notices: Vec<NoticeRow>,
    pub spend: Vec<SpendRow>,
    /// (shown to the cent, exact) per currency.
    pub month_to_date: Vec<(String, String)>,
    /// Per currency: what the same days of the previous month spent.
    pub compared: Vec<Compared>,
    /// The month-end forecast, per currency.
    pub forecast: Vec<String>,
    /// This month's largest models, projects and API keys.
    pub tops: Vec<TopList>,
    /// The models whose spend moved most this week.
    pub movers: Vec<MoverRow>,
    /// The latest alerts.
    pub alerts: Vec<AlertRow>,
    /// Spend by day stacked by provider, as SVG, in the currency with the most spend.
    pub chart: Option<String>,
    /// The budgets, most used first.
    pub budgets: Vec<BudgetGlance>,
    /// The explorer views behind the numbers.
    pub explore: ExploreLinks,
    /// The organization's reporting time zone, whose days and months these are.
    pub zone: String,
    pub org_name: String,
    pub member_count: usize,
    pub is_admin: bool,
    pub sole_admin: bool,
}

/// The overview's largest of one kind this month.
pub struct TopList {
    /// "models", "projects", "API keys".
    pub what: &'static str,
    pub id: &'static str,
    pub rows: Vec<TopRow>,
    /// The explorer's month by this dimension.
    pub all: String,
}

/// One of the overview's largest: its name, spend and the explorer view of it.
pub struct TopRow {
    pub name: String,
    pub amount: String,
    pub link: String,
}

/// A model whose spend moved: the last seven complete days, the seven before, the change.
pub struct MoverRow {
    pub name: String,
    pub last: String,
    pub previous: String,
    /// "+35.2 %", "−12.0 %", or "new".
    pub change: String,
    pub rising: bool,
    pub link: String,
}

/// Explorer views behind the overview's numbers.
pub struct ExploreLinks {
    /// This month by provider: the month to date.
    pub month: String,
    /// The last 30 days by provider: the table and chart.
    pub days: String,
}

/// A budget on the overview: how much is used and where the period is heading.
pub struct BudgetGlance {
    pub name: String,
    /// "123.45 of 500 USD (24.7 %)".
    pub used: String,
    pub forecast: String,
    /// Spend or forecast past the budget.
    pub at_risk: bool,
}

#[derive(Template)]
#[template(path = "explore.html")]
pub struct ExplorePage {
    pub nav: Option<Nav>,
    pub dimensions: Vec<ExploreDimension>,
    pub from: String,
    pub to: String,
    pub granularity: String,
    /// The organization's reporting time zone: whose days these are.
    pub zone: String,
    pub chart: Option<String>,
    pub rows: Vec<ExploreRow>,
    /// The total per currency.
    pub totals: Vec<String>,
    /// The CSV of this view; `None` before a view was shown.
    pub csv: Option<String>,
    pub error: Option<String>,
}

/// A dimension in the explorer's form: grouped by, and the value it is filtered to.
pub struct ExploreDimension {
    pub name: &'static str,
    pub label: &'static str,
    pub grouped: bool,
    pub filter: String,
}

pub struct ExploreRow {
    pub period: String,
    pub group: String,
    pub amount: String,
}

pub struct NoticeRow {
    pub id: String,
    pub title: String,
    pub body: String,
    pub effective_on: String,
    pub published: String,
}

pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub since: String,
    pub is_you: bool,
}

pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "members.html")]
pub struct MembersPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub members: Vec<MemberRow>,
    pub invitations: Vec<InvitationRow>,
    pub can_manage: bool,
    pub grantable: Vec<String>,
    pub notice: Option<String>,
    pub error: Option<String>,
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

pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scope: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
pub struct ApiKeysPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub keys: Vec<ApiKeyRow>,
    pub new_key: Option<String>,
    pub error: Option<String>,
}

pub struct SqlCredentialRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "sql.html")]
pub struct SqlPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub is_admin: bool,
    pub endpoint: Option<String>,
    pub credentials: Vec<SqlCredentialRow>,
    /// The new credential waits for another admin's approval.
    pub new_waits: bool,
    pub new_user: Option<String>,
    pub new_password: Option<String>,
    pub new_psql: Option<String>,
    pub error: Option<String>,
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

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub nav: Option<Nav>,
    pub entries: Vec<AuditRow>,
    /// The filters as typed.
    pub q: crate::routes::audit::AuditQuery,
    /// Some filter is set.
    pub filtered: bool,
    /// The CSV export of what the filters select.
    pub export: String,
    pub error: Option<String>,
}

/// UTC timestamps as people read them.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub struct SourceRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub hint: String,
    pub paused: bool,
    pub synced: bool,
    pub error: Option<String>,
    pub last_success: String,
    pub config: burnrate_app::sources::SourceConfig,
    pub progress: Option<String>,
    /// The last day of data per table.
    pub fresh: String,
    /// A prepaid account's credits left, in words: "USD 62.5688 credits left (read 2026-12-01 15:00 UTC)".
    pub credits: Option<String>,
    /// What the last successful sync did.
    pub summary: Option<String>,
}

/// A connected database, read at query time.
pub struct DatabaseRow {
    pub id: String,
    pub name: String,
    /// "PostgreSQL" or "MySQL / MariaDB".
    pub kind: String,
    /// `ext_<name>`: where its tables appear in SQL.
    pub schema: String,
    /// `host:port/database as user`.
    pub address: String,
    pub hint: String,
}

#[derive(Template)]
#[template(path = "sources.html")]
pub struct SourcesPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub sources: Vec<SourceRow>,
    pub databases: Vec<DatabaseRow>,
    pub can_manage: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

pub struct SpendRow {
    pub day: String,
    pub provider: String,
    pub amount: String,
    /// The explorer: that day's models of that provider.
    pub link: String,
}

/// The same days of the previous month: "1100.00 USD", " (+12.2 %)", and its explorer view.
pub struct Compared {
    pub amount: String,
    pub change: String,
    pub link: String,
}

pub struct ConsoleColumn {
    pub name: String,
    pub kind: String,
}

pub struct ConsoleTable {
    /// `costs`, or `ext_shop.teams` outside the default schema.
    pub name: String,
    pub columns: Vec<ConsoleColumn>,
}

/// One page of a query's rows.
pub struct ConsoleResult {
    pub columns: Vec<String>,
    /// Values as text; `None` is NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// Row numbers (from 1) of the first and last row shown.
    pub first: usize,
    pub last: usize,
    pub page: usize,
    pub more: bool,
    pub millis: u128,
}

#[derive(Template)]
#[template(path = "console.html")]
pub struct ConsolePage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub tables: Vec<ConsoleTable>,
    pub sql: String,
    pub result: Option<ConsoleResult>,
    pub error: Option<String>,
}

pub struct ApprovalRow {
    pub id: String,
    /// The change in words.
    pub text: String,
    /// Values before and after, as JSON (no secrets).
    pub before: String,
    pub after: String,
    /// pending, approved, rejected, failed or expired.
    pub state: String,
    pub requested: String,
    pub expires: String,
    /// Asked for by the member looking: they cannot decide it.
    pub mine: bool,
    /// Still waiting for a decision.
    pub open: bool,
    pub comment: String,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "approvals.html")]
pub struct ApprovalsPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub requests: Vec<ApprovalRow>,
    /// The organization has one admin: sensitive changes apply at once.
    pub sole_admin: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub slack: bool,
    /// The event types it takes, in words.
    pub events: String,
    pub created: String,
    /// The latest deliveries, newest first.
    pub recent: Vec<DeliveryRow>,
    /// Deliveries whose every attempt failed: the dead-letter list.
    pub dead: Vec<DeliveryRow>,
}

pub struct DeliveryRow {
    pub id: String,
    pub event_type: String,
    pub state: String,
    pub attempts: u32,
    pub created: String,
    /// The last attempt: `204 in 12 ms`, or why it failed.
    pub last: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
pub struct WebhooksPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub can_manage: bool,
    pub webhooks: Vec<WebhookRow>,
    /// The signing secret of the destination just added, shown this once.
    pub new_secret: Option<String>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

pub struct AlertRow {
    pub when: String,
    pub budget: String,
    /// "reached 80 %", "forecast to reach 1200.00 USD", "unusual spend on 2026-11-18".
    pub what: String,
    pub spend: String,
}

pub struct BudgetRow {
    pub id: String,
    pub name: String,
    /// `1500.10 USD`.
    pub amount: String,
    pub period: String,
    pub scope: String,
    pub thresholds: String,
    pub forecast: bool,
    /// Spend this period, `412.50 USD`.
    pub spend: String,
    /// The period-end forecast.
    pub forecast_spend: String,
    pub percent_used: String,
    pub over: bool,
    /// The first day of the next period, and the zone it begins in.
    pub resets: String,
    /// In-scope spend billed in other currencies (not counted), or empty.
    pub other_currencies: String,
}

#[derive(Template)]
#[template(path = "budgets.html")]
pub struct BudgetsPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub can_manage: bool,
    /// The organization's reporting time zone.
    pub zone: String,
    pub budgets: Vec<BudgetRow>,
    /// The latest alerts, newest first.
    pub alerts: Vec<AlertRow>,
    /// The add form's values: defaults, or what was typed when it was refused.
    pub form: crate::routes::budgets::NewBudgetForm,
    pub notice: Option<String>,
    pub error: Option<String>,
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

#[derive(Template)]
#[template(path = "support.html")]
pub struct SupportPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub grants: Vec<GrantRow>,
    pub is_admin: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

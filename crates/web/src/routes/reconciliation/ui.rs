//! The reconciliation page: each day's bill against its priced usage, the gaps first, with what
//! each kind of gap means and the models no rate prices.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::reconciliation::{GapKind, Row};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{Nav, render};

#[derive(Default, Deserialize)]
pub struct Shown {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Every row, not only the gaps.
    #[serde(default)]
    all: Option<String>,
}

pub struct GapRow {
    pub day: String,
    pub provider: String,
    pub model: String,
    pub project: String,
    pub billed: String,
    pub computed: String,
    pub difference: String,
    pub coverage: String,
    pub tokens: String,
    /// `none`, `quantity`, `price`, `unpriced`.
    pub kind: &'static str,
    pub why: String,
}

fn usd(d: Option<Decimal>) -> String {
    d.map(|d| format!("{} USD", d.round_dp(2))).unwrap_or_else(|| "—".into())
}

/// What made the row's gap kind, in words.
fn why(r: &Row) -> String {
    match r.gap_kind {
        GapKind::None => "Agrees within the tolerance.".into(),
        GapKind::Unpriced if r.unpriced_rows == r.usage_rows => "No rate: its cost is unknown, not zero.".into(),
        GapKind::Unpriced => format!("{} of {} usage rows have no rate.", r.unpriced_rows, r.usage_rows),
        GapKind::Quantity if r.billed.is_none() => "Usage with no bill for it.".into(),
        GapKind::Quantity if r.usage_rows == 0 => "Billed, with no usage reported.".into(),
        GapKind::Quantity => match (r.billed_tokens, r.usage_tokens) {
            (Some(b), Some(u)) => format!("Billed for {b} tokens, usage reports {u}."),
            _ => "The quantities differ.".into(),
        },
        GapKind::Price if r.billed_tokens.is_some() => "The same tokens are billed at other rates.".into(),
        GapKind::Price => "Billed at other rates than the price book's (the bill carries no quantities).".into(),
    }
}

pub async fn reconciliation_page(
    State(state): State<AppState>,
    who: Authed,
    Query(shown): Query<Shown>,
) -> Result<Response, AppError> {
    let given = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let (from, to) = (given(&shown.from), given(&shown.to));
    let all = shown.all.is_some();
    let settings = state.app.org_settings(&who.actor()).await?;
    let mut page = ReconciliationPage {
        nav: Some(Nav::new(&who, "reconciliation")),
        from: shown.from.clone(),
        to: shown.to.clone(),
        all,
        tolerance: settings.reconciliation_tolerance_percent,
        error: None,
        counts: Vec::new(),
        rows: Vec::new(),
        agreeing: 0,
        unpriced_models: Vec::new(),
        billed: String::new(),
        computed: String::new(),
    };
    let found = match state.app.reconciliation(&who.actor(), from.as_deref(), to.as_deref()).await {
        Ok(found) => found,
        Err(burnrate_app::Error::Invalid { message, .. }) => {
            page.error = Some(message);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    page.from = found.from.to_string();
    page.to = found.to.to_string();
    let sum = |side: fn(&Row) -> Option<Decimal>| found.rows.iter().filter_map(side).sum::<Decimal>();
    page.billed = usd(Some(sum(|r| r.billed)));
    page.computed = usd(Some(sum(|r| r.computed)));
    for kind in [GapKind::Quantity, GapKind::Price, GapKind::Unpriced, GapKind::None] {
        let n = found.rows.iter().filter(|r| r.gap_kind == kind).count();
        page.counts.push((kind.as_str(), n));
    }
    page.agreeing = found.rows.iter().filter(|r| r.gap_kind == GapKind::None).count();
    page.unpriced_models = found.unpriced_models.iter().map(|(p, m)| format!("{p} {m}")).collect();
    // Gaps by kind — quantity, price, unpriced, then the agreed —, the newest day first in each.
    let rank =
        |k: GapKind| [GapKind::Quantity, GapKind::Price, GapKind::Unpriced, GapKind::None].iter().position(|x| *x == k);
    let mut rows: Vec<&Row> = found.rows.iter().filter(|r| all || r.gap_kind != GapKind::None).collect();
    rows.sort_by(|a, b| {
        (rank(a.gap_kind), std::cmp::Reverse(a.day), &a.provider, &a.model, &a.project).cmp(&(
            rank(b.gap_kind),
            std::cmp::Reverse(b.day),
            &b.provider,
            &b.model,
            &b.project,
        ))
    });
    page.rows = rows
        .into_iter()
        .map(|r| GapRow {
            day: r.day.to_string(),
            provider: r.provider.clone(),
            model: r.model.clone(),
            project: r.project.clone().unwrap_or_default(),
            billed: usd(r.billed),
            computed: usd(r.computed),
            difference: usd(r.difference),
            coverage: r
                .coverage
                .map(|c| format!("{} %", (c * Decimal::ONE_HUNDRED).round_dp(2).normalize()))
                .unwrap_or_default(),
            tokens: match (r.billed_tokens, r.usage_tokens) {
                (Some(b), Some(u)) => format!("{b} / {u}"),
                (None, Some(u)) => format!("— / {u}"),
                (Some(b), None) => format!("{b} / —"),
                (None, None) => String::new(),
            },
            kind: r.gap_kind.as_str(),
            why: why(r),
        })
        .collect();
    Ok(render(&page).into_response())
}

#[derive(Template)]
#[template(path = "reconciliation.html")]
pub struct ReconciliationPage {
    pub nav: Option<Nav>,
    pub from: String,
    pub to: String,
    pub all: bool,
    pub tolerance: String,
    pub error: Option<String>,
    /// Rows of each gap kind.
    pub counts: Vec<(&'static str, usize)>,
    pub rows: Vec<GapRow>,
    pub agreeing: usize,
    pub unpriced_models: Vec<String>,
    pub billed: String,
    pub computed: String,
}

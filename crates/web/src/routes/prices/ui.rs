//! The prices page: the catalogue that prices the organization's usage, its own prices, and
//! (for admins) a form to set one — every change a form post behind the CSRF check.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::Submitted;
use burnrate_app::prices::NewOverride;
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Authed, Caller};
use crate::error::AppError;
use crate::pages::{Nav, render};
use crate::routes::see_other;
use crate::security::{CsrfForm, NoFields};

async fn page(
    state: &AppState,
    who: &Authed,
    notice: Option<String>,
    error: Option<String>,
    typed: Option<OverrideForm>,
) -> Result<Response, AppError> {
    let current = state.app.prices().current().await?;
    let catalogue = &current.catalogue;
    let origin = match current.imported_at {
        Some(at) => format!("imported by the operator on {}", at.date_naive()),
        None => "shipped with burnrate".to_owned(),
    };
    let overrides = state.app.price_overrides(&who.actor()).await?;
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = PricesPage {
        nav: Some(Nav::new(who, "prices")),
        csrf: who.csrf.clone(),
        can_manage: who.role().is_admin(),
        catalogue: format!("{} {}", catalogue.source, catalogue.version),
        origin,
        providers: catalogue.providers().iter().map(|p| p.id.clone()).collect(),
        overrides: overrides
            .iter()
            .map(|o| OverrideRow {
                id: o.id.to_string(),
                what: format!("{}/{}", o.provider, o.model),
                days: match o.effective_to {
                    Some(to) => format!("{} through {to}", o.effective_from),
                    None => format!("from {}", o.effective_from),
                },
                price: match (&o.discount_percent, &o.rates) {
                    (Some(p), _) => format!("{p}% off the catalogue"),
                    (_, Some(r)) => rates_text(r),
                    _ => String::new(),
                },
                note: o.note.clone(),
            })
            .collect(),
        form: typed.unwrap_or_default(),
        notice,
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// `{"input_mtok":"2"}` as `input $2 / MTok`.
fn rates_text(json: &str) -> String {
    let Ok(rates) = serde_json::from_str::<std::collections::BTreeMap<String, String>>(json) else {
        return format!("rates that do not read: {json}");
    };
    rates
        .iter()
        .map(|(k, v)| {
            format!(
                "{} ${v} / {}",
                k.trim_end_matches("_mtok").replace('_', " "),
                if k.ends_with("_mtok") { "MTok" } else { "unit" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn prices_page(State(state): State<AppState>, who: Authed) -> Result<Response, AppError> {
    page(&state, &who, None, None, None).await
}

/// The form as typed: a discount, or rates per million tokens.
#[derive(Clone, Default, Deserialize)]
pub struct OverrideForm {
    pub(crate) provider: String,
    pub(crate) model: String,
    pub(crate) effective_from: String,
    #[serde(default)]
    pub(crate) effective_to: String,
    #[serde(default)]
    pub(crate) discount_percent: String,
    #[serde(default)]
    pub(crate) input_mtok: String,
    #[serde(default)]
    pub(crate) cache_read_mtok: String,
    #[serde(default)]
    pub(crate) output_mtok: String,
    #[serde(default)]
    pub(crate) note: String,
}

pub async fn create_form(
    State(state): State<AppState>,
    who: Authed,
    CsrfForm(f): CsrfForm<OverrideForm>,
) -> Result<Response, AppError> {
    let given = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let rates: std::collections::BTreeMap<String, String> =
        [("input_mtok", &f.input_mtok), ("cache_read_mtok", &f.cache_read_mtok), ("output_mtok", &f.output_mtok)]
            .into_iter()
            .filter_map(|(k, v)| given(v).map(|v| (k.to_owned(), v)))
            .collect();
    let new = NewOverride {
        provider: f.provider.clone(),
        model: f.model.clone(),
        effective_from: f.effective_from.clone(),
        effective_to: given(&f.effective_to),
        discount_percent: given(&f.discount_percent),
        rates: (!rates.is_empty()).then_some(rates),
        note: given(&f.note),
    };
    match state.app.add_price_override(&who.actor(), &new).await.map_err(AppError::from) {
        Ok(Submitted::Applied(_)) => {
            page(
                &state,
                &who,
                Some(format!("Your price for {}/{} is set.", f.provider.trim(), f.model.trim())),
                None,
                None,
            )
            .await
        }
        Ok(Submitted::Queued(_)) => {
            page(&state, &who, Some("Sent to another admin for approval.".to_owned()), None, None).await
        }
        Err(AppError::Validation(m)) | Err(AppError::Conflict(m)) => page(&state, &who, None, Some(m), Some(f)).await,
        Err(e) => Err(e),
    }
}

pub async fn delete_form(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::from(burnrate_app::Error::NotFound))?;
    match state.app.remove_price_override(&who.actor(), id).await? {
        Submitted::Queued(_) => {
            page(&state, &who, Some("Its removal was sent to another admin for approval.".to_owned()), None, None).await
        }
        Submitted::Applied(_) => Ok(see_other("/prices")),
    }
}

pub struct OverrideRow {
    pub id: String,
    /// `anthropic/claude-sonnet-4-5`.
    pub what: String,
    pub days: String,
    pub price: String,
    pub note: String,
}

#[derive(Template)]
#[template(path = "prices.html")]
pub struct PricesPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub can_manage: bool,
    /// `genai-prices 0.2.3`.
    pub catalogue: String,
    pub origin: String,
    pub providers: Vec<String>,
    pub overrides: Vec<OverrideRow>,
    pub form: OverrideForm,
    pub notice: Option<String>,
    pub error: Option<String>,
}

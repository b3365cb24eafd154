//! The organization's own prices through the JSON API.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_app::Submitted;
use burnrate_app::prices::{NewOverride, PriceOverrideRecord, RepriceInput};
use burnrate_core::ApiScope;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::{ApiJson, BodyRefusals, Missing, QueuedView, Refusals, queued};
use crate::auth::{ApiCaller, Caller};
use crate::error::ApiError;

/// One of the organization's own prices.
#[derive(Serialize, ToSchema)]
pub struct OverrideView {
    id: uuid::Uuid,
    provider: String,
    model: String,
    effective_from: chrono::NaiveDate,
    /// The last day it holds; open-ended when null.
    effective_to: Option<chrono::NaiveDate>,
    /// Percent off the catalogue's price, decimal text; null when it sets rates.
    discount_percent: Option<String>,
    /// Rates by price key, decimal text; null when it is a discount.
    #[schema(value_type = Option<Object>)]
    rates: Option<serde_json::Value>,
    note: String,
    created_by: uuid::Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct OverridesView {
    overrides: Vec<OverrideView>,
}

/// The organization's own prices, oldest first.
#[utoipa::path(get, path = "/prices/overrides", tag = "prices", responses((status = 200, body = OverridesView), Refusals))]
pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let list = state.app.price_overrides(&caller.actor()).await?;
    Ok(Json(OverridesView { overrides: list.iter().map(shown).collect() }).into_response())
}

/// Sets prices of the organization's own for a model (admins): a discount in percent or rates
/// by price key, from a day (through a day). Sent for approval where the organization asks for
/// it (`202`); usage synced in its days is priced with it.
#[utoipa::path(post, path = "/prices/overrides", tag = "prices", request_body = NewOverride,
    responses((status = 201, body = OverrideView), (status = 202, body = QueuedView), Refusals, BodyRefusals))]
pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewOverride>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let actor = caller.actor();
    match state.app.add_price_override(&actor, &body).await? {
        Submitted::Queued(request) => Ok(queued(&state, request, crate::api::Nothing {})),
        Submitted::Applied(id) => {
            let list = state.app.price_overrides(&actor).await?;
            let made = list.iter().find(|o| o.id == id).map(shown);
            Ok((StatusCode::CREATED, Json(made)).into_response())
        }
    }
}

/// Removes one of the organization's own prices (admins); sent for approval where the
/// organization asks for it (`202`), as setting one is.
#[utoipa::path(delete, path = "/prices/overrides/{id}", tag = "prices",
    params(("id" = uuid::Uuid, Path, description = "The override's id")),
    responses((status = 204, description = "Removed"), (status = 202, body = QueuedView), Refusals, Missing))]
pub async fn api_delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id: uuid::Uuid = id.parse().map_err(|_| ApiError::from(burnrate_app::Error::NotFound))?;
    match state.app.remove_price_override(&caller.actor(), id).await? {
        Submitted::Queued(request) => Ok(queued(&state, request, crate::api::Nothing {})),
        Submitted::Applied(_) => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// What pricing synced usage again changes (or changed).
#[derive(Serialize, ToSchema)]
pub struct RepricedView {
    /// The whole months priced again: `from` up to (not including) `until`.
    from: chrono::NaiveDate,
    until: chrono::NaiveDate,
    rows: usize,
    changed: usize,
    /// Computed cost in USD before and after, of the rows priced both times, decimal text.
    before: String,
    after: String,
    difference: String,
    newly_priced: usize,
    newly_unpriced: usize,
    models: Vec<ModelDifference>,
    /// False for a dry run: nothing was written.
    applied: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ModelDifference {
    provider: String,
    model: String,
    before: String,
    after: String,
    difference: String,
}

/// Prices the organization's synced usage of the months from `from` to `to` again at the
/// current rates — the catalogue and its own prices — and shows the difference (admins). A dry
/// run by default; `"dry_run": false` writes the new prices, audited.
#[utoipa::path(post, path = "/prices/reprice", tag = "prices", request_body = RepriceInput,
    responses((status = 200, body = RepricedView), Refusals, BodyRefusals))]
pub async fn api_reprice(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<RepriceInput>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let r = state.app.reprice(&caller.actor(), &body).await?;
    let text = |d: rust_decimal::Decimal| d.normalize().to_string();
    Ok(Json(RepricedView {
        from: r.from,
        until: r.until,
        rows: r.rows,
        changed: r.changed,
        before: text(r.before),
        after: text(r.after),
        difference: text(r.after - r.before),
        newly_priced: r.newly_priced,
        newly_unpriced: r.newly_unpriced,
        models: r
            .models
            .into_iter()
            .map(|(provider, model, before, after)| ModelDifference {
                provider,
                model,
                before: text(before),
                after: text(after),
                difference: text(after - before),
            })
            .collect(),
        applied: r.applied,
    })
    .into_response())
}

fn shown(o: &PriceOverrideRecord) -> OverrideView {
    OverrideView {
        id: o.id,
        provider: o.provider.clone(),
        model: o.model.clone(),
        effective_from: o.effective_from,
        effective_to: o.effective_to,
        discount_percent: o.discount_percent.clone(),
        rates: o.rates.as_deref().and_then(|r| serde_json::from_str(r).ok()),
        note: o.note.clone(),
        created_by: o.created_by,
        created_at: o.created_at,
    }
}

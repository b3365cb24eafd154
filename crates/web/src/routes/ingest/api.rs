//! Ingest keys through the JSON API: `/api/v1/ingest-keys`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiScope, IngestKeyId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::api::{ApiJson, BodyRefusals, Missing, Refusals};
use crate::auth::{ApiCaller, Caller as _};
use crate::error::ApiError;
use crate::routes::parse_id;

#[derive(Serialize, ToSchema)]
pub struct IngestKeyView {
    id: Uuid,
    name: String,
    /// The first characters of the key, to tell keys apart.
    prefix: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct IngestKeysView {
    ingest_keys: Vec<IngestKeyView>,
}

#[utoipa::path(get, path = "/ingest-keys", tag = "ingest keys", responses((status = 200, body = IngestKeysView), Refusals))]
pub async fn ingest_keys(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let keys = state.app.ingest_keys(&caller.actor()).await?;
    let ingest_keys = keys
        .into_iter()
        .map(|k| IngestKeyView {
            id: k.id.as_uuid(),
            name: k.name,
            prefix: k.prefix,
            created_by: k.created_by.as_uuid(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        })
        .collect();
    Ok(Json(IngestKeysView { ingest_keys }).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct NewIngestKeyBody {
    name: String,
}

/// A new ingest key: `key` is shown this once and never again. Exporters send it as
/// `Authorization: Bearer <key>` to the traces receiver.
#[derive(Serialize, ToSchema)]
pub struct NewIngestKeyView {
    id: Uuid,
    key: String,
    prefix: String,
}

#[utoipa::path(post, path = "/ingest-keys", tag = "ingest keys", request_body = NewIngestKeyBody,
    responses((status = 201, body = NewIngestKeyView), Refusals, BodyRefusals))]
pub async fn create_ingest_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewIngestKeyBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let new = state.app.create_ingest_key(&caller.actor(), &body.name).await?;
    let view = NewIngestKeyView { id: new.id.as_uuid(), key: new.key, prefix: new.prefix };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(delete, path = "/ingest-keys/{id}", tag = "ingest keys",
    params(("id" = Uuid, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked: exports with it are refused at once"), Refusals, Missing))]
pub async fn revoke_ingest_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id: IngestKeyId = parse_id(&id)?;
    state.app.revoke_ingest_key(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

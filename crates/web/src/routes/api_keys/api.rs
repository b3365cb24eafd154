//! The API keys through the JSON API: `/api/v1/api-keys`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::{ApiKeyId, ApiScope};
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
pub struct ApiKeyView {
    id: Uuid,
    name: String,
    /// The first characters of the key, to tell keys apart.
    prefix: String,
    /// read, write or admin.
    scope: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeysView {
    api_keys: Vec<ApiKeyView>,
}

#[utoipa::path(get, path = "/api-keys", tag = "api keys", responses((status = 200, body = ApiKeysView), Refusals))]
pub async fn api_keys(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    // Credentials' metadata is for admins, as on the API keys page.
    caller.require(ApiScope::Admin)?;
    let keys = state.app.api_keys(&caller.actor()).await?;
    let api_keys = keys
        .into_iter()
        .map(|k| ApiKeyView {
            id: k.id.as_uuid(),
            name: k.name,
            prefix: k.prefix,
            scope: k.scope.to_string(),
            created_by: k.created_by.as_uuid(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        })
        .collect();
    Ok(Json(ApiKeysView { api_keys }).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct NewKeyBody {
    name: String,
    #[schema(value_type = String, example = "read")]
    scope: ApiScope,
}

/// A new key: `key` is shown this once and never again.
#[derive(Serialize, ToSchema)]
pub struct NewKeyView {
    id: Uuid,
    key: String,
    prefix: String,
    scope: String,
}

#[utoipa::path(post, path = "/api-keys", tag = "api keys", request_body = NewKeyBody,
    responses((status = 201, body = NewKeyView), Refusals, BodyRefusals))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let new = state.app.create_api_key(&caller.actor(), &body.name, body.scope).await?;
    let view = NewKeyView { id: new.id.as_uuid(), key: new.key, prefix: new.prefix, scope: body.scope.to_string() };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api keys",
    params(("id" = Uuid, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked: the key stops working at once"), Refusals, Missing))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let id: ApiKeyId = parse_id(&id)?;
    state.app.revoke_api_key(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

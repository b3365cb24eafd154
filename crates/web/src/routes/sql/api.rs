//! The SQL credentials through the JSON API: `/api/v1/sql-credentials`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burnrate_core::ApiScope;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{create, revoke};
use crate::AppState;
use crate::api::{ApiJson, BodyRefusals, Missing, Queued, Refusals, queued};
use crate::auth::{ApiCaller, Caller};
use crate::error::ApiError;
use crate::routes::parse_id;

/// A SQL credential: its id is also the Postgres user name.
#[derive(Serialize, ToSchema)]
pub struct SqlCredentialView {
    id: String,
    /// The user name to log in with (the id).
    user: String,
    name: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct SqlCredentialsView {
    sql_credentials: Vec<SqlCredentialView>,
}

#[utoipa::path(get, path = "/sql-credentials", tag = "sql", responses((status = 200, body = SqlCredentialsView), Refusals))]
pub async fn api_list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let list = state.app.sql_credentials(&caller.actor()).await?;
    let sql_credentials = list
        .into_iter()
        .map(|c| SqlCredentialView {
            id: c.id.to_string(),
            user: c.id.to_string(),
            name: c.name,
            created_by: c.created_by.as_uuid(),
            created_at: c.created_at,
            last_used_at: c.last_used_at,
            revoked_at: c.revoked_at,
        })
        .collect();
    Ok(Json(SqlCredentialsView { sql_credentials }).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct NewCredentialBody {
    name: String,
}

/// A new credential: the password is shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewCredentialView {
    id: String,
    user: String,
    password: String,
    /// `burnrate`.
    database: &'static str,
    /// A `postgresql://` URL to paste, when the instance knows its Postgres address.
    connection_string: Option<String>,
    /// A ready-to-paste `psql` command line.
    psql: Option<String>,
}

/// Makes a SQL credential (admins). Where the organization asks for approval, it logs in only
/// once another admin approves (`202`; the password is shown now, once, all the same).
#[utoipa::path(post, path = "/sql-credentials", tag = "sql", request_body = NewCredentialBody,
    responses((status = 201, body = NewCredentialView), (status = 202, body = Queued<NewCredentialView>), Refusals, BodyRefusals))]
pub async fn api_create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewCredentialBody>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    let new = create(&state, &caller, &body.name).await?;
    let body = NewCredentialView {
        id: new.id.to_string(),
        user: new.id.to_string(),
        password: new.password.clone(),
        database: "burnrate",
        connection_string: (!new.url.is_empty()).then(|| new.url.clone()),
        psql: (!new.psql.is_empty()).then(|| new.psql.clone()),
    };
    // Shown now, once; it logs in from the moment another admin approves it.
    Ok(match new.approval {
        Some(request) => queued(&state, request, body),
        None => (StatusCode::CREATED, Json(body)).into_response(),
    })
}

#[utoipa::path(delete, path = "/sql-credentials/{id}", tag = "sql",
    params(("id" = String, Path, description = "The credential's id (its user name, brs_…)")),
    responses((status = 204, description = "Revoked; its live sessions close"), Refusals, Missing))]
pub async fn api_revoke(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Admin)?;
    revoke(&state, &caller, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

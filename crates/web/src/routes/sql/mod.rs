//! SQL credentials (S11): generated logins for psql and BI tools on the Postgres wire endpoint,
//! shown once, listed with who made them and when they were last used, revocable.

mod api;
mod ui;

use axum::Router;
use axum::routing::{get, post};
use burnrate_core::SqlCredentialId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;

/// A credential as it is handed over, once.
pub struct NewCredential {
    pub id: SqlCredentialId,
    /// Waiting for another admin's approval: it works once approved.
    pub approval: Option<uuid::Uuid>,
    pub password: String,
    /// `postgresql://user:password@host:port/burnrate[?sslmode=require]`.
    pub url: String,
    /// The same as a ready-to-paste psql command.
    pub psql: String,
}

/// How clients reach the endpoint, as configured; `None` when the instance has no endpoint.
fn endpoint(state: &AppState) -> Option<&crate::config::PgEndpoint> {
    state.config.pg_endpoint.as_ref()
}

pub async fn create(state: &AppState, caller: &impl Caller, name: &str) -> Result<NewCredential, AppError> {
    let burnrate_app::sql_access::NewSqlCredential { id, password, approval } =
        state.app.create_sql_credential(&caller.actor(), name).await?;
    let (url, psql) = match endpoint(state) {
        Some(e) => {
            let url = format!(
                "postgresql://{id}:{password}@{}/burnrate{}",
                e.address,
                if e.tls { "?sslmode=require" } else { "" }
            );
            let psql = format!("psql '{url}'");
            (url, psql)
        }
        None => (String::new(), String::new()),
    };
    Ok(NewCredential { id, approval, password, url, psql })
}

pub async fn revoke(state: &AppState, caller: &impl Caller, id: SqlCredentialId) -> Result<(), AppError> {
    Ok(state.app.revoke_sql_credential(&caller.actor(), id).await?)
}

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route("/sql", get(ui::sql_page))
        .route("/sql/credentials", post(ui::create_form))
        .route("/sql/credentials/{id}/revoke", post(ui::revoke_form))
}

/// The JSON endpoints under `/api/v1`, each with its entry in the OpenAPI document.
pub(super) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(api::api_list, api::api_create)).routes(routes!(api::api_revoke))
}

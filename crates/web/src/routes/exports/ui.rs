//! The exports pages: server-rendered, every change a form post behind the CSRF check.

use axum::extract::{Query, State};
use axum::response::Response;

use super::{ExportQuery, export};
use crate::AppState;
use crate::auth::Authed;
use crate::error::AppError;

/// The overview's export form.
pub async fn download(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<ExportQuery>,
) -> Result<Response, AppError> {
    let label = who.email.as_str().to_owned();
    export(&state, &who, &label, &q).await
}

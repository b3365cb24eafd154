//! What every JSON endpoint shares: the OpenAPI document of `/api/v1` (S12), served at
//! `/api/v1/openapi.json`; the body and query extractors that answer in the API's error shape; the
//! refusals each operation documents; and the answer for a change that waits for approval.
//!
//! Every API route is registered through `utoipa_axum::routes!` from a handler annotated with
//! `#[utoipa::path]`, so a route cannot exist without its entry in the document, and the bodies
//! it names are the very types the handler reads and writes.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, AppError};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "burnrate API",
        description = "Everything the burnrate UI does, for scripts and tools. Authenticate with an API key \
                       (`Authorization: Bearer brk_…`, made on the API keys page); a key reads, writes or \
                       administers as its scope says, never more than the member who made it may. Money is a \
                       decimal string with its currency; times are RFC 3339 in UTC. Changes the organization \
                       sends for approval answer `202 Accepted` with the approval request to follow."
    ),
    servers((url = "/api/v1")),
    modifiers(&ApiKeyAuth),
    security(("api_key" = [])),
    components(schemas(ErrorBody, ErrorDetail, Nothing, crate::routes::SigningSecret))
)]
pub(crate) struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("burnrate API key (brk_…)".into());
        components.add_security_scheme("api_key", SecurityScheme::Http(bearer));
    }
}

/// Every error of the API has this shape.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// A snake_case word: `not_found`, `validation_failed`, `rate_limited`, …
    pub code: String,
    /// What was wrong, for a person to read.
    pub message: String,
}

/// The answers any endpoint may give before it looks at what was asked.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum Refusals {
    /// No API key, or one that is invalid or revoked.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key's scope, or the role of the member who made it, does not allow this.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Too many requests from this key or address; `Retry-After` says when to try again.
    #[response(status = 429)]
    RateLimited(ErrorBody),
}

/// The answers of an endpoint that reads a JSON body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum BodyRefusals {
    /// The body is larger than 64 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not the JSON this endpoint takes, or a value in it is not valid.
    #[response(status = 422)]
    Invalid(ErrorBody),
}

/// No such thing in this organization (or an id of the wrong shape).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum Missing {
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// The thing is not in a state that allows this (already decided, already exists, …).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum Conflicting {
    #[response(status = 409)]
    Conflict(ErrorBody),
}

/// A JSON body whose errors answer in the API's error format.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state).await.map(|Json(v)| ApiJson(v)).map_err(|r: JsonRejection| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(AppError::PayloadTooLarge)
            } else {
                ApiError(AppError::Validation(r.body_text()))
            }
        })
    }
}

/// A query string whose errors answer in the API's error format.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|r| ApiError(AppError::Validation(r.body_text())))
    }
}

pub async fn not_found() -> ApiError {
    ApiError(AppError::NotFound)
}

/// A change that went to the queue, with what was made for it at once (a secret shown now, the
/// one time it is shown; nothing for most changes).
#[derive(Serialize, ToSchema)]
pub struct Queued<T> {
    /// The approval request to follow.
    approval_id: Uuid,
    /// `pending`.
    state: &'static str,
    url: String,
    #[serde(flatten)]
    made: T,
}

/// Nothing more to show for a queued change.
#[derive(Serialize, ToSchema)]
pub struct Nothing {}

/// The answer `202` to a change that went to the queue.
pub type QueuedView = Queued<Nothing>;

/// The answer to a change that went to the queue: `202` with where to follow it.
pub(crate) fn queued<T: Serialize>(state: &AppState, id: Uuid, made: T) -> Response {
    let url = state.config.link(&format!("/api/v1/approvals/{id}"));
    (StatusCode::ACCEPTED, Json(Queued { approval_id: id, state: "pending", url, made })).into_response()
}

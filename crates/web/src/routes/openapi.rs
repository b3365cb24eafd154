//! The OpenAPI document of `/api/v1` (S12), served at `/api/v1/openapi.json`.
//!
//! Every API route is registered through `utoipa_axum::routes!` from a handler annotated with
//! `#[utoipa::path]`, so a route cannot exist without its entry in the document, and the bodies
//! it names are the very types the handler reads and writes.

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

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
    components(schemas(ErrorBody, ErrorDetail, super::approvals::Nothing, super::webhooks::SigningSecret))
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

//! One error type for handlers, mapped to statuses in one place: an HTML page for the UI, a JSON
//! body `{"error": {"code", "message"}}` for the API. Internal errors are logged with a reference
//! and shown without detail.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::pages;

#[derive(Debug)]
pub enum AppError {
    NotFound,
    Unauthorized,
    Forbidden(String),
    BadRequest(String),
    Validation(String),
    Conflict(String),
    RateLimited {
        retry_after_secs: u64,
    },
    /// The instance or the organization runs as many queries as it may; try again shortly.
    Busy(String),
    PayloadTooLarge,
    Csrf,
    Internal(String),
}

impl AppError {
    fn status_code_message(&self) -> (StatusCode, &'static str, String) {
        match self {
            AppError::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found.".into()),
            AppError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, "unauthorized", "Missing, invalid or revoked credentials.".into())
            }
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone()),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone()),
            AppError::Validation(m) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", m.clone()),
            AppError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone()),
            AppError::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("Too many requests; try again in {retry_after_secs} seconds."),
            ),
            AppError::Busy(m) => (StatusCode::TOO_MANY_REQUESTS, "busy", m.clone()),
            AppError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The request body is larger than 64 KiB.".into())
            }
            AppError::Csrf => (
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "This form did not come from this site, or it has expired. Reload the page and try again.".into(),
            ),
            AppError::Internal(reference) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("Something went wrong on our side. The error was logged with reference {reference}."),
            ),
        }
    }

    fn with_retry_after(&self, mut resp: Response) -> Response {
        let wait = match self {
            AppError::RateLimited { retry_after_secs } => *retry_after_secs,
            // A slot frees when any running query ends: soon, or the wait would not have ended.
            AppError::Busy(_) => 1,
            _ => return resp,
        };
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }

    /// An internal failure: its cause is logged with a fresh reference, and the reference is all
    /// the answer shows (never the cause's text).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        burnrate_app::Error::internal(cause).into()
    }

    pub fn rate_limited(wait: std::time::Duration) -> Self {
        AppError::RateLimited { retry_after_secs: wait.as_secs().max(1) }
    }
}

/// The message a person reads (the command line prints it).
impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.status_code_message().2)
    }
}

impl From<burnrate_app::Error> for AppError {
    fn from(e: burnrate_app::Error) -> Self {
        match e {
            burnrate_app::Error::NotFound => AppError::NotFound,
            burnrate_app::Error::Forbidden(m) => AppError::Forbidden(m),
            burnrate_app::Error::Invalid { message, .. } => AppError::Validation(message),
            burnrate_app::Error::Conflict(m) => AppError::Conflict(m),
            // Logged with its cause where it happened.
            burnrate_app::Error::Internal(reference) => AppError::Internal(reference),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, _, message) = self.status_code_message();
        let resp = (status, pages::error_page(status, &message)).into_response();
        self.with_retry_after(resp)
    }
}

/// The same errors, as the JSON API answers them.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.0.status_code_message();
        let body = serde_json::json!({ "error": { "code": code, "message": message } });
        let resp = (status, axum::Json(body)).into_response();
        self.0.with_retry_after(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_shows_a_reference_and_never_its_cause() {
        let e = AppError::internal("connection to 10.0.0.7:5432 refused for user app_secret");
        let shown = e.to_string();
        assert!(shown.contains("logged with reference"), "{shown}");
        assert!(!shown.contains("10.0.0.7") && !shown.contains("app_secret"), "{shown}");
        let AppError::Internal(reference) = e else { panic!("an internal error") };
        assert_eq!(reference.len(), 12, "a short reference to find the log line by");
    }
}

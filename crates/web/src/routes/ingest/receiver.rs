//! The OTLP/HTTP traces receiver: `POST /v1/traces` on its own listener
//! (`BURNRATE_OTLP_ADDR`), protobuf or JSON, gzip or not, answered in the encoding it was sent
//! in. Statuses follow the OTLP/HTTP spec: 400 for a body that will never be accepted, 401 for a
//! missing or wrong ingest key, 429 and 503 (with `Retry-After`) for "try again later", which
//! exporters retry; nothing else here is retried by them.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use burnrate_app::ingest::{Body, Encoding, ExportTraceServiceResponse, IngestError, MAX_BODY_BYTES, encode_response};

use crate::AppState;

/// The receiver's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/traces", post(export))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "this receiver takes traces at POST /v1/traces") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
}

fn retry_later(status: StatusCode, seconds: u64, message: &str) -> Response {
    let mut response = refuse(status, message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

async fn export(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let Some(encoding) = text(header::CONTENT_TYPE).and_then(Encoding::of_content_type) else {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/x-protobuf or application/json",
        );
    };
    let gzip = match text(header::CONTENT_ENCODING) {
        None | Some("") | Some("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(_) => return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Encoding must be gzip or none"),
    };
    // Before the key is looked up: guessing keys costs the guesser, not the database.
    if let Err(wait) = state.limiter.check(&format!("otlp-ip:{}", peer.ip()), state.config.otlp_per_ip).await {
        return retry_later(StatusCode::TOO_MANY_REQUESTS, wait.as_secs().max(1), "too many exports; slow down");
    }
    let Some(token) = text(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim) else {
        return refuse(StatusCode::UNAUTHORIZED, "send an ingest key as Authorization: Bearer <key>");
    };
    let ingester = match state.app.ingester(token).await {
        Ok(Some(ingester)) => ingester,
        Ok(None) => return refuse(StatusCode::UNAUTHORIZED, "this is not a live ingest key"),
        Err(e) => return retry_later(StatusCode::SERVICE_UNAVAILABLE, 5, &e.to_string()),
    };
    if let Err(wait) = state.limiter.check(&format!("otlp-key:{}", ingester.key_id), state.config.otlp_per_key).await {
        return retry_later(StatusCode::TOO_MANY_REQUESTS, wait.as_secs().max(1), "too many exports for this key");
    }
    match state.app.ingest(ingester, Body { encoding, gzip, bytes: &body }).await {
        Ok(done) => {
            let answer = ExportTraceServiceResponse { partial_success: done.partial_success };
            let bytes = encode_response(&answer, encoding);
            (StatusCode::OK, [(header::CONTENT_TYPE, encoding.content_type())], bytes).into_response()
        }
        Err(IngestError::Malformed(e)) => refuse(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(IngestError::Busy) => retry_later(StatusCode::SERVICE_UNAVAILABLE, 1, "the receiver is busy; retry later"),
        // Storage failing is not the export's fault: the exporter keeps it and tries again.
        Err(IngestError::App(e)) => retry_later(StatusCode::SERVICE_UNAVAILABLE, 5, &e.to_string()),
    }
}

//! Browser-facing protections (S7, S9): security headers on every response, `__Host-` cookies,
//! and CSRF — a per-browser token in a `__Host-` cookie that every form must echo, plus an
//! `Origin` / `Sec-Fetch-Site` check — on every state-changing form.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::AppError;

pub const SESSION_COOKIE: &str = "__Host-burnrate_session";
pub const CSRF_COOKIE: &str = "__Host-burnrate_csrf";
/// An operator's session (S18): its own cookie, so an operator's login never doubles as a member's.
pub const OPERATOR_COOKIE: &str = "__Host-burnrate_operator";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value with the flags of S9: `__Host-` names require `Secure` and `Path=/`.
pub fn set_cookie(name: &str, value: &str, max_age_secs: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age_secs {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).expect("cookie values are URL-safe base64")
}

pub fn clear_cookie(name: &str) -> HeaderValue {
    set_cookie(name, "", Some(0))
}

/// The client's address: the peer, or the last `X-Forwarded-For` hop when configured to sit behind
/// a proxy (the proxy appends the address it saw; earlier hops are the client's claim).
pub fn client_ip(parts_headers: &HeaderMap, peer: Option<SocketAddr>, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(last) = parts_headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
    {
        return last.to_owned();
    }
    peer.map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// Where a request came from, for rate limits and the audit log.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        Ok(ClientInfo {
            ip: client_ip(&parts.headers, peer, state.config.trust_forwarded_for),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
        })
    }
}

/// Sets the security headers on every response, and times it by route template, method and
/// status (a path no route matched is `unmatched`: paths themselves would be a series each).
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    // Any token is a method to HTTP: the ones served are named, the rest counted together.
    let method = match *req.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    metrics::histogram!(
        "burnrate_http_request_duration_seconds",
        "route" => route,
        "method" => method,
        "status" => resp.status().as_str().to_owned()
    )
    .record(started.elapsed().as_secs_f64());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Reset and invitation links carry tokens in the path: never send them to another site.
    // (`no-referrer` would also make browsers send `Origin: null` on our own forms.)
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    );
    if state.config.hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    if is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    } else {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The CSRF token of this browser, for forms to embed.
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

fn valid_token_shape(t: &str) -> bool {
    t.len() == 43 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Gives every browser a CSRF token cookie (on pages, not the API, which uses no cookies).
pub async fn csrf_cookie(mut req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE).filter(|t| valid_token_shape(t));
    let (token, fresh) = match existing {
        Some(t) => (t, false),
        None => (burnrate_crypto::random_token(), true),
    };
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut resp = next.run(req).await;
    if fresh {
        resp.headers_mut().append(header::SET_COOKIE, set_cookie(CSRF_COOKIE, &token, None));
    }
    resp
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<CsrfToken>().cloned().ok_or(AppError::Csrf)
    }
}

/// A form body that has passed the CSRF checks, deserialized into `T`.
pub struct CsrfForm<T>(pub T);

/// Loopback names: a page served there is the person's own machine (the demo, development), where
/// `localhost` and `127.0.0.1` are the same site to them; DNS rebinding cannot forge these names.
fn is_loopback_host(authority: &str) -> bool {
    let host = authority
        .rsplit_once(':')
        .map(|(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { authority })
        .unwrap_or(authority);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn origin_allowed(headers: &HeaderMap, own_origin: &str) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else { return false };
        if origin == own_origin {
            return true;
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or("");
        return is_loopback_host(host) && authority == host;
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        // Neither header: not a modern browser's cross-site request; the token still has to match.
        None => true,
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        if req.method() != Method::POST {
            return Err(AppError::BadRequest("forms are submitted with POST".into()));
        }
        if !origin_allowed(req.headers(), &state.config.origin()) {
            tracing::debug!(origin = ?req.headers().get(header::ORIGIN), "CSRF check failed: cross-origin form post");
            return Err(AppError::Csrf);
        }
        let expected = req.extensions().get::<CsrfToken>().cloned().ok_or(AppError::Csrf)?;
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::BadRequest(format!("the form could not be read: {rejection}"))
            }
        })?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|e| AppError::BadRequest(format!("the form is malformed: {e}")))?;
        let sent = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
        if !bool::from(sent.as_bytes().ct_eq(expected.0.as_bytes())) {
            tracing::debug!("CSRF check failed: the form's token does not match the browser's cookie");
            return Err(AppError::Csrf);
        }
        let form = serde_urlencoded::from_bytes::<T>(&body)
            .map_err(|e| AppError::BadRequest(format!("the form is malformed: {e}")))?;
        Ok(CsrfForm(form))
    }
}

/// A form with nothing in it but the CSRF token: a button.
#[derive(serde::Deserialize)]
pub struct NoFields {}

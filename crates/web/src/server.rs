//! The listeners (S7). Our own accept loop rather than `axum::serve`, because a server on the open
//! internet needs a TLS-handshake timeout and a header-read timeout (slow-loris), which
//! `axum::serve` does not offer.
//!
//! With HTTPS configured, the HTTP listener only redirects (and refuses API calls outright: a
//! redirect would hide that a key already crossed the network in clear).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::AppState;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Already-bound sockets, so the caller may bind port 0 and learn the port first.
pub struct Listeners {
    pub http: TcpListener,
    pub https: Option<(TcpListener, TlsFiles)>,
    /// The OTLP traces receiver's, served with the HTTPS certificate when there is one.
    pub otlp: Option<TcpListener>,
}

pub struct RunningServer {
    pub http_addr: SocketAddr,
    pub https_addr: Option<SocketAddr>,
    pub otlp_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    pub fn shutdown(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let mut tls = burnrate_net::ServerTls::load(&files.cert, &files.key, "BURNRATE_TLS_CERT", "BURNRATE_TLS_KEY")?;
    crate::metrics::certificate_expires("https", tls.expires_at);
    tls.config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(tls.config)))
}

/// Starts serving `state` on the given listeners.
pub async fn serve(state: AppState, listeners: Listeners) -> Result<RunningServer, String> {
    let app = crate::router(state.clone());
    let http_addr = listeners.http.local_addr().map_err(|e| e.to_string())?;
    let mut tasks = Vec::new();
    let mut https_addr = None;
    let mut otlp_acceptor = None;
    match listeners.https {
        Some((listener, files)) => {
            let acceptor = tls_acceptor(&files)?;
            otlp_acceptor = Some(acceptor.clone());
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            https_addr = Some(addr);
            tasks.push(tokio::spawn(accept_loop(listener, app, Some(acceptor))));
            let public = &state.config.public_url;
            let target = if public.scheme() == "https" {
                public.origin().ascii_serialization()
            } else {
                format!("https://{}:{}", public.host_str().unwrap_or("localhost"), addr.port())
            };
            tasks.push(tokio::spawn(accept_loop(listeners.http, redirect_router(target), None)));
        }
        None => tasks.push(tokio::spawn(accept_loop(listeners.http, app, None))),
    }
    let otlp_addr = match listeners.otlp {
        Some(listener) => {
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            tasks.push(tokio::spawn(accept_loop(listener, crate::routes::otlp_receiver(state), otlp_acceptor)));
            Some(addr)
        }
        None => None,
    };
    Ok(RunningServer { http_addr, https_addr, otlp_addr, tasks })
}

fn redirect_router(target_origin: String) -> Router {
    Router::new().fallback(move |uri: Uri| {
        let target_origin = target_origin.clone();
        async move { redirect_to_https(&target_origin, &uri) }
    })
}

fn redirect_to_https(target_origin: &str, uri: &Uri) -> Response {
    if uri.path().starts_with("/api/") {
        let body =
            serde_json::json!({"error": {"code": "https_required", "message": "The API is served over HTTPS only."}});
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Redirect::permanent(&format!("{target_origin}{path}")).into_response()
}

async fn accept_loop(listener: TcpListener, app: Router, tls: Option<TlsAcceptor>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = tower::ServiceExt::map_request(app, move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
            let svc = TowerToHyperService::new(svc);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            let result = match tls {
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => builder.serve_connection(TokioIo::new(tls_stream), svc).with_upgrades().await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
                None => builder.serve_connection(TokioIo::new(stream), svc).with_upgrades().await,
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

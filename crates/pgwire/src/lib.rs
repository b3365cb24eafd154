//! The Postgres wire endpoint: psql, BI tools and drivers reach an organization's SQL here.
//!
//! ```text
//!   client ──TLS (required off loopback)──▶ startup: user = credential id, database `burnrate`
//!          ──SCRAM-SHA-256 against the stored verifier──▶ a SqlSession of that credential's org
//!          ──simple / extended protocol──▶ engine ──Arrow batches──▶ rows in text or binary
//! ```
//!
//! Each connection gets handlers of its own, holding its login once authenticated. A credential
//! reaches as far as the member who made it, now (`burnrate_app::sql_access`): a watcher closes
//! its connections within a fraction of a second of its revocation, its creator leaving or its
//! creator's role changing what it reads (the client reconnects under the new reach), whichever
//! instance made the change (it reads the store, not a local signal).

mod encode;
mod handlers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use burnrate_core::SqlCredentialId;
use burnrate_engine::{Engine, Reader, SqlSession};
use burnrate_store::OrgScope;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How often live connections are checked against revocations: well inside the promised second.
const REVOCATION_POLL: Duration = Duration::from_millis(250);

/// TLS for the endpoint: the rustls configuration and the certificate, which SCRAM-SHA-256-PLUS
/// binds the login to.
pub struct PgTls {
    pub cert_pem: Vec<u8>,
    pub config: Arc<rustls::ServerConfig>,
}

impl From<burnrate_net::ServerTls> for PgTls {
    fn from(t: burnrate_net::ServerTls) -> Self {
        Self { cert_pem: t.cert_pem, config: Arc::new(t.config) }
    }
}

/// How many client connections may be open at once (`BURNRATE_WIRE_MAX_CONNECTIONS` and
/// `BURNRATE_WIRE_MAX_CONNECTIONS_PER_ORG`). A connection counts from its startup message on; a
/// cancel request, which arrives on a connection of its own, never counts, so Ctrl-C works at
/// the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub instance: usize,
    pub per_org: usize,
}

impl Default for ConnectionLimits {
    /// PostgreSQL's own default for the instance; a quarter of it for one organization, so a
    /// BI tool's pool fits and no tenant holds the instance's.
    fn default() -> Self {
        Self { instance: 100, per_org: 25 }
    }
}

/// What every connection shares.
struct Shared {
    engine: Engine,
    app: burnrate_app::App,
    tls: Option<PgTls>,
    auth: handlers::Authenticator,
    limits: ConnectionLimits,
    connections: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

impl Shared {
    /// Counts `conn` among the instance's connections, unless the instance has all it may.
    fn admit(&self, conn: &Connection) -> Result<(), ConnectionLimitReached> {
        let connections = self.connections.lock().expect("connections lock");
        let open = connections.values().filter(|c| c.admitted.load(Ordering::Relaxed)).count();
        if open >= self.limits.instance {
            return Err(ConnectionLimitReached::Instance(self.limits.instance));
        }
        conn.admitted.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Logs `conn` in as `login`, unless its organization has all the connections it may.
    fn log_in(&self, conn: &Connection, login: Login) -> Result<(), ConnectionLimitReached> {
        let connections = self.connections.lock().expect("connections lock");
        let scope = login.session.scope();
        let open = connections.values().filter(|c| c.login.get().is_some_and(|l| l.session.scope() == scope)).count();
        if open >= self.limits.per_org {
            // Closing now: its place on the instance is free at once.
            conn.admitted.store(false, Ordering::Relaxed);
            return Err(ConnectionLimitReached::Organization(self.limits.per_org));
        }
        let _ = conn.login.set(login);
        Ok(())
    }
}

/// A connection refused for the connections already open.
#[derive(Debug, thiserror::Error)]
enum ConnectionLimitReached {
    #[error(
        "sorry, too many clients already: this burnrate instance has its {0} connections open \
         (BURNRATE_WIRE_MAX_CONNECTIONS); try again when one closes"
    )]
    Instance(usize),
    #[error(
        "too many connections for this organization: it has its {0} open \
         (BURNRATE_WIRE_MAX_CONNECTIONS_PER_ORG); close one, or pool them, and try again"
    )]
    Organization(usize),
}

/// One client connection.
struct Connection {
    shared: Arc<Shared>,
    /// Whether it counts against the instance's limit: from its startup message on, unless
    /// its login is refused.
    admitted: AtomicBool,
    login: OnceLock<Login>,
    /// Notified to close the connection (its credential no longer reaches what it was opened with).
    close: Notify,
    /// The key (pid, secret) the client was given at login, which its cancel requests name.
    cancel_key: OnceLock<(i32, Vec<u8>)>,
    /// Counts cancel requests; a statement stops when it changes while the statement runs.
    cancel: tokio::sync::watch::Sender<u64>,
}

impl Connection {
    fn new(shared: Arc<Shared>) -> Self {
        metrics::gauge!("burnrate_wire_connections").increment(1.0);
        Self {
            shared,
            admitted: AtomicBool::new(false),
            login: OnceLock::new(),
            close: Notify::new(),
            cancel_key: OnceLock::new(),
            cancel: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Marks a statement's start: the receiver sees only cancel requests made from now on.
    fn statement_started(&self) -> tokio::sync::watch::Receiver<u64> {
        let mut rx = self.cancel.subscribe();
        rx.borrow_and_update();
        rx
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        metrics::gauge!("burnrate_wire_connections").decrement(1.0);
    }
}

/// An authenticated connection's identity and session.
struct Login {
    credential: SqlCredentialId,
    /// What it was opened to read.
    reader: Reader,
    session: SqlSession,
}

/// The running endpoint; dropping it stops accepting and closes every connection.
pub struct PgServer {
    pub addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for PgServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl PgServer {
    /// Serves on `listener`. Without `tls`, only loopback clients can log in.
    pub fn start(
        listener: TcpListener,
        engine: Engine,
        app: burnrate_app::App,
        tls: Option<PgTls>,
        limits: ConnectionLimits,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let auth = handlers::Authenticator::new(app.clone(), tls.as_ref());
        let shared = Arc::new(Shared {
            engine,
            app,
            tls,
            auth,
            limits,
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        let acceptor = shared.tls.as_ref().map(|t| pgwire::tokio::TlsAcceptor::from(Arc::clone(&t.config)));
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared), acceptor));
        let watch = tokio::spawn(watch_revocations(shared));
        tracing::info!(%addr, "Postgres wire endpoint listening");
        Ok(Self { addr, tasks: vec![accept, watch] })
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, acceptor: Option<pgwire::tokio::TlsAcceptor>) {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "Postgres wire: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Connection::new(Arc::clone(&shared)));
        {
            let mut connections = shared.connections.lock().expect("connections lock");
            // Sockets still in their handshake, or idle before it, do not count against the
            // limit yet (pgwire drops them after its startup timeout); this many more than the
            // limit are not read at all, so an idle flood cannot run the process out of files.
            if connections.len() >= shared.limits.instance * 2 + 16 {
                tracing::warn!(%peer, open = connections.len(), "Postgres wire: too many sockets open; closed a new one");
                continue;
            }
            connections.insert(id, Arc::clone(&conn));
        }
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let handlers = handlers::ConnectionHandlers::new(Arc::clone(&conn));
            tokio::select! {
                r = pgwire::tokio::process_socket(socket, acceptor, handlers) => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "Postgres wire connection ended with an error");
                    }
                }
                () = conn.close.notified() => {
                    tracing::info!(%peer, credential = ?conn.login.get().map(|l| l.credential.to_string()), "closed a connection whose SQL credential no longer reaches what it was opened with");
                }
            }
            shared.connections.lock().expect("connections lock").remove(&id);
        });
    }
}

/// Closes the connections of credentials revoked, or whose creator left or now reads otherwise:
/// per organization with live connections, one query for what its credentials reach now.
async fn watch_revocations(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(REVOCATION_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let live: Vec<Arc<Connection>> =
            shared.connections.lock().expect("connections lock").values().cloned().collect();
        let mut by_org: HashMap<OrgScope, Vec<Arc<Connection>>> = HashMap::new();
        for c in live {
            if let Some(login) = c.login.get() {
                by_org.entry(login.session.scope()).or_default().push(Arc::clone(&c));
            }
        }
        for (scope, conns) in by_org {
            match shared.app.sql_readers(scope).await {
                Ok(readers) => {
                    for c in conns {
                        if c.login.get().is_some_and(|l| readers.get(&l.credential) != Some(&l.reader)) {
                            c.close.notify_one();
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Postgres wire: cannot check what credentials reach"),
            }
        }
    }
}

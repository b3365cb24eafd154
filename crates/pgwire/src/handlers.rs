//! The protocol handlers of one connection: startup (TLS rule, SCRAM login), simple queries and
//! the extended protocol (Parse / Bind / Describe / Execute).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use burnrate_core::SqlCredentialId;
use burnrate_crypto::ScramVerifier;
use burnrate_engine::{EngineError, Outcome, SqlStatement};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use futures::{Sink, StreamExt};
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{
    AuthDriver, AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::{Connection, Login, PgTls, encode};

/// The one database name burnrate serves.
const DATABASE: &str = "burnrate";

/// The login machinery every connection shares: SCRAM over the stored verifiers (bound to the
/// endpoint's certificate, for SCRAM-SHA-256-PLUS) and the parameters a client is told at startup.
pub(crate) struct Authenticator {
    driver: AuthDriver<DefaultServerParameterProvider, Verified>,
    scram: ScramAuth<Verified>,
    /// Each logged-in connection's cancel handle, by the key (pid and secret) it was told at
    /// login: a cancel request (psql's Ctrl-C) arrives on a connection of its own and names it.
    cancels: Arc<ConnectionManager>,
}

impl Authenticator {
    pub(crate) fn new(app: burnrate_app::App, tls: Option<&PgTls>) -> Self {
        let mut scram = ScramAuth::new(Arc::new(Credentials { app }));
        scram.set_iterations(ScramVerifier::ITERATIONS as usize);
        if let Some(tls) = tls
            && let Err(e) = scram.configure_certificate(&tls.cert_pem)
        {
            tracing::warn!(error = %e, "SCRAM channel binding unavailable for this certificate");
        }
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = burnrate_engine::SERVER_VERSION.to_owned();
        params.is_superuser = false;
        params.default_transaction_read_only = true;
        params.time_zone = "UTC".to_owned();
        let cancels = Arc::new(ConnectionManager::new());
        Self { driver: AuthDriver::new(params).with_connection_manager(Arc::clone(&cancels)), scram, cancels }
    }
}

pub(crate) struct ConnectionHandlers {
    startup: Arc<Startup>,
    queries: Arc<Queries>,
}

impl ConnectionHandlers {
    pub(crate) fn new(conn: Arc<Connection>) -> Self {
        let startup = Arc::new(Startup { conn: Arc::clone(&conn) });
        let queries = Arc::new(Queries { parser: Arc::new(Parser { conn: Arc::clone(&conn) }), conn });
        Self { startup, queries }
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.queries)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.queries)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::new(Cancels { shared: Arc::clone(&self.queries.conn.shared) })
    }
}

fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), code.into(), message.into())))
}

fn error_info(code: &str, message: impl Into<String>) -> Box<ErrorInfo> {
    Box::new(ErrorInfo::new("ERROR".into(), code.into(), message.into()))
}

fn error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(error_info(code, message))
}

/// An engine error in SQLSTATE terms.
fn engine_error_info(e: EngineError) -> Box<ErrorInfo> {
    let code = match &e {
        EngineError::Refused(_) => "42501",
        EngineError::Syntax(_) => "42601",
        // program_limit_exceeded: "statement too complex" and the like.
        EngineError::TooLarge(_) => "54000",
        EngineError::Plan(_) => "42P01",
        EngineError::OutOfMemory(_) => "53200",
        EngineError::Timeout(_) => "57014",
        // too_many_connections: PostgreSQL's class for "try again when others are done".
        EngineError::Busy(..) => "53300",
        EngineError::Execution(_) | EngineError::Setup(_) | EngineError::Store(_) => "XX000",
    };
    error_info(code, e.to_string())
}

fn engine_error(e: EngineError) -> PgWireError {
    PgWireError::UserError(engine_error_info(e))
}

/// Looks credentials up for SCRAM. An unknown, malformed or revoked user name gets a random
/// verifier, so the handshake runs to the end and fails like a wrong password: nobody learns
/// which user names exist.
struct Credentials {
    app: burnrate_app::App,
}

// pgwire asks its credential source for `Debug`; there is nothing in it worth printing.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials")
    }
}

/// Who a successful SCRAM exchange proved the client to be.
struct Verified(burnrate_app::sql_access::SqlAccess);

#[async_trait]
impl AuthSource<Verified> for Credentials {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        // Only SCRAM is offered; a password in the clear is never asked for.
        Err(PgWireError::InvalidPassword(login.user().unwrap_or_default().to_owned()))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<Verified>)> {
        let found = match login.user().map(str::parse::<SqlCredentialId>) {
            Some(Ok(id)) => {
                // Unknown, revoked, or its creator left: all alike to the client.
                self.app.sql_login(id).await.map_err(|e| {
                    tracing::error!(error = %e, "Postgres wire: credential lookup failed");
                    fatal("58000", "burnrate cannot check credentials right now; try again")
                })?
            }
            _ => None,
        };
        let usable = found.and_then(|l| ScramVerifier::parse(&l.verifier).ok().map(|v| (v, l)));
        let (verifier, identity) = match usable {
            Some((v, l)) => (v, Some(Verified(l))),
            None => (ScramVerifier::new(&burnrate_crypto::random_sql_password()), None),
        };
        let secret = ScramSecret::Verifier {
            salt: verifier.salt,
            iterations: verifier.iterations as usize,
            stored_key: verifier.stored_key.to_vec(),
            server_key: verifier.server_key.to_vec(),
        };
        Ok((secret, identity))
    }
}

struct Startup {
    conn: Arc<Connection>,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if !client.is_secure() && !client.socket_addr().ip().is_loopback() {
                    return Err(fatal(
                        "28000",
                        "burnrate requires TLS for connections from other hosts: connect with sslmode=require (or verify-full)",
                    ));
                }
                let user = client.metadata().get("user").cloned().ok_or(PgWireError::UserNameRequired)?;
                match client.metadata().get("database").map(String::as_str) {
                    None | Some(DATABASE) => {}
                    // libpq and most drivers default the database to the user name.
                    Some(db) if db == user => {}
                    Some(other) => {
                        return Err(fatal(
                            "3D000",
                            format!(
                                "database \"{other}\" does not exist: burnrate serves one database, \"{DATABASE}\""
                            ),
                        ));
                    }
                }
                self.conn.shared.admit(&self.conn).map_err(|e| fatal("53300", e.to_string()))?;
                let auth = &self.conn.shared.auth;
                auth.driver.begin_authentication(client, auth.scram.create()).await?;
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let auth = &self.conn.shared.auth;
                let outcome = auth.driver.advance_authentication(client, message).await.map_err(|e| match e {
                    // PostgreSQL's words, which clients and people recognise; never which part
                    // was wrong.
                    PgWireError::InvalidPassword(_) | PgWireError::InvalidScramMessage(_) => {
                        fatal("28P01", format!("password authentication failed for user \"{user}\""))
                    }
                    other => other,
                })?;
                match outcome {
                    AuthOutcome::InProgress => Ok(()),
                    AuthOutcome::Authenticated { identity, final_message } => {
                        let Some(Verified(login)) = identity else {
                            return Err(fatal("28P01", format!("password authentication failed for user \"{user}\"")));
                        };
                        // It reads as far as its creator's role reaches now (S22).
                        let session = self
                            .conn
                            .shared
                            .engine
                            .connect(login.scope, login.reader, &login.id.to_string())
                            .map_err(engine_error)?
                            .from_front_end("wire");
                        self.conn
                            .shared
                            .log_in(&self.conn, Login { credential: login.id, reader: login.reader, session })
                            .map_err(|e| fatal("53300", e.to_string()))?;
                        touch(&self.conn, login.scope, login.id);
                        tracing::info!(credential = %login.id, org = %login.scope.org_id(), "SQL client logged in");
                        auth.driver.complete_authentication(client, final_message).await?;
                        // The key it was just told, which a cancel request for it will name.
                        let (pid, secret) = client.pid_and_secret_key();
                        let _ = self.conn.cancel_key.set((pid, secret.to_bytes().to_vec()));
                        Ok(())
                    }
                }
            }
            _ => Ok(()),
        }
    }
}

/// Records the credential's last use, off the login's path.
fn touch(conn: &Arc<Connection>, scope: burnrate_store::OrgScope, id: SqlCredentialId) {
    let store = conn.shared.app.store().clone();
    tokio::spawn(async move {
        let r = async {
            let mut tx = store.tenant(scope).await?;
            tx.touch_sql_credential(id).await?;
            tx.commit().await
        };
        if let Err(e) = r.await {
            tracing::warn!(error = %e, "cannot record a SQL credential's last use");
        }
    });
}

struct Queries {
    conn: Arc<Connection>,
    parser: Arc<Parser>,
}

fn login(conn: &Connection) -> PgWireResult<&Login> {
    conn.login.get().ok_or_else(|| fatal("28000", "not logged in"))
}

/// Answers cancel requests, which arrive on a connection of their own: the statement the named
/// connection is running stops, whether it is still being planned (pgwire's part) or already
/// sending rows (ours).
struct Cancels {
    shared: Arc<crate::Shared>,
}

#[async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.shared.auth.cancels.cancel(request.pid, &request.secret_key).await;
        let key = (request.pid, request.secret_key.to_bytes().to_vec());
        let live: Vec<Arc<Connection>> =
            self.shared.connections.lock().expect("connections lock").values().cloned().collect();
        if let Some(conn) = live.iter().find(|c| c.cancel_key.get() == Some(&key)) {
            conn.cancel.send_modify(|n| *n += 1);
            tracing::info!(pid = request.pid, "cancelled a statement at the client's request");
        }
    }
}

fn cancelled() -> PgWireError {
    error("57014", "canceling statement due to user request")
}

/// The rows (or tag) of one statement's outcome, columns in `formats`; the statement ends with
/// an error at its timeout or when a cancel request for it arrives (`cancel` changes).
fn response(
    outcome: Outcome,
    formats: &Format,
    timeout: std::time::Duration,
    cancel: tokio::sync::watch::Receiver<u64>,
) -> Response {
    match outcome {
        Outcome::Rows(q) => {
            let fields = Arc::new(encode::fields(&q.schema, formats));
            let deadline = tokio::time::Instant::now() + timeout;
            let row_fields = Arc::clone(&fields);
            let batches = futures::stream::unfold(Some((q.stream, cancel)), move |state| async move {
                let (mut stream, mut cancel) = state?;
                tokio::select! {
                    _ = cancel.changed() => Some((Err(cancelled()), None)),
                    next = tokio::time::timeout_at(deadline, stream.next()) => match next {
                        Err(_) => Some((Err(engine_error(EngineError::Timeout(timeout))), None)),
                        Ok(None) => None,
                        Ok(Some(Err(e))) => Some((Err(engine_error(EngineError::from(e))), None)),
                        Ok(Some(Ok(batch))) => Some((Ok(batch), Some((stream, cancel)))),
                    },
                }
            });
            let rows = batches.flat_map(move |batch| {
                let rows = batch.and_then(|b| encode::rows(&b, &row_fields));
                futures::stream::iter(match rows {
                    Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            });
            Response::Query(QueryResponse::new(fields, rows))
        }
        Outcome::Command(tag) => Response::Execution(Tag::new(tag)),
        Outcome::Begin => Response::TransactionStart(Tag::new("BEGIN")),
        Outcome::End(tag) => Response::TransactionEnd(Tag::new(tag)),
        Outcome::Deallocate(name) => {
            Response::Execution(Tag::new(if name.is_some() { "DEALLOCATE" } else { "DEALLOCATE ALL" }))
        }
    }
}

/// Carries out what an outcome asks of the connection's protocol state: `DEALLOCATE name` forgets
/// that prepared statement. `DEALLOCATE ALL` forgets nothing: pgwire's store cannot list its
/// statements, and a driver that prepares again under a name it used replaces the old one.
fn apply<C>(client: &C, outcome: &Outcome)
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore,
{
    if let Outcome::Deallocate(Some(name)) = outcome {
        client.portal_store().rm_statement(name);
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let login = login(&self.conn)?;
        let timeout = self.conn.shared.engine.statement_timeout();
        let statements = login.session.parse(query).map_err(engine_error)?;
        let mut responses = Vec::with_capacity(statements.len());
        for s in &statements {
            // Like PostgreSQL, the statements after a failed one are not run.
            let cancel = self.conn.statement_started();
            match login.session.execute(s, Vec::new()).await {
                Ok(outcome) => {
                    apply(client, &outcome);
                    responses.push(response(outcome, &Format::UnifiedText, timeout, cancel))
                }
                Err(e) => {
                    responses.push(Response::Error(engine_error_info(e)));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

/// A statement prepared through the extended protocol.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    statement: SqlStatement,
    /// The Postgres types of `$1…`: the client's where it named them, else the engine's guess,
    /// else text.
    wire_types: Vec<Type>,
    /// The types the engine expects for `$1…`, where it knows.
    engine_types: Vec<Option<DataType>>,
    schema: SchemaRef,
}

struct Parser {
    conn: Arc<Connection>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Arc<Prepared>>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let login = login(&self.conn)?;
        let mut statements = login.session.parse(sql).map_err(engine_error)?;
        if statements.len() > 1 {
            return Err(error("42601", "cannot insert multiple commands into a prepared statement"));
        }
        let Some(statement) = statements.pop() else { return Ok(None) };
        let described = login.session.describe(&statement).await.map_err(engine_error)?;
        let n = types.len().max(described.parameters.len());
        let wire_types = (0..n)
            .map(|i| {
                types.get(i).cloned().flatten().filter(|t| *t != Type::UNKNOWN).unwrap_or_else(|| {
                    described.parameters.get(i).cloned().flatten().map(|d| encode::pg_type(&d)).unwrap_or(Type::TEXT)
                })
            })
            .collect();
        let mut engine_types = described.parameters;
        engine_types.resize(n, None);
        Ok(Some(Arc::new(Prepared { statement, wire_types, engine_types, schema: described.schema })))
    }

    fn get_parameter_types(&self, stmt: &Arc<Prepared>) -> PgWireResult<Vec<Type>> {
        Ok(stmt.wire_types.clone())
    }

    fn get_result_schema(&self, stmt: &Arc<Prepared>, formats: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(encode::fields(&stmt.schema, formats.unwrap_or(&Format::UnifiedText)))
    }
}

/// Decodes `$i+1` of `portal` as `wire` and converts it to the type the engine expects.
fn parameter(portal: &Portal<Arc<Prepared>>, i: usize) -> PgWireResult<ScalarValue> {
    let stmt = &portal.statement.statement;
    let wire = stmt.wire_types.get(i).cloned().unwrap_or(Type::TEXT);
    let value = match wire {
        Type::BOOL => ScalarValue::Boolean(portal.parameter::<bool>(i, &wire)?),
        Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(i, &wire)?),
        Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(i, &wire)?),
        Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(i, &wire)?),
        Type::FLOAT4 => ScalarValue::Float32(portal.parameter::<f32>(i, &wire)?),
        Type::FLOAT8 => ScalarValue::Float64(portal.parameter::<f64>(i, &wire)?),
        // rust_decimal's 96-bit mantissa fits in 38 digits; its scale is at most 28.
        Type::NUMERIC => match portal.parameter::<rust_decimal::Decimal>(i, &wire)? {
            Some(d) => ScalarValue::Decimal128(Some(d.mantissa()), 38, d.scale() as i8),
            None => ScalarValue::Decimal128(None, 38, 0),
        },
        Type::DATE => ScalarValue::Date32(portal.parameter::<chrono::NaiveDate>(i, &wire)?.map(encode::days_from_date)),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            portal.parameter::<chrono::DateTime<chrono::FixedOffset>>(i, &wire)?.map(|t| t.timestamp_micros()),
            Some("UTC".into()),
        ),
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            portal.parameter::<chrono::NaiveDateTime>(i, &wire)?.map(|t| t.and_utc().timestamp_micros()),
            None,
        ),
        _ => ScalarValue::Utf8(portal.parameter::<String>(i, &wire)?),
    };
    match stmt.engine_types.get(i).cloned().flatten() {
        Some(expected) if expected != value.data_type() => value.cast_to(&expected).map_err(|e| {
            error("22P02", format!("parameter ${}: cannot use a {} value as {expected}: {e}", i + 1, wire.name()))
        }),
        _ => Ok(value),
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Arc<Prepared>;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Arc<Prepared>>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let login = login(&self.conn)?;
        let parameters = (0..portal.parameter_len()).map(|i| parameter(portal, i)).collect::<PgWireResult<Vec<_>>>()?;
        let cancel = self.conn.statement_started();
        let outcome =
            login.session.execute(&portal.statement.statement.statement, parameters).await.map_err(engine_error)?;
        apply(client, &outcome);
        Ok(response(outcome, &portal.result_column_format, self.conn.shared.engine.statement_timeout(), cancel))
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Arc<Prepared>>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let stmt = &target.statement;
        Ok(DescribeStatementResponse::new(stmt.wire_types.clone(), encode::fields(&stmt.schema, &Format::UnifiedText)))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Arc<Prepared>>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(DescribePortalResponse::new(encode::fields(
            &portal.statement.statement.schema,
            &portal.result_column_format,
        )))
    }
}

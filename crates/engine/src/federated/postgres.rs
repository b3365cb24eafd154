//! Reaching a PostgreSQL source (S24): a TCP connection to the address the egress guard
//! approved, TLS over it with the server's certificate checked against the configured host
//! name (not the address), and a login that never sends the password itself.
//!
//! ```text
//!   TcpStream to the approved IP ──▶ Guarded (refuses a request for the password in clear
//!   text or MD5 before the driver can answer it) ──▶ TLS (rustls: verify-full checks the
//!   certificate for the host name; require takes any) ──▶ Guarded again inside TLS
//!   ──▶ tokio-postgres: SCRAM-SHA-256, bound to the TLS channel where the server offers it
//! ```
//!
//! The driver answers whatever authentication the server asks for, so the refusal is in the
//! stream: until the server says the login succeeded, every message it sends is read here first.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use burnrate_core::{DatabaseConfig, DatabaseTls};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_postgres::config::{ChannelBinding, SslMode};

use super::tls::SourceTls;

/// The PostgreSQL protocol's SSLRequest code.
const SSL_REQUEST: [u8; 4] = 80_877_103u32.to_be_bytes();
/// Authentication request codes: cleartext password, MD5 password, and "login succeeded".
const AUTH_CLEARTEXT: u32 = 3;
const AUTH_MD5: u32 = 5;
const AUTH_OK: u32 = 0;

/// Logs in to `config`'s database at `addr` (what its host resolved to and the guard approved)
/// as `config.user` with `password`.
pub(super) async fn connect(addr: SocketAddr, config: &DatabaseConfig, password: &str) -> Result<Connected, String> {
    let tls = SourceTls::new(config)?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let mut options = tokio_postgres::Config::new();
    options
        .user(&config.user)
        .password(password)
        .dbname(&config.database)
        .application_name("burnrate")
        .ssl_mode(match config.tls {
            DatabaseTls::VerifyFull | DatabaseTls::Require => SslMode::Require,
            DatabaseTls::Prefer => SslMode::Prefer,
        })
        // Unverified TLS: SCRAM bound to the channel, so a machine in the middle with a
        // certificate of its own cannot relay the login.
        .channel_binding(match config.tls {
            DatabaseTls::Require => ChannelBinding::Require,
            DatabaseTls::VerifyFull | DatabaseTls::Prefer => ChannelBinding::Prefer,
        });
    let (client, connection) = options.connect_raw(Guarded::new(tcp, true), tls).await.map_err(|e| describe(&e))?;
    let connection = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database source connection ended with an error");
        }
    });
    Ok(Connected { client, connection })
}

/// A logged-in connection. Dropped, it closes at once — the driver's own task would wait for
/// the answer to a statement still running (a view that sleeps) before letting the socket go.
pub(super) struct Connected {
    pub(super) client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// A driver error in words that hold no connection option.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_owned();
    }
    // The cause says what went wrong (a refused certificate, our refusal of a cleartext
    // request); the driver's own words around it say where.
    let mut words = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        words = format!("{words}: {c}");
        cause = c.source();
    }
    words
}

impl<S> tokio_postgres::tls::TlsConnect<S> for SourceTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.connect(stream).await?;
            // tls-server-end-point (RFC 5929): the hash of the certificate the server showed.
            let binding = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|cert| sha2::Sha256::digest(cert.as_ref()).to_vec());
            Ok(TlsStream { inner: Guarded::new(tls, false), binding })
        })
    }
}

/// A TLS connection to a source, read through [`Guarded`] until the login succeeds.
pub(super) struct TlsStream<S> {
    inner: Guarded<tokio_rustls::client::TlsStream<S>>,
    binding: Option<Vec<u8>>,
}

impl<S> tokio_postgres::tls::TlsStream for TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        match &self.binding {
            Some(hash) => tokio_postgres::tls::ChannelBinding::tls_server_end_point(hash.clone()),
            None => tokio_postgres::tls::ChannelBinding::none(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where a [`Guarded`] stream is in the server's messages.
#[derive(Debug, PartialEq, Eq)]
enum Watch {
    /// The first thing the client sends decides what the server's first bytes are.
    ClientFirst,
    /// The one-byte answer to an SSLRequest: `S` (TLS follows, watched inside it) or `N`.
    SslAnswer,
    /// Reading message headers (type, length) and, of an authentication request, its code.
    Messages,
    /// Transparent: the login succeeded, or TLS took over the bytes.
    Done,
}

/// A stream whose server messages are read until the login succeeds, and which fails the read
/// that carries a request for the password in clear text or MD5 — before the driver sees it.
pub(super) struct Guarded<S> {
    inner: S,
    watch: Watch,
    /// The current message's header (type and length) and first four bytes, as they arrive.
    header: Vec<u8>,
    /// Bytes of the current message's body still to pass.
    skip: usize,
}

impl<S> Guarded<S> {
    /// `raw`: the TCP stream, where an SSLRequest may come first; else the inside of TLS.
    fn new(inner: S, raw: bool) -> Self {
        Self { inner, watch: if raw { Watch::ClientFirst } else { Watch::Messages }, header: Vec::new(), skip: 0 }
    }

    /// Reads `bytes` from the server; an error when they ask for the password itself.
    fn inspect(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.watch {
                Watch::Done | Watch::ClientFirst => return Ok(()),
                Watch::SslAnswer => {
                    self.watch = if rest[0] == b'S' { Watch::Done } else { Watch::Messages };
                    rest = &rest[1..];
                }
                Watch::Messages if self.skip > 0 => {
                    let n = self.skip.min(rest.len());
                    self.skip -= n;
                    rest = &rest[n..];
                }
                Watch::Messages => {
                    // Type (1), length (4), and for 'R' its code (4).
                    let wanted = if self.header.first() == Some(&b'R') { 9 } else { 5 };
                    let n = (wanted - self.header.len()).min(rest.len());
                    self.header.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    if self.header.len() < wanted {
                        continue;
                    }
                    let length = u32::from_be_bytes(self.header[1..5].try_into().expect("four bytes")) as usize;
                    if self.header[0] == b'R' && wanted == 5 {
                        // Read the code as well before deciding.
                        continue;
                    }
                    if self.header[0] == b'R' {
                        let code = u32::from_be_bytes(self.header[5..9].try_into().expect("four bytes"));
                        match code {
                            AUTH_CLEARTEXT | AUTH_MD5 => {
                                return Err(io::Error::new(
                                    io::ErrorKind::PermissionDenied,
                                    format!(
                                        "the server asked for the password {}; burnrate logs in by SCRAM only and sent nothing",
                                        if code == AUTH_MD5 { "as an MD5 hash" } else { "in clear text" }
                                    ),
                                ));
                            }
                            AUTH_OK => {
                                self.watch = Watch::Done;
                                return Ok(());
                            }
                            _ => {}
                        }
                        self.skip = length.saturating_sub(8);
                    } else {
                        self.skip = length.saturating_sub(4);
                    }
                    self.header.clear();
                }
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read
            && self.watch != Watch::Done
        {
            let fresh = buf.filled()[before..].to_vec();
            self.inspect(&fresh)?;
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.watch == Watch::ClientFirst && !buf.is_empty() {
            let ssl_request = buf.len() >= 8 && buf[4..8] == SSL_REQUEST;
            self.watch = if ssl_request { Watch::SslAnswer } else { Watch::Messages };
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(code: u32) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend_from_slice(&8u32.to_be_bytes());
        m.extend_from_slice(&code.to_be_bytes());
        m
    }

    #[test]
    fn a_request_for_the_password_in_clear_or_md5_is_refused_however_the_bytes_arrive() {
        for code in [AUTH_CLEARTEXT, AUTH_MD5] {
            // After a refused SSLRequest ('N'), a notice first, then the request, byte by byte.
            let mut g = Guarded::new((), true);
            g.watch = Watch::SslAnswer;
            let mut bytes = vec![b'N', b'N'];
            bytes.extend_from_slice(&9u32.to_be_bytes());
            bytes.extend_from_slice(b"hello");
            bytes.extend(auth(code));
            let refused = bytes.iter().try_for_each(|b| g.inspect(&[*b]));
            let e = refused.expect_err("refused");
            assert!(e.to_string().contains("burnrate logs in by SCRAM only and sent nothing"), "{e}");
        }
        // SCRAM, then success: from there on nothing is read.
        let mut g = Guarded::new((), false);
        let mut sasl = vec![b'R'];
        sasl.extend_from_slice(&23u32.to_be_bytes());
        sasl.extend_from_slice(&10u32.to_be_bytes());
        sasl.extend_from_slice(b"SCRAM-SHA-256\0\0");
        g.inspect(&sasl).unwrap();
        g.inspect(&auth(AUTH_OK)).unwrap();
        assert_eq!(g.watch, Watch::Done);
        g.inspect(&auth(AUTH_CLEARTEXT)).unwrap();
        // TLS accepted: the raw stream stops reading.
        let mut g = Guarded::new((), true);
        g.watch = Watch::SslAnswer;
        g.inspect(b"S\x16\x03\x03").unwrap();
        assert_eq!(g.watch, Watch::Done);
    }
}

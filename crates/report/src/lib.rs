//! Error reports and logs without secrets (S19).
//!
//! burnrate never logs a secret on purpose (S2), but error text is not always ours: a provider's
//! error message may echo the key it was sent, a database driver may quote a connection string.
//! So everything that leaves the process — Sentry events and breadcrumbs, and the log lines on
//! standard error — passes [`scrub`] first: keys of the known shapes, bearer tokens, cookies,
//! credentials written as `name=value`, private keys, query strings and email addresses are
//! replaced by a marker saying what was there.
//!
//! Sentry is optional (`BURNRATE_SENTRY_DSN`). Events travel through the workspace's own HTTP
//! client on the async runtime, after the scrubber has rewritten them; fields that only ever hold
//! secrets or personal data (cookies, query strings, user emails and addresses, authorization
//! headers) are dropped whole.

mod scrub;
mod sentry_client;

pub use scrub::{scrub, scrub_json};
pub use sentry_client::{Reporter, ReporterError, sentry_layer};

/// A `MakeWriter` for the log formatter: each log line is scrubbed before it reaches `W`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScrubbedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedLine;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedLine(Vec::new())
    }
}

/// One formatted log event, held until it is complete so a secret split across writes is still
/// seen whole, then scrubbed and written to standard error in one call.
pub struct ScrubbedLine(Vec<u8>);

impl std::io::Write for ScrubbedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine {
    fn drop(&mut self) {
        use std::io::Write as _;
        let line = String::from_utf8_lossy(&self.0);
        let _ = std::io::stderr().lock().write_all(scrub(&line).as_bytes());
    }
}

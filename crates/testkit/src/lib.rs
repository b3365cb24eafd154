//! Test harness for burnrate's integration suite.
//!
//! - [`TestApp`]: the real application on a random loopback port, over a temporary SQLite file or
//!   a throw-away PostgreSQL database (roles and RLS as in production) — chosen by
//!   `BURNRATE_TEST_BACKEND` (`sqlite`, the default, or `postgres` with `BURNRATE_TEST_PG_URL`
//!   naming a superuser connection to a disposable cluster, as `scripts/test` starts).
//! - [`SmtpSink`]: a real SMTP server that keeps what it receives.
//! - [`TestClient`]: an HTTP client that keeps cookies the way a browser does and fills in CSRF.
//! - [`Browser`]: headless Chromium through chromedriver.

mod app;
mod browser;
mod client;
mod smtp;

pub use app::{AppOptions, Authenticator, TestApp, TestOperator};
pub use browser::Browser;
pub use burnrate_store::testing::{BackendKind, TestDb};
pub use client::{Response, TestClient};
pub use smtp::{ReceivedMail, SmtpSink};

/// A password that passes the policy, for tests that need one.
pub const GOOD_PASSWORD: &str = "violet tractor ocean whisper 42";

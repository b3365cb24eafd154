//! Outbound HTTP for everything burnrate calls: provider billing APIs now, webhooks and database
//! hosts later.
//!
//! - [`EgressGuard`] (S14): only public addresses, unless the operator allow-lists a network
//!   (`BURNRATE_EGRESS_ALLOW`). It checks the URL when it is saved and again on every address the
//!   name resolves to when dialling — the resolver *is* the check, so a name that turns private
//!   between the two (DNS rebinding) is refused.
//! - [`HttpClient`]: the one client factory. No proxies from the environment (a proxy would resolve
//!   names itself, around the guard), no redirects, connect and total timeouts, a response-size
//!   cap, and retries with exponential backoff and jitter that honour `Retry-After`.

mod client;
mod guard;
mod tls;

pub use client::{ClientOptions, FetchError, HttpClient, Lookup, Reply};
pub use guard::{EgressError, EgressGuard, Network};
pub use tls::ServerTls;

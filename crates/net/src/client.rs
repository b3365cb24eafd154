//! The one outbound HTTP client.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::Rng;
use reqwest::header::HeaderMap;

use crate::{EgressError, EgressGuard};

#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// For one attempt, headers and body.
    pub timeout: Duration,
    pub max_body_bytes: usize,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    /// The longest wait between attempts, also for a `Retry-After` that asks for more.
    pub max_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_body_bytes: 32 << 20,
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// A response, after retries: the caller decides what a status means for its provider.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// How many attempts it took.
    pub attempts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Egress(#[from] EgressError),
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("no answer after {attempts} attempts: {last}")]
    Unreachable { attempts: u32, last: String },
}

/// A connection pool by the reach it serves and the port it dials.
type Pools = HashMap<(Arc<str>, u16), reqwest::Client>;

#[derive(Clone)]
pub struct HttpClient {
    /// One connection pool a destination port: a resolver sees only the name it resolves, and an
    /// allow-list entry may open one port of a private address, so each pool's resolver checks
    /// the addresses it returns for its own port.
    pools: Arc<std::sync::Mutex<Pools>>,
    guard: Arc<EgressGuard>,
    /// What the guard reaches beyond what every organization does, in words: clients of the
    /// same reach share their pools, and no pool serves two reaches.
    reach: Arc<str>,
    opts: ClientOptions,
    lookup: Arc<dyn Lookup>,
}

/// More distinct ports and reaches than an instance calls at once (each pool holds its idle
/// connections): past this, the pools are dropped and made again as needed.
const MAX_POOLS: usize = 256;

/// How names become addresses. The system's resolver in production; tests put in one that
/// changes its answer between two lookups (DNS rebinding).
pub trait Lookup: Send + Sync + std::fmt::Debug {
    fn lookup(&self, host: &str) -> futures::future::BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The system's resolver.
#[derive(Debug)]
struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> futures::future::BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let host = host.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect()) })
    }
}

/// `host`'s addresses, each allowed by `guard` on `port`, or why not.
async fn resolve_allowed(
    lookup: &dyn Lookup,
    guard: &EgressGuard,
    host: &str,
    port: u16,
) -> Result<Vec<IpAddr>, EgressError> {
    // A name that does not resolve is said so, not reported as a failed connection.
    let addrs = lookup.lookup(host).await.map_err(|_| EgressError::Unresolvable(host.to_owned()))?;
    guard.check_answer(host, &addrs, port)?;
    Ok(addrs)
}

/// Resolves names for the pool of one destination port and refuses the whole answer if any
/// address is not allowed on it: the addresses checked are the addresses dialled.
struct GuardedResolver {
    guard: Arc<EgressGuard>,
    lookup: Arc<dyn Lookup>,
    port: u16,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (guard, lookup, port) = (Arc::clone(&self.guard), Arc::clone(&self.lookup), self.port);
        Box::pin(async move {
            let addrs = resolve_allowed(lookup.as_ref(), &guard, name.as_str(), port)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter().map(move |ip| SocketAddr::new(ip, port))) as reqwest::dns::Addrs)
        })
    }
}

fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// How long the server asked us to wait: the longest of `retry-after-ms`, `Retry-After` and
/// any `…-retry-after` header in seconds (Azure sends several of its own, e.g.
/// `x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after`, beside a standard one that may say
/// less).
fn asked_wait(headers: &HeaderMap) -> Option<Duration> {
    let ms = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|ms| Duration::from_millis(ms as u64));
    let secs = headers
        .iter()
        .filter(|(name, _)| name.as_str() == "retry-after" || name.as_str().ends_with("-retry-after"))
        .filter_map(|(_, v)| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    ms.into_iter().chain(secs).max()
}

impl HttpClient {
    pub fn new(guard: EgressGuard, opts: ClientOptions) -> Self {
        Self::with_lookup(guard, opts, Arc::new(SystemLookup))
    }

    /// A client resolving names through `lookup` (tests).
    pub fn with_lookup(guard: EgressGuard, opts: ClientOptions, lookup: Arc<dyn Lookup>) -> Self {
        Self { pools: Arc::default(), guard: Arc::new(guard), reach: Arc::from(""), opts, lookup }
    }

    /// The client of an organization granted `grants` (as stored), sharing this one's pools
    /// with every client of the same reach.
    pub fn granted<S: AsRef<str>>(&self, grants: &[S]) -> Result<Self, EgressError> {
        if grants.is_empty() {
            return Ok(self.clone());
        }
        let guard = self.guard.granted(grants)?;
        let mut key: Vec<&str> = grants.iter().map(AsRef::as_ref).collect();
        key.sort_unstable();
        Ok(Self { guard: Arc::new(guard), reach: Arc::from(key.join(",")), ..self.clone() })
    }

    /// The pool that dials `url`'s port, its resolver checking every address for that port.
    fn pool(&self, url: &url::Url) -> reqwest::Client {
        let port = url.port_or_known_default().unwrap_or(443);
        let mut pools = self.pools.lock().expect("no panic holds the pools");
        let key = (Arc::clone(&self.reach), port);
        if !pools.contains_key(&key) && pools.len() >= MAX_POOLS {
            pools.clear();
        }
        pools
            .entry(key)
            .or_insert_with(|| {
                let resolver =
                    GuardedResolver { guard: Arc::clone(&self.guard), lookup: Arc::clone(&self.lookup), port };
                reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(self.opts.connect_timeout)
                    .timeout(self.opts.timeout)
                    .user_agent(concat!("burnrate/", env!("CARGO_PKG_VERSION")))
                    .dns_resolver(Arc::new(resolver))
                    .build()
                    .expect("a client with these settings always builds")
            })
            .clone()
    }

    /// The check when a destination is saved: the URL's form ([`EgressGuard::check_url`]) and,
    /// for a name, every address it resolves to now, on the URL's port. The dial checks again what
    /// it resolves then.
    pub async fn check_destination(&self, raw: &str) -> Result<url::Url, EgressError> {
        let url = self.guard.check_url(raw)?;
        if let Some(url::Host::Domain(name)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            resolve_allowed(self.lookup.as_ref(), &self.guard, name, port).await?;
        }
        Ok(url)
    }

    pub fn guard(&self) -> &EgressGuard {
        &self.guard
    }

    fn backoff(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let wait = asked.unwrap_or_else(|| {
            let exp = self.opts.base_backoff.saturating_mul(1 << attempt.min(16));
            // Full jitter keeps many clients from retrying in step.
            exp.mul_f64(rand::thread_rng().gen_range(0.5..1.0))
        });
        wait.min(self.opts.max_backoff)
    }

    async fn read_capped(&self, mut resp: reqwest::Response) -> Result<Bytes, String> {
        if resp.content_length().is_some_and(|n| n as usize > self.opts.max_body_bytes) {
            return Err("too large".into());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > self.opts.max_body_bytes {
                return Err("too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// POSTs `body` to `url` with `headers`, once: whoever delivers decides about retrying (a
    /// webhook delivery retries from the job queue, so a restart loses nothing). The URL is
    /// checked again here, and the address dialled by the resolver.
    pub async fn post_once(
        &self,
        url: &url::Url,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, FetchError> {
        self.guard.check_url(url.as_str())?;
        match self.attempt(reqwest::Method::POST, url, headers, Some(&Bytes::from(body))).await? {
            Ok((status, headers, body)) => Ok(Reply { status, headers, body, attempts: 1 }),
            Err(last) => Err(FetchError::Unreachable { attempts: 1, last }),
        }
    }

    /// One request and its whole response, within the size cap. `Ok(Err(why))` is a failure
    /// worth trying again (no answer, or an answer cut off); `Err` is final.
    async fn attempt(
        &self,
        method: reqwest::Method,
        url: &url::Url,
        headers: &[(&str, &str)],
        body: Option<&Bytes>,
    ) -> Result<Result<(u16, reqwest::header::HeaderMap, Bytes), String>, FetchError> {
        let mut req = self.pool(url).request(method, url.clone());
        if let Some(body) = body {
            req = req.body(body.clone());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            // The guard refusing a resolved address is final, not worth retrying.
            Err(e) => return Ok(Err(send_failure(&e)?.into())),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        match self.read_capped(resp).await {
            Ok(body) => Ok(Ok((status, headers, body))),
            Err(e) if e == "too large" => Err(FetchError::TooLarge(self.opts.max_body_bytes)),
            Err(e) => Ok(Err(format!("reading the response: {e}"))),
        }
    }

    /// GETs `url` with `headers`, retrying throttling, server errors and broken connections.
    pub async fn get(&self, url: &url::Url, headers: &[(&str, &str)]) -> Result<Reply, FetchError> {
        self.read(reqwest::Method::GET, url, headers, None).await
    }

    /// POSTs `body` to an API whose reads are POSTs (AWS Cost Explorer, BigQuery), retrying as
    /// [`HttpClient::get`] does: the request changes nothing, so sending it again is safe.
    pub async fn post_read(&self, url: &url::Url, headers: &[(&str, &str)], body: Bytes) -> Result<Reply, FetchError> {
        self.read(reqwest::Method::POST, url, headers, Some(body)).await
    }

    async fn read(
        &self,
        method: reqwest::Method,
        url: &url::Url,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<Reply, FetchError> {
        self.guard.check_url(url.as_str())?;
        let mut last = String::new();
        for attempt in 0..self.opts.max_attempts {
            match self.attempt(method.clone(), url, headers, body.as_ref()).await? {
                Ok((status, resp_headers, body)) => {
                    if retryable(status) && attempt + 1 < self.opts.max_attempts {
                        let wait = self.backoff(attempt, asked_wait(&resp_headers));
                        tracing::info!(%status, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, host = url.host_str().unwrap_or(""), "retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Ok(Reply { status, headers: resp_headers, body, attempts: attempt + 1 });
                }
                Err(why) => {
                    last = why;
                    if attempt + 1 < self.opts.max_attempts {
                        tokio::time::sleep(self.backoff(attempt, None)).await;
                    }
                }
            }
        }
        Err(FetchError::Unreachable { attempts: self.opts.max_attempts, last })
    }
}

/// Why a request got no response: the egress guard refusing the address it resolved to (final),
/// or a network failure in words.
fn send_failure(e: &reqwest::Error) -> Result<&'static str, EgressError> {
    if let Some(egress) = std::error::Error::source(e).and_then(find_egress) {
        return Err(egress);
    }
    Ok(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    })
}

fn find_egress(mut err: &(dyn std::error::Error + 'static)) -> Option<EgressError> {
    loop {
        if let Some(e) = err.downcast_ref::<EgressError>() {
            return Some(e.clone());
        }
        err = err.source()?;
    }
}

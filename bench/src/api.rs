//! `api`: the HTTP API under load, beside a bare axum "hello" on the same machine, in the same
//! run. `wrk` (Debian's package) drives each target at the same concurrency for the same time,
//! the targets alternating, and reports throughput and latency:
//!
//! - anchor: a bare axum "hello" (this binary's `hello`, its own process, tokio's multi-threaded
//!   runtime as `burnrate serve` runs);
//! - `GET /healthz` of `burnrate serve`: the whole middleware stack (request ids, security
//!   headers, metrics, access log) and no work;
//! - `GET /api/v1/org` with an API key: authentication (the key's hash looked up in the store),
//!   the per-address and per-key limits (checked; raised so that they are never reached), the
//!   organization read in its scope, JSON.

use std::io::BufRead;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::year::Year;

/// wrk's threads and connections.
const THREADS: u32 = 2;
const CONNECTIONS: u32 = 32;

/// What one wrk run measured.
#[derive(Clone, Copy)]
pub struct Load {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `12.34us`, `1.20ms`, `2.00s` in milliseconds.
fn wrk_ms(v: &str) -> anyhow::Result<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).with_context(|| format!("a duration: {v:?}"))?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().with_context(|| format!("a duration: {v:?}"))?;
    Ok(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => bail!("a duration: {v:?}"),
    })
}

fn wrk(url: &str, api_key: Option<&str>, seconds: u32) -> anyhow::Result<Load> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t", &THREADS.to_string(), "-c", &CONNECTIONS.to_string(), "-d", &format!("{seconds}s"), "--latency"]);
    if let Some(key) = api_key {
        cmd.args(["-H", &format!("Authorization: Bearer {key}")]);
    }
    let out = cmd.arg(url).output().context("wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk {url} failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    // Every response must be a success: a refusal is cheaper than an answer and would flatter us.
    if let Some(line) = text.lines().find(|l| l.contains("Non-2xx or 3xx responses") || l.contains("Socket errors")) {
        bail!("wrk {url}: {}", line.trim());
    }
    let field = |prefix: &str| -> anyhow::Result<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
            .with_context(|| format!("no {prefix:?} in wrk's output: {text}"))
    };
    Ok(Load {
        rps: field("Requests/sec:")?.parse().context("Requests/sec")?,
        p50_ms: wrk_ms(field("50%")?)?,
        p99_ms: wrk_ms(field("99%")?)?,
    })
}

/// `hello`: a bare axum server answering `GET /` with "hello"; prints its address, serves until
/// its standard input closes.
pub async fn hello() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("http://{}/", listener.local_addr()?);
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().lock().read_line(&mut line).is_ok_and(|n| n > 0) {}
    })
    .await?;
    server.abort();
    Ok(())
}

/// The three targets' medians over `rounds` alternating wrk runs of `seconds`: (bare axum,
/// `/healthz`, `/api/v1/org`).
pub async fn measure(year: &Year, seconds: u32, rounds: usize) -> anyhow::Result<[Load; 3]> {
    let mut anchor = Command::new(std::env::current_exe()?)
        .arg("hello")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("the bare axum server")?;
    let mut hello_url = String::new();
    std::io::BufReader::new(anchor.stdout.take().context("stdout")?).read_line(&mut hello_url)?;
    let hello_url = hello_url.trim().to_owned();
    let org = format!("{}/api/v1/org", year.base);
    let probe = reqwest::Client::builder().no_proxy().build()?;
    let r = probe.get(&org).bearer_auth(&year.api_key).send().await?;
    if !r.status().is_success() {
        bail!("GET /api/v1/org: {} {}", r.status(), r.text().await.unwrap_or_default());
    }
    let targets: [(&str, Option<&str>); 3] =
        [(&hello_url, None), (&format!("{}/healthz", year.base), None), (&org, Some(&year.api_key))];
    let mut runs: [Vec<Load>; 3] = Default::default();
    for round in 1..=rounds {
        for (i, (url, key)) in targets.iter().enumerate() {
            eprintln!("wrk round {round}/{rounds}: {url} ({CONNECTIONS} connections, {seconds} s)…");
            runs[i].push(wrk(url, *key, seconds)?);
        }
    }
    drop(anchor.stdin.take());
    let _ = anchor.wait();
    Ok(runs.map(|loads| {
        let pick = |f: fn(&Load) -> f64| crate::median(loads.iter().map(f).collect());
        Load { rps: pick(|l| l.rps), p50_ms: pick(|l| l.p50_ms), p99_ms: pick(|l| l.p99_ms) }
    }))
}

pub const CONCURRENCY: &str = "wrk -t2 -c32";

/// `api [ROWS]`: the API benchmark alone, over a year of ROWS cost lines (the data matters only
/// to the start-up evaluation; the targets read the organization, not the lake).
pub async fn api(binary: &str, rows: u64) -> anyhow::Result<()> {
    let year = Year::serve(binary, rows, "UTC").await?;
    let [hello, healthz, org] = measure(&year, crate::report::API_SECONDS, crate::report::API_ROUNDS).await?;
    for (name, load) in [("bare axum", hello), ("GET /healthz", healthz), ("GET /api/v1/org", org)] {
        println!(
            "{name:<16} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>7.2} ms  {:>3.0} % of bare axum",
            load.rps,
            load.p50_ms,
            load.p99_ms,
            load.rps / hello.rps * 100.0
        );
    }
    println!(
        "burnrate serve resident: {} MiB idle ({} MiB its own, the rest the binary's pages), {} MiB now",
        year.idle_rss_kib >> 10,
        year.idle_anon_kib >> 10,
        year.server_kib("VmRSS") >> 10
    );
    Ok(())
}

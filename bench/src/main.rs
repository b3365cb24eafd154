//! burnrate benchmarks. Run on purpose, never in CI, against a release build: `bench/run` builds
//! it, installs what the anchors need and runs `all` (every benchmark, one table appended to
//! `bench/RESULTS.md`); `bench/run NAME …` runs one.
//!
//! `login-vs-healthz`: does a burst of logins starve the server? It starts the real
//! `burnrate serve` (SQLite, loopback) as its own process, creates 50 accounts with
//! `burnrate user create`, then measures `/healthz` latency twice in the same run: idle (the
//! anchor), and while 50 clients log in to 50 distinct accounts in a loop. The per-IP login limit
//! is raised in this instance's configuration, so logins are not refused (the per-account limit is
//! not touched and is far from being reached at this rate). bcrypt runs on its own small pool, so
//! the target is a p99 under 20 ms.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

mod alerts;
mod api;
mod dashboards;
mod fairness;
mod ingest;
mod otlp;
mod pricing;
mod report;
mod wire;
mod year;

const ACCOUNTS: usize = 50;
const PASSWORD: &str = "bench mark lantern orchard 77";
const SAMPLE_SECONDS: u64 = 15;

/// A memory figure of process `pid` (`self` for this one) from `/proc/<pid>/status`, in KiB:
/// `VmRSS` (resident now), `VmHWM` (the peak) or `RssAnon` (resident, not from a file). 0 where it cannot be read.
fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Runs `script` (Python, reading `job` as JSON on its standard input) with the DuckDB package
/// and returns the JSON object it prints on each line.
async fn duckdb_lines(script: &str, job: &serde_json::Value) -> anyhow::Result<Vec<serde_json::Value>> {
    let python = std::env::var("BURNRATE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut duck = tokio::process::Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("{python} (BURNRATE_BENCH_PYTHON: a Python with the duckdb package)"))?;
    {
        use tokio::io::AsyncWriteExt;
        duck.stdin.take().context("stdin")?.write_all(job.to_string().as_bytes()).await?;
    }
    let out = duck.wait_with_output().await?;
    if !out.status.success() {
        bail!("DuckDB's run failed");
    }
    String::from_utf8(out.stdout)?.lines().map(|line| Ok(serde_json::from_str(line)?)).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

fn summarize(mut v: Vec<Duration>) -> Summary {
    v.sort();
    Summary {
        n: v.len(),
        p50: percentile(&v, 0.50),
        p99: percentile(&v, 0.99),
        max: *v.last().unwrap_or(&Duration::ZERO),
    }
}

/// Hits /healthz one request after another for `seconds`, returning every latency.
async fn sample_healthz(client: &reqwest::Client, base: &str, seconds: u64) -> anyhow::Result<Vec<Duration>> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut out = Vec::new();
    while Instant::now() < until {
        let t = Instant::now();
        let r = client.get(format!("{base}/healthz")).send().await?;
        r.bytes().await?;
        out.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(out)
}

fn csrf_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-burnrate_csrf="))
        .and_then(|c| c.split(';').next())
        .map(|kv| kv.trim_start_matches("__Host-burnrate_csrf=").to_owned())
}

async fn login_loop(
    client: reqwest::Client,
    base: String,
    email: String,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
) {
    let Ok(page) = client.get(format!("{base}/login")).send().await else { return };
    let Some(csrf) = csrf_cookie(&page) else { return };
    while !stop.load(Ordering::Relaxed) {
        let r = client
            .post(format!("{base}/login"))
            .header("cookie", format!("__Host-burnrate_csrf={csrf}"))
            .header("origin", &base)
            .form(&[("email", email.as_str()), ("password", PASSWORD), ("csrf", csrf.as_str())])
            .send()
            .await;
        match r {
            Ok(r) if r.status().as_u16() == 303 => ok.fetch_add(1, Ordering::Relaxed),
            _ => bad.fetch_add(1, Ordering::Relaxed),
        };
    }
}

async fn login_vs_healthz(binary: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let keys = std::process::Command::new(binary)
        .args(["keys", "generate"])
        .output()
        .context("running burnrate keys generate")?;
    let keys = String::from_utf8(keys.stdout)?.trim().to_owned();
    let env = |cmd: &mut tokio::process::Command| {
        cmd.env("BURNRATE_DATA_DIR", dir.path())
            .env("BURNRATE_MASTER_KEYS", &keys)
            .env("BURNRATE_HTTP_ADDR", format!("127.0.0.1:{port}"))
            // Beside whatever else runs here (a demo on the defaults): ports the system picks.
            .env("BURNRATE_PG_ADDR", "127.0.0.1:0")
            .env("BURNRATE_METRICS_ADDR", "127.0.0.1:0")
            .env("BURNRATE_OTLP_ADDR", "127.0.0.1:0")
            .env("BURNRATE_PUBLIC_URL", &base)
            .env("BURNRATE_LOGIN_RATE_PER_IP", "1000000")
            .env("RUST_LOG", "warn");
    };
    eprintln!("creating {ACCOUNTS} accounts…");
    for i in 0..ACCOUNTS {
        let mut cmd = tokio::process::Command::new(binary);
        // The first account creates the organization; the others join it.
        let role = if i == 0 { "owner" } else { "member" };
        cmd.args([
            "user",
            "create",
            "--org",
            "Bench",
            "--email",
            &format!("user{i}@bench.example"),
            "--role",
            role,
            "--password-stdin",
        ]);
        env(&mut cmd);
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).spawn()?;
        use tokio::io::AsyncWriteExt;
        child.stdin.take().context("stdin")?.write_all(PASSWORD.as_bytes()).await?;
        if !child.wait().await?.success() {
            bail!("burnrate user create failed for account {i}");
        }
    }
    let mut cmd = tokio::process::Command::new(binary);
    cmd.arg("serve");
    env(&mut cmd);
    let mut server = cmd.stdout(Stdio::null()).kill_on_drop(true).spawn()?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()?;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    eprintln!("idle: sampling /healthz for {SAMPLE_SECONDS} s…");
    let idle = summarize(sample_healthz(&client, &base, SAMPLE_SECONDS).await?);

    eprintln!("loaded: {ACCOUNTS} concurrent login loops, sampling /healthz for {SAMPLE_SECONDS} s…");
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut loops = Vec::new();
    for i in 0..ACCOUNTS {
        let c = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build()?;
        loops.push(tokio::spawn(login_loop(
            c,
            base.clone(),
            format!("user{i}@bench.example"),
            stop.clone(),
            ok.clone(),
            bad.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let ok_before = ok.load(Ordering::Relaxed);
    let loaded = summarize(sample_healthz(&client, &base, SAMPLE_SECONDS).await?);
    let logins = ok.load(Ordering::Relaxed) - ok_before;
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        let _ = l.await;
    }
    server.kill().await.ok();

    println!("login-vs-healthz: {ACCOUNTS} concurrent login loops, {} cores", cores());
    println!("{:<28} {:>8} {:>10} {:>10} {:>10}", "/healthz latency", "samples", "p50 ms", "p99 ms", "max ms");
    println!(
        "{:<28} {:>8} {:>10.2} {:>10.2} {:>10.2}",
        "idle (anchor)",
        idle.n,
        ms(idle.p50),
        ms(idle.p99),
        ms(idle.max)
    );
    println!(
        "{:<28} {:>8} {:>10.2} {:>10.2} {:>10.2}",
        "during logins",
        loaded.n,
        ms(loaded.p50),
        ms(loaded.p99),
        ms(loaded.max)
    );
    println!("ratio loaded/idle: p50 {:.1}x, p99 {:.1}x", ms(loaded.p50) / ms(idle.p50), ms(loaded.p99) / ms(idle.p99));
    println!(
        "logins completed: {logins} in {secs:.1} s ({:.1}/s); failed or refused: {}",
        logins as f64 / secs,
        bad.load(Ordering::Relaxed)
    );
    println!("target: p99 during logins < 20 ms: {}", if ms(loaded.p99) < 20.0 { "met" } else { "NOT met" });
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("");
    let binary = std::env::var("BURNRATE_BIN").unwrap_or_else(|_| "target/release/burnrate".into());
    let number = |i: usize, default: u64| -> anyhow::Result<u64> {
        args.get(i)
            .map(|a| a.replace('_', "").parse::<u64>().with_context(|| format!("{a:?} is not a count")))
            .unwrap_or(Ok(default))
    };
    match which {
        "all" => report::all(&binary, number(2, 10_000_000)?).await,
        "api" => api::api(&binary, number(2, 100_000)?).await,
        "login-vs-healthz" => login_vs_healthz(&binary).await,
        "ingest" => ingest::ingest(number(2, 1_000_000)?, number(3, 1_000)?).await,
        "alerts" => alerts::alerts(number(2, 10_000)?).await,
        "fairness" => fairness::fairness(&binary, number(2, 2_000_000)?).await,
        "delivery-fairness" => fairness::delivery_fairness(number(2, 20)?).await,
        "dashboards" => {
            dashboards::dashboards(&binary, number(2, 10_000_000)?, args.get(3).map_or("UTC", String::as_str)).await
        }
        "pricing" => pricing::pricing(number(2, 10_000_000)?).await,
        "otlp" => otlp::otlp(&binary, number(2, 1_000_000)?).await,
        "wire" => wire::wire(&binary, number(2, 10_000_000)?, args.get(3).map(|s| s.parse()).transpose()?).await,
        // The anchor of the API benchmark, in its own process.
        "hello" => api::hello().await,
        // The two halves of `ingest`, each in its own process.
        "mock-openai" => ingest::mock_openai(number(2, 0)?, number(3, 1)?).await,
        "ingest-once" => ingest::ingest_once(&args[2], number(3, 0)?, number(4, 1)?).await,
        _ => bail!(
            "usage: burnrate-bench all [ROWS]   (default 10_000_000; BURNRATE_BENCH_RESULTS: a file to append the table to)\n       burnrate-bench api [ROWS]   (default 100_000)\n       burnrate-bench login-vs-healthz   (BURNRATE_BIN: the burnrate binary, default target/release/burnrate)\n       burnrate-bench ingest [ROWS [ROWS_PER_DAY]]   (default 1_000_000 and 1_000)\n       burnrate-bench wire [ROWS [SECONDS]]\n       burnrate-bench dashboards [ROWS [ZONE]]   (default 10_000_000 and UTC; BURNRATE_BENCH_PYTHON: a Python with duckdb)\n       burnrate-bench pricing [ROWS]   (default 10_000_000; BURNRATE_BENCH_PYTHON: a Python with duckdb)\n       burnrate-bench otlp [SPANS]   (default 1_000_000)\n       burnrate-bench alerts [EVENTS]   (default 10_000)\n       burnrate-bench fairness [ROWS]   (default 2_000_000)\n       burnrate-bench delivery-fairness [EVENTS]   (default 20)"
        ),
    }
}

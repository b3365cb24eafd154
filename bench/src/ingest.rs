//! `ingest`: how fast does a sync normalize and write usage rows, and in how much memory?
//!
//! Three processes, so each number belongs to one side:
//! - the simulated OpenAI (`sim` crate, `mock-openai`) serving `rows` completions usage rows,
//!   `per_day` a day, each distinct; it remembers every answer after rendering it once, so the
//!   runs measure burnrate, not the simulator's JSON rendering;
//! - `ingest-once`: a real sync (SQLite manifest, sealed key, lake on a temporary directory) of the
//!   whole window, run three times, each in a fresh process on a fresh database; the first run
//!   fills the simulator's memory and is not reported;
//! - this process: the anchor, `serde_json` parsing the same report (one day a page) into
//!   `serde_json::Value`, timed around the parse alone.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::NaiveDate;

const KEY: &str = "sk-admin-BENCHMARK0000000000000000000";
const MODELS: [&str; 8] =
    ["gpt-4o", "gpt-4o-mini", "o3", "o4-mini", "gpt-4.1", "gpt-4.1-mini", "text-embedding-3-small", "gpt-5"];

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 1, 1).expect("date")
}

fn days(rows: u64, per_day: u64) -> i64 {
    rows.div_ceil(per_day) as i64
}

/// The simulator, serving until its standard input closes.
pub async fn mock_openai(rows: u64, per_day: u64) -> anyhow::Result<()> {
    let sim = burnrate_sim::SimProvider::openai(KEY).await;
    let mut lines = Vec::with_capacity(rows as usize);
    for i in 0..rows {
        let (day, n) = ((i / per_day) as i64, i % per_day);
        lines.push(burnrate_sim::UsageLine {
            day: first_day() + chrono::Duration::days(day),
            group: Some(format!("proj_{:02}", n % 40)),
            // Distinct per row of a day, so every line is its own result.
            api_key: Some(format!("key_{n:06}")),
            model: MODELS[(n % 8) as usize].into(),
            uncached: 1_000 + (i % 9_000) as i64,
            cached: (i % 500) as i64,
            cache_write: (i % 50) as i64,
            output: 200 + (i % 2_000) as i64,
            requests: 1 + (i % 40) as i64,
            ..Default::default()
        });
    }
    sim.set_usage(lines);
    sim.remember_answers();
    println!("{}", sim.base_url());
    std::io::stdout().flush()?;
    // Serve until the parent closes our standard input.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().lock().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
    })
    .await?;
    Ok(())
}

/// One sync of the whole window into a fresh database and lake; prints one JSON line.
pub async fn ingest_once(base_url: &str, rows: u64, per_day: u64) -> anyhow::Result<()> {
    use burnrate_store::{NewSource, Store, Vault};
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}/burnrate.sqlite?mode=rwc", dir.path().display())).await?;
    burnrate_store::migrate_sqlite(&store).await?;
    let vault = std::sync::Arc::new(Vault::new(burnrate_crypto::MasterKeyRing::parse(
        burnrate_crypto::MasterKey::generate("bench").export().as_ref(),
    )?));
    let lake = burnrate_lake::Lake::from_url(&dir.path().join("lake").display().to_string())?;
    let mut tx = store.instance().await?;
    let scope = tx.create_org(&burnrate_core::OrgName::parse("Bench")?).await?;
    let mut t = tx.into_tenant(scope).await?;
    let openai =
        burnrate_sync::SourceConfig::plain(burnrate_sync::SourceKind::OpenAi).expect("OpenAI needs only its key");
    let config = burnrate_sync::SourceConfig { base_url: Some(base_url.to_owned()), ..openai }.to_json();
    let id =
        t.create_source(&vault, &NewSource { kind: "openai", name: "bench", config: &config, secret: KEY }).await?;
    t.commit().await?;
    let http = burnrate_net::HttpClient::new(
        burnrate_net::EgressGuard::new(&["127.0.0.1/32"])?,
        burnrate_net::ClientOptions::default(),
    );
    let syncer = burnrate_sync::Syncer::new(store, vault, lake, http);
    let start = first_day();
    let window =
        burnrate_core::SyncWindow::new(start, start + chrono::Duration::days(days(rows, per_day)))?.whole_months();
    let t0 = Instant::now();
    let outcome = syncer.sync(scope, id, window).await?;
    let secs = t0.elapsed().as_secs_f64();
    if outcome.usage_rows as u64 != rows {
        bail!("wrote {} usage rows, expected {rows}", outcome.usage_rows);
    }
    println!(
        "{}",
        serde_json::json!({ "rows": outcome.usage_rows, "pages": outcome.pages, "secs": secs, "peak_rss_kib": crate::status_kib("self", "VmHWM") })
    );
    Ok(())
}

struct Run {
    secs: f64,
    pages: u64,
    peak_rss_kib: u64,
}

fn run_child(args: &[&str]) -> anyhow::Result<Run> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).args(args).stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("ingest-once failed: {}", String::from_utf8_lossy(&out.stdout));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("ingest-once output")?;
    Ok(Run {
        secs: v["secs"].as_f64().context("secs")?,
        pages: v["pages"].as_u64().context("pages")?,
        peak_rss_kib: v["peak_rss_kib"].as_u64().context("rss")?,
    })
}

/// The anchor: the completions report, one day a page, parsed into `serde_json::Value`.
async fn raw_parse(base_url: &str, rows: u64, per_day: u64) -> anyhow::Result<(f64, u64)> {
    let client = reqwest::Client::new();
    let (mut parse_secs, mut bytes, mut results) = (0.0, 0u64, 0u64);
    for d in 0..days(rows, per_day) {
        let start = (first_day() + chrono::Duration::days(d)).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let url = format!(
            "{base_url}/v1/organization/usage/completions?start_time={}&end_time={}&bucket_width=1d&limit=1&group_by[]=project_id&group_by[]=api_key_id&group_by[]=model&group_by[]=service_tier&group_by[]=batch",
            start.timestamp(),
            start.timestamp() + 86_400
        );
        let body = client.get(&url).bearer_auth(KEY).send().await?.error_for_status()?.bytes().await?;
        let t0 = Instant::now();
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        parse_secs += t0.elapsed().as_secs_f64();
        bytes += body.len() as u64;
        results += v["data"]
            .as_array()
            .map_or(0, |b| b.iter().map(|bucket| bucket["results"].as_array().map_or(0, |r| r.len() as u64)).sum());
    }
    if results != rows {
        bail!("the anchor parsed {results} results, expected {rows}");
    }
    Ok((parse_secs, bytes))
}

/// What [`measure`] found.
pub struct Ingest {
    pub rows: u64,
    pub per_day: u64,
    pub json_bytes: u64,
    /// The sync's median rate and the anchor's, rows a second.
    pub rate: f64,
    pub parse_rate: f64,
    pub peak_rss_kib: u64,
}

pub async fn measure(rows: u64, per_day: u64) -> anyhow::Result<Ingest> {
    let exe = std::env::current_exe()?;
    let (r, p) = (rows.to_string(), per_day.to_string());
    let mut mock = Command::new(&exe)
        .args(["mock-openai", &r, &p])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut base_url = String::new();
    std::io::BufReader::new(mock.stdout.take().context("mock stdout")?).read_line(&mut base_url)?;
    let base_url = base_url.trim().to_owned();
    eprintln!("simulated OpenAI at {base_url}: {rows} usage rows, {per_day} a day");

    let warm = run_child(&["ingest-once", &base_url, &r, &p])?;
    eprintln!("warm-up (simulator renders every page once): {:.1} s", warm.secs);
    let mut runs = Vec::new();
    for i in 1..=3 {
        let run = run_child(&["ingest-once", &base_url, &r, &p])?;
        eprintln!(
            "run {i}: {:.2} s, {:.0} rows/s, {} pages, peak RSS {} MiB",
            run.secs,
            rows as f64 / run.secs,
            run.pages,
            run.peak_rss_kib / 1024
        );
        runs.push(run);
    }
    let (parse_secs, json_bytes) = raw_parse(&base_url, rows, per_day).await?;
    drop(mock.stdin.take());
    let _ = mock.wait();

    Ok(Ingest {
        rows,
        per_day,
        json_bytes,
        rate: rows as f64 / crate::median(runs.iter().map(|r| r.secs).collect()),
        parse_rate: rows as f64 / parse_secs,
        peak_rss_kib: runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0),
    })
}

pub async fn ingest(rows: u64, per_day: u64) -> anyhow::Result<()> {
    let m = measure(rows, per_day).await?;
    println!("rows                 {rows} ({per_day} a day, {} MiB of JSON)", m.json_bytes >> 20);
    println!("serde_json → Value   {:>12.0} rows/s   (anchor; parse only, one day a page)", m.parse_rate);
    println!(
        "sync → lake (median) {:>12.0} rows/s   ({:.2}× the anchor; fetch, parse, normalize, Parquet, manifest)",
        m.rate,
        m.rate / m.parse_rate
    );
    println!("peak RSS of the sync {:>12} MiB      (max of 3 runs)", m.peak_rss_kib / 1024);
    Ok(())
}

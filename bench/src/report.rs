//! `all`: every benchmark in one run over one data set, and one table of what it measured —
//! burnrate's figure beside the anchor measured in the same run, their ratio and the goal — printed
//! and appended, with the machine and the commit, to the file `BURNRATE_BENCH_RESULTS` names
//! (`bench/run` names `bench/RESULTS.md`).

use std::fmt::Write as _;
use std::time::Instant;

use crate::year::Year;
use crate::{ms, wire};

/// Ingest runs at this many rows (1,000 a day): the rate, not the size, is the measure, and 10 M
/// rows take minutes of JSON rendering in the simulator before the first timed run.
const INGEST_ROWS: u64 = 1_000_000;
const WIRE_SECONDS: u32 = 8;
const WIRE_ROUNDS: usize = 2;
pub(crate) const API_SECONDS: u32 = 8;
pub(crate) const API_ROUNDS: usize = 3;

/// One row of the table.
struct Row {
    area: &'static str,
    measure: String,
    burnrate: String,
    anchor: String,
    ratio: String,
    goal: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Table(Vec<Row>);

impl Table {
    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        area: &'static str,
        measure: impl Into<String>,
        burnrate: impl Into<String>,
        anchor: impl Into<String>,
        ratio: impl Into<String>,
        goal: impl Into<String>,
        met: Option<bool>,
    ) {
        self.0.push(Row {
            area,
            measure: measure.into(),
            burnrate: burnrate.into(),
            anchor: anchor.into(),
            ratio: ratio.into(),
            goal: goal.into(),
            met,
        });
    }

    fn markdown(&self) -> String {
        let mut out = String::from("| area | measure | burnrate | anchor (same run) | ratio | goal | |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for r in &self.0 {
            let verdict = match r.met {
                Some(true) => "met",
                Some(false) => "**not met**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {verdict} |",
                r.area, r.measure, r.burnrate, r.anchor, r.ratio, r.goal
            );
        }
        out
    }
}

/// A line of `/proc/<file>` starting with `key`, its value trimmed.
fn proc_field(file: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim_start_matches([':', ' ', '\t']).trim().to_owned())
}

fn version_of(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(if o.stdout.is_empty() { &o.stderr } else { &o.stdout }).into_owned())
        .and_then(|s| s.lines().next().map(str::trim).map(str::to_owned))
        .unwrap_or_else(|| format!("{program}: unknown"))
}

/// The machine and the software beside burnrate, for the record.
fn machine() -> String {
    let cpu = proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into());
    let mem_kib: u64 = proc_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_owned()))
        .unwrap_or_else(|| "unknown OS".into());
    let python = std::env::var("BURNRATE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    format!(
        "{cpu}, {} cores, {:.1} GiB, {os}, Linux {}; anchors: DuckDB {}, {}, {}",
        crate::cores(),
        mem_kib as f64 / 1048576.0,
        kernel.trim(),
        version_of(&python, &["-c", "import duckdb; print(duckdb.__version__)"]),
        version_of("pgbench", &["--version"]).replace("pgbench (PostgreSQL) ", "PostgreSQL "),
        version_of("wrk", &["--version"]).split(" [").next().unwrap_or("wrk").to_owned(),
    )
}

/// A ratio as "6.7×", or "120×" once the decimal no longer matters.
fn times(r: f64) -> String {
    if r >= 10.0 { format!("{r:.0}×") } else { format!("{r:.1}×") }
}

/// Thousands separated, one decimal below a hundred.
fn thousands_1(n: f64) -> String {
    if n < 100.0 { format!("{n:.1}") } else { thousands(n) }
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub async fn all(binary: &str, rows: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut t = Table::default();

    let year = Year::serve(binary, rows, "UTC").await?;
    let pg = wire::postgres_beside(&year).await?;
    let postgres = pg.side();

    let d = crate::dashboards::measure(&year, Some(&postgres)).await?;
    t.row(
        "dashboards",
        "overview `GET /` p50 / p99 (a dozen queries, one request after another)",
        format!("{:.0} / {:.0} ms", ms(d.overview.p50), ms(d.overview.p99)),
        format!("`GET /healthz` {:.2} ms", ms(d.healthz.p50)),
        "",
        "p50 < 150 ms, p99 < 400 ms",
        Some(ms(d.overview.p50) < 150.0 && ms(d.overview.p99) < 400.0),
    );
    for v in &d.views {
        let pg = v.postgres.unwrap_or_default();
        t.row(
            "explorer",
            format!("{} ({} rows; the page p50)", v.name, v.rows),
            format!("{:.1} ms", ms(v.page.p50)),
            format!("DuckDB {:.1} ms; PostgreSQL {:.1} ms", ms(v.duckdb), ms(pg)),
            format!(
                "{:.2}× DuckDB's time; {} faster than PostgreSQL",
                v.page.p50.as_secs_f64() / v.duckdb.as_secs_f64(),
                times(pg.as_secs_f64() / v.page.p50.as_secs_f64())
            ),
            "",
            None,
        );
    }
    let to_duck = d.median_ratio_to_duckdb();
    t.row(
        "explorer",
        "median over the views: time beside DuckDB's",
        "",
        "",
        format!("{to_duck:.2}×"),
        "≤ 1.0×",
        Some(to_duck <= 1.0),
    );
    let over_pg = d.median_speedup_over_postgres().unwrap_or(0.0);
    t.row(
        "explorer",
        "median over the views: times faster than PostgreSQL",
        "",
        "",
        times(over_pg),
        "≥ 10×",
        Some(over_pg >= 10.0),
    );

    for s in wire::measure(&year, &postgres, WIRE_SECONDS, WIRE_ROUNDS).await? {
        let round_trip = s.name.contains("SELECT 1");
        let (ratio, goal, met) = if round_trip {
            let r = s.burnrate_ms / s.postgres_ms;
            (format!("{r:.2}× the latency"), "latency ≤ 1.5× PostgreSQL's", r <= 1.5)
        } else {
            let r = s.burnrate_tps / s.postgres_tps;
            (format!("{} the TPS", times(r)), "≥ 5× the TPS", r >= 5.0)
        };
        t.row(
            "wire",
            format!("{} — pgbench, {} client{}", s.name, s.clients, if s.clients == 1 { "" } else { "s" }),
            format!("{} TPS, {:.3} ms", thousands_1(s.burnrate_tps), s.burnrate_ms),
            format!("PostgreSQL {} TPS, {:.3} ms", thousands_1(s.postgres_tps), s.postgres_ms),
            ratio,
            goal,
            Some(met),
        );
    }
    drop(pg);

    let [hello, healthz, org] = crate::api::measure(&year, API_SECONDS, API_ROUNDS).await?;
    for (measure, load, goal) in
        [("`GET /healthz` (middleware only)", healthz, None), ("`GET /api/v1/org` with an API key", org, Some(()))]
    {
        let share = load.rps / hello.rps;
        t.row(
            "API",
            format!("{measure}, {}", crate::api::CONCURRENCY),
            format!("{} req/s, p50 {:.2} ms, p99 {:.2} ms", thousands(load.rps), load.p50_ms, load.p99_ms),
            format!("bare axum {} req/s, p99 {:.2} ms", thousands(hello.rps), hello.p99_ms),
            format!("{:.0} %", share * 100.0),
            if goal.is_some() { "≥ 50 %, p99 < 10 ms" } else { "" },
            goal.map(|()| share >= 0.5 && load.p99_ms < 10.0),
        );
    }
    let (idle_kib, idle_anon_kib) = (year.idle_rss_kib, year.idle_anon_kib);
    let (loaded_kib, peak_kib) = (year.server_kib("VmRSS"), year.server_kib("VmHWM"));
    let data = format!(
        "{} cost lines over the 365 days up to {} ({} MiB of Parquet, roll-up {:.1} MiB), written through the lake \
         writer in {:.0} s",
        thousands(rows as f64),
        year.today,
        year.lake_bytes >> 20,
        year.rollup_bytes as f64 / 1048576.0,
        year.fill_secs
    );
    drop(year);

    let ingest = crate::ingest::measure(INGEST_ROWS, 1_000).await?;
    t.row(
        "ingest",
        format!(
            "sync → lake: fetch, parse, normalize, Parquet, manifest ({} usage rows, {} a day, {} MiB of JSON)",
            thousands(ingest.rows as f64),
            thousands(ingest.per_day as f64),
            ingest.json_bytes >> 20
        ),
        format!("{} rows/s, peak RSS {} MiB", thousands(ingest.rate), ingest.peak_rss_kib >> 10),
        format!("serde_json → Value {} rows/s", thousands(ingest.parse_rate)),
        format!("{:.1}×", ingest.rate / ingest.parse_rate),
        "≥ 500,000 rows/s",
        Some(ingest.rate >= 500_000.0),
    );
    t.row(
        "memory",
        "`burnrate serve` resident, idle (5 s after ready: start-up evaluation done, no request yet): in all / its own (`RssAnon`) / the binary's pages (`RssFile`)",
        format!("{} / {} / {} MiB", idle_kib >> 10, idle_anon_kib >> 10, idle_kib.saturating_sub(idle_anon_kib) >> 10),
        "",
        "",
        "< 60 MB",
        Some(idle_kib * 1024 < 60_000_000),
    );
    t.row(
        "memory",
        "`burnrate serve` resident after the dashboards, wire and API runs / at its peak",
        format!("{} / {} MiB", loaded_kib >> 10, peak_kib >> 10),
        "",
        "",
        "",
        None,
    );

    let commit = std::env::var("BURNRATE_BENCH_COMMIT").unwrap_or_else(|_| "unknown".into());
    let section = format!(
        "## all — every benchmark over {} cost lines, {} at commit {commit}\n\n\
         `bench/run`, {:.0} s in all. Machine: {}. Data: {data}; the same rows in PostgreSQL (indexed on the day, \
         and on provider and day) for the explorer's questions and the wire scripts. burnrate's explorer figure is \
         the page a person gets (HTTP, session, query, rendering); DuckDB's and PostgreSQL's are the query alone. \
         Every answer was compared with burnrate's (rows and totals to the last decimal) before timing.\n\n{}\n",
        thousands(rows as f64),
        chrono::Utc::now().format("%Y-%m-%d"),
        started.elapsed().as_secs_f64(),
        machine(),
        t.markdown()
    );
    println!("{section}");
    if let Ok(path) = std::env::var("BURNRATE_BENCH_RESULTS") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("BURNRATE_BENCH_RESULTS {path}: {e}"))?;
        write!(file, "\n{section}")?;
        eprintln!("appended to {path}");
    }
    Ok(())
}

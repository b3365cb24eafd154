//! `dashboards`: the overview page and the explorer's group-bys over `rows` cost lines, beside
//! DuckDB on the same Parquet files in the same run.
//!
//! - the real `burnrate serve` (its own process, SQLite store, lake on disk) holds a year of cost
//!   lines up to today, written through the lake writer: six providers, 40 models, 20 projects,
//!   500 API keys (25 a project), three SKUs a model, daily buckets, and two budgets — what a
//!   busy organization's overview reads;
//! - the overview (`GET /`) is fetched one request after another by a logged-in person, after a
//!   warm-up; p50 and p99 are reported with the data size;
//! - each explorer view (`GET /explore?…`, the HTML page a person gets, so HTTP, session and
//!   rendering are included) is timed the same way, and DuckDB (the Python `duckdb` package, one
//!   warm process, query time alone) answers the same question over the same files; before any
//!   timing, both answers' row counts and totals are compared to the last decimal.

use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use burnrate_core::{CostRecord, Currency, Money, SyncWindow};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

const PASSWORD: &str = "bench mark lantern orchard 77";
const EMAIL: &str = "owner@bench.example";
const SOURCE: &str = "0190a5b0-0000-7000-8000-00000000d001";
const CHUNK: u64 = 250_000;
const OVERVIEW_SAMPLES: usize = 60;
const EXPLORER_SAMPLES: usize = 15;

/// Providers and the models each bills: 40 models in all.
const CATALOG: [(&str, &[&str]); 6] = [
    (
        "OpenAI",
        &["gpt-4o", "gpt-4o-mini", "o3", "o4-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-5", "text-embedding-3-large"],
    ),
    ("Anthropic", &["claude-sonnet-4", "claude-opus-4", "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"]),
    ("AWS", &["amazon.nova-pro", "amazon.nova-lite", "anthropic.claude-3-5-sonnet", "meta.llama3-70b", "cohere.embed"]),
    ("Microsoft", &["gpt-4o-0806", "gpt-4o-mini-0718", "o3-mini", "text-embedding-3-small", "gpt-4.1-nano"]),
    (
        "Google Cloud",
        &["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "text-embedding-005", "imagen-3", "veo-2"],
    ),
    (
        "OpenRouter",
        &[
            "anthropic/claude-sonnet-4",
            "meta-llama/llama-3.3-70b-instruct",
            "openai/gpt-4.1-mini",
            "deepseek/deepseek-r1",
            "mistralai/mistral-large",
            "qwen/qwen3-235b",
            "google/gemini-2.5-flash",
            "x-ai/grok-3",
            "moonshotai/kimi-k2",
            "z-ai/glm-4.5",
            "nvidia/nemotron-70b",
        ],
    ),
];

fn models() -> Vec<(&'static str, &'static str)> {
    CATALOG.iter().flat_map(|(p, ms)| ms.iter().map(move |m| (*p, *m))).collect()
}

/// Row `i` of `rows`, spread evenly over the 365 days up to `today`.
fn record(i: u64, rows: u64, today: NaiveDate, models: &[(&'static str, &'static str)]) -> CostRecord {
    let back = 364 - (i * 365 / rows) as i64;
    let start = (today - chrono::Duration::days(back)).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let (provider, model) = models[(i % models.len() as u64) as usize];
    // Every project uses every model; each API key belongs to one project (25 keys a project), as
    // OpenAI's and Anthropic's keys do. A day's lines are nearly all distinct lines of the bill.
    let project = (i / 40) % 20;
    let key = project * 25 + (i / 800) % 25;
    // Tokens of a line, priced between $0.000001 and $0.000015 each: cents to tens of dollars.
    let tokens = (i * 7_919) % 2_000_000;
    let amount = Decimal::new((tokens * (1 + i % 15)) as i64, 6);
    let mut line = burnrate_sim::fixture::usd_cost(start, 24, amount, provider, model);
    line.list_cost_estimated = false;
    line.sub_account_id = Some(format!("proj-{project:02}"));
    line.sku_id = Some(format!("{model}, {}", ["input", "output", "cached input"][(i % 3) as usize]));
    line.consumed_quantity = Some(Decimal::from(tokens));
    line.consumed_unit = Some("tokens".into());
    line.api_key_id = Some(format!("key_{key:03}"));
    line
}

/// An explorer view and DuckDB's SQL for the same answer (`{files}` is the Parquet glob).
struct View {
    name: &'static str,
    url: String,
    duckdb: String,
}

fn views(today: NaiveDate) -> Vec<View> {
    let tomorrow = today + chrono::Duration::days(1);
    let month = today.with_day(1).expect("first of the month");
    let days = |n: i64| today - chrono::Duration::days(n - 1);
    let year = days(365);
    let duck = |period: &str, dim: &str, from: NaiveDate, filter: &str| {
        format!(
            "SELECT {period} AS period, {dim} AS grp, billing_currency, sum(billed_cost) AS billed \
             FROM read_parquet('{{files}}') WHERE charge_day >= DATE '{from}' AND charge_day < DATE '{tomorrow}'{filter} \
             GROUP BY ALL ORDER BY period, billed DESC"
        )
    };
    vec![
        View {
            name: "month to date by model and day",
            url: format!("/explore?group=model&from={month}&to={tomorrow}&granularity=day"),
            duckdb: duck("charge_day", "model", month, ""),
        },
        View {
            name: "last 30 days by provider and day",
            url: format!("/explore?group=provider&from={}&to={tomorrow}&granularity=day", days(30)),
            duckdb: duck("charge_day", "provider_name", days(30), ""),
        },
        View {
            name: "last 90 days by project and week",
            url: format!("/explore?group=project&from={}&to={tomorrow}&granularity=week", days(90)),
            duckdb: duck("CAST(date_trunc('week', charge_day) AS DATE)", "sub_account_id", days(90), ""),
        },
        View {
            name: "a year by API key and month",
            url: format!("/explore?group=api_key&from={year}&to={tomorrow}&granularity=month"),
            duckdb: duck("CAST(date_trunc('month', charge_day) AS DATE)", "api_key_id", year, ""),
        },
        View {
            name: "a year of OpenAI by model and month",
            url: format!("/explore?group=model&from={year}&to={tomorrow}&granularity=month&provider=OpenAI"),
            duckdb: duck(
                "CAST(date_trunc('month', charge_day) AS DATE)",
                "model",
                year,
                " AND provider_name = 'OpenAI'",
            ),
        },
    ]
}

/// Runs each query once to check, then `samples` times; prints one JSON object per query:
/// rows, total, and the median and p99 seconds.
const DUCKDB_SCRIPT: &str = r#"
import json, statistics, sys, time, duckdb
job = json.load(sys.stdin)
con = duckdb.connect()
con.execute("SET threads TO 2")
for sql in job["queries"]:
    rows = con.execute(sql).fetchall()
    total = sum((r[3] for r in rows), start=0)
    times = []
    for _ in range(job["samples"]):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"rows": len(rows), "total": str(total), "p50": statistics.median(times),
                      "p99": times[min(len(times) - 1, round((len(times) - 1) * 0.99))]}), flush=True)
"#;

struct Timing {
    p50: Duration,
    p99: Duration,
}

fn timing(mut v: Vec<Duration>) -> Timing {
    v.sort();
    let at = |p: f64| v[(((v.len() - 1) as f64) * p).round() as usize];
    Timing { p50: at(0.5), p99: at(0.99) }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A logged-in person's HTTP client.
struct Person {
    client: reqwest::Client,
    base: String,
    cookies: String,
}

impl Person {
    async fn log_in(base: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build()?;
        let page = client.get(format!("{base}/login")).send().await?;
        let csrf = crate::csrf_cookie(&page).context("the login page sets a CSRF cookie")?;
        let r = client
            .post(format!("{base}/login"))
            .header("cookie", format!("__Host-burnrate_csrf={csrf}"))
            .header("origin", base)
            .form(&[("email", EMAIL), ("password", PASSWORD), ("csrf", csrf.as_str())])
            .send()
            .await?;
        if r.status().as_u16() != 303 {
            bail!("logging in: {} {}", r.status(), r.text().await.unwrap_or_default());
        }
        // The session cookie the login set, beside the CSRF cookie.
        let mut cookies = vec![format!("__Host-burnrate_csrf={csrf}")];
        for set in r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            if let Some(pair) = set.split(';').next().filter(|p| !p.starts_with("__Host-burnrate_csrf=")) {
                cookies.push(pair.to_owned());
            }
        }
        Ok(Self { client, base: base.to_owned(), cookies: cookies.join("; ") })
    }

    async fn get(&self, path: &str) -> anyhow::Result<String> {
        let r = self.client.get(format!("{}{path}", self.base)).header("cookie", &self.cookies).send().await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {}", &text[..text.len().min(500)]);
        }
        Ok(text)
    }

    async fn time(&self, path: &str, samples: usize) -> anyhow::Result<Timing> {
        for _ in 0..2 {
            self.get(path).await?;
        }
        let mut took = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            self.get(path).await?;
            took.push(t.elapsed());
        }
        Ok(timing(took))
    }
}

/// Writes the rows and budgets into the data directory `burnrate user create` made.
async fn fill(dir: &std::path::Path, keys: &str, rows: u64, today: NaiveDate, zone: &str) -> anyhow::Result<()> {
    use burnrate_core::{BudgetPeriod, BudgetScope, Thresholds};
    let store = burnrate_store::Store::connect(&format!("sqlite://{}", dir.join("burnrate.db").display())).await?;
    let vault = burnrate_store::Vault::new(burnrate_crypto::MasterKeyRing::parse(keys)?);
    let mut tx = store.instance().await?;
    let org = tx.find_org("Bench").await?.context("the Bench organization")?;
    let scope = burnrate_store::OrgScope::trusted(org.id);
    let mut t = tx.into_tenant(scope).await?;
    let owner = t.members(&vault).await?.first().context("the owner")?.user_id;
    burnrate_core::ReportingZone::parse(zone).map_err(|e| anyhow::anyhow!("{zone:?} is not a time zone: {e:?}"))?;
    t.set_reporting_tz(zone).await?;
    let usd = Currency::USD;
    for (name, amount, scope_of) in [
        ("All AI spend", 4_000_000, BudgetScope::default()),
        ("GPT-4o family", 150_000, BudgetScope { model: Some("gpt-4o*".into()), ..Default::default() }),
    ] {
        t.create_budget(&burnrate_store::NewBudget {
            name,
            amount: Money::new(Decimal::from(amount), usd)?,
            period: BudgetPeriod::Month,
            scope: &scope_of,
            thresholds: &Thresholds::default(),
            forecast_alert: true,
            email_members: &[owner],
            created_by: owner,
        })
        .await?;
    }
    t.commit().await?;

    let lake = burnrate_lake::Lake::from_url(&dir.join("lake").display().to_string())?;
    let source = uuid::Uuid::from_str(SOURCE)?;
    let first = (today - chrono::Duration::days(364)).with_day(1).expect("first of the month");
    let end = (today.with_day(1).expect("first of the month")) + chrono::Months::new(1);
    let window = SyncWindow::new(first, end)?;
    let models = models();
    let mut writer = lake.writer::<CostRecord>(&store, scope, source, window)?;
    let mut i = 0;
    while i < rows {
        let end = (i + CHUNK).min(rows);
        writer.push((i..end).map(|i| record(i, rows, today, &models)).collect()).await?;
        i = end;
    }
    let files = writer.finish().await?;
    lake.commit(&store, scope, burnrate_store::LakeTable::Costs, source, window, &files).await?;
    Ok(())
}

/// The explorer's CSV of a view: (rows, total).
async fn explorer_answer(person: &Person, url: &str) -> anyhow::Result<(usize, Decimal)> {
    let csv = person.get(&format!("{url}&format=csv")).await?;
    let mut rows = 0;
    let mut total = Decimal::ZERO;
    for line in csv.lines().skip(1) {
        rows += 1;
        let amount = line.rsplit(',').next().unwrap_or_default();
        total += Decimal::from_str(amount).with_context(|| format!("a CSV amount: {line:?}"))?;
    }
    Ok((rows, total))
}

/// `zone`: the organization's reporting time zone (`UTC`, or e.g. `America/Los_Angeles`, where
/// each line's local day is worked out from its start and length).
pub async fn dashboards(binary: &str, rows: u64, zone: &str) -> anyhow::Result<()> {
    let python = std::env::var("BURNRATE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let keys = std::process::Command::new(binary).args(["keys", "generate"]).output().context("burnrate keys")?;
    let keys = String::from_utf8(keys.stdout)?.trim().to_owned();
    let env = |cmd: &mut tokio::process::Command| {
        cmd.env("BURNRATE_DATA_DIR", dir.path())
            .env("BURNRATE_MASTER_KEYS", &keys)
            .env("BURNRATE_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("BURNRATE_PG_ADDR", "127.0.0.1:0")
            .env("BURNRATE_PUBLIC_URL", &base)
            .env("RUST_LOG", "warn");
    };
    let mut cmd = tokio::process::Command::new(binary);
    cmd.args(["user", "create", "--org", "Bench", "--email", EMAIL, "--role", "owner", "--password-stdin"]);
    env(&mut cmd);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).spawn()?;
    {
        use tokio::io::AsyncWriteExt;
        child.stdin.take().context("stdin")?.write_all(PASSWORD.as_bytes()).await?;
    }
    if !child.wait().await?.success() {
        bail!("burnrate user create failed");
    }

    let today = chrono::Utc::now().date_naive();
    eprintln!("writing {rows} cost rows (a year up to {today}) through the lake writer…");
    let t = Instant::now();
    fill(dir.path(), &keys, rows, today, zone).await?;
    // The lines' files and, beside them, their roll-ups (`cost_rollup/`).
    let (mut lake_bytes, mut rollup_bytes) = (0u64, 0u64);
    for f in walk(&dir.path().join("lake"))? {
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        if f.path().to_string_lossy().contains("/cost_rollup/") { rollup_bytes += size } else { lake_bytes += size }
    }
    let mib = |b: u64| b as f64 / 1048576.0;
    eprintln!(
        "  {:.1} s, {:.0} MiB of Parquet, roll-up {:.1} MiB",
        t.elapsed().as_secs_f64(),
        mib(lake_bytes),
        mib(rollup_bytes)
    );

    let mut cmd = tokio::process::Command::new(binary);
    cmd.arg("serve");
    env(&mut cmd);
    let mut server = cmd.stdout(Stdio::null()).kill_on_drop(true).spawn()?;
    let probe = reqwest::Client::builder().no_proxy().build()?;
    for _ in 0..200 {
        if probe.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Idle: started and ready, nothing asked of it yet.
    let pid = server.id().context("the server's process id")?.to_string();
    let mib_of = |kib: u64| kib as f64 / 1024.0;
    let idle_rss = crate::status_kib(&pid, "VmRSS");
    let person = Person::log_in(&base).await?;
    let page = person.get("/").await?;
    if !page.contains("id=\"month-to-date\"") {
        bail!("the overview shows no month-to-date spend: {}", &page[..page.len().min(2000)]);
    }

    eprintln!("overview: {OVERVIEW_SAMPLES} requests one after another…");
    let overview = person.time("/", OVERVIEW_SAMPLES).await?;
    let healthz = person.time("/healthz", OVERVIEW_SAMPLES).await?;

    let views = views(today);
    let files = format!("{}/lake/org=*/costs/*/*.parquet", dir.path().display());
    let mut checks = Vec::new();
    for v in &views {
        checks.push(explorer_answer(&person, &v.url).await.with_context(|| v.name)?);
    }
    eprintln!("DuckDB: the same {} questions over the same files…", views.len());
    let job = serde_json::json!({
        "samples": EXPLORER_SAMPLES,
        "queries": views.iter().map(|v| v.duckdb.replace("{files}", &files)).collect::<Vec<_>>(),
    });
    let mut duck = tokio::process::Command::new(&python)
        .args(["-c", DUCKDB_SCRIPT])
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
    let answers: Vec<serde_json::Value> =
        String::from_utf8(out.stdout)?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    for ((v, (n, total)), a) in views.iter().zip(&checks).zip(&answers) {
        let theirs = Decimal::from_str(a["total"].as_str().unwrap_or_default())?;
        if a["rows"].as_u64() != Some(*n as u64) || theirs.normalize() != total.normalize() {
            bail!("{}: burnrate says {n} rows totalling {total}, DuckDB {} rows totalling {theirs}", v.name, a["rows"]);
        }
    }

    let lines = rows;
    println!(
        "dashboards: {lines} cost rows over 365 days ({:.0} MiB of Parquet; their roll-up {:.1} MiB), reporting \
         zone {zone}, {} cores; sequential requests",
        mib(lake_bytes),
        mib(rollup_bytes),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!("| page | p50 ms | p99 ms | target |");
    println!("|---|---|---|---|");
    println!(
        "| overview `GET /` | {:.1} | {:.1} | p50 < 150, p99 < 400: {} |",
        ms(overview.p50),
        ms(overview.p99),
        if ms(overview.p50) < 150.0 && ms(overview.p99) < 400.0 { "met" } else { "NOT met" }
    );
    println!("| anchor: `GET /healthz` | {:.2} | {:.2} | |", ms(healthz.p50), ms(healthz.p99));
    println!();
    println!(
        "| explorer view | rows | burnrate page p50 ms | DuckDB query p50 ms | ratio | burnrate p99 | DuckDB p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for ((v, (n, _)), a) in views.iter().zip(&checks).zip(&answers) {
        let ours = person.time(&v.url, EXPLORER_SAMPLES).await?;
        let (d50, d99) =
            (a["p50"].as_f64().unwrap_or(f64::NAN) * 1000.0, a["p99"].as_f64().unwrap_or(f64::NAN) * 1000.0);
        ratios.push(ms(ours.p50) / d50);
        println!(
            "| {} | {n} | {:.1} | {d50:.1} | {:.2}× | {:.1} | {d99:.1} |",
            v.name,
            ms(ours.p50),
            ms(ours.p50) / d50,
            ms(ours.p99)
        );
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    println!("median ratio burnrate/DuckDB: {:.2}×", ratios[ratios.len() / 2]);
    println!(
        "burnrate serve resident memory: {:.0} MiB idle (started and ready, no request yet); {:.0} MiB after the \
         run, {:.0} MiB at its peak",
        mib_of(idle_rss),
        mib_of(crate::status_kib(&pid, "VmRSS")),
        mib_of(crate::status_kib(&pid, "VmHWM"))
    );
    server.kill().await.ok();
    Ok(())
}

fn walk(dir: &std::path::Path) -> anyhow::Result<Vec<std::fs::DirEntry>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            out.extend(walk(&e.path())?);
        } else {
            out.push(e);
        }
    }
    Ok(out)
}

//! `dashboards`: the overview page and the explorer's views over a [`Year`] of cost lines,
//! beside DuckDB on the same Parquet files and, when given, PostgreSQL on the same rows in an
//! indexed table.
//!
//! - the overview (`GET /`) is fetched one request after another by a logged-in person, after a
//!   warm-up; p50 and p99 are reported;
//! - each explorer view (`GET /explore?…`, the HTML page a person gets, so HTTP, session and
//!   rendering are included) is timed the same way; DuckDB (the Python `duckdb` package, one warm
//!   process, query time alone) and PostgreSQL (one connection, query and result transfer) answer
//!   the same question; before any timing, every answer's row count and total are compared to
//!   the last decimal.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::year::Year;

const OVERVIEW_SAMPLES: usize = 60;
const EXPLORER_SAMPLES: usize = 15;
const POSTGRES_SAMPLES: usize = 5;

/// An explorer view and the SQL of the same answer over a table `{table}` of the lines.
struct View {
    name: &'static str,
    url: String,
    sql: String,
}

fn views(today: NaiveDate) -> Vec<View> {
    let tomorrow = today + chrono::Duration::days(1);
    let month = today.with_day(1).expect("first of the month");
    let days = |n: i64| today - chrono::Duration::days(n - 1);
    let year = days(365);
    let trunc = |unit: &str| format!("CAST(date_trunc('{unit}', CAST(charge_day AS TIMESTAMP)) AS DATE)");
    // Runs as written on DuckDB and PostgreSQL both.
    let sql = |period: &str, dim: &str, from: NaiveDate, filter: &str| {
        format!(
            "SELECT {period} AS period, {dim} AS grp, billing_currency, sum(billed_cost) AS billed \
             FROM {{table}} WHERE charge_day >= DATE '{from}' AND charge_day < DATE '{tomorrow}'{filter} \
             GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC"
        )
    };
    vec![
        View {
            name: "month to date by model and day",
            url: format!("/explore?group=model&from={month}&to={tomorrow}&granularity=day"),
            sql: sql("charge_day", "model", month, ""),
        },
        View {
            name: "last 30 days by provider and day",
            url: format!("/explore?group=provider&from={}&to={tomorrow}&granularity=day", days(30)),
            sql: sql("charge_day", "provider_name", days(30), ""),
        },
        View {
            name: "last 90 days by project and week",
            url: format!("/explore?group=project&from={}&to={tomorrow}&granularity=week", days(90)),
            sql: sql(&trunc("week"), "sub_account_id", days(90), ""),
        },
        View {
            name: "a year by API key and month",
            url: format!("/explore?group=api_key&from={year}&to={tomorrow}&granularity=month"),
            sql: sql(&trunc("month"), "api_key_id", year, ""),
        },
        View {
            name: "a year of OpenAI by model and month",
            url: format!("/explore?group=model&from={year}&to={tomorrow}&granularity=month&provider=OpenAI"),
            sql: sql(&trunc("month"), "model", year, " AND provider_name = 'OpenAI'"),
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

/// One engine's answer to a view and how long it took.
struct Answer {
    rows: usize,
    total: Decimal,
    p50: Duration,
}

/// The explorer's CSV of a view: (rows, total).
async fn explorer_answer(year: &Year, url: &str) -> anyhow::Result<(usize, Decimal)> {
    let csv = year.person.get(&format!("{url}&format=csv")).await?;
    let mut rows = 0;
    let mut total = Decimal::ZERO;
    for line in csv.lines().skip(1) {
        rows += 1;
        let amount = line.rsplit(',').next().unwrap_or_default();
        total += Decimal::from_str(amount).with_context(|| format!("a CSV amount: {line:?}"))?;
    }
    Ok((rows, total))
}

async fn duckdb(year: &Year, views: &[View]) -> anyhow::Result<Vec<Answer>> {
    let table = format!("read_parquet('{}')", year.parquet_glob());
    let job = serde_json::json!({
        "samples": EXPLORER_SAMPLES,
        "queries": views.iter().map(|v| v.sql.replace("{table}", &table)).collect::<Vec<_>>(),
    });
    crate::duckdb_lines(DUCKDB_SCRIPT, &job)
        .await?
        .iter()
        .map(|a| {
            Ok(Answer {
                rows: a["rows"].as_u64().context("rows")? as usize,
                total: Decimal::from_str(a["total"].as_str().context("total")?)?,
                p50: Duration::from_secs_f64(a["p50"].as_f64().context("p50")?),
            })
        })
        .collect()
}

async fn postgres(side: &crate::wire::Side, views: &[View]) -> anyhow::Result<Vec<Answer>> {
    let client = side.client().await?;
    let mut answers = Vec::new();
    for v in views {
        let sql = v.sql.replace("{table}", "costs");
        let (mut rows, mut total) = (0, Decimal::ZERO);
        for m in client.simple_query(&sql).await? {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                rows += 1;
                total += Decimal::from_str(r.get(3).context("a sum")?)?;
            }
        }
        let mut took = Vec::with_capacity(POSTGRES_SAMPLES);
        for _ in 0..POSTGRES_SAMPLES {
            let t = Instant::now();
            client.simple_query(&sql).await?;
            took.push(t.elapsed());
        }
        answers.push(Answer { rows, total, p50: crate::summarize(took).p50 });
    }
    Ok(answers)
}

/// An explorer view's timings: burnrate's page, DuckDB's and PostgreSQL's query (p50).
pub struct ViewTiming {
    pub name: &'static str,
    pub rows: usize,
    pub page: crate::Summary,
    pub duckdb: Duration,
    pub postgres: Option<Duration>,
}

/// What [`measure`] found.
pub struct Dashboards {
    pub overview: crate::Summary,
    pub healthz: crate::Summary,
    pub views: Vec<ViewTiming>,
}

impl Dashboards {
    pub fn median_ratio_to_duckdb(&self) -> f64 {
        crate::median(self.views.iter().map(|v| v.page.p50.as_secs_f64() / v.duckdb.as_secs_f64()).collect())
    }

    /// How many times faster than PostgreSQL (its time over ours), the median over the views.
    pub fn median_speedup_over_postgres(&self) -> Option<f64> {
        let speedups: Vec<f64> = self
            .views
            .iter()
            .filter_map(|v| v.postgres.map(|pg| pg.as_secs_f64() / v.page.p50.as_secs_f64()))
            .collect();
        (!speedups.is_empty()).then(|| crate::median(speedups))
    }
}

pub async fn measure(year: &Year, postgres_side: Option<&crate::wire::Side>) -> anyhow::Result<Dashboards> {
    let page = year.person.get("/").await?;
    if !page.contains("id=\"month-to-date\"") {
        bail!("the overview shows no month-to-date spend: {}", &page[..page.len().min(2000)]);
    }
    eprintln!("overview: {OVERVIEW_SAMPLES} requests one after another…");
    let overview = year.person.time("/", OVERVIEW_SAMPLES).await?;
    let healthz = year.person.time("/healthz", OVERVIEW_SAMPLES).await?;

    let views = views(year.today);
    let mut checks = Vec::new();
    for v in &views {
        checks.push(explorer_answer(year, &v.url).await.with_context(|| v.name)?);
    }
    eprintln!("DuckDB: the same {} questions over the same files…", views.len());
    let duck = duckdb(year, &views).await?;
    let pg = match postgres_side {
        Some(side) => {
            eprintln!("PostgreSQL: the same {} questions over the same rows…", views.len());
            Some(postgres(side, &views).await?)
        }
        None => None,
    };
    for (i, (v, (n, total))) in views.iter().zip(&checks).enumerate() {
        for (engine, a) in [("DuckDB", Some(&duck[i])), ("PostgreSQL", pg.as_ref().map(|p| &p[i]))] {
            let Some(a) = a else { continue };
            if a.rows != *n || a.total.normalize() != total.normalize() {
                bail!(
                    "{}: burnrate says {n} rows totalling {total}, {engine} {} rows totalling {}",
                    v.name,
                    a.rows,
                    a.total
                );
            }
        }
    }
    eprintln!("explorer: each view {EXPLORER_SAMPLES} times…");
    let mut measured = Vec::new();
    for (i, (v, (n, _))) in views.iter().zip(&checks).enumerate() {
        let page = year.person.time(&v.url, EXPLORER_SAMPLES).await?;
        measured.push(ViewTiming {
            name: v.name,
            rows: *n,
            page,
            duckdb: duck[i].p50,
            postgres: pg.as_ref().map(|p| p[i].p50),
        });
    }
    Ok(Dashboards { overview, healthz, views: measured })
}

/// `dashboards [ROWS [ZONE]]` on its own: the tables, without PostgreSQL.
pub async fn dashboards(binary: &str, rows: u64, zone: &str) -> anyhow::Result<()> {
    let year = Year::serve(binary, rows, zone).await?;
    let d = measure(&year, None).await?;
    let ms = crate::ms;
    println!(
        "dashboards: {rows} cost rows over 365 days ({} MiB of Parquet; their roll-up {:.1} MiB), reporting zone \
         {zone}, {} cores; sequential requests",
        year.lake_bytes >> 20,
        year.rollup_bytes as f64 / 1048576.0,
        crate::cores()
    );
    println!("| page | p50 ms | p99 ms | target |");
    println!("|---|---|---|---|");
    println!(
        "| overview `GET /` | {:.1} | {:.1} | p50 < 150, p99 < 400: {} |",
        ms(d.overview.p50),
        ms(d.overview.p99),
        if ms(d.overview.p50) < 150.0 && ms(d.overview.p99) < 400.0 { "met" } else { "NOT met" }
    );
    println!("| anchor: `GET /healthz` | {:.2} | {:.2} | |", ms(d.healthz.p50), ms(d.healthz.p99));
    println!();
    println!("| explorer view | rows | burnrate page p50 ms | DuckDB query p50 ms | ratio | burnrate p99 |");
    println!("|---|---|---|---|---|---|");
    for v in &d.views {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.2}× | {:.1} |",
            v.name,
            v.rows,
            ms(v.page.p50),
            ms(v.duckdb),
            v.page.p50.as_secs_f64() / v.duckdb.as_secs_f64(),
            ms(v.page.p99)
        );
    }
    println!("median ratio burnrate/DuckDB: {:.2}×", d.median_ratio_to_duckdb());
    println!(
        "burnrate serve resident memory: {} MiB idle (5 s after ready, no request yet); {} MiB after the run, {} \
         MiB at its peak",
        year.idle_rss_kib >> 10,
        year.server_kib("VmRSS") >> 10,
        year.server_kib("VmHWM") >> 10
    );
    Ok(())
}

//! `pricing [ROWS]`: the price book pricing ROWS usage lines (default 10,000,000), and the
//! `reconciliation` view over the year they span beside their bill — each beside DuckDB doing the
//! same work in the same run: the lines joined with the same rates, and the same bill and usage
//! summed by day, provider, model and project, over the same Parquet files.
//!
//! Burnrate prices lines a page of one source at a time as a sync does (a large page split
//! across the cores); the reconciliation is the engine's plan, read as the API reads it, over
//! the usage roll-up the lake writer keeps beside the lines. DuckDB runs with two threads, and
//! reconciles twice: from the lines, and from the same roll-up files.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use burnrate_core::{ChargeCategory, CostRecord, Currency, Money, SyncWindow, UsageRecord};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

const SOURCE: &str = "0190a5b0-0000-7000-8000-00000000d002";
const CHUNK: u64 = 250_000;
const SAMPLES: usize = 5;

/// (source kind, FOCUS provider, models): models the catalogue prices at one rate all year.
const MODELS: [(&str, &str, &str); 8] = [
    ("openai", "OpenAI", "gpt-4o"),
    ("openai", "OpenAI", "gpt-4o-mini"),
    ("openai", "OpenAI", "gpt-4.1"),
    ("openai", "OpenAI", "gpt-4.1-mini"),
    ("openai", "OpenAI", "o3-mini"),
    ("anthropic", "Anthropic", "claude-sonnet-4-5"),
    ("anthropic", "Anthropic", "claude-haiku-4-5"),
    ("anthropic", "Anthropic", "claude-opus-4-1"),
];
const PROJECTS: u64 = 20;
const KEYS_PER_PROJECT: u64 = 25;

/// Line `i` of `rows`, spread evenly over the 365 days up to `today`: a day's usage of one model
/// by one API key of one project, unpriced.
fn line(i: u64, rows: u64, today: NaiveDate) -> (usize, UsageRecord) {
    let back = 364 - (i * 365 / rows) as i64;
    let start = (today - chrono::Duration::days(back)).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let m = (i % MODELS.len() as u64) as usize;
    let project = (i / MODELS.len() as u64) % PROJECTS;
    let key = project * KEYS_PER_PROJECT + (i / 160) % KEYS_PER_PROJECT;
    let tokens = |salt: u64, most: u64| ((i * salt) % most) as i64;
    let record = UsageRecord {
        bucket_start: start,
        bucket_end: start + chrono::Duration::days(1),
        provider_name: MODELS[m].1.into(),
        usage_type: "completions".into(),
        model: Some(MODELS[m].2.into()),
        project_id: Some(format!("proj-{project:02}")),
        api_key_id: Some(format!("key_{key:03}")),
        input_uncached_tokens: tokens(7_919, 400_000),
        input_cached_tokens: tokens(104_729, 200_000),
        input_cache_write_tokens: if MODELS[m].0 == "anthropic" { tokens(1_299_709, 50_000) } else { 0 },
        output_tokens: tokens(15_485_863, 100_000),
        requests: Some(1 + tokens(31, 200)),
        ..Default::default()
    };
    (m, record)
}

/// A model's rate per token of each class — uncached input, cache read, cache write, output —
/// as the catalogue prices a million tokens of it alone on `day`.
fn rates(book: &burnrate_prices::PriceBook, m: usize, day: NaiveDate) -> anyhow::Result<[Decimal; 4]> {
    let mut out = [Decimal::ZERO; 4];
    for (class, rate) in out.iter_mut().enumerate() {
        let start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let mut r = UsageRecord {
            bucket_start: start,
            bucket_end: start + chrono::Duration::days(1),
            model: Some(MODELS[m].2.into()),
            ..Default::default()
        };
        let million = 1_000_000;
        match class {
            0 => r.input_uncached_tokens = million,
            1 => r.input_cached_tokens = million,
            2 => r.input_cache_write_tokens = million,
            _ => r.output_tokens = million,
        }
        book.price(MODELS[m].0, &mut r);
        // OpenAI has no cache writes: no rate, and no such tokens either.
        *rate = r.computed_cost.unwrap_or_default() / Decimal::from(million);
    }
    Ok(out)
}

/// Group of a priced line in the bill: (day, model, project).
type BillKey = (NaiveDate, usize, String);

pub async fn pricing(rows: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store =
        burnrate_store::Store::connect(&format!("sqlite://{}", dir.path().join("burnrate.db").display())).await?;
    burnrate_store::migrate_sqlite(&store).await?;
    let mut tx = store.instance().await?;
    let scope = tx.create_org(&burnrate_core::OrgName::parse("Bench").map_err(anyhow::Error::msg)?).await?;
    tx.commit().await?;
    let lake = burnrate_lake::Lake::from_url(&dir.path().join("lake").display().to_string())?;
    let source = burnrate_core::SourceId::from_str(SOURCE)?;
    let today = chrono::Utc::now().date_naive();
    let first = (today - chrono::Duration::days(364)).with_day(1).expect("first of the month");
    let end = today.with_day(1).expect("first of the month") + chrono::Months::new(1);
    let window = SyncWindow::new(first, end)?;

    // Pricing: only `price` is timed, line after line, as a sync prices them.
    eprintln!("pricing {rows} usage lines (a year up to {today}) and writing them through the lake writer…");
    let book = burnrate_prices::PriceBook::shipped();
    let mut writer = lake.writer::<UsageRecord>(&store, scope, source, window)?;
    let mut bill: std::collections::BTreeMap<BillKey, (Decimal, i64)> = Default::default();
    let (mut priced_for, mut computed, mut unpriced) = (Duration::ZERO, Decimal::ZERO, 0u64);
    let mut i = 0;
    while i < rows {
        let end = (i + CHUNK).min(rows);
        // A sync prices a page of one source at a time: here, each provider's lines of the chunk.
        let mut pages: [(&str, Vec<usize>, Vec<UsageRecord>); 2] =
            [("openai", Vec::new(), Vec::new()), ("anthropic", Vec::new(), Vec::new())];
        for (m, record) in (i..end).map(|i| line(i, rows, today)) {
            let page = &mut pages[usize::from(MODELS[m].0 == "anthropic")];
            page.1.push(m);
            page.2.push(record);
        }
        let t = Instant::now();
        for (kind, _, records) in &mut pages {
            book.price_all(kind, records);
        }
        priced_for += t.elapsed();
        let chunk: Vec<(usize, UsageRecord)> = pages.into_iter().flat_map(|(_, m, r)| m.into_iter().zip(r)).collect();
        for (m, r) in &chunk {
            let Some(cost) = r.computed_cost else {
                unpriced += 1;
                continue;
            };
            computed += cost;
            let tokens = r.input_uncached_tokens + r.input_cached_tokens + r.input_cache_write_tokens + r.output_tokens;
            let key = (r.bucket_start.date_naive(), *m, r.project_id.clone().unwrap_or_default());
            let entry = bill.entry(key).or_default();
            entry.0 += cost;
            entry.1 += tokens;
        }
        writer.push(chunk.into_iter().map(|(_, r)| r).collect()).await?;
        i = end;
    }
    if unpriced > 0 {
        bail!("{unpriced} lines were not priced: every benchmark model must be in the catalogue");
    }
    let files = writer.finish().await?;
    lake.commit(&store, scope, burnrate_store::LakeTable::Usage, source, window, &files).await?;

    // The bill: each day, model and project at its usage's computed cost, to the nano-dollar.
    let mut writer = lake.writer::<CostRecord>(&store, scope, source, window)?;
    let lines: Vec<CostRecord> = bill
        .iter()
        .map(|((day, m, project), (cost, tokens))| {
            let start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            let money = Money::new(cost.round_dp(9), Currency::USD)?;
            Ok(CostRecord {
                charge_period_start: start,
                charge_period_end: start + chrono::Duration::days(1),
                billed_cost: money,
                effective_cost: money,
                list_cost: money,
                list_cost_estimated: true,
                provider_name: MODELS[*m].1.into(),
                service_name: "API".into(),
                sub_account_id: Some(project.clone()),
                sku_id: None,
                model: Some(MODELS[*m].2.into()),
                charge_category: ChargeCategory::Usage,
                charge_description: None,
                consumed_quantity: Some(Decimal::from(*tokens)),
                consumed_unit: Some("tokens".into()),
                api_key_id: None,
                tags: Default::default(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let bill_lines = lines.len();
    writer.push(lines).await?;
    let files = writer.finish().await?;
    lake.commit(&store, scope, burnrate_store::LakeTable::Costs, source, window, &files).await?;

    // DuckDB: the same lines joined with the same rates.
    let mut rate_rows = Vec::new();
    for (m, (_, provider, model)) in MODELS.iter().enumerate() {
        let [uncached, cached, write, output] = rates(&book, m, today)?;
        rate_rows.push(format!(
            "('{provider}', '{model}', {uncached}::DECIMAL(38,18), {cached}::DECIMAL(38,18), {write}::DECIMAL(38,18), {output}::DECIMAL(38,18))"
        ));
    }
    let root = dir.path().join("lake").display().to_string();
    let usage_files = format!("read_parquet('{root}/org=*/usage/*/*.parquet', union_by_name = true)");
    let cost_files = format!("read_parquet('{root}/org=*/costs/*/*.parquet', union_by_name = true)");
    let rollup_files = format!("read_parquet('{root}/org=*/usage_rollup/*/*.parquet', union_by_name = true)");
    let pricing_sql = format!(
        "WITH rates(provider, model, uncached, cached, write, output) AS (VALUES {}) \
         SELECT count(*), sum(u.input_uncached_tokens * r.uncached + u.input_cached_tokens * r.cached \
                + u.input_cache_write_tokens * r.write + u.output_tokens * r.output) \
         FROM {usage_files} u JOIN rates r ON u.provider_name = r.provider AND u.model = r.model",
        rate_rows.join(", ")
    );
    let from = today - chrono::Duration::days(364);
    let days = |c: &str| format!("{c} >= DATE '{from}' AND {c} <= DATE '{today}'");
    let reconciliation_sql = |usage: &str, rows: &str, priced_rows: &str| {
        format!(
            "WITH billed AS (SELECT charge_day AS day, provider_name, model, coalesce(sub_account_id, '') AS project, \
                sum(billed_cost) AS billed, sum(consumed_quantity) AS billed_tokens FROM {cost_files} \
                WHERE billing_currency = 'USD' AND model IS NOT NULL AND {} GROUP BY ALL), \
              used AS (SELECT charge_day AS day, provider_name, model, coalesce(project_id, '') AS project, \
                sum(computed_cost) AS computed, {rows} AS usage_rows, {priced_rows} AS priced_rows, \
                sum(input_uncached_tokens + input_cached_tokens + input_cache_write_tokens + output_tokens) AS usage_tokens \
                FROM {usage} WHERE model IS NOT NULL AND {} GROUP BY ALL) \
         SELECT count(*), sum(coalesce(billed, 0) - coalesce(computed, 0)) \
         FROM billed FULL JOIN used USING (day, provider_name, model, project)",
            days("charge_day"),
            days("charge_day")
        )
    };
    let from_lines = reconciliation_sql(&usage_files, "count(*)", "count(computed_cost)");
    let from_rollup = reconciliation_sql(&rollup_files, "sum(x_rows)", "sum(x_priced_rows)");
    eprintln!(
        "DuckDB: the pricing join and the reconciliation from the lines and from the roll-up, {SAMPLES} times each…"
    );
    let duck = duckdb(&[pricing_sql, from_lines, from_rollup]).await?;

    // Burnrate's reconciliation over the year, read as the API reads it.
    eprintln!("burnrate: the reconciliation of the year, {SAMPLES} times…");
    let spill = dir.path().join("spill");
    let engine = burnrate_engine::Engine::new(burnrate_engine::EngineConfig::new(spill), store.clone(), lake.clone())?;
    let tomorrow = today + chrono::Duration::days(1);
    let once = || engine.reconciliation(scope, from, tomorrow, Decimal::ONE);
    let answer = once().await?;
    let mut times = Vec::new();
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let again = once().await?;
        times.push(t.elapsed());
        if again.len() != answer.len() {
            bail!("the reconciliation changed between runs");
        }
    }
    times.sort();
    let reconciled = times[times.len() / 2];
    let gaps = answer.iter().filter(|r| r.gap_kind != burnrate_engine::reconciliation::GapKind::None).count();
    let difference: Decimal = answer.iter().filter_map(|r| r.difference).sum();

    // Both sides computed the same thing.
    if duck[0].rows != rows || duck[0].total.normalize() != computed.normalize() {
        bail!("pricing: burnrate priced {rows} lines at {computed}, DuckDB {} at {}", duck[0].rows, duck[0].total);
    }
    for duck in &duck[1..] {
        if duck.rows != answer.len() as u64 || duck.total.normalize() != difference.normalize() {
            bail!(
                "reconciliation: burnrate has {} rows differing by {difference}, DuckDB {} by {}",
                answer.len(),
                duck.rows,
                duck.total
            );
        }
    }
    let secs = |d: Duration| d.as_secs_f64();
    println!("\npricing — {rows} usage lines of {} models; a bill of {bill_lines} lines\n", MODELS.len());
    println!("| work | burnrate | DuckDB (2 threads) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| price every line ({:.0} lines/s) | {:.2} s | {:.2} s | {:.2}× |",
        rows as f64 / secs(priced_for),
        secs(priced_for),
        secs(duck[0].p50),
        secs(priced_for) / secs(duck[0].p50)
    );
    for (read, duck) in [("the lines", &duck[1]), ("the same roll-up", &duck[2])] {
        println!(
            "| reconcile the year ({} rows, {gaps} gaps); DuckDB from {read} | {:.3} s | {:.3} s | {:.2}× |",
            answer.len(),
            secs(reconciled),
            secs(duck.p50),
            secs(reconciled) / secs(duck.p50)
        );
    }
    println!(
        "\nBurnrate prices a page at a time as a sync does (its time excludes generating and writing the lines); \
         it reconciles from its usage roll-up; times are medians of {SAMPLES}. Goal: at most DuckDB's time."
    );
    Ok(())
}

/// Runs each query once to check, then [`SAMPLES`] times; one JSON object per query: the first
/// row's count and sum, and the median seconds.
const DUCKDB_SCRIPT: &str = r#"
import json, statistics, sys, time, duckdb
job = json.load(sys.stdin)
con = duckdb.connect()
con.execute("SET threads TO 2")
for sql in job["queries"]:
    row = con.execute(sql).fetchone()
    times = []
    for _ in range(job["samples"]):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - t)
    print(json.dumps({"rows": row[0], "total": str(row[1]), "p50": statistics.median(times)}), flush=True)
"#;

struct Answer {
    rows: u64,
    total: Decimal,
    p50: Duration,
}

async fn duckdb(queries: &[String]) -> anyhow::Result<Vec<Answer>> {
    let job = serde_json::json!({ "samples": SAMPLES, "queries": queries });
    crate::duckdb_lines(DUCKDB_SCRIPT, &job)
        .await?
        .iter()
        .map(|a| {
            Ok(Answer {
                rows: a["rows"].as_u64().context("rows")?,
                total: Decimal::from_str(a["total"].as_str().context("total")?)?,
                p50: Duration::from_secs_f64(a["p50"].as_f64().context("p50")?),
            })
        })
        .collect()
}

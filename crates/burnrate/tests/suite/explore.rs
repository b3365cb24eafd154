//! The explorer: spend grouped and filtered as a person asks, the same as SQL gives, shareable.

use std::collections::BTreeMap;
use std::str::FromStr;

use burnrate_core::CostRecord;
use burnrate_sim::fixture::usd_cost;
use burnrate_testkit::TestApp;
use chrono::{NaiveDate, TimeZone, Utc};
use reqwest::Method;
use rust_decimal::Decimal;

use crate::create_key;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_grouped_by_model_equals_sql_for_the_range_and_its_csv_sums_to_the_same() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let mut tx = app.store.tenant(scope).await.unwrap();
    let config = "{\"backfill_days\":90,\"repull_days\":3,\"interval_minutes\":60}";
    let new = burnrate_store::NewSource { kind: "anthropic", name: "Claude team", config, secret: "sk-ant-x" };
    let source = tx.create_source(&app.vault, &new).await.unwrap();
    tx.commit().await.unwrap();
    // Three weeks of hourly spend on three models around a month end, some in a second project.
    let start = Utc.with_ymd_and_hms(2026, 1, 20, 0, 0, 0).unwrap();
    let mut records: Vec<CostRecord> = Vec::new();
    for hour in 0..(21 * 24) {
        let model = ["claude-sonnet-4", "claude-haiku-4-5", "claude-opus-4"][(hour % 3) as usize];
        let amount = Decimal::from_str(&format!("0.{:09}", (hour * 104_729 + 7) % 1_000_000_000)).unwrap();
        let mut r = usd_cost(start + chrono::Duration::hours(hour), 1, amount, "Anthropic", model);
        if hour % 5 == 0 {
            r.sub_account_id = Some("wrkspc_research".into());
        }
        records.push(r);
    }
    let window = burnrate_core::SyncWindow::new(
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
    )
    .unwrap();
    app.lake.replace(&app.store, scope, source, window, &records).await.unwrap();
    let c = app.login("o@example.com").await;
    let key = create_key(&c, "k", "read").await;

    // 25 January to 4 February (exclusive), by model, by day.
    let view = "/explore?group=model&from=2026-01-25&to=2026-02-04&granularity=day";
    let page = c.get(view).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let table = &page.text[page.text.find("id=\"explore-table\"").expect("a table")..];
    let mut shown: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for row in table.split("<tr><td>").skip(1) {
        let cells: Vec<&str> =
            row.split("</td>").map(|c| c.trim_start_matches("<td>").trim_start_matches("<td class=\"num\">")).collect();
        let amount = cells[2].trim_end_matches(" USD");
        shown.insert((cells[0].to_owned(), cells[1].to_owned()), Decimal::from_str(amount).unwrap());
    }
    let sql = "SELECT charge_day, model, sum(billed_cost) FROM costs \
               WHERE charge_day >= DATE '2026-01-25' AND charge_day < DATE '2026-02-04' GROUP BY charge_day, model";
    let result = c.api(Method::POST, "/api/v1/sql", &key, Some(serde_json::json!({ "sql": sql }))).await.json();
    let mut want: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for r in result["rows"].as_array().unwrap() {
        let key = (r[0].as_str().unwrap().to_owned(), r[1].as_str().unwrap().to_owned());
        want.insert(key, Decimal::from_str(r[2].as_str().unwrap()).unwrap());
    }
    assert_eq!(want.len(), 10 * 3, "ten days, three models");
    assert_eq!(shown, want, "the explorer's table is the SQL answer");
    let total: Decimal = want.values().copied().sum();
    assert!(page.text.contains(&format!("id=\"explore-total\">{} USD", total.normalize())), "the total, exact");
    assert!(page.text.contains("<svg id=\"explore-chart\""), "with its chart");
    assert!(page.text.contains("2026-02-01 · claude-opus-4: "), "a segment per day and model");

    // The CSV of exactly what is shown.
    let csv_link = page.text.split("href=\"").find(|s| s.starts_with("/explore?") && s.contains("format=csv")).unwrap();
    let csv_link = csv_link[..csv_link.find('"').unwrap()].replace("&#38;", "&").replace("&amp;", "&");
    let csv = c.get(&csv_link).await;
    assert_eq!(
        csv.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8"),
        "{csv_link} {}: {}",
        csv.status,
        &csv.text[..csv.text.len().min(600)]
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "period,grp,currency,billed");
    let sum: Decimal = lines[1..].iter().map(|l| Decimal::from_str(l.rsplit(',').next().unwrap()).unwrap()).sum();
    assert_eq!((lines.len() - 1, sum), (want.len(), total));

    // Filters and other groupings: the research workspace by week.
    let week =
        c.get("/explore?group=project&granularity=week&from=2026-01-19&to=2026-02-09&project=wrkspc_research").await;
    assert_eq!(week.status, 200);
    let research: Decimal = records
        .iter()
        .filter(|r| r.sub_account_id.as_deref() == Some("wrkspc_research"))
        .filter(|r| r.charge_period_start < Utc.with_ymd_and_hms(2026, 2, 9, 0, 0, 0).unwrap())
        .map(|r| r.billed_cost.amount())
        .sum();
    assert!(week.text.contains(&format!("id=\"explore-total\">{} USD", research.normalize())), "{}", week.text);
    assert!(week.text.contains("<td>2026-01-19</td><td>wrkspc_research</td>"), "weeks start on Monday");

    // A mistake in the address is named, and nothing else happens.
    for (query, says) in [
        ("group=colour", "group: \"colour\" is not one of"),
        ("from=2026-02-01&to=2026-01-01", "to: must be after from"),
        ("granularity=minute", "granularity: \"minute\" is not hour, day, week or month"),
        ("model=x'%20OR%201=1", "model: \"x' OR 1=1\" has a character"),
        ("planet=mars", "planet: not a dimension"),
    ] {
        let r = c.get(&format!("/explore?{query}")).await;
        assert_eq!(r.status, 422, "{query}");
        assert!(r.text.contains(&says.replace('"', "&#34;").replace('\'', "&#39;")), "{query}: {}", r.text);
    }
    let empty = c.get("/explore?from=2025-01-01&to=2025-02-01").await;
    assert!(empty.text.contains("No spend matches this view."));
}

/// An organization in Los Angeles: hourly spend around a month end falls on its local month, and a
/// line a provider reports as a whole UTC day stays on that day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_puts_hourly_spend_on_the_organizations_local_month() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let mut tx = app.store.tenant(scope).await.unwrap();
    tx.set_reporting_tz("America/Los_Angeles").await.unwrap();
    let config = "{\"backfill_days\":90,\"repull_days\":3,\"interval_minutes\":60}";
    let new = burnrate_store::NewSource { kind: "anthropic", name: "Claude", config, secret: "sk-ant-x" };
    let source = tx.create_source(&app.vault, &new).await.unwrap();
    tx.commit().await.unwrap();
    let start = Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap();
    let mut records: Vec<CostRecord> = (0..48)
        .map(|h| {
            usd_cost(start + chrono::Duration::hours(h), 1, Decimal::new(1_000 + h, 3), "Anthropic", "claude-sonnet-4")
        })
        .collect();
    let whole_day = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    records.push(usd_cost(whole_day, 24, Decimal::new(7, 0), "Anthropic", "claude-sonnet-4"));
    let window = burnrate_core::SyncWindow::new(
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
    )
    .unwrap();
    app.lake.replace(&app.store, scope, source, window, &records).await.unwrap();
    // February begins in Los Angeles at 08:00 UTC on the 1st.
    let february = Utc.with_ymd_and_hms(2026, 2, 1, 8, 0, 0).unwrap();
    let hourly = |r: &&CostRecord| r.charge_period_end - r.charge_period_start < chrono::Duration::days(1);
    let january: Decimal = records
        .iter()
        .filter(hourly)
        .filter(|r| r.charge_period_start < february)
        .map(|r| r.billed_cost.amount())
        .sum();
    let rest: Decimal = records.iter().map(|r| r.billed_cost.amount()).sum::<Decimal>() - january;

    let c = app.login("o@example.com").await;
    let page = c.get("/explore?group=provider&granularity=month&from=2026-01-01&to=2026-03-01").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Days in <strong>America/Los_Angeles</strong>"), "the zone is said");
    assert!(
        page.text.contains(&format!("<tr><td>2026-01-01</td><td>Anthropic</td><td class=\"num\">{january} USD</td>")),
        "{}",
        page.text
    );
    assert!(
        page.text.contains(&format!("<tr><td>2026-02-01</td><td>Anthropic</td><td class=\"num\">{rest} USD</td>")),
        "{}",
        page.text
    );
    // By day: 31 January in Los Angeles runs from 08:00 UTC on the 31st to 08:00 UTC on 1 February.
    let days = c.get("/explore?group=provider&granularity=day&from=2026-01-31&to=2026-02-01").await;
    let local_31st: Decimal = records
        .iter()
        .filter(hourly)
        .filter(|r| {
            r.charge_period_start >= Utc.with_ymd_and_hms(2026, 1, 31, 8, 0, 0).unwrap()
                && r.charge_period_start < february
        })
        .map(|r| r.billed_cost.amount())
        .sum();
    assert!(days.text.contains(&format!("id=\"explore-total\">{local_31st} USD")), "{}", days.text);

    // By hour: each hour on its local clock; the whole-day line as its day, before the day's hours.
    let hours = c.get("/explore?group=provider&granularity=hour&from=2026-01-31&to=2026-02-02").await;
    assert_eq!(hours.status, 200, "{}", hours.text);
    let cell = |period: &str, amount: Decimal| {
        format!("<tr><td>{period}</td><td>Anthropic</td><td class=\"num\">{} USD</td>", amount.normalize())
    };
    // 00:00 UTC on 31 January is 16:00 on the 30th in Los Angeles: outside the range.
    let first = Decimal::new(1_008, 3);
    assert!(hours.text.contains(&cell("2026-01-31 00:00", first)), "08:00 UTC is midnight: {}", hours.text);
    assert!(hours.text.contains(&cell("2026-01-31 16:00", Decimal::new(1_024, 3))), "00:00 UTC on 1 February");
    assert!(hours.text.contains(&cell("2026-02-01 (whole day)", Decimal::new(7, 0))), "{}", hours.text);
    assert!(hours.text.contains("<svg id=\"explore-chart\""), "with its chart");
    let in_range: Decimal = records
        .iter()
        .filter(|r| !hourly(r) || r.charge_period_start >= Utc.with_ymd_and_hms(2026, 1, 31, 8, 0, 0).unwrap())
        .map(|r| r.billed_cost.amount())
        .sum();
    assert!(hours.text.contains(&format!("id=\"explore-total\">{} USD", in_range.normalize())), "{}", hours.text);
    let first_row = hours.text.find("<tr><td>2026-01-31 00:00").unwrap();
    assert!(hours.text.find("<tr><td>2026-02-01 (whole day)").unwrap() > first_row, "in time order");
    let month = c.get("/explore?granularity=hour&from=2026-01-01&to=2026-03-01").await;
    assert_eq!(month.status, 422, "two months of hours is too many");
    assert!(month.text.contains("at most 31 days at a time by hour"), "{}", month.text);
}

/// The overview's month to date starts at midnight of the organization's first of the month.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_the_month_from_the_organizations_midnight() {
    use chrono::Datelike;
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let zone = burnrate_core::ReportingZone::parse("America/Los_Angeles").unwrap();
    let mut tx = app.store.tenant(scope).await.unwrap();
    tx.set_reporting_tz(zone.name()).await.unwrap();
    let config = "{\"backfill_days\":90,\"repull_days\":3,\"interval_minutes\":60}";
    let new = burnrate_store::NewSource { kind: "openai", name: "OpenAI", config, secret: "sk-admin-x" };
    let source = tx.create_source(&app.vault, &new).await.unwrap();
    tx.commit().await.unwrap();
    // One dollar an hour for the 10 hours either side of this month's start in Los Angeles.
    let today = zone.date_of(Utc::now());
    let month_start = zone.start_of(today.with_day(1).unwrap());
    let records: Vec<CostRecord> = (-10..10)
        .map(|h| usd_cost(month_start + chrono::Duration::hours(h), 1, Decimal::ONE, "OpenAI", "gpt-4o"))
        .collect();
    let window = burnrate_core::SyncWindow::new(
        (month_start - chrono::Duration::days(1)).date_naive(),
        (month_start + chrono::Duration::days(1)).date_naive(),
    )
    .unwrap()
    .whole_months();
    app.lake.replace(&app.store, scope, source, window, &records).await.unwrap();
    let c = app.login("o@example.com").await;
    let home = c.get("/").await.text;
    let mtd = &home[home.find("id=\"month-to-date\"").expect("month to date")..];
    assert!(mtd.contains(">10.00 USD</a>"), "ten hours since the local midnight, not the UTC one: {mtd}");
    assert!(home.contains("Month to date in America/Los_Angeles"), "the zone is said");
}

/// The roll-up the sync writes beside each costs file sums to exactly what the lines do, for
/// files written before roll-ups existed too (they stand in for their own); the explorer reads it
/// where it can and the lines where it must (API keys, SKUs, tags), with the same totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_rollup_sums_as_the_lines_do_including_files_from_before_it() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let start = Utc.with_ymd_and_hms(2026, 1, 30, 0, 0, 0).unwrap();
    // Three days × four models × three SKUs × five API keys, some tagged: 180 lines a source,
    // which the roll-up sums to twelve a source.
    let lines = |provider: &str| -> Vec<CostRecord> {
        let mut out = Vec::new();
        for n in 0..180i64 {
            let model = format!("model-{}", n % 4);
            let amount = Decimal::new(1_000_000_007 * (n + 1) % 999_999_937, 9);
            let mut r = usd_cost(start + chrono::Duration::days(n % 3), 24, amount, provider, &model);
            r.sku_id = Some(format!("{model}, {}", ["input", "output", "cached"][(n / 4 % 3) as usize]));
            r.api_key_id = Some(format!("key_{}", n / 12 % 5));
            if n % 2 == 0 {
                r.tags.insert("team".into(), "search".into());
            }
            out.push(r);
        }
        out
    };
    let (new, old) = (lines("OpenAI"), lines("Anthropic"));
    let window = burnrate_core::SyncWindow::new(
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
    )
    .unwrap();
    app.lake.replace(&app.store, scope, burnrate_core::SourceId::generate(), window, &new).await.unwrap();
    // Anthropic's files as a version without roll-ups wrote them: the same Parquet, no roll-up.
    let source = burnrate_core::SourceId::generate();
    let written = app.lake.write_costs(&app.store, scope, source, window, &old).await.unwrap();
    let mut before = Vec::new();
    for f in &written {
        assert!(f.rollup_path.is_some(), "costs files get a roll-up");
        let to = f.path.replace(".parquet", "-old.parquet");
        std::fs::copy(app.lake_path().join(&f.path), app.lake_path().join(&to)).unwrap();
        let file = burnrate_store::LakeFile { id: uuid::Uuid::now_v7(), path: to, rollup_path: None, ..f.clone() };
        let mut tx = app.store.tenant(scope).await.unwrap();
        tx.add_pending_lake_file(burnrate_store::LakeTable::Costs, &file).await.unwrap();
        tx.commit().await.unwrap();
        before.push(file);
    }
    app.lake.commit(&app.store, scope, burnrate_store::LakeTable::Costs, source, window, &before).await.unwrap();

    let c = app.login("o@example.com").await;
    let key = create_key(&c, "k", "read").await;
    let sql = |q: String| {
        let c = &c;
        let key = &key;
        async move {
            let r = c.api(Method::POST, "/api/v1/sql", key, Some(serde_json::json!({ "sql": q }))).await;
            assert_eq!(r.status, 200, "{q}: {}", r.text);
            r.json()["rows"].clone()
        }
    };
    let by = "provider_name, model, charge_day";
    let sums = "sum(billed_cost), sum(effective_cost), sum(list_cost), count(*)";
    let lines_answer = sql(format!("SELECT {by}, {sums} FROM costs GROUP BY {by} ORDER BY {by}")).await;
    let rollup_answer = sql(format!("SELECT {by}, {sums} FROM cost_rollup GROUP BY {by} ORDER BY {by}")).await;
    let (lines_rows, rollup_rows) = (lines_answer.as_array().unwrap(), rollup_answer.as_array().unwrap());
    assert_eq!(lines_rows.len(), 2 * 4 * 3, "two providers × four models × three days");
    for (l, r) in lines_rows.iter().zip(rollup_rows) {
        assert_eq!(l.as_array().unwrap()[..6], r.as_array().unwrap()[..6], "the same sums to the last decimal");
        let (l_count, r_count) = (l[6].as_str().unwrap(), r[6].as_str().unwrap());
        assert_eq!(l_count, "15", "{l}");
        // The roll-up sums a batch's lines into one; the old files stand in with their lines.
        let expected = if l[0] == "OpenAI" { "1" } else { "15" };
        assert_eq!(r_count, expected, "{r}");
    }

    // The explorer by model reads the roll-up; by API key, the lines: the same total either way.
    let total: Decimal = new.iter().chain(&old).map(|r| r.billed_cost.amount()).sum();
    for group in ["model", "api_key", "tags", "sku"] {
        let page = c.get(&format!("/explore?group={group}&from=2026-01-30&to=2026-02-02")).await;
        assert!(page.text.contains(&format!("id=\"explore-total\">{} USD", total.normalize())), "{group}");
    }
    let filtered = c.get("/explore?group=model&from=2026-01-30&to=2026-02-02&api_key=key_3&provider=OpenAI").await;
    let key_3: Decimal =
        new.iter().filter(|r| r.api_key_id.as_deref() == Some("key_3")).map(|r| r.billed_cost.amount()).sum();
    assert!(filtered.text.contains(&format!("id=\"explore-total\">{} USD", key_3.normalize())), "{}", filtered.text);
}

/// The usage roll-up the sync writes beside each usage file sums the tokens and computed cost
/// exactly as the rows do and counts the rows it sums and the priced ones, for files from before
/// it too; reconciliation reads it, so its row counts are the usage table's. Neither roll-up is
/// listed among the tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_rollup_sums_and_counts_as_the_rows_do_including_files_from_before_it() {
    use burnrate_core::UsageRecord;
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let start = Utc.with_ymd_and_hms(2026, 1, 30, 0, 0, 0).unwrap();
    // Three days × four models × five API keys × three projects; model-3 is unpriced, and every
    // seventh row of the others too.
    let rows = |provider: &str| -> Vec<UsageRecord> {
        (0..180i64)
            .map(|n| {
                let bucket_start = start + chrono::Duration::days(n % 3);
                let model = format!("model-{}", n % 4);
                let priced = n % 4 != 3 && n % 7 != 0;
                UsageRecord {
                    bucket_start,
                    bucket_end: bucket_start + chrono::Duration::days(1),
                    provider_name: provider.into(),
                    usage_type: "completions".into(),
                    model: Some(model),
                    project_id: (n / 12 % 3 != 0).then(|| format!("proj_{}", n / 12 % 3)),
                    api_key_id: Some(format!("key_{}", n / 12 % 5)),
                    input_uncached_tokens: 1_000 + n * 37,
                    input_cached_tokens: n * 11,
                    input_cache_write_tokens: n % 5,
                    output_tokens: 100 + n,
                    requests: Some(1 + n % 9),
                    computed_cost: priced.then(|| Decimal::new(123_456_789_012_345 * (n + 1), 18)),
                    price_ref: priced.then(|| "test".into()),
                    ..Default::default()
                }
            })
            .collect()
    };
    let window = burnrate_core::SyncWindow::new(
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
    )
    .unwrap();
    let new = burnrate_core::SourceId::generate();
    app.lake.replace(&app.store, scope, new, window, &rows("OpenAI")).await.unwrap();
    // Anthropic's files as a version without usage roll-ups wrote them: the same Parquet alone.
    let source = burnrate_core::SourceId::generate();
    let mut writer = app.lake.writer::<UsageRecord>(&app.store, scope, source, window).unwrap();
    writer.push(rows("Anthropic")).await.unwrap();
    let mut before = Vec::new();
    for f in writer.finish().await.unwrap() {
        assert!(f.rollup_path.as_deref().is_some_and(|p| p.contains("/usage_rollup/")), "usage files get a roll-up");
        let to = f.path.replace(".parquet", "-old.parquet");
        std::fs::copy(app.lake_path().join(&f.path), app.lake_path().join(&to)).unwrap();
        let file = burnrate_store::LakeFile { id: uuid::Uuid::now_v7(), path: to, rollup_path: None, ..f.clone() };
        let mut tx = app.store.tenant(scope).await.unwrap();
        tx.add_pending_lake_file(burnrate_store::LakeTable::Usage, &file).await.unwrap();
        tx.commit().await.unwrap();
        before.push(file);
    }
    app.lake.commit(&app.store, scope, burnrate_store::LakeTable::Usage, source, window, &before).await.unwrap();

    // Each answer as rows of cells, the header left out.
    let sql = |q: &str| {
        let q = q.to_owned();
        let app = &app;
        async move {
            let (_, batches) = app.engine.collect(scope, &q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
            let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
            let cells = |l: &str| l.trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect::<Vec<_>>();
            text.lines().filter(|l| l.starts_with('|')).skip(1).map(cells).collect::<Vec<_>>()
        }
    };
    let by = "provider_name, model, coalesce(project_id, ''), charge_day";
    let sums = "sum(input_uncached_tokens), sum(input_cached_tokens), sum(input_cache_write_tokens), \
                sum(output_tokens), sum(requests), CAST(sum(computed_cost) AS VARCHAR)";
    let of_rows =
        sql(&format!("SELECT {by}, {sums}, count(*), count(computed_cost) FROM usage GROUP BY {by} ORDER BY {by}"))
            .await;
    let of_rollup = sql(&format!(
        "SELECT {by}, {sums}, sum(coalesce(x_rows, 1)), \
                sum(coalesce(x_priced_rows, CASE WHEN computed_cost IS NULL THEN 0 ELSE 1 END)) \
         FROM usage_rollup GROUP BY {by} ORDER BY {by}"
    ))
    .await;
    assert_eq!(of_rows.len(), 2 * 4 * 3 * 3, "two providers × four models × three projects × three days");
    assert_eq!(of_rows, of_rollup, "the same sums and counts, to the last decimal");
    assert!(of_rows.iter().any(|r| r[10] != r[11] && r[11] != "0"), "some groups are priced in part");
    let rolled = sql("SELECT count(*) FROM usage_rollup WHERE provider_name = 'OpenAI'").await;
    assert_eq!(rolled, [["36"]], "one roll-up row per model, project and day");

    // Reconciliation counts what the rows count.
    let reconciled =
        sql("SELECT provider_name, model, coalesce(project_id, ''), day, usage_rows, usage_rows - unpriced_rows \
         FROM reconciliation ORDER BY 1, 2, 3, 4")
        .await;
    let counted =
        sql(&format!("SELECT {by}, count(*), count(computed_cost) FROM usage GROUP BY {by} ORDER BY {by}")).await;
    assert_eq!(reconciled, counted);
    let listed = sql("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '%rollup%'").await;
    assert_eq!(listed, [["0"]], "roll-ups are not listed");
}

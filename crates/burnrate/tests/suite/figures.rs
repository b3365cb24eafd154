//! The same figures from every front end on a pinned day. With the clock fixed and a known set of
//! cost lines in the lake, the overview, the explorer, the FOCUS export, budgets and the weekly
//! digest each give exactly what is summed here from the lake's own rows — the figures a refactor
//! of the spend read model must leave as they are.

use std::collections::BTreeMap;
use std::str::FromStr;

use burnrate_app::Clock;
use burnrate_core::{CostRecord, ReportingZone};
use burnrate_sim::fixture::usd_cost;
use burnrate_testkit::{AppOptions, TestApp};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::json;

use crate::create_key;

const ZONE: &str = "America/Los_Angeles";

fn now() -> DateTime<Utc> {
    // A Wednesday afternoon in Los Angeles: its local day is the 18th, UTC's already the 19th.
    Utc.with_ymd_and_hms(2026, 3, 19, 1, 30, 0).unwrap()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Two providers and three models over the 60 days up to now: hourly lines at every third hour
/// (shorter than a day: they fall on their local day) and, for one provider, a whole UTC day a
/// week (which stays on its UTC day).
fn lines() -> Vec<CostRecord> {
    let start = now() - Duration::days(60);
    let mut out = Vec::new();
    for step in 0..(60 * 8) {
        let at = start + Duration::hours(3 * step);
        if at >= now() {
            break;
        }
        let (provider, model) =
            [("OpenAI", "gpt-4o"), ("Anthropic", "claude-sonnet-4"), ("OpenAI", "o3")][step as usize % 3];
        let amount = Decimal::from_str(&format!("{}.{:09}", step % 4, (step * 7_919 + 13) % 1_000_000_000)).unwrap();
        let mut line = usd_cost(at, 1, amount, provider, model);
        if step % 5 == 0 {
            line.sub_account_id = Some("proj_research".into());
        }
        out.push(line);
    }
    let mut day = (start + Duration::days(1)).date_naive();
    while day < now().date_naive() {
        let midnight = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap());
        out.push(usd_cost(midnight, 24, Decimal::from_str("5.000000001").unwrap(), "Anthropic", "claude-opus-4"));
        day += Duration::days(7);
    }
    out
}

/// The local day a line falls on: its start's, unless a provider reported it as a whole UTC day.
fn local_day(zone: ReportingZone, line: &CostRecord) -> NaiveDate {
    if line.charge_period_end - line.charge_period_start < Duration::days(1) {
        zone.date_of(line.charge_period_start)
    } else {
        line.charge_period_start.date_naive()
    }
}

fn sum<'a>(lines: impl Iterator<Item = &'a CostRecord>) -> Decimal {
    lines.map(|l| l.billed_cost.amount()).sum()
}

fn decimal(v: &serde_json::Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("{v} is not decimal text"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_pinned_day_the_overview_explorer_export_budgets_and_digest_give_the_lakes_own_sums() {
    let app = TestApp::spawn_with(AppOptions { clock: Clock::Fixed(now()), ..Default::default() }).await;
    let (scope, _) = app.create_org("Figures", "o@example.com").await;
    let zone = ReportingZone::parse(ZONE).unwrap();
    let mut tx = app.store.tenant(scope).await.unwrap();
    tx.set_reporting_tz(ZONE).await.unwrap();
    let config = "{\"backfill_days\":90,\"repull_days\":3,\"interval_minutes\":60}";
    let new = burnrate_store::NewSource { kind: "openai", name: "All", config, secret: "sk-admin-FIGURES0000000001" };
    let source = tx.create_source(&app.vault, &new).await.unwrap();
    tx.commit().await.unwrap();
    let lines = lines();
    let window = burnrate_core::SyncWindow::new(d("2026-01-01"), d("2026-04-01")).unwrap();
    app.lake.replace(&app.store, scope, source, window, &lines).await.unwrap();
    let c = app.login("o@example.com").await;
    let key = create_key(&c, "figures", "admin").await;
    let today = zone.date_of(now());
    assert_eq!(today, d("2026-03-18"));
    let on = |from: NaiveDate, to: NaiveDate| move |l: &&CostRecord| (from..to).contains(&local_day(zone, l));

    // The overview: the month to date, the same days of February, and the last 30 days by day.
    let spend = c.api(Method::GET, "/api/v1/spend", &key, None).await;
    assert_eq!(spend.status, 200, "{}", spend.text);
    let spend = spend.json();
    let month = sum(lines.iter().filter(on(d("2026-03-01"), d("2026-03-19"))));
    let february = sum(lines.iter().filter(on(d("2026-02-01"), d("2026-02-19"))));
    assert_eq!(spend["month_to_date"], json!([{ "currency": "USD", "amount": month.to_string() }]));
    assert_eq!(decimal(&spend["previous_month_to_date"][0]["amount"]), february);
    let mut days: BTreeMap<(NaiveDate, String), Decimal> = BTreeMap::new();
    for l in lines.iter().filter(on(today - Duration::days(29), today + Duration::days(1))) {
        *days.entry((local_day(zone, l), l.provider_name.clone())).or_default() += l.billed_cost.amount();
    }
    let shown: BTreeMap<(NaiveDate, String), Decimal> = spend["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| ((d(r["day"].as_str().unwrap()), r["provider"].as_str().unwrap().to_owned()), decimal(&r["amount"])))
        .collect();
    assert_eq!(shown, days, "the last 30 days by day and provider");
    let mut models: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in lines.iter().filter(on(d("2026-03-01"), d("2026-03-19"))) {
        *models.entry(l.model.clone().unwrap()).or_default() += l.billed_cost.amount();
    }
    let mut top: Vec<(String, Decimal)> = models.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let shown_top: Vec<(String, Decimal)> = spend["top_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), decimal(&t["amount"])))
        .collect();
    assert_eq!(shown_top, top, "this month's models, largest first");

    // The explorer's CSV of March by day and model.
    let csv = c.get("/explore?group=model&from=2026-03-01&to=2026-03-19&granularity=day&format=csv").await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    let mut explored: BTreeMap<(NaiveDate, String), Decimal> = BTreeMap::new();
    for row in csv.text.lines().skip(1) {
        let cells: Vec<&str> = row.split(',').collect();
        explored.insert((d(cells[0]), cells[1].to_owned()), Decimal::from_str(cells[3]).unwrap());
    }
    let mut want: BTreeMap<(NaiveDate, String), Decimal> = BTreeMap::new();
    for l in lines.iter().filter(on(d("2026-03-01"), d("2026-03-19"))) {
        *want.entry((local_day(zone, l), l.model.clone().unwrap())).or_default() += l.billed_cost.amount();
    }
    assert_eq!(explored, want, "the explorer's days are the overview's days");

    // The FOCUS export of February and March (UTC days, as FOCUS charge periods are).
    let export =
        c.api(Method::GET, "/api/v1/exports?dataset=focus&format=csv&from=2026-02-01&to=2026-03-19", &key, None).await;
    assert_eq!(export.status, 200, "{}", export.text);
    // No cell of these lines holds a comma or a quote: the rows split plainly.
    let mut rows = export.text.lines().map(|l| l.split(',').collect::<Vec<_>>());
    let billed = rows.next().unwrap().iter().position(|h| *h == "BilledCost").unwrap();
    let exported: Decimal = rows.map(|r| Decimal::from_str(r[billed]).unwrap()).sum();
    let utc = |l: &&CostRecord| (d("2026-02-01")..d("2026-03-19")).contains(&l.charge_period_start.date_naive());
    assert_eq!(exported, sum(lines.iter().filter(utc)));

    // A monthly budget: it counts the month to date.
    let budget = json!({ "name": "All", "amount": "100000", "currency": "USD", "period": "month" });
    assert_eq!(c.api(Method::POST, "/api/v1/budgets", &key, Some(budget)).await.status, 201);
    let listed = c.api(Method::GET, "/api/v1/budgets", &key, None).await.json();
    let standing = &listed["budgets"][0]["status"];
    assert_eq!(decimal(&standing["spend"]), month, "{standing}");
    assert_eq!((standing["period_start"].as_str(), standing["time_zone"].as_str()), (Some("2026-03-01"), Some(ZONE)));

    // The weekly digest: the last seven local days by provider.
    let digest = app.notifier.digest(scope, now()).await.unwrap();
    assert_eq!(digest.subject, "[burnrate] Weekly spend digest: 2026-03-11 to 2026-03-17");
    for provider in ["Anthropic", "OpenAI"] {
        let week =
            sum(lines.iter().filter(on(d("2026-03-11"), d("2026-03-18"))).filter(|l| l.provider_name == provider));
        let line = format!("  {provider:<24} {week:>12.2} USD");
        assert!(digest.body.contains(&line), "{line:?} in\n{}", digest.body);
    }
}

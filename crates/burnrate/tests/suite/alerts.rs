//! Budget evaluation on time-series fixtures, and alerts on their way out: each threshold once
//! per period, forecasts ahead of the crossing, anomalies on spikes but not on weekly rhythm,
//! periods in the organization's time zone; webhooks retried, dead-lettered, redelivered, and
//! nothing lost across a restart.

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use burnrate_core::{BudgetPeriod, BudgetScope, CostRecord, Currency, Money, Period, SyncWindow, Thresholds};
use burnrate_store::{AlertEvent, AlertKind, NewBudget, OrgScope};
use burnrate_testkit::TestApp;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::json;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn usd(s: &str) -> Money {
    Money::new(Decimal::from_str(s).unwrap(), Currency::parse("USD").unwrap()).unwrap()
}

/// A cost line of `amount` USD for the hour or day starting at `start`.
fn cost(start: DateTime<Utc>, hours: i64, amount: Decimal, model: &str) -> CostRecord {
    burnrate_sim::fixture::usd_cost(start, hours, amount, "OpenAI", model)
}

fn day_cost(day: NaiveDate, amount: Decimal) -> CostRecord {
    cost(day.and_hms_opt(0, 0, 0).unwrap().and_utc(), 24, amount, "gpt-4o")
}

/// What a sync does to the lake: replaces every month that `lines` touch (and `window`) with them.
async fn sync_lines(
    app: &TestApp,
    scope: OrgScope,
    source: burnrate_core::SourceId,
    from: NaiveDate,
    to: NaiveDate,
    lines: &[CostRecord],
) {
    let window = SyncWindow::new(from, to).unwrap().whole_months();
    app.lake.replace(&app.store, scope, source, window, lines).await.unwrap();
}

/// Today's spend of the organization is `amount` USD, as a sync of `source` would leave it.
async fn spend_today(app: &TestApp, scope: OrgScope, source: burnrate_core::SourceId, amount: i64) {
    let today = Utc::now().date_naive();
    sync_lines(app, scope, source, today, today.succ_opt().unwrap(), &[day_cost(today, Decimal::from(amount))]).await;
}

async fn add_budget(
    app: &TestApp,
    scope: OrgScope,
    owner: burnrate_core::UserId,
    amount: &str,
    forecast: bool,
) -> burnrate_core::BudgetId {
    let mut tx = app.store.tenant(scope).await.unwrap();
    let id = tx
        .create_budget(&NewBudget {
            name: "Research",
            amount: usd(amount),
            period: BudgetPeriod::Month,
            scope: &BudgetScope::default(),
            thresholds: &Thresholds::default(),
            forecast_alert: forecast,
            email_members: &[owner],
            created_by: owner,
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn events(app: &TestApp, scope: OrgScope) -> Vec<AlertEvent> {
    let mut tx = app.store.tenant(scope).await.unwrap();
    let mut list = tx.alert_events(1000).await.unwrap();
    tx.commit().await.unwrap();
    list.reverse();
    list
}

/// Noon UTC of `day`: when the fixtures' syncs run.
fn noon(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(12, 0, 0).unwrap().and_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_threshold_fires_once_per_period_at_the_first_sync_that_crosses_it() {
    let app = TestApp::spawn().await;
    let (scope, owner) = app.create_org("Org", "owner@example.com").await;
    add_budget(&app, scope, owner, "1000", false).await;
    let source = burnrate_core::SourceId::generate();
    // 40 USD a day through November: 50 % on the 13th (520), 80 % on the 20th (800), 100 % on the 25th.
    let mut fired_on = Vec::new();
    for day in 1..=30u32 {
        let today = NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        let lines: Vec<_> =
            (1..=day).map(|n| day_cost(NaiveDate::from_ymd_opt(2026, 11, n).unwrap(), Decimal::from(40))).collect();
        sync_lines(&app, scope, source, d("2026-11-01"), today.succ_opt().unwrap(), &lines).await;
        let now = noon(today) + chrono::Duration::hours(12) - chrono::Duration::seconds(1);
        for event in app.notifier.evaluate(scope, now, now.timestamp_millis()).await.unwrap() {
            fired_on.push((event.kind, event.threshold, day, event.spend.clone()));
        }
        // A second evaluation of the same data (the hourly one) fires nothing new.
        assert!(app.notifier.evaluate(scope, now, 0).await.unwrap().is_empty(), "day {day}: fired twice");
    }
    assert_eq!(
        fired_on,
        vec![
            (AlertKind::Threshold, 50, 13, "520.000000000".to_owned()),
            (AlertKind::Threshold, 80, 20, "800.000000000".to_owned()),
            (AlertKind::Threshold, 100, 25, "1000.000000000".to_owned()),
        ]
    );

    // A restatement lowers November below 80 % and raises it again: nothing fires again.
    let low: Vec<_> =
        (1..=30).map(|n| day_cost(NaiveDate::from_ymd_opt(2026, 11, n).unwrap(), Decimal::from(20))).collect();
    sync_lines(&app, scope, source, d("2026-11-01"), d("2026-12-01"), &low).await;
    assert!(app.notifier.evaluate(scope, noon(d("2026-11-30")), 0).await.unwrap().is_empty());
    let high: Vec<_> =
        (1..=30).map(|n| day_cost(NaiveDate::from_ymd_opt(2026, 11, n).unwrap(), Decimal::from(45))).collect();
    sync_lines(&app, scope, source, d("2026-11-01"), d("2026-12-01"), &high).await;
    assert!(
        app.notifier.evaluate(scope, noon(d("2026-11-30")), 0).await.unwrap().is_empty(),
        "re-fired in the same period"
    );

    // December is a new period: its first crossing fires.
    let december: Vec<_> =
        (1..=15).map(|n| day_cost(NaiveDate::from_ymd_opt(2026, 12, n).unwrap(), Decimal::from(40))).collect();
    sync_lines(&app, scope, source, d("2026-12-01"), d("2026-12-16"), &december).await;
    let fired = app.notifier.evaluate(scope, noon(d("2026-12-15")), 0).await.unwrap();
    assert_eq!(fired.iter().map(|e| (e.threshold, e.period_start)).collect::<Vec<_>>(), vec![(50, d("2026-12-01"))]);
    assert_eq!(events(&app, scope).await.len(), 4);

    // Each event went to the member the budget names, once.
    let first = app.smtp.wait_for("owner@example.com", "Research: 50 % of budget reached").await;
    let body = first.body();
    assert!(body.contains("reached 50 %: 520.00 USD of 1000.00 USD this month"), "{body}");
    assert!(body.contains("/budgets") && body.contains("cannot stop provider calls"), "{body}");
    app.smtp.wait_for_nth("owner@example.com", "Research: 50 % of budget reached", 2).await;
    for t in [80, 100] {
        app.smtp.wait_for("owner@example.com", &format!("Research: {t} % of budget reached")).await;
    }
    // Counted by subject: on a Monday the weekly digest goes to the owner too.
    let alerts = app.smtp.all().iter().filter(|m| m.subject().contains("of budget reached")).count();
    assert_eq!(alerts, 4, "one message per event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forecast_alert_fires_before_a_steadily_rising_spend_crosses_the_budget() {
    let app = TestApp::spawn().await;
    let (scope, owner) = app.create_org("Org", "owner@example.com").await;
    // Spend rises by 1 USD a day from 10 USD on 1 October.
    let spend_on = |day: NaiveDate| Decimal::from(10 + (day - d("2026-10-01")).num_days());
    let november: Decimal = (1..=30).map(|n| spend_on(NaiveDate::from_ymd_opt(2026, 11, n).unwrap())).sum();
    // The budget is 90 % of what November will spend: the actual crossing comes late in the month.
    let amount = (november * Decimal::new(9, 1)).round_dp(2);
    add_budget(&app, scope, owner, &amount.to_string(), true).await;
    let source = burnrate_core::SourceId::generate();
    let (mut forecast_day, mut crossing_day) = (None, None);
    for offset in 0..61 {
        let today = d("2026-10-01") + chrono::Duration::days(offset);
        let lines: Vec<_> = (0..=offset)
            .map(|o| d("2026-10-01") + chrono::Duration::days(o))
            .map(|day| day_cost(day, spend_on(day)))
            .collect();
        sync_lines(&app, scope, source, d("2026-10-01"), today.succ_opt().unwrap(), &lines).await;
        for event in app.notifier.evaluate(scope, noon(today), 0).await.unwrap() {
            match (event.kind, event.threshold) {
                (AlertKind::Forecast, _) if event.period_start == d("2026-11-01") => forecast_day = Some(today),
                (AlertKind::Threshold, 100) if event.period_start == d("2026-11-01") => crossing_day = Some(today),
                _ => {}
            }
        }
    }
    let (forecast_day, crossing_day) = (forecast_day.expect("a forecast alert"), crossing_day.expect("the crossing"));
    assert!(forecast_day < crossing_day, "forecast on {forecast_day}, crossing on {crossing_day}");
    assert!(crossing_day.day() > 20, "the fixture crosses late: {crossing_day}");
    assert!((crossing_day - forecast_day).num_days() >= 7, "a week's warning at least: {forecast_day}, {crossing_day}");
    // The forecast alert carries the forecast.
    let forecast = events(&app, scope).await.into_iter().find(|e| e.kind == AlertKind::Forecast).unwrap();
    assert!(Decimal::from_str(forecast.forecast.as_deref().unwrap()).unwrap() >= amount);
}

/// Weekdays busy, weekends quiet, with a little noise: a strong weekly rhythm.
fn weekly(day: NaiveDate) -> Decimal {
    let noise = Decimal::from((day.ordinal() * 7919) % 9) - Decimal::from(4);
    match day.weekday() {
        chrono::Weekday::Sat | chrono::Weekday::Sun => Decimal::from(12) + noise / Decimal::TWO,
        _ => Decimal::from(120) + noise,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anomaly_fires_on_a_spike_and_never_on_a_strong_weekly_pattern() {
    let app = TestApp::spawn().await;
    let (scope, owner) = app.create_org("Org", "owner@example.com").await;
    add_budget(&app, scope, owner, "30000", false).await;
    let source = burnrate_core::SourceId::generate();
    let start = d("2026-09-01");
    let spike = d("2026-11-18"); // a Wednesday
    let mut anomalies = Vec::new();
    for offset in 0..80 {
        let today = start + chrono::Duration::days(offset);
        let lines: Vec<_> = (0..offset)
            .map(|o| start + chrono::Duration::days(o))
            .map(|day| day_cost(day, if day == spike { Decimal::from(600) } else { weekly(day) }))
            .collect();
        if lines.is_empty() {
            continue;
        }
        sync_lines(&app, scope, source, start, today, &lines).await;
        for event in app.notifier.evaluate(scope, noon(today), 0).await.unwrap() {
            assert_eq!(event.kind, AlertKind::Anomaly);
            anomalies.push((today, event.period_start, event.spend, event.forecast));
        }
    }
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    let (seen_on, day, spend, usual) = &anomalies[0];
    assert_eq!((*seen_on, *day), (spike.succ_opt().unwrap(), spike), "the morning after the spike");
    assert_eq!(spend, "600.000000000");
    assert!(Decimal::from_str(usual.as_deref().unwrap()).unwrap() < Decimal::from(130));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_periods_follow_the_organizations_time_zone_around_a_month_end() {
    let app = TestApp::spawn().await;
    let (scope, owner) = app.create_org("Org", "owner@example.com").await;
    let budget = add_budget(&app, scope, owner, "100", false).await;
    let source = burnrate_core::SourceId::generate();
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    // 23:00 on 30 November in Tokyo, and 01:00 on 1 December there; both are 30 November in UTC.
    let lines = vec![
        cost(at("2026-11-30T14:00:00Z"), 1, Decimal::from(60), "gpt-4o"),
        cost(at("2026-11-30T16:00:00Z"), 1, Decimal::from(7), "gpt-4o"),
    ];
    sync_lines(&app, scope, source, d("2026-11-30"), d("2026-12-01"), &lines).await;

    // In UTC both hours are November's.
    let status = |now: DateTime<Utc>| {
        let app = &app;
        async move { app.notifier.statuses(scope, now).await.unwrap().into_iter().find(|s| s.budget.id == budget).unwrap() }
    };
    let utc = status(at("2026-11-30T20:00:00Z")).await;
    assert_eq!((utc.period.start, utc.spend), (d("2026-11-01"), Decimal::from(67)));

    let mut tx = app.store.tenant(scope).await.unwrap();
    tx.set_reporting_tz("Asia/Tokyo").await.unwrap();
    tx.commit().await.unwrap();
    // 23:30 on 30 November in Tokyo: November holds only the first hour.
    let late = status(at("2026-11-30T14:30:00Z")).await;
    assert_eq!((late.period.start, late.period.end, late.spend), (d("2026-11-01"), d("2026-12-01"), Decimal::from(60)));
    assert_eq!(late.resets_at, at("2026-11-30T15:00:00Z"), "the month ends at Tokyo's midnight");
    // 09:00 on 1 December in Tokyo (still 30 November in UTC): December has the second hour.
    let next = status(at("2026-12-01T00:00:00Z")).await;
    assert_eq!((next.period.start, next.spend), (d("2026-12-01"), Decimal::from(7)));
    assert_eq!(next.resets_at, at("2026-12-31T15:00:00Z"));
    // November crossed 50 % in Tokyo; the event is November's, by Tokyo's calendar.
    let fired = app.notifier.evaluate(scope, at("2026-11-30T14:30:00Z"), 0).await.unwrap();
    assert_eq!(fired.iter().map(|e| (e.threshold, e.period_start)).collect::<Vec<_>>(), vec![(50, d("2026-11-01"))]);

    // New York: 03:00 UTC on 1 December is 22:00 on 30 November there.
    let mut tx = app.store.tenant(scope).await.unwrap();
    tx.set_reporting_tz("America/New_York").await.unwrap();
    tx.commit().await.unwrap();
    let ny = status(at("2026-12-01T03:00:00Z")).await;
    assert_eq!((ny.period.start, ny.spend), (d("2026-11-01"), Decimal::from(67)));
    assert_eq!(ny.resets_at, at("2026-12-01T05:00:00Z"));

    // A line a provider reports as the whole UTC day of 1 December has no hours to place: it is
    // December's, as the overview and the explorer show it, though it starts on New York's 30th.
    let whole_day = vec![cost(at("2026-12-01T00:00:00Z"), 24, Decimal::from(5), "gpt-4o")];
    sync_lines(&app, scope, burnrate_core::SourceId::generate(), d("2026-12-01"), d("2026-12-02"), &whole_day).await;
    assert_eq!(status(at("2026-12-01T03:00:00Z")).await.spend, Decimal::from(67), "not November's");
    let december = status(at("2026-12-02T12:00:00Z")).await;
    assert_eq!((december.period.start, december.spend), (d("2026-12-01"), Decimal::from(5)));
    let c = app.login("owner@example.com").await;
    let explorer = c.get("/explore?granularity=month&from=2026-11-01&to=2026-12-31").await;
    assert!(
        explorer.text.contains("<tr><td>2026-12-01</td><td>OpenAI</td><td class=\"num\">5 USD</td>"),
        "{}",
        explorer.text
    );
}

/// A simulated OpenAI that accepts `sk-admin-ALERTS…` and, connected to it, a source whose stored
/// key is `key`.
async fn openai_source(
    app: &TestApp,
    scope: OrgScope,
    key: &str,
) -> (burnrate_sim::SimProvider, burnrate_core::SourceId) {
    use burnrate_sync::SourceConfig;
    let sim = burnrate_sim::SimProvider::openai("sk-admin-ALERTS0000000000000000000").await;
    let config = serde_json::to_string(&SourceConfig {
        base_url: Some(sim.base_url()),
        ..SourceConfig::plain(burnrate_sync::SourceKind::OpenAi).unwrap()
    })
    .unwrap();
    let mut t = app.store.tenant(scope).await.unwrap();
    let new = burnrate_store::NewSource { kind: "openai", name: "prod", config: &config, secret: key };
    let source = t.create_source(&app.vault, &new).await.unwrap();
    t.commit().await.unwrap();
    (sim, source)
}

fn syncer(app: &TestApp) -> burnrate_sync::Syncer {
    burnrate_sync::Syncer::new(app.store.clone(), app.vault.clone(), app.lake.clone(), crate::sync::http())
}

/// An owner's browser session and admin API key, with a webhook to `url` (its secret).
async fn org_with_webhook(
    app: &TestApp,
    url: &str,
) -> (OrgScope, burnrate_testkit::TestClient, String, String, String) {
    let (scope, _) = app.create_org("Org", "owner@example.com").await;
    let c = app.login("owner@example.com").await;
    let key = crate::create_key(&c, "alerts", "admin").await;
    let r = c.api(Method::POST, "/api/v1/webhooks", &key, Some(json!({ "url": url }))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (id, secret) = (r.json()["id"].as_str().unwrap().to_owned(), r.json()["secret"].as_str().unwrap().to_owned());
    (scope, c, key, id, secret)
}

async fn api_budget(c: &burnrate_testkit::TestClient, key: &str, amount: &str, thresholds: &[u32]) {
    let body = json!({ "name": "Research", "amount": amount, "currency": "USD", "period": "month",
                       "thresholds": thresholds, "forecast_alert": false });
    let r = c.api(Method::POST, "/api/v1/budgets", key, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn next(received: &mut tokio::sync::mpsc::Receiver<crate::notify::Received>) -> crate::notify::Received {
    tokio::time::timeout(Duration::from_secs(20), received.recv()).await.expect("a delivery within 20 s").unwrap()
}

fn signed(got: &crate::notify::Received) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .into_iter()
        .map(|h| (h.to_owned(), got.headers.get(h).cloned().unwrap_or_default().into()))
        .collect();
    json!({ "headers": headers, "body": got.body })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_from_a_sync_reaches_its_webhook_signed_with_the_event_data() {
    let app = TestApp::spawn().await;
    let (url, mut received) = crate::notify::receiver().await;
    let (scope, c, key, webhook, secret) = org_with_webhook(&app, &url).await;
    // A second destination takes Slack-compatible messages.
    let (slack_url, mut slack) = crate::notify::receiver().await;
    let r = c.api(Method::POST, "/api/v1/webhooks", &key, Some(json!({ "url": slack_url, "slack": true }))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let slack_secret = r.json()["secret"].as_str().unwrap().to_owned();
    // A third takes only anomalies, and hears nothing of a threshold.
    let (quiet_url, mut quiet) = crate::notify::receiver().await;
    let body = json!({ "url": quiet_url, "events": ["spend.anomaly"] });
    let r = c.api(Method::POST, "/api/v1/webhooks", &key, Some(body)).await;
    assert_eq!((r.status, r.json()["events"].clone()), (201, json!(["spend.anomaly"])), "{}", r.text);
    let r = c
        .api(Method::POST, "/api/v1/webhooks", &key, Some(json!({ "url": quiet_url, "events": ["budget.exceeded"] })))
        .await;
    assert_eq!(r.status, 422);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("\"budget.exceeded\" is not one of budget.threshold_crossed"), "{message}");
    api_budget(&c, &key, "0.01", &[50]).await;
    let today = Utc::now().date_naive();
    let (sim, source) = openai_source(&app, scope, "sk-admin-ALERTS0000000000000000000").await;
    sim.set_lines(burnrate_sim::demo::openai_lines(today, 3));

    // The sync job; the instance's workers then run the evaluation it queued and the deliveries
    // that queued.
    let syncer = syncer(&app);
    let window = SyncWindow::new(today - chrono::Duration::days(2), today.succ_opt().unwrap()).unwrap().whole_months();
    let now_ms = Utc::now().timestamp_millis();
    burnrate_sync::enqueue_sync(&app.store, scope, source, window, None, now_ms).await.unwrap();
    assert_eq!(burnrate_sync::work(&syncer, "sync-worker").await.unwrap(), 1);
    let mut t = app.store.tenant(scope).await.unwrap();
    assert_eq!(t.source(source).await.unwrap().unwrap().last_error, None, "the sync succeeded");
    t.commit().await.unwrap();

    let to_slack = next(&mut slack).await;
    let text: serde_json::Value = serde_json::from_str(&to_slack.body).unwrap();
    let text = text["text"].as_str().unwrap();
    assert!(text.starts_with("Budget \"Research\" reached 50 %") && text.contains("/budgets|Open budgets>"), "{text}");
    let slack_secret = burnrate_notify::WebhookSecret::parse(&slack_secret).unwrap();
    assert_eq!(crate::notify::verify(&slack_secret, vec![signed(&to_slack)]).await, ["ok"], "signed too");

    let got = next(&mut received).await;
    assert_eq!(
        crate::notify::verify(&burnrate_notify::WebhookSecret::parse(&secret).unwrap(), vec![signed(&got)]).await,
        ["ok"]
    );
    let event: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(event["type"], "budget.threshold_crossed");
    let data = &event["data"];
    assert_eq!((data["budget"]["name"].as_str(), data["budget"]["amount"].as_str()), (Some("Research"), Some("0.01")));
    assert_eq!(data["threshold_percent"], 50);
    assert_eq!(data["period"]["time_zone"], "UTC");
    assert_eq!(
        data["period"]["start"].as_str().unwrap(),
        Period::containing(BudgetPeriod::Month, today).start.to_string()
    );
    assert!(Decimal::from_str(data["spend"].as_str().unwrap()).unwrap() >= Decimal::new(5, 3), "{data}");
    assert_eq!(data["links"]["budgets"].as_str().unwrap(), format!("{}/budgets", app.url));

    let log = c.api(Method::GET, &format!("/api/v1/webhooks/{webhook}/deliveries"), &key, None).await;
    let deliveries = log.json()["deliveries"].as_array().unwrap().clone();
    assert_eq!(deliveries.len(), 1, "{}", log.text);
    assert_eq!(
        (deliveries[0]["state"].as_str(), deliveries[0]["log"][0]["status"].as_i64()),
        (Some("delivered"), Some(204))
    );
    let id = deliveries[0]["id"].as_str().unwrap().replace('-', "");
    assert_eq!(got.headers["webhook-id"], format!("msg_{id}"), "the message id is the delivery's");
    assert!(!log.text.contains(&secret[6..]), "the delivery log holds no secret");
    assert!(quiet.try_recv().is_err(), "a destination gets only the types it takes");
}

/// Waits until `count` of the webhook's deliveries are in `state`; returns them.
async fn wait_for_state(
    c: &burnrate_testkit::TestClient,
    key: &str,
    webhook: &str,
    state: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        let r = c.api(Method::GET, &format!("/api/v1/webhooks/{webhook}/deliveries?state={state}"), key, None).await;
        let list = r.json()["deliveries"].as_array().unwrap().clone();
        if list.len() >= count {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} deliveries of webhook {webhook} became {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_growing_retries_and_one_down_for_good_a_redeliverable_dead_letter() {
    let policy = burnrate_notify::DeliveryPolicy {
        first_retry: Duration::from_millis(200),
        max_delay: Duration::from_secs(5),
        max_attempts: 4,
        ..Default::default()
    };
    let app = TestApp::spawn_with(burnrate_testkit::AppOptions { delivery: Some(policy), ..Default::default() }).await;
    let (url, mut received, answer) = crate::notify::receiver_answering(503).await;
    let (scope, c, key, webhook, secret) = org_with_webhook(&app, &url).await;
    api_budget(&c, &key, "100", &[50, 80]).await;
    let source = burnrate_core::SourceId::generate();
    spend_today(&app, scope, source, 60).await;
    assert_eq!(app.notifier.evaluate(scope, Utc::now(), Utc::now().timestamp_millis()).await.unwrap().len(), 1);
    // The instance's workers deliver it (and evaluate hourly too, finding nothing new).

    // Down for three attempts, then up: each wait longer than the one before, then delivered.
    let mut tries = Vec::new();
    for n in 0..4 {
        let got = next(&mut received).await;
        tries.push(got.at);
        if n == 2 {
            answer.store(204, Ordering::SeqCst);
        }
        assert_eq!(got.status, if n < 3 { 503 } else { 204 });
    }
    let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1] - w[0]).collect();
    for (n, gap) in gaps.iter().enumerate() {
        let least = policy.first_retry * 2u32.pow(n as u32) / 2;
        assert!(*gap >= least, "wait {} was {gap:?}, at least {least:?} expected", n + 1);
    }
    assert!(gaps[2] > gaps[0], "the waits grow: {gaps:?}");
    let delivered = wait_for_state(&c, &key, &webhook, "delivered", 1).await;
    let statuses: Vec<i64> =
        delivered[0]["log"].as_array().unwrap().iter().map(|a| a["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [503, 503, 503, 204]);

    // Down for good: four attempts, then the dead-letter list.
    answer.store(503, Ordering::SeqCst);
    spend_today(&app, scope, source, 85).await;
    app.notifier.evaluate(scope, Utc::now(), 0).await.unwrap();
    assert_eq!(events(&app, scope).await.len(), 2, "the 80 % crossing fired (here or in an hourly pass)");
    for _ in 0..4 {
        assert_eq!(next(&mut received).await.status, 503);
    }
    let dead = wait_for_state(&c, &key, &webhook, "dead", 1).await;
    assert_eq!((dead.len(), dead[0]["attempts"].as_u64()), (1, Some(4)));
    assert_eq!(dead[0]["payload"]["data"]["threshold_percent"], 80);
    let page = c.get("/webhooks").await;
    assert!(page.text.contains("Dead letters") && page.text.contains("Redeliver"), "{}", page.text);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(received.try_recv().is_err(), "a dead delivery is not tried again by itself");

    // Fixed receiver, redelivered: it arrives, signed, with the same message id.
    answer.store(204, Ordering::SeqCst);
    let id = dead[0]["id"].as_str().unwrap();
    let r = c.api(Method::POST, &format!("/api/v1/webhooks/{webhook}/deliveries/{id}/redeliver"), &key, None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let got = next(&mut received).await;
    assert_eq!((got.status, got.headers["webhook-id"].clone()), (204, format!("msg_{}", id.replace('-', ""))));
    assert_eq!(
        crate::notify::verify(&burnrate_notify::WebhookSecret::parse(&secret).unwrap(), vec![signed(&got)]).await,
        ["ok"]
    );
    let again = c.api(Method::POST, &format!("/api/v1/webhooks/{webhook}/deliveries/{id}/redeliver"), &key, None).await;
    assert_eq!(again.status, 409, "only a dead delivery is redelivered: {}", again.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_waiting_for_its_retry_survives_a_restart() {
    let policy = burnrate_notify::DeliveryPolicy { first_retry: Duration::from_millis(300), ..Default::default() };
    let mut app =
        TestApp::spawn_with(burnrate_testkit::AppOptions { delivery: Some(policy), ..Default::default() }).await;
    // This instance's workers are gone (its web server still answers): it delivers once, by hand.
    app.running.stop_workers();
    let (url, mut received, answer) = crate::notify::receiver_answering(503).await;
    let (scope, c, key, webhook, _) = org_with_webhook(&app, &url).await;
    api_budget(&c, &key, "100", &[50]).await;
    spend_today(&app, scope, burnrate_core::SourceId::generate(), 60).await;
    app.notifier.evaluate(scope, Utc::now(), 0).await.unwrap();
    assert_eq!(app.notifier.deliver_due().await.unwrap(), 1);
    let first = next(&mut received).await;
    assert_eq!(first.status, 503);

    // The instance goes away between attempts; another one, sharing only the database, takes over.
    let restarted = app.notifier_after_restart(policy);
    answer.store(204, Ordering::SeqCst);
    let workers = restarted.spawn(1);
    let second = next(&mut received).await;
    assert_eq!(second.status, 204);
    assert_eq!(first.headers["webhook-id"], second.headers["webhook-id"], "the same delivery, retried");
    let delivered = wait_for_state(&c, &key, &webhook, "delivered", 1).await;
    assert_eq!(delivered[0]["attempts"], 2);
    workers.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_digest_reaches_admins_and_reads_well_without_data_too() {
    let app = TestApp::spawn().await;
    let monday = noon(d("2026-11-30"));

    // An organization with nothing connected yet.
    let (quiet, _) = app.create_org("Quiet", "quiet@example.com").await;
    app.add_member(quiet, "viewer@quiet.test", burnrate_core::Role::Viewer).await;
    assert_eq!(app.notifier.send_digest(quiet, monday).await.unwrap(), 1, "owners and admins only");
    let mail = app.smtp.wait_for("quiet@example.com", "Weekly spend digest: 2026-11-23 to 2026-11-29").await;
    let body = mail.body();
    assert!(body.contains("No spend was recorded") && body.contains("No budgets yet"), "{body}");

    // One with two weeks of spend, rising, and a budget the forecast says will run over.
    let (busy, owner) = app.create_org("Busy", "busy@example.com").await;
    let mut lines = Vec::new();
    for n in 0..14 {
        let day = d("2026-11-16") + chrono::Duration::days(n);
        lines.push(day_cost(day, Decimal::from(if n < 7 { 10 } else { 20 })));
        if n >= 7 {
            lines.push(cost(day.and_hms_opt(0, 0, 0).unwrap().and_utc(), 24, Decimal::from(5), "o3"));
        }
    }
    sync_lines(&app, busy, burnrate_core::SourceId::generate(), d("2026-11-16"), d("2026-11-30"), &lines).await;
    add_budget(&app, busy, owner, "260", false).await;
    app.notifier.send_digest(busy, monday).await.unwrap();
    let body = app.smtp.wait_for("busy@example.com", "Weekly spend digest").await.body().replace("\r\n", "\n");
    assert!(body.contains("OpenAI") && body.contains("175.00 USD   +105.00 (+150 %)"), "{body}");
    assert!(body.contains("Top movers by model:\n  gpt-4o"), "{body}");
    assert!(body.contains("o3") && body.contains("+35.00"), "{body}");
    assert!(body.contains("Budgets at risk:\n  Research") && body.contains("forecast 270.00"), "{body}");
    assert!(app.smtp.all().iter().all(|m| !m.to.iter().any(|t| t.contains("viewer"))), "viewers get no digest");

    // Queued once a week, on Monday from 08:00 in the organization's zone.
    assert_eq!(app.notifier.queue_digests(noon(d("2026-11-29"))).await.unwrap(), 0, "not on a Sunday");
    let early = d("2026-11-30").and_hms_opt(7, 0, 0).unwrap().and_utc();
    assert_eq!(app.notifier.queue_digests(early).await.unwrap(), 0, "not before 08:00");
    assert_eq!(app.notifier.queue_digests(monday).await.unwrap(), 2);
    assert_eq!(app.notifier.queue_digests(monday + chrono::Duration::hours(3)).await.unwrap(), 0, "once a week");
    // The instance's workers send the two queued digests: each owner's second.
    app.smtp.wait_for_nth("quiet@example.com", "Weekly spend digest", 2).await;
    app.smtp.wait_for_nth("busy@example.com", "Weekly spend digest", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_one_destination_are_paced_not_dropped() {
    let policy = burnrate_notify::DeliveryPolicy {
        per_destination: burnrate_store::Quota { interval: Duration::from_millis(500), burst: 2 },
        ..Default::default()
    };
    let app = TestApp::spawn_with(burnrate_testkit::AppOptions { delivery: Some(policy), ..Default::default() }).await;
    let (url, mut received) = crate::notify::receiver().await;
    let (scope, c, key, webhook, _) = org_with_webhook(&app, &url).await;
    api_budget(&c, &key, "100", &[10, 20, 30, 40, 50]).await;
    spend_today(&app, scope, burnrate_core::SourceId::generate(), 60).await;
    // Two at once (the burst), then one per interval; none is dropped or counted as a failure.
    // Measured from the first arrival: the instance's deliverers start as soon as the evaluation
    // queues them, however long the evaluation itself takes.
    assert_eq!(app.notifier.evaluate(scope, Utc::now(), 0).await.unwrap().len(), 5);
    let first = next(&mut received).await.at;
    let mut arrived = vec![Duration::ZERO];
    for _ in 1..5 {
        arrived.push(next(&mut received).await.at - first);
    }
    assert!(arrived[1] < Duration::from_millis(400), "the burst goes at once: {arrived:?}");
    assert!(arrived[4] >= Duration::from_millis(1400), "the rest wait their turn: {arrived:?}");
    let delivered = wait_for_state(&c, &key, &webhook, "delivered", 5).await;
    assert_eq!(delivered.len(), 5);
    assert!(delivered.iter().all(|d| d["attempts"] == 1), "a paced delivery spends no attempt: {delivered:?}");
}

/// Makes every queued sync look as if it had failed four times already (the fifth is the last).
async fn on_last_attempt(app: &TestApp) {
    crate::execute_sql(app, "UPDATE jobs SET attempts = 4 WHERE kind = 'sync'").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_stops_syncing_is_announced_once_per_failure_streak() {
    let app = TestApp::spawn().await;
    let (url, mut received) = crate::notify::receiver().await;
    let (scope, _, _, _, _) = org_with_webhook(&app, &url).await;
    // The simulated provider knows another key than the one stored: every sync fails.
    let (_sim, source) = openai_source(&app, scope, "sk-admin-REVOKED0000000000000000000").await;
    let syncer = syncer(&app);
    let today = Utc::now().date_naive();
    let window = SyncWindow::new(today, today.succ_opt().unwrap()).unwrap().whole_months();

    // The last attempt of two schedule ticks fails: one announcement for the streak.
    for tick in [1, 2] {
        burnrate_sync::enqueue_sync(&app.store, scope, source, window, Some(tick), Utc::now().timestamp_millis())
            .await
            .unwrap();
        on_last_attempt(&app).await;
        assert_eq!(burnrate_sync::work(&syncer, "sync-worker").await.unwrap(), 1);
    }
    // The instance's workers announce it.
    let got = next(&mut received).await;
    let event: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(event["type"], "source.sync_failed");
    assert_eq!(event["data"]["source"]["name"], "prod");
    let error = event["data"]["error"].as_str().unwrap();
    assert!(error.contains("OpenAI") && !error.contains("REVOKED"), "the reason, without the key: {error}");
    let mail = app.smtp.wait_for("owner@example.com", "prod: sync failed").await;
    assert!(mail.body().contains("stopped syncing") && mail.body().contains("/sources"), "{}", mail.body());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(received.try_recv().is_err(), "announced once");
    assert_eq!(app.smtp.all().iter().filter(|m| m.subject().contains("sync failed")).count(), 1, "mailed once");
}

/// Queues a `test` event to every webhook of `scope`, as an alert is queued.
async fn queue_event_to_all(app: &TestApp, scope: OrgScope) {
    let event = burnrate_notify::delivery::Event {
        event_type: "test",
        timestamp: Utc::now(),
        data: json!({ "message": "a test event" }),
        text: "A test event.".into(),
    };
    let mut tx = app.store.tenant(scope).await.unwrap();
    let webhooks = tx.webhooks().await.unwrap();
    burnrate_notify::delivery::queue_to_all(&mut tx, scope, &webhooks, &event, Utc::now().timestamp_millis())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app.store.jobs_queued();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_that_never_answer_hold_only_their_organizations_share_of_the_deliverers() {
    let policy = burnrate_notify::DeliveryPolicy { attempt_timeout: Duration::from_secs(5), ..Default::default() };
    let app = TestApp::spawn_with(burnrate_testkit::AppOptions { delivery: Some(policy), ..Default::default() }).await;
    // Accepts every connection, reads nothing, never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/hooks", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let (stalled, _) = app.create_org("Stalled", "owner@stalled.test").await;
    let s = app.login("owner@stalled.test").await;
    let s_key = crate::create_key(&s, "hooks", "admin").await;
    for n in 0..20 {
        let body = json!({ "url": format!("{silent_url}/{n}") });
        let r = s.api(Method::POST, "/api/v1/webhooks", &s_key, Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let (url, mut received) = crate::notify::receiver().await;
    let (prompt, _, _, _, _) = org_with_webhook(&app, &url).await;

    // Twenty of the stalled organization's deliveries are due first, then the other's one.
    queue_event_to_all(&app, stalled).await;
    queue_event_to_all(&app, prompt).await;
    let got = next(&mut received).await;
    assert_eq!(got.status, 204);
    // It went out while the silent receivers still held their attempts: not one has ended, so
    // it did not wait behind them.
    let mut tx = app.store.tenant(stalled).await.unwrap();
    let mut ended = 0;
    for webhook in tx.webhooks().await.unwrap() {
        for delivery in tx.deliveries(webhook.id, None, 10).await.unwrap() {
            ended += tx.delivery_attempts(delivery.id).await.unwrap().len();
        }
    }
    tx.commit().await.unwrap();
    assert_eq!(ended, 0, "another organization's alert waited for the silent receivers' timeouts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_keeps_failing_is_paused_its_admins_are_told_and_an_admin_resumes_it() {
    let policy = burnrate_notify::DeliveryPolicy {
        first_retry: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        pause_after: 3,
        ..Default::default()
    };
    let app = TestApp::spawn_with(burnrate_testkit::AppOptions { delivery: Some(policy), ..Default::default() }).await;
    let (url, mut received, answer) = crate::notify::receiver_answering(503).await;
    let (scope, c, key, webhook, _) = org_with_webhook(&app, &url).await;

    queue_event_to_all(&app, scope).await;
    for _ in 0..3 {
        assert_eq!(next(&mut received).await.status, 503);
    }
    // Paused after the third: its admins are told, with what went wrong and where to resume.
    let mail = app.smtp.wait_for("owner@example.com", "paused after 3 failed attempts").await;
    let body = mail.body();
    assert!(body.contains("the receiver answered 503") && body.contains("/webhooks"), "{body}");
    let dead = wait_for_state(&c, &key, &webhook, "dead", 1).await;
    let last = dead[0]["log"].as_array().unwrap().last().unwrap()["error"].as_str().unwrap().to_owned();
    assert!(last.starts_with("not sent: the destination has been paused since"), "{last}");
    let listed = c.api(Method::GET, "/api/v1/webhooks", &key, None).await.json();
    assert_eq!(listed["webhooks"][0]["failures_in_a_row"], 3, "{listed}");
    assert!(listed["webhooks"][0]["paused_at"].is_string(), "{listed}");
    // Another event while paused is kept, not sent.
    queue_event_to_all(&app, scope).await;
    wait_for_state(&c, &key, &webhook, "dead", 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(received.try_recv().is_err(), "nothing is sent to a paused destination");
    let page = c.get("/webhooks").await.text;
    assert!(page.contains("Paused since") && page.contains(&format!("/webhooks/{webhook}/resume")), "{page}");
    assert!(c.get("/audit").await.text.contains("webhook_paused"), "the pause is in the organization's log");

    // An admin resumes it; what it missed is redelivered once it answers again.
    answer.store(204, Ordering::SeqCst);
    let r = c.api(Method::POST, &format!("/api/v1/webhooks/{webhook}/resume"), &key, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let again = c.api(Method::POST, &format!("/api/v1/webhooks/{webhook}/resume"), &key, None).await;
    assert_eq!(again.status, 409, "{}", again.text);
    let missed = dead[0]["id"].as_str().unwrap();
    let r = c.api(Method::POST, &format!("/api/v1/webhooks/{webhook}/deliveries/{missed}/redeliver"), &key, None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(next(&mut received).await.status, 204);
    let listed = c.api(Method::GET, "/api/v1/webhooks", &key, None).await.json();
    assert!(listed["webhooks"][0]["paused_at"].is_null(), "{listed}");
    assert!(c.get("/audit").await.text.contains("webhook_resumed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_days_bill_beyond_the_tolerance_of_its_priced_usage_is_raised_once_by_webhook_and_mail() {
    let app = TestApp::spawn().await;
    let (url, mut received) = crate::notify::receiver().await;
    let (scope, _, _, _, _) = org_with_webhook(&app, &url).await;
    let today = Utc::now().date_naive();
    let day = |back: i64| today - chrono::Duration::days(back);
    let bill = |back: i64, amount: &str| crate::sync::bill(day(back), "claude-sonnet-4-5", amount);
    // A million input tokens cost $3 at the catalogue's rate: the first day agrees, the second
    // is billed 20 % more.
    let usage = vec![crate::sync::million_input_tokens(day(3)), crate::sync::million_input_tokens(day(2))];
    let costs = vec![bill(3, "3"), bill(2, "3.60")];
    crate::sync::sync_anthropic(&app, scope, usage, costs, day(4)..today + chrono::Duration::days(1)).await;

    let raised = app.notifier.raise_reconciliation_gaps(scope, Utc::now()).await.unwrap();
    assert_eq!(raised, [(day(2), "Anthropic".to_owned())]);
    let got = next(&mut received).await;
    let event: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(event["type"], "reconciliation.gap");
    let data = &event["data"];
    assert_eq!((&data["day"], &data["provider"]), (&json!(day(2)), &json!("Anthropic")));
    assert_eq!(
        (&data["billed_cost"], &data["computed_cost"], &data["difference"]),
        (&json!("3.6"), &json!("3"), &json!("0.6"))
    );
    assert_eq!(data["rows"][0]["gap_kind"], "price");
    let link = format!("/reconciliation?from={}&to={}", day(2), day(2));
    assert!(data["links"]["reconciliation"].as_str().unwrap().ends_with(&link), "{data}");
    let mail = app.smtp.wait_for("owner@example.com", &format!("Anthropic bill for {}", day(2))).await;
    assert!(mail.subject().contains("0.60 USD unexplained"), "{}", mail.subject());
    assert!(mail.body().contains(&link), "{}", mail.body());

    // Raised once: the next evaluation finds the same gap and says nothing.
    assert!(app.notifier.raise_reconciliation_gaps(scope, Utc::now()).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(received.try_recv().is_err(), "announced once");
    assert_eq!(app.smtp.all().iter().filter(|m| m.subject().contains("unexplained")).count(), 1, "mailed once");
}

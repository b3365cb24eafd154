use std::process::Stdio;
use std::time::Duration;

use burnrate_testkit::TestClient;
use reqwest::Method;

struct Demo {
    child: tokio::process::Child,
    url: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The line the demo prints last, once demo.json is final and every listener is open.
const READY: &str = "Press Ctrl-C to stop.";

async fn start_demo(dir: &std::path::Path) -> (Demo, serde_json::Value) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pg_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_burnrate"))
        .args(["demo", "--data-dir", dir.to_str().unwrap()])
        .env_clear()
        .env("BURNRATE_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("BURNRATE_PG_ADDR", format!("127.0.0.1:{pg_port}"))
        .env("BURNRATE_METRICS_ADDR", "127.0.0.1:0")
        .env("BURNRATE_OTLP_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the demo");
    // Both pipes are drained for the demo's whole life, so its logging never blocks on them.
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ready_tx = Some(ready_tx);
    let out = std::sync::Arc::clone(&said);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line == READY {
                ready_tx.take().map(|tx| tx.send(()));
            }
            out.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    let err = std::sync::Arc::clone(&said);
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            err.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    // A debug build on a busy two-core machine: allow for a slow start.
    if tokio::time::timeout(Duration::from_secs(60), ready).await.is_ok_and(|r| r.is_ok()) {
        let text = std::fs::read_to_string(dir.join("demo.json")).expect("demo.json is written");
        let url = format!("http://127.0.0.1:{port}");
        return (Demo { child, url }, serde_json::from_str(&text).expect("demo.json is JSON"));
    }
    let _ = child.kill().await;
    panic!("the demo did not say it was ready within 60 s; it said:\n{}", said.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_login_page_and_its_printed_credentials_work() {
    let dir = tempfile::tempdir().unwrap();
    let (demo, creds) = start_demo(dir.path()).await;
    assert_eq!(creds["url"], demo.url.as_str());
    // The printed connection string works in psql, and sees the synced spend.
    let pg = creds["postgres_url"].as_str().expect("demo.json holds the Postgres connection string");
    let out = tokio::process::Command::new("psql")
        .args([pg, "-X", "-A", "-t", "-c", "SELECT count(DISTINCT provider_name) FROM costs"])
        .output()
        .await
        .expect("psql is installed");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6", "{}", String::from_utf8_lossy(&out.stderr));
    let c = TestClient::new(&demo.url);
    let page = c.get("/login").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Log in"));
    let r = c
        .post_form(
            "/login",
            &[("email", creds["email"].as_str().unwrap()), ("password", creds["password"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert!(c.get("/").await.text.contains("Demo Org"));
    let key = creds["api_key"].as_str().unwrap();
    assert_eq!(c.api(Method::GET, "/api/v1/org", key, None).await.json()["name"], "Demo Org");
    assert!(std::fs::metadata(dir.path().join("master.key")).is_ok(), "the throw-away key is kept in the data dir");
    let orgs = std::fs::read_dir(dir.path().join("lake")).expect("the lake is in the data dir").count();
    assert_eq!(orgs, 1, "one organization's lake");

    // Spend from every simulated provider is there before the UI is announced.
    let home = c.get("/").await;
    assert!(home.text.contains("id=\"month-to-date\""), "month-to-date spend is shown");
    assert!(home.text.contains("OpenAI") && home.text.contains("Anthropic"), "both providers' spend by day");
    let sources = c.get("/sources").await;
    assert_eq!(sources.text.matches(">ok<").count(), 6, "every simulated provider synced: {}", sources.text);
    for cloud in ["AWS Bedrock (simulated)", "Azure OpenAI (simulated)", "Google Vertex AI (simulated)"] {
        assert!(sources.text.contains(cloud), "the clouds beside the APIs: {cloud}");
    }
    assert!(sources.text.contains("credits left"), "OpenRouter's balance is shown");
    // Budgets are set, and the one sized below its spend has alerted by the time it is looked at.
    let budgets = c.api(Method::GET, "/api/v1/budgets", key, None).await.json();
    let names: Vec<&str> = budgets["budgets"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["All AI spend", "GPT-4o family"]);
    let mut alerted = false;
    for _ in 0..100 {
        if !c.get("/budgets").await.text.contains("No alerts yet.") {
            alerted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(alerted, "the demo's over-spent budget alerts");
    // The demo's applications reported their calls: their customers share the bill, and with
    // what no request explains they sum to it exactly.
    assert!(creds["otlp_url"].as_str().is_some_and(|u| u.starts_with("http://127.0.0.1:")), "{creds}");
    assert!(creds["ingest_key"].as_str().is_some_and(|k| k.starts_with("bri_")), "{creds}");
    let attributed = c.api(Method::GET, "/api/v1/spend/attributed?group_by=customer", key, None).await.json();
    let amount = |v: &serde_json::Value| v.as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap();
    let rows = attributed["rows"].as_array().unwrap();
    let customers: Vec<&str> = rows.iter().filter_map(|r| r["key"].as_str()).collect();
    assert_eq!(customers.len(), 3, "{attributed}");
    for customer in ["acme", "globex", "initech"] {
        assert!(customers.contains(&customer), "{customer}: {attributed}");
    }
    let shared: rust_decimal::Decimal = rows.iter().map(|r| amount(&r["attributed_cost"])).sum();
    assert!(shared > rust_decimal::Decimal::ZERO && amount(&attributed["unattributed"]) > shared, "{attributed}");
    assert_eq!(shared + amount(&attributed["unattributed"]), amount(&attributed["billed_total"]), "{attributed}");
    // The overview says who caused the most, and how much no request explains.
    let home = c.get("/").await.text;
    for shown in ["id=\"top-customers\"", "id=\"top-features\"", ">acme<", ">search<", "Unattributed"] {
        assert!(home.contains(shown), "{shown} on the overview");
    }
    // Loopback is open to the simulators' ports and no other: not the demo's own, not ssh.
    for url in ["https://127.0.0.1:22/".to_owned(), format!("{}/hook", demo.url)] {
        let r = c.api(Method::POST, "/api/v1/webhooks", key, Some(serde_json::json!({ "url": url }))).await;
        assert_eq!(r.status, 422, "{url}: {}", r.text);
        assert!(r.text.contains("may be reached only on the ports"), "{url}: {}", r.text);
    }
    // Gone for good before the second run opens the same data directory.
    let mut demo = demo;
    demo.child.kill().await.unwrap();
    drop(demo);

    // A second run reuses what is there: same credentials, still working.
    let (demo, again) = start_demo(dir.path()).await;
    assert_eq!(again["password"], creds["password"]);
    assert_eq!(again["api_key"], creds["api_key"]);
    let user = |c: &serde_json::Value| c["postgres_url"].as_str().unwrap().split('@').next().unwrap().to_owned();
    assert_eq!(user(&again), user(&creds), "the same SQL credential on the next run");
    let c = TestClient::new(&demo.url);
    let r = c
        .post_form(
            "/login",
            &[("email", again["email"].as_str().unwrap()), ("password", again["password"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_and_unknown_pages_are_404() {
    let app = burnrate_testkit::TestApp::spawn().await;
    let c = app.client();
    let h = c.get("/healthz").await;
    assert_eq!((h.status, h.text.as_str()), (200, "ok"));
    let r = c.get("/readyz").await;
    assert_eq!((r.status, r.text.as_str()), (200, "ready"));
    assert_eq!(c.get("/no/such/page").await.status, 404);
}

/// What a finance lead reads on the demo's overview and explorer, in Chromium, checked against the
/// lake read on its own (its Parquet files through the lake's reader, summed here) and against SQL
/// over the wire (psql with the demo's printed credential). Screenshots for a person to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_the_demo_overview_and_explorer_equal_the_lake_and_sql_over_the_wire() {
    use std::collections::BTreeMap;
    use std::str::FromStr;

    use chrono::Datelike;
    use fantoccini::Locator::{Css, Id};
    use rust_decimal::Decimal;

    let dir = tempfile::tempdir().unwrap();
    let (demo, creds) = start_demo(dir.path()).await;
    let Some(browser) = burnrate_testkit::Browser::start().await else { return };
    let b = &browser.client;
    log_in(b, &demo, &creds).await;
    crate::browser::screenshot(b, "demo-overview").await;

    // The lake, read without the SQL engine: every live cost line of the demo organization.
    let store = burnrate_store::Store::connect(&format!("sqlite://{}", dir.path().join("burnrate.db").display()))
        .await
        .unwrap();
    let mut tx = store.instance().await.unwrap();
    let org = tx.find_org("Demo Org").await.unwrap().unwrap();
    tx.commit().await.unwrap();
    let lake = burnrate_lake::Lake::from_url(&dir.path().join("lake").display().to_string()).unwrap();
    let lines = lake.read_costs(&store, burnrate_store::OrgScope::trusted(org.id)).await.unwrap();
    assert!(lines.len() > 1000 && lines.iter().all(|l| l.billing_currency == "USD"), "{} lines", lines.len());
    // The demo organization reports in UTC, where a line's day is its charge day.
    let today = chrono::Utc::now().date_naive();
    let month_start = today.with_day(1).unwrap();
    let sum = |from: chrono::NaiveDate, to: chrono::NaiveDate| -> Decimal {
        lines.iter().filter(|l| l.charge_day >= from && l.charge_day < to).map(|l| l.billed_cost).sum()
    };
    let tomorrow = today + chrono::Duration::days(1);
    let month_to_date = sum(month_start, tomorrow);
    let shown = b.find(Css("#month-to-date a")).await.unwrap();
    assert_eq!(shown.text().await.unwrap(), format!("{} USD", month_to_date.round_dp(2)));
    assert_eq!(shown.attr("title").await.unwrap().unwrap(), format!("{} USD exactly", month_to_date.normalize()));
    let previous_start = month_start - chrono::Months::new(1);
    let previous_until = (previous_start + (today - month_start) + chrono::Duration::days(1)).min(month_start);
    let compared = b.find(Id("compared")).await.unwrap().text().await.unwrap();
    let previous = sum(previous_start, previous_until).round_dp(2);
    assert!(compared.starts_with(&format!("{previous} USD by the same day last month")), "{compared}");

    let forecast = b.find(Id("forecast")).await.unwrap().text().await.unwrap();
    let forecast = Decimal::from_str(forecast.split(' ').next().unwrap()).unwrap();
    assert!(forecast >= month_to_date.round_dp(2), "the month ends at or above its spend so far: {forecast}");

    // This month's largest projects, and the week's movers by model, from the lake.
    let mut projects: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.charge_day >= month_start) {
        if let Some(p) = &l.sub_account_id {
            *projects.entry(p.clone()).or_default() += l.billed_cost;
        }
    }
    let mut largest: Vec<(String, Decimal)> = projects.into_iter().collect();
    largest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let largest: Vec<String> = largest.iter().take(5).map(|(p, d)| format!("{p}|{} USD", d.round_dp(2))).collect();
    let mut shown_projects = Vec::new();
    for row in b.find_all(Css("#top-projects tbody tr")).await.unwrap() {
        shown_projects.push(cells(&row).await.join("|"));
    }
    assert_eq!(shown_projects, largest, "the top projects are the lake's");
    let week = today - chrono::Duration::days(7);
    let mut moved: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.charge_day >= week - chrono::Duration::days(7) && l.charge_day < today) {
        let Some(model) = &l.model else { continue };
        let entry = moved.entry(model.clone()).or_default();
        if l.charge_day >= week { entry.0 += l.billed_cost } else { entry.1 += l.billed_cost }
    }
    let movers = b.find_all(Css("#movers tbody tr")).await.unwrap();
    assert!(!movers.is_empty(), "spend that grows moves");
    // Lines without a model move under their service, which the lake's reader does not return:
    // the models among the movers are checked, and there are some.
    let mut checked = 0;
    for row in movers {
        let cells = cells(&row).await;
        if let Some((last, previous)) = moved.get(&cells[0]) {
            assert_eq!(cells[1..3], [format!("{} USD", last.round_dp(2)), format!("{} USD", previous.round_dp(2))]);
            checked += 1;
        }
    }
    assert!(checked > 0, "no mover is a model the lake names");

    // Each day and provider of the last 30 days, to the cent.
    let mut by_day: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.charge_day > today - chrono::Duration::days(30) && l.charge_day <= today) {
        *by_day.entry((l.charge_day.to_string(), l.provider_name.clone())).or_default() += l.billed_cost;
    }
    let mut table = BTreeMap::new();
    for row in b.find_all(Css("#spend-by-day tbody tr")).await.unwrap() {
        let cells = cells(&row).await;
        table.insert((cells[0].clone(), cells[1].clone()), cells[2].clone());
    }
    let expected: BTreeMap<_, _> = by_day.iter().map(|(k, v)| (k.clone(), format!("{} USD", v.round_dp(2)))).collect();
    assert_eq!(table, expected, "the overview's days are the lake's");
    assert_eq!(table.keys().map(|k| &k.1).collect::<std::collections::BTreeSet<_>>().len(), 6, "six providers");
    // An SVG title is not drawn, so WebDriver's visible text of it is empty; its content is what
    // screen readers and hovering show.
    let chart = b.find(Css("svg#spend-chart title")).await.unwrap().prop("textContent").await.unwrap().unwrap();
    assert!(chart.starts_with("Spend by day and provider, last 30 days (USD"), "{chart}");

    // The month's number leads to the explorer view that produced it.
    shown.click().await.unwrap();
    let total = b.wait().at_most(Duration::from_secs(10)).for_element(Id("explore-total")).await.unwrap();
    assert_eq!(total.text().await.unwrap(), format!("{} USD", month_to_date.normalize()));
    // So does a day's amount: that day's models of that provider, exactly.
    b.goto(&format!("{}/", demo.url)).await.unwrap();
    let first = b.find(Css("#spend-by-day tbody tr")).await.unwrap();
    let (day, provider) = {
        let cells = cells(&first).await;
        (cells[0].clone(), cells[1].clone())
    };
    first.find(Css("a")).await.unwrap().click().await.unwrap();
    let total = b.wait().at_most(Duration::from_secs(10)).for_element(Id("explore-total")).await.unwrap();
    assert_eq!(total.text().await.unwrap(), format!("{} USD", by_day[&(day, provider)].normalize()));

    // Two weeks by model and day, as a shared address opens it, against SQL over the wire.
    let from = today - chrono::Duration::days(13);
    let view = format!("{}/explore?group=model&from={from}&to={tomorrow}&granularity=day", demo.url);
    b.goto(&view).await.unwrap();
    b.wait().at_most(Duration::from_secs(10)).for_element(Id("explore-table")).await.unwrap();
    let mut explorer: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for row in b.find_all(Css("#explore-table tbody tr")).await.unwrap() {
        let cells = cells(&row).await;
        let amount = Decimal::from_str(cells[2].strip_suffix(" USD").expect("USD")).unwrap();
        explorer.insert((cells[0].clone(), cells[1].clone()), amount);
    }
    let sql = format!(
        "SELECT charge_day, coalesce(model, '(none)'), sum(billed_cost) FROM costs \
         WHERE charge_day >= DATE '{from}' AND charge_day < DATE '{tomorrow}' GROUP BY 1, 2"
    );
    let out = psql_rows(&creds, &sql).await;
    let mut wire: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        let cells: Vec<&str> = line.split('|').collect();
        wire.insert((cells[0].to_owned(), cells[1].to_owned()), Decimal::from_str(cells[2]).unwrap());
    }
    assert!(wire.len() >= 14 * 10, "two weeks of many models: {}", wire.len());
    assert_eq!(explorer, wire, "the explorer by model is SQL's answer over the wire");
    let total: Decimal = wire.values().copied().sum();
    assert_eq!(b.find(Id("explore-total")).await.unwrap().text().await.unwrap(), format!("{} USD", total.normalize()));
    crate::browser::screenshot(b, "demo-explorer").await;

    // The CSV download, fetched by the page's own link in the logged-in browser.
    let csv = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.getElementById('explore-csv').href).then(r => r.text()).then(done, e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    let csv = csv.as_str().unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "period,grp,currency,billed", "{csv}");
    let csv_total: Decimal = rows[1..].iter().map(|r| Decimal::from_str(r.rsplit(',').next().unwrap()).unwrap()).sum();
    assert_eq!((rows.len() - 1, csv_total), (wire.len(), total), "the CSV holds exactly what is shown");

    b.goto(&format!("{}/sources", demo.url)).await.unwrap();
    crate::browser::screenshot(b, "demo-sources").await;
    browser.close().await;
}

/// The texts of a table row's cells.
/// The demo bills a few known discrepancies inside the default window; reconciliation finds each
/// one, classifies it, and calls every other day, provider and model agreed — on the page in
/// Chromium, through the API and over psql.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_planted_discrepancies_are_each_found_and_classified_on_the_page_the_api_and_psql() {
    use burnrate_sim::demo::{DEMO_UNPRICED_MODEL, planted};
    use fantoccini::Locator::{Css, Id};

    let dir = tempfile::tempdir().unwrap();
    let (demo, creds) = start_demo(dir.path()).await;
    let today = chrono::Utc::now().date_naive();
    let day = |back: i64| (today - chrono::Duration::days(back)).to_string();
    // (day, provider, model, project, gap kind) of every row that is not agreed.
    type Gap = (String, String, String, String, String);
    let gap = |day: String, provider: &str, model: &str, project: &str, kind: &str| -> Gap {
        (day, provider.into(), model.into(), project.into(), kind.into())
    };
    let mut expected = vec![
        gap(day(planted::MISSING_HOUR_DAYS_AGO), "OpenAI", planted::MISSING_HOUR_MODEL, "proj_support_bot", "quantity"),
        gap(
            day(planted::WRONG_CACHE_RATE_DAYS_AGO),
            "Anthropic",
            planted::WRONG_CACHE_RATE_MODEL,
            "wrkspc_analytics",
            "price",
        ),
    ];
    expected.extend(
        (1..=planted::UNPRICED_MODEL_DAYS)
            .map(|back| gap(day(back), "Anthropic", DEMO_UNPRICED_MODEL, "wrkspc_analytics", "unpriced")),
    );
    expected.sort();

    let c = TestClient::new(&demo.url);
    let key = creds["api_key"].as_str().unwrap();
    let r = c.api(Method::GET, "/api/v1/reconciliation", key, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!((body["from"].as_str().unwrap(), body["to"].as_str().unwrap()), (day(30).as_str(), day(1).as_str()));
    let rows = body["rows"].as_array().unwrap();
    let text = |r: &serde_json::Value, f: &str| r[f].as_str().unwrap_or("").to_owned();
    let mut api: Vec<Gap> = rows
        .iter()
        .filter(|r| r["gap_kind"] != "none")
        .map(|r| (text(r, "day"), text(r, "provider"), text(r, "model"), text(r, "project_id"), text(r, "gap_kind")))
        .collect();
    api.sort();
    assert_eq!(api, expected, "{body}");
    let agreed = rows.iter().filter(|r| r["gap_kind"] == "none").count();
    assert!(agreed >= 30 * 5, "every other day of both providers' models agrees: {agreed}");
    assert_eq!(body["unpriced_models"], serde_json::json!([{ "provider": "Anthropic", "model": DEMO_UNPRICED_MODEL }]));
    let missing = rows
        .iter()
        .find(|r| r["gap_kind"] == "quantity")
        .map(|r| (r["billed_tokens"].as_i64().unwrap(), r["usage_tokens"].as_i64().unwrap()))
        .unwrap();
    assert!(missing.1 < missing.0, "an hour of tokens billed but not in the usage report: {missing:?}");
    let unpriced = rows.iter().find(|r| r["gap_kind"] == "unpriced").unwrap();
    assert_eq!(
        (&unpriced["computed_cost"], &unpriced["difference"]),
        (&serde_json::Value::Null, &serde_json::Value::Null)
    );

    // Over the wire, the same table.
    let sql = format!(
        "SELECT day, provider_name, model, coalesce(project_id, ''), gap_kind FROM reconciliation \
         WHERE gap_kind <> 'none' AND day BETWEEN DATE '{}' AND DATE '{}'",
        day(30),
        day(1)
    );
    let out = psql_rows(&creds, &sql).await;
    let mut wire: Vec<Gap> = out
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('|').collect();
            gap(c[0].to_owned(), c[1], c[2], c[3], c[4])
        })
        .collect();
    wire.sort();
    assert_eq!(wire, expected);

    // The page, in a browser: the gaps, each with its kind, and the unpriced model listed.
    let Some(browser) = burnrate_testkit::Browser::start().await else { return };
    let b = &browser.client;
    log_in(b, &demo, &creds).await;
    b.find(Css("nav a[href='/reconciliation']")).await.unwrap().click().await.unwrap();
    b.wait().at_most(Duration::from_secs(10)).for_element(Id("reconciliation")).await.unwrap();
    let mut shown: Vec<Gap> = Vec::new();
    for row in b.find_all(Css("#reconciliation tbody tr")).await.unwrap() {
        let c = cells(&row).await;
        shown.push(gap(c[0].clone(), &c[1], &c[2], &c[3], &c[9]));
    }
    shown.sort();
    assert_eq!(shown, expected, "the page lists the gaps only, by default");
    assert_eq!(b.find(Id("count-quantity")).await.unwrap().text().await.unwrap(), "1 quantity");
    assert_eq!(b.find(Id("count-price")).await.unwrap().text().await.unwrap(), "1 price");
    let listed = b.find(Css("#unpriced-models li")).await.unwrap().text().await.unwrap();
    assert_eq!(listed, format!("Anthropic {DEMO_UNPRICED_MODEL}"));
    let why = b.find(Css("#reconciliation tr.gap-quantity td:last-child")).await.unwrap().text().await.unwrap();
    assert_eq!(why, format!("Billed for {} tokens, usage reports {}.", missing.0, missing.1));
    crate::browser::screenshot(b, "demo-reconciliation").await;
}

/// Logs the browser in with the demo's printed credentials and waits for the overview.
async fn log_in(b: &fantoccini::Client, demo: &Demo, creds: &serde_json::Value) {
    use fantoccini::Locator::{Css, Id};
    b.goto(&format!("{}/login", demo.url)).await.unwrap();
    b.find(Css("input[name=email]")).await.unwrap().send_keys(creds["email"].as_str().unwrap()).await.unwrap();
    b.find(Css("input[name=password]")).await.unwrap().send_keys(creds["password"].as_str().unwrap()).await.unwrap();
    b.find(Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    b.wait().at_most(Duration::from_secs(10)).for_element(Id("month-to-date")).await.unwrap();
}

/// `sql`'s rows over the wire with the demo's SQL credential, psql's unaligned `|`-separated text.
async fn psql_rows(creds: &serde_json::Value, sql: &str) -> String {
    let out = tokio::process::Command::new("psql")
        .args([creds["postgres_url"].as_str().unwrap(), "-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1"])
        .args(["-c", sql])
        .output()
        .await
        .expect("psql is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

async fn cells(row: &fantoccini::elements::Element) -> Vec<String> {
    let mut out = Vec::new();
    for cell in row.find_all(fantoccini::Locator::Css("td")).await.unwrap() {
        out.push(cell.text().await.unwrap());
    }
    out
}

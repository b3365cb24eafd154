//! Requests applications report over OTLP: ingest keys, the receiver, the `requests` table.

use burnrate_testkit::TestApp;
use reqwest::Method;

use crate::create_key;

/// The prompt and completion the fixtures carry, which must never be stored.
const SECRETS: [&str; 2] = ["burnrate-secret-prompt", "burnrate-secret-completion"];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../otlp/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Posts an export as an exporter does; returns the status and the body.
async fn export(app: &TestApp, key: &str, name: &str) -> (u16, Vec<u8>) {
    let content_type = if name.contains(".pb") { "application/x-protobuf" } else { "application/json" };
    let mut req = reqwest::Client::new()
        .post(app.otlp_traces_url())
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(fixture(name));
    if name.ends_with(".gz") {
        req = req.header("content-encoding", "gzip");
    }
    let r = req.send().await.expect("export");
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// An organization with its owner logged in, an admin API key and an ingest key.
struct Acme {
    scope: burnrate_store::OrgScope,
    owner: burnrate_testkit::TestClient,
    admin: String,
    ingest: String,
}

async fn acme(app: &TestApp) -> Acme {
    let (scope, _) = app.create_org("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    let admin = create_key(&owner, "admin", "admin").await;
    let made = owner.api(Method::POST, "/api/v1/ingest-keys", &admin, Some(serde_json::json!({"name": "app"}))).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let ingest = made.json()["key"].as_str().unwrap().to_owned();
    Acme { scope, owner, admin, ingest }
}

/// `(span_id, customer, model, uncached, cached, priced)` of a stored request.
type Stored = (String, Option<String>, String, i64, i64, bool);

/// Every stored request, in time order.
async fn requests(app: &TestApp, scope: burnrate_store::OrgScope) -> Vec<Stored> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    let sql = "SELECT span_id, customer, model, input_uncached_tokens, input_cached_tokens, computed_cost IS NOT NULL \
               FROM requests ORDER BY started_at, span_id";
    let (_, batches) = app.engine.collect(scope, sql).await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let (span, customer, model) =
            (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>(), b.column(2).as_string::<i32>());
        let (uncached, cached) = (b.column(3).as_primitive::<Int64Type>(), b.column(4).as_primitive::<Int64Type>());
        let priced = b.column(5).as_boolean();
        for i in 0..b.num_rows() {
            out.push((
                span.value(i).to_owned(),
                (!customer.is_null(i)).then(|| customer.value(i).to_owned()),
                model.value(i).to_owned(),
                uncached.value(i),
                cached.value(i),
                priced.value(i),
            ));
        }
    }
    out
}

/// [`requests`] once they are `want`, or after five seconds: a span of a day older than the
/// claimed week (the fixtures' day, from a week after it) is kept once by a merge that runs just
/// after the answer.
async fn settled_requests(app: &TestApp, scope: burnrate_store::OrgScope, want: &[Stored]) -> Vec<Stored> {
    let mut got = requests(app, scope).await;
    for _ in 0..100 {
        if got == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        got = requests(app, scope).await;
    }
    got
}

/// Every file under `dir`, read whole, that holds `needle`.
fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())) {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_store_each_call_once_priced_without_content_and_only_for_the_keys_organization() {
    let app = TestApp::spawn().await;
    let (acme, _) = app.create_org("Acme", "owner@acme.test").await;
    let (globex, _) = app.create_org("Globex", "owner@globex.test").await;
    let (acme_owner, globex_owner) = (app.login("owner@acme.test").await, app.login("owner@globex.test").await);
    let acme_api = create_key(&acme_owner, "admin", "admin").await;
    let globex_api = create_key(&globex_owner, "admin", "admin").await;
    let made = acme_owner
        .api(Method::POST, "/api/v1/ingest-keys", &acme_api, Some(serde_json::json!({"name": "checkout"})))
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let acme_key = made.json()["key"].as_str().unwrap().to_owned();
    let globex_key = globex_owner
        .api(Method::POST, "/api/v1/ingest-keys", &globex_api, Some(serde_json::json!({"name": "app"})))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Protobuf: stored, and the answer says content was dropped (in protobuf, as asked).
    let (status, body) = export(&app, &acme_key, "current.pb").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer = <burnrate_app::ingest::ExportTraceServiceResponse as prost::Message>::decode(body.as_slice()).unwrap();
    let warning = answer.partial_success.expect("a warning");
    assert_eq!(warning.rejected_spans, 0);
    assert!(
        warning.error_message.contains("content") && warning.error_message.contains("not model calls"),
        "{warning:?}"
    );

    let stored = requests(&app, acme).await;
    let want = vec![
        ("eee19b7ec3c1b174".to_owned(), Some("acme".to_owned()), "gpt-4o-2024-08-06".to_owned(), 200, 1000, true),
        ("00f067aa0ba902b7".to_owned(), Some("globex".to_owned()), "claude-sonnet-4-5".to_owned(), 500, 3000, true),
        ("b7ad6b7169203331".to_owned(), None, "text-embedding-3-small".to_owned(), 42, 0, true),
    ];
    assert_eq!(stored, want, "each call, disjoint classes, priced; the unattributed one kept");

    // The same spans again — a retry, in JSON and gzip this time — and a retry whose first
    // attempt was cut off before its answer: each span stays once.
    let (status, body) = export(&app, &acme_key, "openlit.json.gz").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(json["partialSuccess"]["errorMessage"].as_str().unwrap().contains("content"), "{json}");
    cut_off_export(&app, &acme_key, "traceloop.json").await;
    assert_eq!(export(&app, &acme_key, "traceloop.json").await.0, 200);
    assert_eq!(settled_requests(&app, acme, &want).await, want, "a retry stores nothing twice");

    // Globex's key writes Globex's requests only; nobody's key reads or calls the API.
    assert_eq!(export(&app, &globex_key, "traceloop.pb").await.0, 200);
    assert_eq!(requests(&app, globex).await.len(), 3);
    assert_eq!(requests(&app, acme).await, want, "Acme's table is untouched");
    for (path, key) in [("/api/v1/org", &acme_key), ("/api/v1/ingest-keys", &globex_key)] {
        assert_eq!(
            acme_owner.api(Method::GET, path, key, None).await.status,
            401,
            "{path}: an ingest key reads nothing"
        );
    }
    assert_eq!(export(&app, &acme_api, "current.json").await.0, 401, "an API key does not write requests");
    assert_eq!(export(&app, "bri_nonsense", "current.json").await.0, 401);

    // A malformed body: 400, naming where, quoting nothing, changing nothing.
    let r = reqwest::Client::new()
        .post(app.otlp_traces_url())
        .bearer_auth(&acme_key)
        .header("content-type", "application/json")
        .body(r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "burnrate-secret-prompt"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("line 1") && !text.contains(SECRETS[0]), "{text}");
    assert_eq!(requests(&app, acme).await, want);

    // No prompt or completion anywhere: not in the lake, not in the database.
    for secret in SECRETS {
        assert_eq!(files_holding(app.lake_path(), secret), Vec::<std::path::PathBuf>::new(), "{secret} in the lake");
        if let Some(db) = app.db.app_url.strip_prefix("sqlite://") {
            let dir = std::path::Path::new(db.split('?').next().unwrap()).parent().unwrap();
            assert_eq!(files_holding(dir, secret), Vec::<std::path::PathBuf>::new(), "{secret} in the database");
        }
    }

    // Revoked, the key is refused at once; the revocation is audited.
    let keys = acme_owner.api(Method::GET, "/api/v1/ingest-keys", &acme_api, None).await.json();
    let id = keys["ingest_keys"][0]["id"].as_str().unwrap().to_owned();
    assert!(keys["ingest_keys"][0]["last_used_at"].is_string(), "{keys}");
    let r = acme_owner.api(Method::DELETE, &format!("/api/v1/ingest-keys/{id}"), &acme_api, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(export(&app, &acme_key, "current.json").await.0, 401);
    let other = globex_owner.api(Method::DELETE, &format!("/api/v1/ingest-keys/{id}"), &globex_api, None).await;
    assert_eq!(other.status, 404, "another organization's key is not found");
    let audit = acme_owner.api(Method::GET, "/api/v1/audit", &acme_api, None).await.json().to_string();
    assert!(audit.contains("ingest_key_created") && audit.contains("ingest_key_revoked"), "{audit}");
}

/// Sends an export and closes the connection before the answer, as an exporter whose timeout
/// fired would.
async fn cut_off_export(app: &TestApp, key: &str, name: &str) {
    use tokio::io::AsyncWriteExt;
    let body = fixture(name);
    let addr = app.otlp_traces_url().trim_start_matches("http://").trim_end_matches("/v1/traces").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    drop(stream);
    // Whatever the receiver did with it is done or undone by now.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_client_instrumented_by_opentelemetry_reports_each_call_once_with_its_customer_and_no_content() {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    let python = std::env::var("BURNRATE_TEST_PYTHON")
        .expect("BURNRATE_TEST_PYTHON: a Python with openai and the OpenTelemetry packages (scripts/test makes one)");
    let app = TestApp::spawn().await;
    let Acme { scope, ingest: key, .. } = acme(&app).await;
    let sim = burnrate_sim::SimProvider::openai("sk-proj-CLIENT0000000000000000").await;
    let prompt = format!("Which capital? {}", SECRETS[0]);
    let customers = ["acme", "globex", "acme", "initech"];

    let script = format!("{}/tests/clients/otlp_openai.py", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(python)
        .arg(&script)
        .arg(&prompt)
        .args(customers)
        .env("OPENAI_BASE_URL", format!("{}/v1", sim.base_url()))
        .env("OPENAI_API_KEY", "sk-proj-CLIENT0000000000000000")
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", app.otlp_traces_url())
        .env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", format!("Authorization=Bearer%20{key}"))
        // Content capture on: off by default, which would make the check below empty.
        .env("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
        .env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
        .output()
        .await
        .expect("python runs");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && log.contains("exported 4"), "{log}");

    let sql = "SELECT customer, model, input_uncached_tokens, input_cached_tokens, output_tokens, \
               computed_cost IS NOT NULL, service, provider_name FROM requests ORDER BY started_at";
    let (_, batches) = app.engine.collect(scope, sql).await.unwrap();
    let mut stored = Vec::new();
    for b in &batches {
        let text = |c: usize| b.column(c).as_string::<i32>().clone();
        let (customer, model, service, provider) = (text(0), text(1), text(6), text(7));
        let int = |c: usize| b.column(c).as_primitive::<Int64Type>().clone();
        let (uncached, cached, output) = (int(2), int(3), int(4));
        for i in 0..b.num_rows() {
            stored.push((
                (!customer.is_null(i)).then(|| customer.value(i).to_owned()),
                model.value(i).to_owned(),
                uncached.value(i),
                cached.value(i),
                output.value(i),
                b.column(5).as_boolean().value(i),
                service.value(i).to_owned(),
                provider.value(i).to_owned(),
            ));
        }
    }
    // The simulated API counts a prompt's characters as its tokens; this instrumentation reports
    // input and output only, so all input is uncached.
    let tokens = prompt.chars().count() as i64;
    let want: Vec<_> = customers
        .iter()
        .map(|c| {
            (
                Some((*c).to_owned()),
                "gpt-4o-mini".to_owned(),
                tokens,
                0,
                5,
                true,
                "checkout".to_owned(),
                "OpenAI".to_owned(),
            )
        })
        .collect();
    assert_eq!(stored, want, "every call once, with its customer from baggage, priced");

    // The receiver saw the captured content and dropped it; none of it is anywhere.
    let metrics = reqwest::get(&app.metrics_url).await.unwrap().text().await.unwrap();
    let dropped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("burnrate_otlp_content_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no content-dropped count in\n{metrics}"));
    assert!(dropped >= customers.len() as f64, "content attributes dropped: {dropped}");
    assert_eq!(files_holding(app.lake_path(), SECRETS[0]), Vec::<std::path::PathBuf>::new(), "the prompt in the lake");
    if let Some(db) = app.db.app_url.strip_prefix("sqlite://") {
        let dir = std::path::Path::new(db.split('?').next().unwrap()).parent().unwrap();
        assert_eq!(files_holding(dir, SECRETS[0]), Vec::<std::path::PathBuf>::new(), "the prompt in the database");
    }
}

/// The first row's cell of column `i`, as text.
fn text_cell(batch: &datafusion::arrow::array::RecordBatch, i: usize) -> String {
    use datafusion::arrow::array::AsArray;
    let cast =
        datafusion::arrow::compute::cast(batch.column(i), &datafusion::arrow::datatypes::DataType::Utf8).unwrap();
    cast.as_string::<i32>().value(0).to_owned()
}

/// A US-dollar cost line of 1 December 2026 for `model`.
fn bill(provider: &str, model: &str, usd: &str) -> burnrate_core::CostRecord {
    let start = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
    burnrate_sim::fixture::usd_cost(start, 24, usd.parse().unwrap(), provider, model)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributed_cost_per_customer_and_unattributed_sum_to_exactly_the_bill() {
    use rust_decimal::Decimal;
    let app = TestApp::spawn().await;
    let Acme { scope, owner, ingest: key, .. } = acme(&app).await;
    let api = create_key(&owner, "reader", "read").await;
    // The fixtures' three calls of 1 December: acme's gpt-4o, globex's Claude, an unattributed
    // embedding.
    assert_eq!(export(&app, &key, "current.json").await.0, 200);
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    let bills = [
        // Far more than acme's call explains: the rest is unattributed.
        bill("OpenAI", "gpt-4o-2024-08-06", "10.000000001"),
        // Less than globex's call costs at list price: all of it is globex's.
        bill("Anthropic", "claude-sonnet-4-5", "0.01"),
        // A model no request used.
        bill("OpenAI", "gpt-4.1", "3"),
    ];
    let window = burnrate_core::SyncWindow::new(
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
    )
    .unwrap();
    app.lake.replace(&app.store, scope, burnrate_core::SourceId::generate(), window, &bills).await.unwrap();

    let (_, batches) = app
        .engine
        .collect(scope, "SELECT CAST(computed_cost AS VARCHAR) FROM requests WHERE customer = 'acme'")
        .await
        .unwrap();
    let acme_computed = d(&text_cell(&batches[0], 0));

    let r = owner
        .api(Method::GET, "/api/v1/spend/attributed?group_by=customer&from=2026-12-01&to=2026-12-01", &api, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    let amount = |v: &serde_json::Value| d(v.as_str().unwrap());
    let rows: Vec<(Option<String>, Decimal)> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_str().map(str::to_owned), amount(&r["attributed_cost"])))
        .collect();
    let billed = d("13.010000001");
    assert_eq!(amount(&body["billed_total"]), billed, "{body}");
    let acme = acme_computed.round_dp(9);
    assert_eq!(
        rows,
        vec![(Some("globex".to_owned()), d("0.01")), (Some("acme".to_owned()), acme), (None, d("0"))],
        "{body}"
    );
    assert_eq!(amount(&body["unattributed"]), billed - d("0.01") - acme, "{body}");
    let sum: Decimal = rows.iter().map(|r| r.1).sum::<Decimal>() + amount(&body["unattributed"]);
    assert_eq!(sum, billed, "to the nano-dollar");

    // SQL's attributed_costs is the same attribution, its rows summing to the bill.
    let (_, batches) = app
        .engine
        .collect(
            scope,
            "SELECT CAST(sum(attributed_cost) AS VARCHAR), CAST(sum(CASE WHEN unattributed THEN attributed_cost END) AS VARCHAR) \
             FROM attributed_costs WHERE charge_day = DATE '2026-12-01'",
        )
        .await
        .unwrap();
    let (total, unattributed) = (text_cell(&batches[0], 0), text_cell(&batches[0], 1));
    assert_eq!((d(&total), d(&unattributed)), (billed, amount(&body["unattributed"])));

    // By service: all three calls came from the checkout service.
    let by_service = owner
        .api(Method::GET, "/api/v1/spend/attributed?group_by=service&from=2026-12-01&to=2026-12-01", &api, None)
        .await;
    assert_eq!(by_service.json()["rows"][0]["key"], "checkout");
    let bad = owner.api(Method::GET, "/api/v1/spend/attributed?group_by=planet", &api, None).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("group_by"), "{}", bad.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_days_small_request_files_are_merged_without_losing_or_doubling_a_request() {
    let app = TestApp::spawn().await;
    let Acme { scope, ingest: key, .. } = acme(&app).await;
    let exports = 20u64;
    for e in 0..exports {
        // One export answered before the next is sent: a file each, until they are merged.
        let spans: Vec<serde_json::Value> = (0..5u64)
            .map(|s| {
                serde_json::json!({
                    "traceId": format!("{:032x}", e + 1),
                    "spanId": format!("{:016x}", s + 1),
                    "startTimeUnixNano": (1_796_119_200_000_000_000u64 + (e * 5 + s) * 1_000_000_000).to_string(),
                    "attributes": [
                        { "key": "gen_ai.request.model", "value": { "stringValue": "gpt-4o-mini" } },
                        { "key": "gen_ai.provider.name", "value": { "stringValue": "openai" } },
                        { "key": "gen_ai.usage.input_tokens", "value": { "intValue": "100" } },
                    ],
                })
            })
            .collect();
        let body = serde_json::json!({ "resourceSpans": [{ "scopeSpans": [{ "spans": spans }] }] });
        let r = reqwest::Client::new().post(app.otlp_traces_url()).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    // Merged after the answers: wait for it.
    let mut files = Vec::new();
    for _ in 0..100 {
        let mut tx = app.store.tenant(scope).await.unwrap();
        files = tx.live_lake_files_of_day(burnrate_store::LakeTable::Requests, day).await.unwrap();
        tx.commit().await.unwrap();
        if files.len() < burnrate_lake::COMPACT_FROM {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(files.len() < burnrate_lake::COMPACT_FROM, "merged: {} files", files.len());
    let total: i64 = files.iter().map(|f| f.rows).sum();
    assert_eq!(total, (exports * 5) as i64, "the manifest counts every request once");
    let (_, batches) =
        app.engine.collect(scope, "SELECT count(*), count(DISTINCT trace_id || span_id) FROM requests").await.unwrap();
    let (all, distinct) = (text_cell(&batches[0], 0), text_cell(&batches[0], 1));
    assert_eq!((all.as_str(), distinct.as_str()), ("100", "100"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_an_admin_promotes_become_tags_and_content_attributes_cannot_be_promoted() {
    let app = TestApp::spawn().await;
    let Acme { scope, owner, admin, ingest: key } = acme(&app).await;
    for content in ["gen_ai.input.messages", "gen_ai.prompt.0.content", "not an attribute"] {
        let r = owner
            .api(Method::PATCH, "/api/v1/org", &admin, Some(serde_json::json!({ "request_tag_attributes": [content] })))
            .await;
        assert_eq!(r.status, 422, "{content}: {}", r.text);
        assert!(r.text.contains("request_tag_attributes"), "{}", r.text);
    }
    let r = owner
        .api(
            Method::PATCH,
            "/api/v1/org",
            &admin,
            Some(serde_json::json!({ "request_tag_attributes": ["app.unknown.thing"] })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["request_tag_attributes"], serde_json::json!(["app.unknown.thing"]));
    assert_eq!(export(&app, &key, "current.json").await.0, 200);
    let (_, batches) = app
        .engine
        .collect(scope, "SELECT tags FROM requests WHERE span_id = 'b7ad6b7169203331' OR span_id = 'eee19b7ec3c1b174' ORDER BY span_id")
        .await
        .unwrap();
    assert_eq!(text_cell(&batches[0], 0), r#"{"app.unknown.thing":"whatever"}"#, "the span that carries it");
    let audit = owner.api(Method::GET, "/api/v1/audit", &admin, None).await.text;
    assert!(audit.contains("request_tag_attributes"), "the change is audited");
}

/// Spans `first..first + n` of one trace, started `days_ago` days before now.
fn spans_of(days_ago: i64, first: u64, n: u64) -> serde_json::Value {
    let start = (chrono::Utc::now() - chrono::Duration::days(days_ago)).timestamp_nanos_opt().unwrap() as u64;
    let spans: Vec<serde_json::Value> = (first..first + n)
        .map(|s| {
            serde_json::json!({
                "traceId": format!("{:032x}", days_ago + 1),
                "spanId": format!("{:016x}", s + 1),
                "startTimeUnixNano": (start + s * 1_000_000).to_string(),
                "attributes": [
                    { "key": "gen_ai.request.model", "value": { "stringValue": "gpt-4o-mini" } },
                    { "key": "gen_ai.usage.input_tokens", "value": { "intValue": "10" } },
                ],
            })
        })
        .collect();
    serde_json::json!({ "resourceSpans": [{ "scopeSpans": [{ "spans": spans }] }] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_a_day_past_the_claimed_week_are_stored_once_and_leave_no_claims() {
    let app = TestApp::spawn().await;
    let Acme { scope, ingest: key, .. } = acme(&app).await;
    let send = async |body: serde_json::Value| {
        let r = reqwest::Client::new().post(app.otlp_traces_url()).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
    };
    // A month-old day, sent, sent again (a retry), and overlapping: 15 distinct spans. And
    // yesterday's, twice: claimed.
    send(spans_of(30, 0, 10)).await;
    send(spans_of(30, 0, 10)).await;
    send(spans_of(30, 5, 10)).await;
    send(spans_of(1, 0, 4)).await;
    send(spans_of(1, 0, 4)).await;
    let (_, batches) =
        app.engine.collect(scope, "SELECT count(*), count(DISTINCT trace_id || span_id) FROM requests").await.unwrap();
    assert_eq!((text_cell(&batches[0], 0), text_cell(&batches[0], 1)), ("19".to_owned(), "19".to_owned()));
    // Only the recent day's spans hold claims.
    let count = "SELECT count(*) FROM ingested_spans";
    let claims: i64 = if app.db.app_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&app.db.app_url).await.unwrap();
        sqlx::query_scalar(count).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&app.db.app_url).await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.org_id', $1, true)")
            .bind(scope.org_id().to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query_scalar(count).fetch_one(&mut *tx).await.unwrap()
    };
    assert_eq!(claims, 4);
}

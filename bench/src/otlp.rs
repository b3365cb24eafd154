//! `otlp`: how fast does the traces receiver take model-call spans, how soon does it answer,
//! and in how much memory?
//!
//! A real `burnrate serve` (SQLite, loopback) in its own process, an ingest key of its
//! organization, and exports of 512 spans each (an SDK's default batch) shaped as
//! `opentelemetry-instrumentation-openai-v2` sends them, content capture on, every span distinct:
//! - the anchor: this process decoding the same protobuf bodies with prost, one core, nothing
//!   else — what any receiver must at least do; the goal is half its rate or better;
//! - ingest: every export sent by four concurrent exporters, each answered only once its spans
//!   are durably stored (decoded, read, priced, written to Parquet, claimed in SQLite);
//! - steady load: 10k spans a second (20 exports of 512) for 20 s, every acknowledgement timed;
//!   the goal is a p99 under 1.5 s;
//! - the server's peak resident memory over both.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use burnrate_otlp::ExportTraceServiceRequest;
use burnrate_otlp::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value};
use burnrate_otlp::proto::resource::v1::Resource;
use burnrate_otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use chrono::NaiveDate;
use prost::Message;

use crate::year::Year;

const BATCH: usize = 512;
const SENDERS: usize = 4;
const STEADY_EXPORTS_PER_SECOND: u64 = 20;
const STEADY_SECONDS: u64 = 20;

fn text(key: &str, value: String) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(Value::StringValue(value)) }), ..Default::default() }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(Value::IntValue(value)) }), ..Default::default() }
}

/// Exports of `spans` model calls on `day`, spans numbered from `first`.
fn exports(spans: u64, first: u64, day: NaiveDate) -> Vec<bytes::Bytes> {
    let noon = day.and_hms_opt(12, 0, 0).expect("noon").and_utc().timestamp_nanos_opt().expect("in range") as u64;
    let prompt = "Summarize this support ticket for the on-call engineer in two sentences. ".repeat(3);
    let mut out = Vec::new();
    let mut n = first;
    while n < first + spans {
        let batch: Vec<Span> = (n..(n + BATCH as u64).min(first + spans))
            .map(|i| {
                let start = noon + i * 1_000;
                Span {
                    trace_id: (u128::from(i) + 1).to_be_bytes().to_vec(),
                    span_id: (i + 1).to_be_bytes().to_vec(),
                    name: "chat gpt-4o-mini".into(),
                    kind: 3,
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + 900_000_000,
                    attributes: vec![
                        text("gen_ai.operation.name", "chat".into()),
                        text("gen_ai.provider.name", "openai".into()),
                        text("gen_ai.request.model", "gpt-4o-mini".into()),
                        text("gen_ai.response.model", "gpt-4o-mini-2024-07-18".into()),
                        text("gen_ai.response.id", format!("chatcmpl-{i:016x}")),
                        int("gen_ai.usage.input_tokens", 800 + (i % 4_000) as i64),
                        int("gen_ai.usage.output_tokens", 50 + (i % 700) as i64),
                        text("burnrate.customer", format!("customer-{:02}", i % 50)),
                        text("burnrate.feature", format!("feature-{}", i % 8)),
                        text(
                            "gen_ai.input.messages",
                            format!(r#"[{{"role":"user","parts":[{{"type":"text","content":"{prompt}"}}]}}]"#),
                        ),
                        text(
                            "gen_ai.output.messages",
                            r#"[{"role":"assistant","parts":[{"type":"text","content":"Done."}]}]"#.into(),
                        ),
                    ],
                    ..Default::default()
                }
            })
            .collect();
        n += batch.len() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![text("service.name", "support-assistant".into())],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "opentelemetry.instrumentation.openai_v2".into(),
                        ..Default::default()
                    }),
                    spans: batch,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        out.push(bytes::Bytes::from(request.encode_to_vec()));
    }
    out
}

async fn send(client: &reqwest::Client, url: &str, key: &str, body: bytes::Bytes) -> anyhow::Result<()> {
    let r =
        client.post(url).bearer_auth(key).header("content-type", "application/x-protobuf").body(body).send().await?;
    if !r.status().is_success() {
        bail!("the receiver answered {} {}", r.status(), r.text().await.unwrap_or_default());
    }
    r.bytes().await?;
    Ok(())
}

pub async fn otlp(binary: &str, spans: u64) -> anyhow::Result<()> {
    let year = Year::serve(binary, 10_000, "UTC").await?;
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(16).build()?;
    let made = client
        .post(format!("{}/api/v1/ingest-keys", year.base))
        .bearer_auth(&year.api_key)
        .json(&serde_json::json!({ "name": "bench" }))
        .send()
        .await?;
    if made.status().as_u16() != 201 {
        bail!("creating an ingest key: {} {}", made.status(), made.text().await.unwrap_or_default());
    }
    let key = made.json::<serde_json::Value>().await?["key"].as_str().context("the new key")?.to_owned();
    let url = format!("http://127.0.0.1:{}/v1/traces", year.otlp_port);
    let day = year.today - chrono::Duration::days(1);

    eprintln!("encoding {spans} spans in exports of {BATCH}…");
    let bodies = exports(spans, 0, day);
    let bytes: usize = bodies.iter().map(bytes::Bytes::len).sum();

    let mut decode_secs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut decoded = 0;
        for body in &bodies {
            let request = ExportTraceServiceRequest::decode(body.clone())?;
            decoded += request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum::<usize>();
        }
        decode_secs.push(t.elapsed().as_secs_f64());
        assert_eq!(decoded as u64, spans);
    }
    let decode = crate::median(decode_secs);

    eprintln!("sending them with {SENDERS} exporters…");
    let next = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(bodies);
    let t = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (client, url, key, next, bodies) = (client.clone(), url.clone(), key.clone(), next.clone(), bodies.clone());
        senders.push(tokio::spawn(async move {
            while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                send(&client, &url, &key, body.clone()).await?;
            }
            anyhow::Ok(())
        }));
    }
    for s in senders {
        s.await??;
    }
    let ingest = t.elapsed().as_secs_f64();
    let ingest_hwm = year.server_kib("VmHWM");

    let steady_spans = STEADY_EXPORTS_PER_SECOND * STEADY_SECONDS * BATCH as u64;
    eprintln!("steady: {} spans a second for {STEADY_SECONDS} s…", STEADY_EXPORTS_PER_SECOND * BATCH as u64);
    let steady = exports(steady_spans, spans, day);
    let started = Instant::now();
    let mut sent = Vec::new();
    for (i, body) in steady.into_iter().enumerate() {
        let due = started + Duration::from_millis(i as u64 * 1000 / STEADY_EXPORTS_PER_SECOND);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        sent.push(tokio::spawn(async move {
            let t = Instant::now();
            send(&client, &url, &key, body).await.map(|()| t.elapsed())
        }));
    }
    let mut acks = Vec::new();
    for s in sent {
        acks.push(s.await??);
    }
    let acks = crate::summarize(acks);
    let peak = year.server_kib("VmHWM");

    // Every span stored once.
    let r = client
        .post(format!("{}/api/v1/sql", year.base))
        .bearer_auth(&year.api_key)
        .json(&serde_json::json!({ "sql": "SELECT count(*) AS n FROM requests" }))
        .send()
        .await?;
    let counted = r.text().await?;

    let rate = |secs: f64| spans as f64 / secs;
    println!(
        "otlp: {spans} spans in {} exports of {BATCH} ({} MiB of protobuf), {} cores",
        bodies.len(),
        bytes >> 20,
        crate::cores()
    );
    println!("{:<44} {:>10} {:>14} {:>8}", "", "seconds", "spans/s", "ratio");
    println!("{:<44} {:>10.3} {:>14.0} {:>8}", "prost decode of the same bytes (anchor)", decode, rate(decode), "1.00");
    println!(
        "{:<44} {:>10.3} {:>14.0} {:>8.2}",
        format!("receiver, {SENDERS} exporters, acknowledged"),
        ingest,
        rate(ingest),
        decode / ingest
    );
    println!(
        "steady {} spans/s for {STEADY_SECONDS} s: acknowledgements p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} exports)",
        STEADY_EXPORTS_PER_SECOND * BATCH as u64,
        crate::ms(acks.p50),
        crate::ms(acks.p99),
        crate::ms(acks.max),
        acks.n
    );
    println!(
        "server resident memory: idle {} MiB, peak after ingest {} MiB, peak after steady load {} MiB",
        year.idle_rss_kib >> 10,
        ingest_hwm >> 10,
        peak >> 10
    );
    println!("requests stored: {counted} (expected {})", spans + steady_spans);
    println!(
        "goal: ingest at least half the decode rate: {}; steady p99 < 1.5 s: {}",
        if decode / ingest >= 0.5 { "met" } else { "NOT met" },
        if crate::ms(acks.p99) < 1500.0 { "met" } else { "NOT met" }
    );
    Ok(())
}

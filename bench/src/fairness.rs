//! Fairness between organizations on one instance: what one tenant's load costs another.
//!
//! - `burnrate-bench fairness [ROWS]`: a [`Year`] of cost lines in one organization, served by the
//!   real `burnrate serve`, and a second organization with no spend. The second one's query (its
//!   month's total, through `POST /api/v1/sql`) is timed alone, then while the first keeps twice
//!   its concurrency limit of heavy queries (a year grouped by model and project) going — those
//!   over the limit wait, then are told busy (429) and retry a second later. The anchor is the
//!   quiet organization's own time alone, in the same run.
//! - `burnrate-bench delivery-fairness [EVENTS]`: the notifier's own workers (in this process, as
//!   `serve` runs them) deliver one organization's events to a receiver that answers, timed from
//!   queueing to arrival — alone, then while another organization's fifty destinations at a
//!   receiver that never answers hold every attempt until its timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use burnrate_store::{NewWebhook, OrgScope, Store, Vault};
use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::year::Year;

/// The quiet organization's question: its spend this month (it has none; the question is the point).
const QUIET_SQL: &str =
    "SELECT count(*), sum(billed_cost) FROM costs WHERE charge_day >= date_trunc('month', current_date)";
/// The busy organization's: a year of its lines grouped by model and project.
const HEAVY_SQL: &str =
    "SELECT model, sub_account_id, count(*), sum(billed_cost) FROM costs GROUP BY 1, 2 ORDER BY 4 DESC";
/// Heavy queries kept going at once: twice the per-organization default (4).
const HEAVY_CLIENTS: usize = 8;
const QUIET_SAMPLES: usize = 40;

async fn sql(client: &reqwest::Client, base: &str, key: &str, sql: &str) -> anyhow::Result<u16> {
    let r = client
        .post(format!("{base}/api/v1/sql"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "sql": sql }))
        .send()
        .await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    if status != 200 && status != 429 {
        bail!("POST /api/v1/sql: {status}: {}", &text[..text.len().min(300)]);
    }
    Ok(status)
}

/// `samples` of the quiet organization's query, one after another.
async fn quiet_times(client: &reqwest::Client, base: &str, key: &str, samples: usize) -> anyhow::Result<Vec<Duration>> {
    let mut took = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        if sql(client, base, key, QUIET_SQL).await? != 200 {
            bail!("the quiet organization was told busy");
        }
        took.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(took)
}

pub async fn fairness(binary: &str, rows: u64) -> anyhow::Result<()> {
    let year = Year::serve(binary, rows, "UTC").await?;
    let quiet_key = year.another_org(binary, "Quiet", "owner@quiet.example").await?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let base = year.base.clone();
    for _ in 0..3 {
        sql(&client, &base, &quiet_key, QUIET_SQL).await?;
    }
    let heavy_alone = {
        let t = Instant::now();
        sql(&client, &base, &year.api_key, HEAVY_SQL).await?;
        t.elapsed()
    };
    eprintln!("the quiet organization alone ({QUIET_SAMPLES} queries)…");
    let alone = crate::summarize(quiet_times(&client, &base, &quiet_key, QUIET_SAMPLES).await?);

    eprintln!("again, beside {HEAVY_CLIENTS} heavy queries of the other organization at a time…");
    let stop = Arc::new(AtomicBool::new(false));
    let (done, busy) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut heavy = tokio::task::JoinSet::new();
    for _ in 0..HEAVY_CLIENTS {
        let (client, base, key) = (client.clone(), base.clone(), year.api_key.clone());
        let (stop, done, busy) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&busy));
        heavy.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match sql(&client, &base, &key, HEAVY_SQL).await? {
                    200 => done.fetch_add(1, Ordering::Relaxed),
                    _ => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        busy.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            anyhow::Ok(())
        });
    }
    // The heavy queries under way first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let loaded = crate::summarize(quiet_times(&client, &base, &quiet_key, QUIET_SAMPLES).await?);
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = heavy.join_next().await {
        r??;
    }
    let ms = crate::ms;
    println!("fairness: {rows} cost lines in the busy organization, {} cores", crate::cores());
    println!(
        "  busy organization: one heavy query alone {:.0} ms; beside the quiet one {:.1} done/s, {} told busy",
        ms(heavy_alone),
        done.load(Ordering::Relaxed) as f64 / secs,
        busy.load(Ordering::Relaxed)
    );
    println!("  quiet organization alone:        p50 {:.1} ms, p99 {:.1} ms", ms(alone.p50), ms(alone.p99));
    println!(
        "  quiet organization beside it:    p50 {:.1} ms, p99 {:.1} ms ({:.2}× and {:.2}× its time alone; never told busy)",
        ms(loaded.p50),
        ms(loaded.p99),
        ms(loaded.p50) / ms(alone.p50),
        ms(loaded.p99) / ms(alone.p99)
    );
    Ok(())
}

/// Delivery times (ms since the epoch) by `webhook-id`.
type Arrivals = Arc<Mutex<HashMap<String, i64>>>;

/// A receiver that answers 204 to each request and notes when its `webhook-id` arrived; or, when
/// `silent`, one that takes every connection and never answers.
async fn receiver(silent: bool) -> anyhow::Result<(String, Arrivals)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let arrivals: Arrivals = Arc::default();
    let seen = Arc::clone(&arrivals);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            if silent {
                held.push(socket);
                continue;
            }
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let mut got = Vec::new();
                loop {
                    let Ok(n) = socket.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    if let Some(id) = head
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("webhook-id:").map(|v| v.trim().to_owned()))
                    {
                        seen.lock().expect("arrivals").insert(id, Utc::now().timestamp_millis());
                    }
                    let _ = socket.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await;
                    got.clear();
                }
            });
        }
    });
    Ok((url, arrivals))
}

async fn organization(store: &Store, vault: &Vault, name: &str, urls: &[String]) -> anyhow::Result<OrgScope> {
    let mut tx = store.instance().await?;
    let scope = tx.create_org(&burnrate_core::OrgName::parse(name)?).await?;
    let email = burnrate_core::EmailAddress::parse(&format!("owner@{}.example", name.to_lowercase()))?;
    let user = tx.create_user(vault, &email, "unused", true).await?;
    let mut t = tx.into_tenant(scope).await?;
    t.add_member(user, burnrate_core::Role::Owner).await?;
    for url in urls {
        let secret = burnrate_notify::WebhookSecret::generate().expose();
        let hook =
            NewWebhook { url, description: "bench", slack: false, events: &[], secret: &secret, created_by: user };
        t.create_webhook(vault, &hook).await?;
    }
    t.commit().await?;
    Ok(scope)
}

/// Queues a test event to every webhook of `scope`; returns when it was queued (ms).
async fn queue_event(store: &Store, scope: OrgScope) -> anyhow::Result<i64> {
    let event = burnrate_notify::delivery::Event {
        event_type: "test",
        timestamp: Utc::now(),
        data: serde_json::json!({ "message": "bench" }),
        text: "bench".into(),
    };
    let mut tx = store.tenant(scope).await?;
    let webhooks = tx.webhooks().await?;
    let now = Utc::now().timestamp_millis();
    burnrate_notify::delivery::queue_to_all(&mut tx, scope, &webhooks, &event, now).await?;
    tx.commit().await?;
    store.jobs_queued();
    Ok(now)
}

/// `events` of the prompt organization, one every 200 ms: each one's delay from queueing to arrival.
async fn prompt_delays(
    store: &Store,
    prompt: OrgScope,
    arrivals: &Arrivals,
    events: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut queued = Vec::with_capacity(events);
    for _ in 0..events {
        queued.push(queue_event(store, prompt).await?);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.lock().expect("arrivals").len() < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut times: Vec<i64> = arrivals.lock().expect("arrivals").values().copied().collect();
    if times.len() < events {
        bail!("{} of {events} events arrived within two minutes", times.len());
    }
    // Queued 200 ms apart, they arrive in the order they were queued.
    times.sort_unstable();
    Ok(queued.iter().zip(times).map(|(at, arrived)| Duration::from_millis((arrived - at).max(0) as u64)).collect())
}

pub async fn delivery_fairness(events: u64) -> anyhow::Result<()> {
    let events = events.max(5) as usize;
    let dir = tempfile::tempdir()?;
    let parts = crate::alerts::InProcess::new(dir.path()).await?;
    let (store, vault) = (parts.store.clone(), Arc::clone(&parts.vault));
    let (answering, arrivals) = receiver(false).await?;
    let (silent, _) = receiver(true).await?;
    let prompt = organization(&store, &vault, "Prompt", &[answering]).await?;
    let stalled_hooks: Vec<String> = (0..50).map(|n| format!("{silent}/{n}")).collect();
    let stalled = organization(&store, &vault, "Stalled", &stalled_hooks).await?;

    let notifier = parts.notifier(burnrate_notify::DeliveryPolicy::default())?;
    // As `serve` runs them: eight deliverers.
    let _workers = notifier.spawn(8);

    eprintln!("{events} events of one organization, alone…");
    let alone = crate::summarize(prompt_delays(&store, prompt, &arrivals, events).await?);
    arrivals.lock().expect("arrivals").clear();
    eprintln!("again, while another's fifty destinations never answer…");
    for _ in 0..4 {
        queue_event(&store, stalled).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded = crate::summarize(prompt_delays(&store, prompt, &arrivals, events).await?);
    let ms = crate::ms;
    println!("delivery fairness: 8 deliverers; 200 deliveries queued to 50 destinations that never answer");
    println!("  prompt organization alone:            p50 {:.0} ms, p99 {:.0} ms", ms(alone.p50), ms(alone.p99));
    println!(
        "  beside the stalled organization:      p50 {:.0} ms, p99 {:.0} ms ({:.2}× and {:.2}× its delay alone)",
        ms(loaded.p50),
        ms(loaded.p99),
        ms(loaded.p50) / ms(alone.p50).max(1.0),
        ms(loaded.p99) / ms(alone.p99).max(1.0)
    );
    Ok(())
}

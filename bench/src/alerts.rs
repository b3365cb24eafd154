//! `burnrate-bench alerts [EVENTS]`: alert events from sync commit to a webhook receiver.
//!
//! Sets up EVENTS / 10 organizations, each with a webhook to a local receiver and one budget with
//! ten thresholds; the notifier's own workers run (8 deliverers, 2 evaluators, the hourly pass —
//! which finds no spend yet). Then each organization's sync commits: its spend, past all ten
//! thresholds, is written to the lake and committed, and its evaluation queued with the commit
//! time, as the sync worker does. The workers evaluate through the engine, record ten events,
//! queue ten deliveries, sign each (Standard Webhooks) and post it through the egress-guarded
//! client. The receiver notes when each delivery arrives.
//!
//! Two halves: a burst (half the organizations commit one after another as fast as the lake
//! takes them) gives deliveries per second; a steady stream (the other half, one commit every
//! 50 ms: 200 events a second) gives the delay from sync commit to arrival (median, p99; target
//! p99 < 2 s). The anchor, measured in the same run: as many plain POSTs of an event's size
//! through the same client at the same concurrency, with no queue, no signing and no evaluation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use burnrate_core::{BudgetPeriod, BudgetScope, Currency, Money, SyncWindow, Thresholds};
use burnrate_store::{NewBudget, NewWebhook, OrgScope, Quota, Store, Vault};
use chrono::Utc;
use rust_decimal::Decimal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Deliveries in flight at once (the `serve` default).
const DELIVERERS: usize = 8;
/// In the steady half, one organization's sync commits every this often.
const PACE: Duration = Duration::from_millis(50);

/// What the notifier runs on in this process: a SQLite store, a key ring, a lake and the engine,
/// all under one directory.
pub(crate) struct InProcess {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub lake: burnrate_lake::Lake,
    pub engine: burnrate_engine::Engine,
}

impl InProcess {
    pub async fn new(dir: &std::path::Path) -> anyhow::Result<Self> {
        let store = Store::connect(&format!("sqlite://{}/burnrate.sqlite?mode=rwc", dir.display())).await?;
        burnrate_store::migrate_sqlite(&store).await?;
        let vault = Arc::new(Vault::new(burnrate_crypto::MasterKeyRing::parse(
            burnrate_crypto::MasterKey::generate("bench").export().as_ref(),
        )?));
        let lake = burnrate_lake::Lake::from_url(&dir.join("lake").display().to_string())?;
        let engine = burnrate_engine::Engine::new(
            burnrate_engine::EngineConfig::new(dir.join("spill")),
            store.clone(),
            lake.clone(),
        )?;
        Ok(Self { store, vault, lake, engine })
    }

    /// The notifier as `serve` builds it, with `policy`, its calls reaching loopback (where the
    /// receivers are) and its mail kept unsent.
    pub fn notifier(&self, policy: burnrate_notify::DeliveryPolicy) -> anyhow::Result<burnrate_notify::Notifier> {
        let mailer = burnrate_notify::Mailer::new(
            self.store.clone(),
            Arc::clone(&self.vault),
            burnrate_store::RateLimiter::new(),
            None,
            "bench <bench@example.com>",
        )
        .map_err(anyhow::Error::msg)?;
        Ok(burnrate_notify::Notifier::new(
            self.store.clone(),
            Arc::clone(&self.vault),
            self.engine.clone(),
            loopback_client(),
            mailer,
            burnrate_notify::NotifierConfig {
                public_url: url::Url::parse("http://127.0.0.1:8080")?,
                policy,
                limiter: burnrate_store::RateLimiter::new(),
            },
        ))
    }
}

/// An HTTP client whose calls may reach loopback, every dial checked.
fn loopback_client() -> burnrate_net::HttpClient {
    burnrate_net::HttpClient::new(
        burnrate_net::EgressGuard::new(&["127.0.0.1/32"]).expect("allow-list"),
        burnrate_net::ClientOptions::default(),
    )
}

/// Arrival times by `webhook-id`, in ms since the epoch.
type Arrivals = Arc<Mutex<HashMap<String, i64>>>;

/// A keep-alive HTTP/1.1 receiver that answers 204 to every POST and notes its `webhook-id`.
async fn receiver() -> anyhow::Result<(String, Arrivals)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let arrivals: Arrivals = Arc::default();
    let seen = Arc::clone(&arrivals);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let _ = serve_connection(socket, seen).await;
            });
        }
    });
    Ok((url, arrivals))
}

async fn serve_connection(mut socket: tokio::net::TcpStream, seen: Arrivals) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        // One request: headers, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_owned()))
        };
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while buf.len() < head_end + length {
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        if let Some(id) = header("webhook-id") {
            seen.lock().expect("arrivals").insert(id, Utc::now().timestamp_millis());
        }
        buf.drain(..head_end + length);
        socket.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await?;
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len().saturating_sub(1))]
}

pub async fn alerts(events: u64) -> anyhow::Result<()> {
    let orgs = (events / 10).max(1) as usize;
    let dir = tempfile::tempdir()?;
    let parts = InProcess::new(dir.path()).await?;
    let (store, vault, lake) = (parts.store.clone(), Arc::clone(&parts.vault), parts.lake.clone());
    // The receiver is on loopback: the operator's allow-list lets it through, every dial checked.
    let (url, arrivals) = receiver().await?;

    eprintln!("setting up {orgs} organizations (a webhook, a budget with ten thresholds)…");
    let usd = Currency::parse("USD")?;
    let today = Utc::now().date_naive();
    let window = SyncWindow::new(today, today.succ_opt().context("tomorrow")?)?.whole_months();
    let thresholds = Thresholds::new((1..=10).map(|t| t * 10).collect())?;
    let mut scopes = Vec::with_capacity(orgs);
    for n in 0..orgs {
        let mut tx = store.instance().await?;
        let scope = tx.create_org(&burnrate_core::OrgName::parse(&format!("Bench {n}"))?).await?;
        let user = tx
            .create_user(&vault, &burnrate_core::EmailAddress::parse(&format!("owner{n}@example.com"))?, "unused", true)
            .await?;
        let mut t = tx.into_tenant(scope).await?;
        t.add_member(user, burnrate_core::Role::Owner).await?;
        let secret = burnrate_notify::WebhookSecret::generate().expose();
        t.create_webhook(
            &vault,
            &NewWebhook {
                url: &url,
                description: "bench",
                slack: false,
                events: &[],
                secret: &secret,
                created_by: user,
            },
        )
        .await?;
        t.create_budget(&NewBudget {
            name: "Bench",
            amount: Money::new(Decimal::from(100), usd)?,
            period: BudgetPeriod::Month,
            scope: &BudgetScope::default(),
            thresholds: &thresholds,
            forecast_alert: false,
            email_members: &[],
            created_by: user,
        })
        .await?;
        t.commit().await?;
        scopes.push(scope);
    }

    // The anchor: the same number of plain POSTs, same client, same concurrency.
    let body = serde_json::json!({ "type": "budget.threshold_crossed", "data": { "budget": "Bench", "spend": "150" } })
        .to_string()
        .into_bytes();
    let plain = loopback_client();
    let target = url::Url::parse(&url)?;
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..DELIVERERS {
        let (plain, target, body, next) = (plain.clone(), target.clone(), body.clone(), Arc::clone(&next));
        let total = (orgs * 10) as u64;
        posts.spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                plain.post_once(&target, &[("content-type", "application/json")], body.clone()).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = posts.join_next().await {
        done??;
    }
    let anchor = (orgs * 10) as f64 / started.elapsed().as_secs_f64();

    // The run: syncs commit at a steady pace; the notifier's workers do the rest.
    let unlimited = Quota { interval: Duration::from_micros(1), burst: 1_000_000 };
    let notifier = parts.notifier(burnrate_notify::DeliveryPolicy {
        per_destination: unlimited,
        per_org: unlimited,
        ..Default::default()
    })?;
    let workers = notifier.spawn(DELIVERERS);
    // The hourly pass runs first and finds no spend: nothing fires until the syncs commit.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (burst, stream) = scopes.split_at(orgs / 2);
    let spend = |scope: OrgScope| {
        let (store, lake) = (store.clone(), lake.clone());
        async move {
            let midnight = today.and_hms_opt(0, 0, 0).context("midnight")?.and_utc();
            let line = burnrate_sim::fixture::usd_cost(midnight, 24, Decimal::from(150), "OpenAI", "gpt-4o");
            lake.replace(&store, scope, burnrate_core::SourceId::generate(), window, &[line]).await?;
            let mut tx = store.instance().await?;
            tx.queue_evaluation(scope.org_id().as_uuid(), None, Utc::now().timestamp_millis()).await?;
            tx.commit().await?;
            store.jobs_queued();
            anyhow::Ok(())
        }
    };

    eprintln!("burst: {} sync commits, one after another, each crossing ten thresholds…", burst.len());
    let started = Instant::now();
    for scope in burst {
        spend(*scope).await?;
    }
    wait_for(&arrivals, burst.len() * 10).await?;
    let burst_rate = (burst.len() * 10) as f64 / started.elapsed().as_secs_f64();

    eprintln!("stream: {} sync commits, one every {} ms…", stream.len(), PACE.as_millis());
    let mut tick = tokio::time::interval(PACE);
    for scope in stream {
        tick.tick().await;
        spend(*scope).await?;
    }
    wait_for(&arrivals, orgs * 10).await?;
    workers.abort();

    let delays = delays(&store, stream, &arrivals).await?;
    println!("alert events delivered: {} ({orgs} sync commits × 10 thresholds), signed, egress-checked", orgs * 10);
    println!("{:<44} {:>8.0} deliveries/s", "plain POSTs (anchor)", anchor);
    println!(
        "{:<44} {:>8.0} deliveries/s   ({:.3}× the anchor)",
        "burst, sync commit to receiver",
        burst_rate,
        burst_rate / anchor
    );
    println!(
        "stream of {:.0} events/s, delay from sync commit to delivery: median {} ms, p99 {} ms, max {} ms",
        10_000.0 / PACE.as_millis() as f64,
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or_default()
    );
    println!("target: p99 < 2000 ms: {}", if percentile(&delays, 0.99) < 2000 { "met" } else { "NOT met" });
    Ok(())
}

/// Waits until `count` deliveries have arrived (ten minutes at most).
async fn wait_for(arrivals: &Arrivals, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while arrivals.lock().expect("arrivals").len() < count {
        let got = arrivals.lock().expect("arrivals").len();
        anyhow::ensure!(Instant::now() < deadline, "only {got} of {count} deliveries arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Every delivery's delay, sorted: its arrival less its sync's commit.
async fn delays(store: &Store, scopes: &[OrgScope], arrivals: &Arrivals) -> anyhow::Result<Vec<i64>> {
    let arrivals = arrivals.lock().expect("arrivals").clone();
    let mut out = Vec::with_capacity(arrivals.len());
    for scope in scopes {
        let mut tx = store.tenant(*scope).await?;
        for webhook in tx.webhooks().await? {
            for d in tx.deliveries(webhook.id, None, 100).await? {
                let id = format!("msg_{}", d.id.as_uuid().simple());
                let arrived = arrivals.get(&id).with_context(|| format!("delivery {id} never arrived"))?;
                out.push(arrived - d.committed_at_ms);
            }
        }
        tx.commit().await?;
    }
    out.sort_unstable();
    Ok(out)
}

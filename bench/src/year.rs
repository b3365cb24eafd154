//! The data set most benchmarks share: a year of one busy organization's cost lines, up to today,
//! written through burnrate's lake writer and served by the real `burnrate serve` (its own
//! process, SQLite store, lake on disk), and — for the side-by-side runs — the same rows in
//! PostgreSQL.
//!
//! Six providers, 40 models, 20 projects using every model, 500 API keys (25 a project), three
//! SKUs a model, daily buckets: a day's lines are nearly all distinct lines of a bill.

use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use burnrate_core::{CostRecord, Currency, Money, SyncWindow};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

pub const PASSWORD: &str = "bench mark lantern orchard 77";
const EMAIL: &str = "owner@bench.example";
const SOURCE: &str = "0190a5b0-0000-7000-8000-00000000d001";
const CHUNK: u64 = 250_000;

/// Providers and the models each bills: 40 models in all.
const CATALOG: [(&str, &[&str]); 6] = [
    (
        "OpenAI",
        &["gpt-4o", "gpt-4o-mini", "o3", "o4-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-5", "text-embedding-3-large"],
    ),
    ("Anthropic", &["claude-sonnet-4", "claude-opus-4", "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"]),
    ("AWS", &["amazon.nova-pro", "amazon.nova-lite", "anthropic.claude-3-5-sonnet", "meta.llama3-70b", "cohere.embed"]),
    ("Microsoft", &["gpt-4o-0806", "gpt-4o-mini-0718", "o3-mini", "text-embedding-3-small", "gpt-4.1-nano"]),
    (
        "Google Cloud",
        &["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "text-embedding-005", "imagen-3", "veo-2"],
    ),
    (
        "OpenRouter",
        &[
            "anthropic/claude-sonnet-4",
            "meta-llama/llama-3.3-70b-instruct",
            "openai/gpt-4.1-mini",
            "deepseek/deepseek-r1",
            "mistralai/mistral-large",
            "qwen/qwen3-235b",
            "google/gemini-2.5-flash",
            "x-ai/grok-3",
            "moonshotai/kimi-k2",
            "z-ai/glm-4.5",
            "nvidia/nemotron-70b",
        ],
    ),
];

fn models() -> Vec<(&'static str, &'static str)> {
    CATALOG.iter().flat_map(|(p, ms)| ms.iter().map(move |m| (*p, *m))).collect()
}

const SKU_KINDS: [&str; 3] = ["input", "output", "cached input"];

/// Row `i` of `rows`, spread evenly over the 365 days up to `today`. [`postgres_fill`] is the
/// same formula in SQL.
fn record(i: u64, rows: u64, today: NaiveDate, models: &[(&'static str, &'static str)]) -> CostRecord {
    let back = 364 - (i * 365 / rows) as i64;
    let start = (today - chrono::Duration::days(back)).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let (provider, model) = models[(i % models.len() as u64) as usize];
    // Every project uses every model; each API key belongs to one project (25 keys a project), as
    // OpenAI's and Anthropic's keys do.
    let project = (i / 40) % 20;
    let key = project * 25 + (i / 800) % 25;
    // Tokens of a line, priced between $0.000001 and $0.000015 each: cents to tens of dollars.
    let tokens = (i * 7_919) % 2_000_000;
    let amount = Decimal::new((tokens * (1 + i % 15)) as i64, 6);
    let mut line = burnrate_sim::fixture::usd_cost(start, 24, amount, provider, model);
    line.list_cost_estimated = false;
    line.sub_account_id = Some(format!("proj-{project:02}"));
    line.sku_id = Some(format!("{model}, {}", SKU_KINDS[(i % 3) as usize]));
    line.consumed_quantity = Some(Decimal::from(tokens));
    line.consumed_unit = Some("tokens".into());
    line.api_key_id = Some(format!("key_{key:03}"));
    line
}

/// The lake's columns as a PostgreSQL table.
pub const POSTGRES_TABLE: &str = "CREATE TABLE costs (
    charge_period_start timestamptz NOT NULL, charge_period_end timestamptz NOT NULL, charge_day date NOT NULL,
    billed_cost numeric(38,9) NOT NULL, effective_cost numeric(38,9) NOT NULL, list_cost numeric(38,9) NOT NULL,
    x_list_cost_estimated boolean NOT NULL, billing_currency text NOT NULL, provider_name text NOT NULL,
    service_name text NOT NULL, sub_account_id text, sku_id text, model text, charge_category text NOT NULL,
    charge_description text, consumed_quantity numeric(38,9), consumed_unit text, api_key_id text,
    source_id text NOT NULL, tags text)";

/// [`record`]'s rows in SQL, then the indexes a dashboard's filters use.
fn postgres_fill(rows: u64, today: NaiveDate) -> String {
    let catalog =
        models().iter().enumerate().map(|(n, (p, m))| format!("({n}, '{p}', '{m}')")).collect::<Vec<_>>().join(", ");
    format!(
        "SET TIME ZONE 'UTC';
         CREATE TEMP TABLE catalog (n int8 PRIMARY KEY, provider text, model text);
         INSERT INTO catalog VALUES {catalog};
         INSERT INTO costs SELECT
            d, d + interval '1 day', d::date, c, c, c, false, 'USD', m.provider, m.provider || ' API',
            'proj-' || lpad(project::text, 2, '0'), m.model || ', ' || (ARRAY['input','output','cached input'])[i % 3 + 1],
            m.model, 'Usage', NULL, tokens, 'tokens', 'key_' || lpad((project * 25 + (i / 800) % 25)::text, 3, '0'),
            '{SOURCE}', NULL
         FROM (SELECT i,
                      (DATE '{today}' - (364 - i * 365 / {rows})::int)::timestamp AT TIME ZONE 'UTC' AS d,
                      (i / 40) % 20 AS project,
                      (i * 7919) % 2000000 AS tokens,
                      ((i * 7919) % 2000000) * (1 + i % 15) / 1000000.0 AS c
               FROM generate_series(0::int8, {last}::int8) AS i) AS g
         JOIN catalog m ON m.n = g.i % 40;
         CREATE INDEX ON costs (charge_day);
         CREATE INDEX ON costs (provider_name, charge_day);",
        last = rows - 1
    )
}

/// A logged-in person's HTTP client.
pub struct Person {
    client: reqwest::Client,
    base: String,
    csrf: String,
    cookies: String,
}

impl Person {
    pub async fn log_in(base: &str) -> anyhow::Result<Self> {
        Self::log_in_as(base, EMAIL).await
    }

    /// Logs in as `email`, a user made with [`PASSWORD`].
    pub async fn log_in_as(base: &str, email: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build()?;
        let page = client.get(format!("{base}/login")).send().await?;
        let csrf = crate::csrf_cookie(&page).context("the login page sets a CSRF cookie")?;
        let r = client
            .post(format!("{base}/login"))
            .header("cookie", format!("__Host-burnrate_csrf={csrf}"))
            .header("origin", base)
            .form(&[("email", email), ("password", PASSWORD), ("csrf", csrf.as_str())])
            .send()
            .await?;
        if r.status().as_u16() != 303 {
            bail!("logging in: {} {}", r.status(), r.text().await.unwrap_or_default());
        }
        // The session cookie the login set, beside the CSRF cookie.
        let mut cookies = vec![format!("__Host-burnrate_csrf={csrf}")];
        for set in r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            if let Some(pair) = set.split(';').next().filter(|p| !p.starts_with("__Host-burnrate_csrf=")) {
                cookies.push(pair.to_owned());
            }
        }
        Ok(Self { client, base: base.to_owned(), csrf, cookies: cookies.join("; ") })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<String> {
        let r = self.client.get(format!("{}{path}", self.base)).header("cookie", &self.cookies).send().await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {}", &text[..text.len().min(500)]);
        }
        Ok(text)
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut fields = form.to_vec();
        fields.push(("csrf", &self.csrf));
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookies)
            .header("origin", &self.base)
            .form(&fields)
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("POST {path}: {status}: {}", &text[..text.len().min(500)]);
        }
        Ok(text)
    }

    /// A new admin API key of the person's organization.
    pub async fn api_key(&self) -> anyhow::Result<String> {
        let page = self.post_form("/api-keys", &[("name", "bench"), ("scope", "admin")]).await?;
        let marker = r#"id="new-api-key" class="secret">"#;
        let at = page.find(marker).context("the API key page shows the new key")? + marker.len();
        Ok(page[at..].split('<').next().unwrap_or_default().to_owned())
    }

    /// The p50 and p99 of `samples` requests one after another, after two to warm up.
    pub async fn time(&self, path: &str, samples: usize) -> anyhow::Result<crate::Summary> {
        for _ in 0..2 {
            self.get(path).await?;
        }
        let mut took = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            self.get(path).await?;
            took.push(t.elapsed());
        }
        Ok(crate::summarize(took))
    }
}

/// A year of cost lines in a running `burnrate serve`.
pub struct Year {
    pub rows: u64,
    pub today: NaiveDate,
    pub base: String,
    pub person: Person,
    /// An admin API key of the organization.
    pub api_key: String,
    /// The Postgres wire endpoint's port and a SQL credential (user, password).
    pub wire_port: u16,
    /// The OTLP traces receiver's port.
    pub otlp_port: u16,
    pub sql_user: String,
    pub sql_password: String,
    pub lake_bytes: u64,
    pub rollup_bytes: u64,
    pub fill_secs: f64,
    /// `burnrate serve`'s resident memory when idle: 5 s after it was ready, before any request (KiB).
    pub idle_rss_kib: u64,
    /// Of that, its own memory (`RssAnon`: heap, stacks); the rest is the binary's code and
    /// data read from its file (`RssFile`), shared and given back by the kernel under pressure.
    pub idle_anon_kib: u64,
    keys: String,
    pid: String,
    _server: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Year {
    /// Creates the organization, writes `rows` lines through the lake writer and starts
    /// `burnrate serve` over them. `zone`: the organization's reporting time zone.
    pub async fn serve(binary: &str, rows: u64, zone: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (port, wire_port, otlp_port) = (crate::free_port()?, crate::free_port()?, crate::free_port()?);
        let base = format!("http://127.0.0.1:{port}");
        let keys = std::process::Command::new(binary).args(["keys", "generate"]).output().context("burnrate keys")?;
        let keys = String::from_utf8(keys.stdout)?.trim().to_owned();
        let env = |cmd: &mut tokio::process::Command| {
            cmd.env("BURNRATE_DATA_DIR", dir.path())
                .env("BURNRATE_MASTER_KEYS", &keys)
                .env("BURNRATE_HTTP_ADDR", format!("127.0.0.1:{port}"))
                .env("BURNRATE_PG_ADDR", format!("127.0.0.1:{wire_port}"))
                .env("BURNRATE_METRICS_ADDR", "127.0.0.1:0")
                .env("BURNRATE_OTLP_ADDR", format!("127.0.0.1:{otlp_port}"))
                .env("BURNRATE_PUBLIC_URL", &base)
                // The API benchmark measures serving, not refusing: limits are checked, never reached.
                .env("BURNRATE_API_RATE_PER_KEY", "100000000")
                .env("BURNRATE_OTLP_RATE_PER_KEY", "100000000")
                .env("RUST_LOG", "warn");
        };
        let mut cmd = tokio::process::Command::new(binary);
        cmd.args(["user", "create", "--org", "Bench", "--email", EMAIL, "--role", "owner", "--password-stdin"]);
        env(&mut cmd);
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).spawn()?;
        {
            use tokio::io::AsyncWriteExt;
            child.stdin.take().context("stdin")?.write_all(PASSWORD.as_bytes()).await?;
        }
        if !child.wait().await?.success() {
            bail!("burnrate user create failed");
        }

        let today = chrono::Utc::now().date_naive();
        eprintln!("writing {rows} cost lines (a year up to {today}) through the lake writer…");
        let t = Instant::now();
        fill(dir.path(), &keys, rows, today, zone).await?;
        let fill_secs = t.elapsed().as_secs_f64();
        // The lines' files and, beside them, their roll-ups (`cost_rollup/`).
        let (mut lake_bytes, mut rollup_bytes) = (0u64, 0u64);
        for f in walk(&dir.path().join("lake"))? {
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            if f.path().to_string_lossy().contains("/cost_rollup/") { rollup_bytes += size } else { lake_bytes += size }
        }
        eprintln!(
            "  {fill_secs:.1} s, {} MiB of Parquet, roll-up {:.1} MiB",
            lake_bytes >> 20,
            rollup_bytes as f64 / 1048576.0
        );

        let mut cmd = tokio::process::Command::new(binary);
        cmd.arg("serve");
        env(&mut cmd);
        let server = cmd.stdout(Stdio::null()).kill_on_drop(true).spawn()?;
        let probe = reqwest::Client::builder().no_proxy().build()?;
        let mut ready = false;
        for _ in 0..300 {
            if probe.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            bail!("burnrate serve did not become ready within 30 s");
        }
        // Idle: started, ready, its start-up work done (the budgets evaluated over the lake) and
        // nothing asked of it since.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let pid = server.id().context("the server's process id")?.to_string();
        let idle_rss_kib = crate::status_kib(&pid, "VmRSS");
        let idle_anon_kib = crate::status_kib(&pid, "RssAnon");
        let person = Person::log_in(&base).await?;
        let api_key = person.api_key().await?;
        let r = probe
            .post(format!("{base}/api/v1/sql-credentials"))
            .bearer_auth(&api_key)
            .json(&serde_json::json!({ "name": "bench" }))
            .send()
            .await?;
        if r.status().as_u16() != 201 {
            bail!("creating a SQL credential: {} {}", r.status(), r.text().await.unwrap_or_default());
        }
        let credential: serde_json::Value = r.json().await?;
        let field = |name: &str| credential[name].as_str().map(str::to_owned).with_context(|| name.to_owned());
        Ok(Self {
            rows,
            today,
            base,
            person,
            api_key,
            wire_port,
            otlp_port,
            sql_user: field("user")?,
            sql_password: field("password")?,
            lake_bytes,
            rollup_bytes,
            fill_secs,
            idle_rss_kib,
            idle_anon_kib,
            keys,
            pid,
            _server: server,
            dir,
        })
    }

    /// Another organization on the same instance, with no spend of its own: its owner `email`
    /// made by `burnrate user create` as the first one was; returns an admin API key of it.
    pub async fn another_org(&self, binary: &str, org: &str, email: &str) -> anyhow::Result<String> {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.args(["user", "create", "--org", org, "--email", email, "--role", "owner", "--password-stdin"])
            .env("BURNRATE_DATA_DIR", self.dir.path())
            .env("BURNRATE_MASTER_KEYS", &self.keys)
            .env("RUST_LOG", "warn");
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).spawn()?;
        {
            use tokio::io::AsyncWriteExt;
            child.stdin.take().context("stdin")?.write_all(PASSWORD.as_bytes()).await?;
        }
        if !child.wait().await?.success() {
            bail!("burnrate user create --org {org} failed");
        }
        Person::log_in_as(&self.base, email).await?.api_key().await
    }

    /// The Parquet files of the lines (not their roll-ups), as a glob.
    pub fn parquet_glob(&self) -> String {
        format!("{}/lake/org=*/costs/*/*.parquet", self.dir.path().display())
    }

    /// A memory figure of the server (`VmRSS` now, `VmHWM` its peak), in KiB.
    pub fn server_kib(&self, field: &str) -> u64 {
        crate::status_kib(&self.pid, field)
    }

    /// The same rows in `postgres`'s `costs` table, indexed on the day and on provider and day.
    pub async fn copy_to(&self, postgres: &crate::wire::Side) -> anyhow::Result<f64> {
        let t = Instant::now();
        let admin = postgres.client().await?;
        admin.batch_execute(POSTGRES_TABLE).await?;
        admin.batch_execute(&postgres_fill(self.rows, self.today)).await?;
        // On its own: one query string is one transaction, which VACUUM refuses.
        admin.batch_execute("VACUUM ANALYZE costs").await?;
        Ok(t.elapsed().as_secs_f64())
    }
}

/// Writes the rows and two budgets into the data directory `burnrate user create` made.
async fn fill(dir: &std::path::Path, keys: &str, rows: u64, today: NaiveDate, zone: &str) -> anyhow::Result<()> {
    use burnrate_core::{BudgetPeriod, BudgetScope, Thresholds};
    let store = burnrate_store::Store::connect(&format!("sqlite://{}", dir.join("burnrate.db").display())).await?;
    let vault = burnrate_store::Vault::new(burnrate_crypto::MasterKeyRing::parse(keys)?);
    let mut tx = store.instance().await?;
    let org = tx.find_org("Bench").await?.context("the Bench organization")?;
    let scope = burnrate_store::OrgScope::trusted(org.id);
    let mut t = tx.into_tenant(scope).await?;
    let owner = t.members(&vault).await?.first().context("the owner")?.user_id;
    burnrate_core::ReportingZone::parse(zone).map_err(|e| anyhow::anyhow!("{zone:?} is not a time zone: {e:?}"))?;
    t.set_reporting_tz(zone).await?;
    let usd = Currency::USD;
    for (name, amount, scope_of) in [
        ("All AI spend", 4_000_000, BudgetScope::default()),
        ("GPT-4o family", 150_000, BudgetScope { model: Some("gpt-4o*".into()), ..Default::default() }),
    ] {
        t.create_budget(&burnrate_store::NewBudget {
            name,
            amount: Money::new(Decimal::from(amount), usd)?,
            period: BudgetPeriod::Month,
            scope: &scope_of,
            thresholds: &Thresholds::default(),
            forecast_alert: true,
            email_members: &[owner],
            created_by: owner,
        })
        .await?;
    }
    t.commit().await?;

    let lake = burnrate_lake::Lake::from_url(&dir.join("lake").display().to_string())?;
    let source = burnrate_core::SourceId::from_str(SOURCE)?;
    let first = (today - chrono::Duration::days(364)).with_day(1).expect("first of the month");
    let end = (today.with_day(1).expect("first of the month")) + chrono::Months::new(1);
    let window = SyncWindow::new(first, end)?;
    let models = models();
    let mut writer = lake.writer::<CostRecord>(&store, scope, source, window)?;
    let mut i = 0;
    while i < rows {
        let end = (i + CHUNK).min(rows);
        writer.push((i..end).map(|i| record(i, rows, today, &models)).collect()).await?;
        i = end;
    }
    let files = writer.finish().await?;
    lake.commit(&store, scope, burnrate_store::LakeTable::Costs, source, window, &files).await?;
    Ok(())
}

fn walk(dir: &std::path::Path) -> anyhow::Result<Vec<std::fs::DirEntry>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            out.extend(walk(&e.path())?);
        } else {
            out.push(e);
        }
    }
    Ok(out)
}

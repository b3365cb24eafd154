//! `wire`: burnrate's Postgres wire endpoint against PostgreSQL itself, same rows, same queries,
//! same run, both driven by `pgbench -f` with custom scripts.
//!
//! - burnrate: the real `burnrate serve` over a [`Year`] of cost lines (Parquet), its wire
//!   endpoint on loopback without TLS, a SQL credential made through the API, SCRAM login;
//! - PostgreSQL (the server Debian installs, started here as a throw-away cluster on a free
//!   loopback port) holds the same rows in a table with the lake's columns, indexed;
//! - before timing, each script is run on both and the answers compared: the ratio is only worth
//!   printing if both sides say the same to the cent;
//! - then each script runs against one side and the other, alternating, `rounds` times; the
//!   medians are reported with their ratio.

use std::process::{Command, Stdio};
use std::str::FromStr;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::year::Year;

/// The scripts: name, SQL, clients. Aggregates a dashboard asks, and the round trip a
/// connection pool's health check makes.
fn scripts(today: NaiveDate) -> Vec<(&'static str, String, u32)> {
    let since = today - chrono::Duration::days(89);
    vec![
        (
            "spend by provider over 90 days (`sum`, `count`, filter on `charge_day`, `GROUP BY`)",
            format!(
                "SELECT provider_name, sum(billed_cost), count(*) FROM costs WHERE charge_day >= DATE '{since}' \
                 GROUP BY provider_name ORDER BY provider_name;"
            ),
            2,
        ),
        (
            "top 10 models by spend over the year (`sum`, `GROUP BY`, `ORDER BY … LIMIT 10`)",
            "SELECT model, sum(effective_cost) AS spend FROM costs GROUP BY model ORDER BY spend DESC LIMIT 10;".into(),
            2,
        ),
        ("`SELECT 1` round trip", "SELECT 1;".into(), 1),
    ]
}

/// A throw-away PostgreSQL cluster; stopped when dropped.
pub struct Postgres {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn as_postgres(program: &std::path::Path) -> Command {
    // initdb and postgres refuse to run as root.
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

impl Postgres {
    fn start() -> anyhow::Result<Self> {
        let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL is not installed (apt-get install postgresql)")?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .collect();
        bins.sort();
        let bin = bins.pop().context("no PostgreSQL server binaries under /usr/lib/postgresql")?;
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        if is_root() {
            Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status()?;
        }
        let ok = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8"])
            .stdout(Stdio::null())
            .status()?;
        if !ok.success() {
            bail!("initdb failed");
        }
        let port = crate::free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=2GB -c work_mem=64MB",
            dir.path().display()
        );
        let ok = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "-o", &options, "start"])
            .stdout(Stdio::null())
            .status()?;
        if !ok.success() {
            bail!("PostgreSQL did not start (log: {})", dir.path().join("log").display());
        }
        Ok(Self { bin, data, port, _dir: dir })
    }

    pub fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

/// One side: where pgbench connects and as whom.
pub struct Side {
    name: &'static str,
    port: u16,
    user: String,
    password: String,
    database: &'static str,
}

impl Side {
    pub async fn client(&self) -> anyhow::Result<tokio_postgres::Client> {
        let config = format!(
            "host=127.0.0.1 port={} user={} password={} dbname={}",
            self.port, self.user, self.password, self.database
        );
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// A script's rows as text, in order, for comparing the two sides.
    async fn answer(&self, sql: &str) -> anyhow::Result<Vec<String>> {
        let messages = self.client().await?.simple_query(sql).await?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| {
                            // Trailing zeros differ by declared scale (PostgreSQL's sum keeps
                            // numeric(38,9)'s nine); the value is what must match.
                            let v = r.get(i).unwrap_or("NULL");
                            Decimal::from_str(v).map(|d| d.normalize().to_string()).unwrap_or_else(|_| v.to_owned())
                        })
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                _ => None,
            })
            .collect())
    }

    /// pgbench running `script` with `clients` for `seconds`: (transactions/s, mean latency ms).
    fn pgbench(&self, script: &std::path::Path, clients: u32, seconds: u32) -> anyhow::Result<(f64, f64)> {
        let out = Command::new("pgbench")
            .args(["-n", "-M", "simple", "-h", "127.0.0.1"])
            .args(["-p", &self.port.to_string(), "-U", &self.user])
            .args(["-c", &clients.to_string(), "-j", &clients.to_string(), "-T", &seconds.to_string()])
            .arg("-f")
            .arg(script)
            .arg(self.database)
            .env("PGPASSWORD", &self.password)
            .output()
            .context("pgbench (apt-get install postgresql-contrib or postgresql-client)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!("pgbench against {} failed: {text}{}", self.name, String::from_utf8_lossy(&out.stderr));
        }
        let field = |prefix: &str| -> anyhow::Result<f64> {
            let line =
                text.lines().find(|l| l.starts_with(prefix)).with_context(|| format!("no {prefix:?} in {text}"))?;
            let value = line.trim_start_matches(prefix).split_whitespace().next().unwrap_or("");
            value.parse().with_context(|| format!("{prefix:?} in {line:?}"))
        };
        Ok((field("tps = ")?, field("latency average = ")?))
    }
}

/// One script's medians on both sides.
pub struct Script {
    pub name: &'static str,
    pub clients: u32,
    pub burnrate_tps: f64,
    pub postgres_tps: f64,
    pub burnrate_ms: f64,
    pub postgres_ms: f64,
}

impl Year {
    /// The wire endpoint of this year's `burnrate serve`, as its SQL credential.
    pub fn wire_side(&self) -> Side {
        Side {
            name: "burnrate",
            port: self.wire_port,
            user: self.sql_user.clone(),
            password: self.sql_password.clone(),
            database: "burnrate",
        }
    }
}

impl Postgres {
    pub fn side(&self) -> Side {
        Side {
            name: "PostgreSQL",
            port: self.port,
            user: "postgres".into(),
            password: String::new(),
            database: "postgres",
        }
    }
}

/// Each script for `seconds`, burnrate and PostgreSQL alternating, `rounds` times.
pub async fn measure(year: &Year, postgres: &Side, seconds: u32, rounds: usize) -> anyhow::Result<Vec<Script>> {
    let burnrate = year.wire_side();
    let dir = tempfile::tempdir()?;
    let mut out = Vec::new();
    for (i, (name, sql, clients)) in scripts(year.today).into_iter().enumerate() {
        let (ours, theirs) = (burnrate.answer(&sql).await?, postgres.answer(&sql).await?);
        if ours != theirs {
            bail!("{name}: the answers differ\n  burnrate:   {ours:?}\n  PostgreSQL: {theirs:?}");
        }
        let path = dir.path().join(format!("script{i}.sql"));
        std::fs::write(&path, &sql)?;
        eprintln!("pgbench: {name}, {rounds} rounds of {seconds} s a side…");
        let (mut b_tps, mut b_lat, mut p_tps, mut p_lat) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let (tps, lat) = burnrate.pgbench(&path, clients, seconds)?;
            b_tps.push(tps);
            b_lat.push(lat);
            let (tps, lat) = postgres.pgbench(&path, clients, seconds)?;
            p_tps.push(tps);
            p_lat.push(lat);
        }
        out.push(Script {
            name,
            clients,
            burnrate_tps: crate::median(b_tps),
            postgres_tps: crate::median(p_tps),
            burnrate_ms: crate::median(b_lat),
            postgres_ms: crate::median(p_lat),
        });
    }
    Ok(out)
}

/// Starts a throw-away PostgreSQL and copies `year`'s rows into it.
pub async fn postgres_beside(year: &Year) -> anyhow::Result<Postgres> {
    let pg = Postgres::start()?;
    eprintln!("writing the same rows into {}, indexed…", pg.version());
    let secs = year.copy_to(&pg.side()).await?;
    eprintln!("  {secs:.1} s");
    Ok(pg)
}

/// `wire [ROWS [SECONDS]]` on its own. `seconds`, when given, replaces each script's 20 s (for a
/// quick check of the harness).
pub async fn wire(binary: &str, rows: u64, seconds: Option<u32>) -> anyhow::Result<()> {
    let year = Year::serve(binary, rows, "UTC").await?;
    let pg = postgres_beside(&year).await?;
    let scripts = measure(&year, &pg.side(), seconds.unwrap_or(20), 3).await?;
    println!("wire: {rows} cost rows; pgbench -M simple; 3 rounds, burnrate and PostgreSQL alternating");
    println!(
        "| script | clients | burnrate TPS | PostgreSQL TPS | TPS ratio | burnrate latency ms | PostgreSQL latency ms | latency ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for s in &scripts {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.2}× | {:.3} | {:.3} | {:.2}× |",
            s.name,
            s.clients,
            s.burnrate_tps,
            s.postgres_tps,
            s.burnrate_tps / s.postgres_tps,
            s.burnrate_ms,
            s.postgres_ms,
            s.burnrate_ms / s.postgres_ms
        );
    }
    Ok(())
}

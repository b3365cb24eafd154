//! The application under test, on random loopback ports.

use std::sync::Arc;

use burnrate::server::Tuning;
use burnrate::settings::{Settings, Sources};
use burnrate_core::{EmailAddress, OrgName, Role, UserId};
use burnrate_crypto::{MasterKey, PasswordHasher, PasswordHasherConfig};
use burnrate_store::{OrgScope, Store, Vault};
use burnrate_web::{Quota, SignupMode};

use crate::{GOOD_PASSWORD, SmtpSink, TestClient, TestDb};

#[derive(Clone, Debug)]
pub struct AppOptions {
    /// Serve over HTTPS (self-signed certificate) with the HTTP listener redirecting.
    pub https: bool,
    pub signup: SignupMode,
    pub login_per_ip: Option<Quota>,
    pub api_per_ip: Option<Quota>,
    pub login_per_account: Option<Quota>,
    pub api_per_key: Option<Quota>,
    pub exports_per_org: Option<Quota>,
    /// The SQL engine's per-query memory pool (64 MiB unless set).
    pub query_memory_limit: Option<usize>,
    /// Client queries at once: the instance's and one organization's (the defaults unless set).
    pub query_concurrency: Option<(usize, usize)>,
    /// How long a query over a limit waits for a slot (`BURNRATE_QUERY_WAIT`).
    pub query_wait: Option<std::time::Duration>,
    /// How long a statement may run (`BURNRATE_STATEMENT_TIMEOUT`; the default unless set).
    pub statement_timeout: Option<std::time::Duration>,
    /// What one organization's queries may spill together (`BURNRATE_SPILL_MAX_PER_ORG`).
    pub spill_max_per_org: Option<u64>,
    /// Postgres wire connections at once: the instance's and one organization's.
    pub wire_connections: Option<(usize, usize)>,
    /// The operator's egress allow-list (`BURNRATE_EGRESS_ALLOW`); loopback unless set, for the
    /// simulated providers and local receivers.
    pub egress_allow: Option<Vec<String>>,
    /// What of it every organization reaches without a grant (`BURNRATE_EGRESS_SHARED`); all
    /// of the allow-list unless set.
    pub egress_shared: Option<Vec<String>>,
    /// How the app's HTTP client resolves names (the system's unless set).
    pub lookup: Option<Arc<dyn burnrate_net::Lookup>>,
    /// Share rate limits through the Redis server at this URL (in process unless set).
    pub redis_url: Option<String>,
    /// How webhook deliveries are retried (fast retries unless set).
    pub delivery: Option<burnrate_notify::DeliveryPolicy>,
    /// What "now" is for the application's answers (the system's time unless set).
    pub clock: burnrate_app::Clock,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            https: false,
            signup: SignupMode::Open,
            login_per_ip: None,
            api_per_ip: None,
            login_per_account: None,
            api_per_key: None,
            exports_per_org: None,
            query_memory_limit: None,
            query_concurrency: None,
            query_wait: None,
            wire_connections: None,
            spill_max_per_org: None,
            statement_timeout: None,
            egress_allow: None,
            egress_shared: None,
            lookup: None,
            delivery: None,
            redis_url: None,
            clock: burnrate_app::Clock::System,
        }
    }
}

pub struct TestApp {
    /// The origin clients use: `https://…` when serving HTTPS.
    pub url: String,
    /// The plain HTTP listener (the app itself, or the redirector when HTTPS is on).
    pub http_url: String,
    pub db: TestDb,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub smtp: SmtpSink,
    /// `http://…/metrics` of this instance's metrics listener.
    pub metrics_url: String,
    /// Where the Postgres wire endpoint listens.
    pub pg_addr: std::net::SocketAddr,
    /// `BURNRATE_MASTER_KEYS` of this instance.
    pub master_keys: String,
    pub hasher: PasswordHasher,
    pub lake: burnrate_lake::Lake,
    /// Syncs sources as the server does (its client allowed to reach the loopback simulators).
    pub syncer: burnrate_sync::Syncer,
    _lake_dir: tempfile::TempDir,
    pub engine: burnrate_engine::Engine,
    /// Budgets and alerts. Its workers run, as in `burnrate serve`: a test that calls it
    /// directly races them, and waits for outcomes rather than counting the jobs it ran.
    pub notifier: burnrate_notify::Notifier,
    /// The root under which queries spill.
    pub spill_dir: tempfile::TempDir,
    _tls: tempfile::TempDir,
    /// The server, as `burnrate serve` starts it: listeners (the Postgres wire endpoint with TLS
    /// from a self-signed certificate; plain also accepted, as on any loopback listener), the
    /// scheduler and the workers.
    pub running: burnrate::server::Running,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(AppOptions::default()).await
    }

    pub async fn spawn_with(opts: AppOptions) -> Self {
        burnrate_web::install_crypto_provider();
        let db = TestDb::new().await;
        let master_keys = MasterKey::generate("test").export().to_string();
        let smtp = SmtpSink::start().await;
        let lake_dir = tempfile::tempdir().expect("lake dir");
        let spill_dir = tempfile::tempdir().expect("spill dir");
        // One self-signed certificate for HTTPS (when on) and the Postgres wire endpoint.
        let tls_dir = tempfile::tempdir().expect("tls dir");
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("self-signed certificate");
        let (cert_path, key_path) = (tls_dir.path().join("cert.pem"), tls_dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
        std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");

        let egress_allow = opts.egress_allow.clone().unwrap_or_else(|| vec!["127.0.0.1/32".to_owned()]);
        // Configured as an operator configures `burnrate serve`, on ports the system picks.
        let path = |p: &std::path::Path| p.display().to_string();
        let mut vars = vec![
            ("DATABASE_URL", db.app_url.clone()),
            ("MASTER_KEYS", master_keys.clone()),
            ("DATA_DIR", path(tls_dir.path())),
            ("LAKE_URL", format!("file://{}", lake_dir.path().display())),
            ("SPILL_DIR", path(spill_dir.path())),
            ("HTTP_ADDR", "127.0.0.1:0".into()),
            ("PG_ADDR", "127.0.0.1:0".into()),
            ("METRICS_ADDR", "127.0.0.1:0".into()),
            ("OTLP_ADDR", "127.0.0.1:0".into()),
            ("PG_TLS_CERT", path(&cert_path)),
            ("PG_TLS_KEY", path(&key_path)),
            ("SMTP_URL", smtp.url()),
            ("MAIL_FROM", "burnrate <noreply@burnrate.test>".into()),
            ("BCRYPT_COST", "10".into()),
            ("QUERY_MEMORY_LIMIT", opts.query_memory_limit.unwrap_or(64 << 20).to_string()),
            // The simulated providers listen on loopback: the operator's allow-list opens it.
            ("EGRESS_ALLOW", egress_allow.join(",")),
            ("EGRESS_SHARED", opts.egress_shared.clone().unwrap_or(egress_allow).join(",")),
            (
                "SIGNUP",
                match opts.signup {
                    SignupMode::Open => "open",
                    SignupMode::Invite => "invite",
                    SignupMode::Closed => "closed",
                }
                .into(),
            ),
        ];
        if let Some(admin) = &db.admin_url {
            vars.push(("DATABASE_ADMIN_URL", admin.clone()));
        }
        if let Some((instance, per_org)) = opts.query_concurrency {
            vars.extend([
                ("QUERY_CONCURRENCY", instance.to_string()),
                ("QUERY_CONCURRENCY_PER_ORG", per_org.to_string()),
            ]);
        }
        if let Some(wait) = opts.query_wait {
            vars.push(("QUERY_WAIT", format!("{}ms", wait.as_millis())));
        }
        if let Some(timeout) = opts.statement_timeout {
            vars.push(("STATEMENT_TIMEOUT", format!("{}ms", timeout.as_millis())));
        }
        if let Some(bytes) = opts.spill_max_per_org {
            vars.push(("SPILL_MAX_PER_ORG", bytes.to_string()));
        }
        if let Some((instance, per_org)) = opts.wire_connections {
            vars.extend([
                ("WIRE_MAX_CONNECTIONS", instance.to_string()),
                ("WIRE_MAX_CONNECTIONS_PER_ORG", per_org.to_string()),
            ]);
        }
        if let Some(redis) = &opts.redis_url {
            vars.push(("REDIS_URL", redis.clone()));
        }
        if opts.https {
            vars.extend([
                ("HTTPS_ADDR", "127.0.0.1:0".into()),
                ("TLS_CERT", path(&cert_path)),
                ("TLS_KEY", path(&key_path)),
            ]);
        }
        let sources = Sources::from_vars(vars.into_iter().map(|(k, v)| (format!("BURNRATE_{k}"), v)));
        let mut settings = Settings::from_sources(&sources, "unused").expect("test settings");
        let bound = burnrate::server::bind(&settings).await.expect("bind");
        settings.http_addr = bound.http_addr().expect("addr");
        settings.pg_addr = bound.pg_addr().expect("addr");
        settings.metrics_addr = bound.metrics_addr().expect("addr");
        settings.otlp_addr = bound.otlp_addr().expect("addr");
        settings.https_addr = bound.https_addr().expect("addr");
        let url = match settings.https_addr {
            Some(addr) => format!("https://{addr}"),
            None => format!("http://{}", settings.http_addr),
        };
        settings.public_url = url::Url::parse(&url).expect("url");
        let tuning = Tuning {
            lookup: opts.lookup.clone(),
            retry_backoff: Some(std::time::Duration::from_millis(10)),
            delivery: Some(opts.delivery.unwrap_or(burnrate_notify::DeliveryPolicy {
                first_retry: std::time::Duration::from_millis(100),
                max_delay: std::time::Duration::from_secs(2),
                ..Default::default()
            })),
            login_per_ip: opts.login_per_ip,
            login_per_account: opts.login_per_account,
            api_per_ip: opts.api_per_ip,
            api_per_key: opts.api_per_key,
            exports_per_org: opts.exports_per_org,
            clock: opts.clock,
        };
        let running = burnrate::server::launch(&settings, tuning, bound).await.expect("start the server");
        let app = running.app.clone();
        TestApp {
            url,
            http_url: format!("http://{}", running.http),
            db,
            store: running.store.clone(),
            vault: Arc::clone(app.vault()),
            smtp,
            pg_addr: running.pg.addr,
            metrics_url: format!("http://{}/metrics", running.metrics.addr),
            master_keys,
            hasher: PasswordHasher::new(PasswordHasherConfig { cost: 10, threads: 2 }),
            lake: running.syncer.lake.clone(),
            syncer: running.syncer.clone(),
            notifier: running.notifier.clone(),
            engine: running.engine.clone(),
            _lake_dir: lake_dir,
            spill_dir,
            _tls: tls_dir,
            running,
        }
    }

    /// A notifier as a restarted instance would build it: nothing shared with this one but the
    /// database, the keys and the lake.
    pub fn notifier_after_restart(&self, delivery: burnrate_notify::DeliveryPolicy) -> burnrate_notify::Notifier {
        let guard = burnrate_net::EgressGuard::new(&["127.0.0.1/32"]).expect("allow-list");
        let http = burnrate_net::HttpClient::new(guard, burnrate_net::ClientOptions::default());
        let mailer = burnrate_notify::Mailer::new(
            self.store.clone(),
            Arc::clone(&self.vault),
            burnrate_store::RateLimiter::new(),
            Some(&self.smtp.url()),
            "burnrate <noreply@burnrate.test>",
        )
        .expect("mailer");
        burnrate_notify::Notifier::new(
            self.store.clone(),
            Arc::clone(&self.vault),
            self.engine.clone(),
            http,
            mailer,
            burnrate_notify::NotifierConfig {
                public_url: url::Url::parse(&self.url).expect("url"),
                policy: delivery,
                limiter: burnrate_store::RateLimiter::new(),
            },
        )
    }

    /// Where the lake keeps its files, for tests that look at the disk.
    pub fn lake_path(&self) -> &std::path::Path {
        self._lake_dir.path()
    }

    /// `http://…/v1/traces` of this instance's OTLP receiver.
    pub fn otlp_traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.running.otlp)
    }

    pub fn client(&self) -> TestClient {
        TestClient::new(&self.url)
    }

    /// Creates an organization whose owner is `email` (verified, password [`GOOD_PASSWORD`]).
    pub async fn create_org(&self, name: &str, owner_email: &str) -> (OrgScope, UserId) {
        let hash = self.hasher.hash(GOOD_PASSWORD).await.expect("hash");
        let mut tx = self.store.instance().await.expect("tx");
        let scope = tx.create_org(&OrgName::parse(name).expect("org name")).await.expect("create org");
        let user = tx
            .create_user(&self.vault, &EmailAddress::parse(owner_email).expect("email"), &hash, true)
            .await
            .expect("create user");
        let mut t = tx.into_tenant(scope).await.expect("tenant");
        t.add_member(user, Role::Owner).await.expect("membership");
        t.commit().await.expect("commit");
        (scope, user)
    }

    /// Adds a verified member with [`GOOD_PASSWORD`].
    pub async fn add_member(&self, scope: OrgScope, email: &str, role: Role) -> UserId {
        let hash = self.hasher.hash(GOOD_PASSWORD).await.expect("hash");
        let mut t = self.store.tenant(scope).await.expect("tx");
        let user = t
            .create_user(&self.vault, &EmailAddress::parse(email).expect("email"), &hash, true)
            .await
            .expect("create user");
        t.add_member(user, role).await.expect("membership");
        t.commit().await.expect("commit");
        user
    }

    /// A client logged in as `email` with [`GOOD_PASSWORD`].
    pub async fn login(&self, email: &str) -> TestClient {
        let c = self.client();
        let r = c.post_form("/login", &[("email", email), ("password", GOOD_PASSWORD)]).await;
        assert_eq!(r.status, 303, "login of {email} failed: {}", r.text);
        c
    }

    /// Adds an instance operator with [`GOOD_PASSWORD`]; the test holds their authenticator.
    pub async fn add_operator(&self, email: &str, name: &str) -> TestOperator {
        let hash = self.hasher.hash(GOOD_PASSWORD).await.expect("hash");
        let totp = burnrate_crypto::TotpSecret::generate();
        let mut tx = self.store.instance().await.expect("tx");
        tx.create_operator(&self.vault, name, &EmailAddress::parse(email).expect("email"), &hash, &totp)
            .await
            .expect("create operator");
        tx.commit().await.expect("commit");
        TestOperator::new(email, Authenticator::new(totp))
    }

    /// A client logged in at `/operator` as `op`.
    pub async fn operator_login(&self, op: &TestOperator) -> TestClient {
        let c = self.client();
        let code = op.code().await;
        let r =
            c.post_form("/operator/login", &[("email", &op.email), ("password", GOOD_PASSWORD), ("code", &code)]).await;
        assert_eq!(r.status, 303, "operator login of {} failed: {}", op.email, r.text);
        c
    }

    /// Environment for running the `burnrate` binary against this instance's database.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("BURNRATE_DATABASE_URL".to_owned(), self.db.app_url.clone()),
            ("BURNRATE_MASTER_KEYS".to_owned(), self.master_keys.clone()),
        ];
        if let Some(admin) = &self.db.admin_url {
            env.push(("BURNRATE_DATABASE_ADMIN_URL".to_owned(), admin.clone()));
        }
        env
    }
}

/// An authenticator app: shows the code of the current 30-second step, and a code the server
/// has not seen yet — each code is accepted once, so a second code within one step is the next
/// step's (accepted early for clock drift), and a third waits for the clock.
pub struct Authenticator {
    pub totp: burnrate_crypto::TotpSecret,
    last_step: std::sync::atomic::AtomicI64,
}

impl Authenticator {
    pub fn new(totp: burnrate_crypto::TotpSecret) -> Self {
        Self { totp, last_step: std::sync::atomic::AtomicI64::new(0) }
    }

    /// Reads a secret as people type it (RFC 4648 base32, as setup pages show it).
    pub fn from_base32(b32: &str) -> Self {
        let (mut bytes, mut buffer, mut bits) = (Vec::new(), 0u32, 0);
        for c in b32.trim().bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'2'..=b'7' => c - b'2' + 26,
                _ => panic!("not base32: {b32}"),
            };
            buffer = (buffer << 5) | u32::from(v);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push((buffer >> bits) as u8);
            }
        }
        Self::new(burnrate_crypto::TotpSecret::from_bytes(&bytes))
    }

    /// The code the app shows now (which the server may have seen already).
    pub fn current(&self) -> String {
        self.totp.code_at_step(burnrate_crypto::totp_step(chrono::Utc::now().timestamp()))
    }

    pub async fn code(&self) -> String {
        use std::sync::atomic::Ordering;
        loop {
            let now = burnrate_crypto::totp_step(chrono::Utc::now().timestamp());
            let step = now.max(self.last_step.load(Ordering::SeqCst) + 1);
            if step <= now + 1 {
                self.last_step.store(step, Ordering::SeqCst);
                return self.totp.code_at_step(step);
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}

/// An instance operator and the authenticator app the test holds for them.
pub struct TestOperator {
    pub email: String,
    pub app: Authenticator,
}

impl TestOperator {
    pub fn new(email: &str, app: Authenticator) -> Self {
        Self { email: email.to_owned(), app }
    }

    pub async fn code(&self) -> String {
        self.app.code().await
    }
}

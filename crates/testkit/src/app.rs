//! The application under test, on random loopback ports.

use std::sync::Arc;

use burnrate_core::{EmailAddress, OrgName, Role, UserId};
use burnrate_crypto::{MasterKey, MasterKeyRing, PasswordHasher, PasswordHasherConfig};
use burnrate_store::{OrgScope, Store, Vault};
use burnrate_web::{AppState, Listeners, Quota, RunningServer, SignupMode, TlsFiles, WebConfig};

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
    /// The operator's egress allow-list (`BURNRATE_EGRESS_ALLOW`); loopback unless set, for the
    /// simulated providers and local receivers.
    pub egress_allow: Option<Vec<String>>,
    /// How the app's HTTP client resolves names (the system's unless set).
    pub lookup: Option<Arc<dyn burnrate_net::Lookup>>,
    /// Share rate limits through the Redis server at this URL (in process unless set).
    pub redis_url: Option<String>,
    /// How webhook deliveries are retried (fast retries unless set).
    pub delivery: Option<burnrate_notify::DeliveryPolicy>,
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
            egress_allow: None,
            lookup: None,
            delivery: None,
            redis_url: None,
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
    /// `BURNRATE_MASTER_KEYS` of this instance.
    pub master_keys: String,
    pub hasher: PasswordHasher,
    pub lake: burnrate_lake::Lake,
    /// Syncs sources as the server does (its client allowed to reach the loopback simulators).
    pub syncer: burnrate_sync::Syncer,
    _lake_dir: tempfile::TempDir,
    _server: RunningServer,
    /// The Postgres wire endpoint (TLS with a self-signed certificate; plain also accepted, as
    /// on any loopback listener).
    pub pg: burnrate_pgwire::PgServer,
    pub engine: burnrate_engine::Engine,
    /// Budgets and alerts. Its workers are not running: tests evaluate and deliver when they
    /// choose (or start them with `notifier.spawn`).
    pub notifier: burnrate_notify::Notifier,
    /// The root under which queries spill.
    pub spill_dir: tempfile::TempDir,
    _mail: tokio::task::JoinHandle<()>,
    _tls: Option<tempfile::TempDir>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(AppOptions::default()).await
    }

    pub async fn spawn_with(opts: AppOptions) -> Self {
        burnrate_web::install_crypto_provider();
        let db = TestDb::new().await;
        let store = Store::connect(&db.app_url).await.expect("connect to the test database");
        if db.admin_url.is_none() {
            burnrate_store::migrate_sqlite(&store).await.expect("migrate SQLite");
        }
        let master_keys = MasterKey::generate("test").export().to_string();
        let vault = Arc::new(Vault::new(MasterKeyRing::parse(&master_keys).expect("key ring")));
        let smtp = SmtpSink::start().await;

        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
        let http_port = http.local_addr().expect("addr").port();
        let (https, url, tls_dir) = if opts.https {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind HTTPS");
            let port = l.local_addr().expect("addr").port();
            let dir = tempfile::tempdir().expect("tls dir");
            let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                .expect("self-signed certificate");
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
            std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
            (Some((l, TlsFiles { cert: cert_path, key: key_path })), format!("https://127.0.0.1:{port}"), Some(dir))
        } else {
            (None, format!("http://127.0.0.1:{http_port}"), None)
        };

        let mut config = WebConfig::new(url::Url::parse(&url).expect("url"));
        config.signup = opts.signup;
        config.hsts = opts.https;
        config.smtp_url = Some(smtp.url());
        config.mail_from = "burnrate <noreply@burnrate.test>".into();
        if let Some(q) = opts.login_per_ip {
            config.login_per_ip = q;
        }
        if let Some(q) = opts.api_per_ip {
            config.api_per_ip = q;
        }
        if let Some(q) = opts.login_per_account {
            config.login_per_account = q;
        }
        if let Some(q) = opts.exports_per_org {
            config.exports_per_org = q;
        }
        if let Some(q) = opts.api_per_key {
            config.api_per_key = q;
        }
        config.delivery = opts.delivery.unwrap_or(burnrate_notify::DeliveryPolicy {
            first_retry: std::time::Duration::from_millis(100),
            max_delay: std::time::Duration::from_secs(2),
            ..Default::default()
        });
        let pg_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind Postgres wire");
        let pg_addr = pg_listener.local_addr().expect("addr");
        config.pg_endpoint = Some(burnrate_web::PgEndpoint { address: pg_addr.to_string(), tls: true });
        let hasher = PasswordHasher::new(PasswordHasherConfig { cost: 10, threads: 2 });
        let lake_dir = tempfile::tempdir().expect("lake dir");
        let lake = burnrate_lake::Lake::from_url(&format!("file://{}", lake_dir.path().display())).expect("lake");
        // The simulated providers listen on loopback: the operator's allow-list opens it.
        let allow = opts.egress_allow.clone().unwrap_or_else(|| vec!["127.0.0.1/32".to_owned()]);
        let guard = burnrate_net::EgressGuard::new(&allow).expect("allow-list");
        let client_options =
            burnrate_net::ClientOptions { base_backoff: std::time::Duration::from_millis(10), ..Default::default() };
        let client = match opts.lookup.clone() {
            Some(lookup) => burnrate_net::HttpClient::with_lookup(guard, client_options, lookup),
            None => burnrate_net::HttpClient::new(guard, client_options),
        };
        let spill_dir = tempfile::tempdir().expect("spill dir");
        let mut engine_config = burnrate_engine::EngineConfig::new(spill_dir.path().to_path_buf());
        engine_config.memory_limit = opts.query_memory_limit.unwrap_or(64 << 20);
        let engine = burnrate_engine::Engine::new(engine_config, store.clone(), lake.clone())
            .expect("engine")
            .with_database_sources(Arc::clone(&vault), burnrate_net::EgressGuard::new(&allow).expect("allow-list"));
        let limiter = match &opts.redis_url {
            Some(url) => burnrate_store::RateLimiter::redis(url).await.expect("Redis"),
            None => burnrate_store::RateLimiter::new(),
        };
        let state =
            AppState::new(config, store.clone(), Arc::clone(&vault), hasher.clone(), lake.clone(), client, limiter)
                .expect("app state")
                .with_engine(engine.clone());
        let mail = state.mailer().spawn_worker();
        let syncer = state.syncer().clone();
        let notifier = state.notifier().expect("the engine is set").clone();
        let application = state.app().clone();
        let server = burnrate_web::serve(state, Listeners { http, https }).await.expect("serve");
        let pg_cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("self-signed certificate");
        let pg_tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![pg_cert.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(pg_cert.key_pair.serialize_der().into()),
            )
            .expect("TLS config");
        let pg = burnrate_pgwire::PgServer::start(
            pg_listener,
            engine.clone(),
            application,
            Some(burnrate_pgwire::PgTls { cert_pem: pg_cert.cert.pem().into_bytes(), config: Arc::new(pg_tls) }),
        )
        .expect("Postgres wire endpoint");
        TestApp {
            url,
            http_url: format!("http://127.0.0.1:{http_port}"),
            db,
            store,
            vault,
            smtp,
            master_keys,
            hasher,
            lake,
            syncer,
            _lake_dir: lake_dir,
            _server: server,
            pg,
            engine,
            notifier,
            spill_dir,
            _mail: mail,
            _tls: tls_dir,
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

//! Headless Chromium through chromedriver (W3C WebDriver), from Debian's packages.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Browser {
    pub client: fantoccini::Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn find(env: &str, candidates: &[&str]) -> Option<String> {
    std::env::var(env)
        .ok()
        .or_else(|| candidates.iter().find(|p| std::path::Path::new(p).exists()).map(|p| (*p).to_owned()))
}

impl Browser {
    /// Starts chromedriver and a headless Chromium. `None` when they are not installed — unless
    /// `BURNRATE_TEST_REQUIRE_BROWSER=1` (as `scripts/test` sets), when that is a failure.
    pub async fn start() -> Option<Browser> {
        burnrate_web::install_crypto_provider();
        let required = std::env::var("BURNRATE_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        let driver = find("BURNRATE_TEST_CHROMEDRIVER", &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
        let chromium = find("BURNRATE_TEST_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            if required {
                panic!("chromium and chromedriver are required (BURNRATE_TEST_REQUIRE_BROWSER=1) but not installed");
            }
            eprintln!("SKIPPED: chromium/chromedriver not installed; scripts/test installs them");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {driver}: {e}"));
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last_err = None;
        for _ in 0..50 {
            match fantoccini::ClientBuilder::rustls().expect("TLS roots").capabilities(caps.clone()).connect(&url).await
            {
                Ok(client) => {
                    return Some(Browser { client, driver: child, _profile: profile });
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        panic!("could not start a Chromium session: {last_err:?}");
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

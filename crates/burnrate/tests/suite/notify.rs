//! Webhook signatures, checked by an independent implementation: the Standard Webhooks
//! reference library from PyPI (scripts/test installs it and names its Python).

use burnrate_notify::WebhookSecret;

pub fn delivery(signed: &burnrate_notify::SignedWebhook, body: &str) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> =
        signed.headers().into_iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
    serde_json::json!({ "headers": headers, "body": body })
}

/// What the reference library says of each delivery, signed with `secret`.
pub async fn verify(secret: &WebhookSecret, deliveries: Vec<serde_json::Value>) -> Vec<String> {
    use tokio::io::AsyncWriteExt;
    let python = std::env::var("BURNRATE_TEST_PYTHON")
        .expect("BURNRATE_TEST_PYTHON: a Python with the standardwebhooks package (scripts/test makes one)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/verify_webhook.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let request = serde_json::json!({ "secret": secret.expose(), "deliveries": deliveries });
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "the verifier failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_signatures_verify_with_the_standard_webhooks_library_and_tampering_fails() {
    let secret = WebhookSecret::generate();
    let shown = secret.expose();
    assert!(shown.starts_with("whsec_"), "{shown}");
    assert_eq!(WebhookSecret::parse(&shown).unwrap(), secret, "the shown secret reads back");
    assert!(!format!("{secret:?}").contains(&shown[6..]), "Debug prints no secret");

    let body =
        r#"{"type":"budget.threshold_crossed","data":{"budget":"Research","threshold":80,"spend":"812.40 USD"}}"#;
    let now = chrono::Utc::now().timestamp();
    let signed = secret.sign("msg_2ux1YqfPzAQX8w2y3p7a9c", now, body.as_bytes());
    let old = secret.sign("msg_2ux1YqfPzAQX8w2y3p7a9c", now - 3_600, body.as_bytes());
    let other = WebhookSecret::generate().sign("msg_2ux1YqfPzAQX8w2y3p7a9c", now, body.as_bytes());
    let answers = verify(
        &secret,
        vec![
            delivery(&signed, body),
            delivery(&signed, &body.replace("812.40", "8.40")),
            delivery(&old, body),
            delivery(&other, body),
        ],
    )
    .await;
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_eq!(answers[0], "ok", "a signed delivery verifies");
    for (answer, what) in answers[1..].iter().zip(["a tampered body", "an hour-old timestamp", "another secret"]) {
        assert!(answer.starts_with("refused"), "{what} must be refused: {answer}");
    }

    for bad in ["sk_live_abc", "whsec_not*base64", "whsec_c2hvcnQ="] {
        assert!(WebhookSecret::parse(bad).is_err(), "{bad} is no webhook secret");
    }
}

/// One HTTP request as a receiver saw it.
pub struct Received {
    pub headers: std::collections::HashMap<String, String>,
    pub body: String,
    pub at: std::time::Instant,
    /// What the receiver answered.
    pub status: u16,
}

/// A webhook receiver on loopback that answers `204` and hands over each request it gets.
pub async fn receiver() -> (String, tokio::sync::mpsc::Receiver<Received>) {
    let (url, rx, _) = receiver_answering(204).await;
    (url, rx)
}

/// A receiver that answers with the status in the returned cell (change it to take the
/// receiver down and bring it back).
pub async fn receiver_answering(
    status: u16,
) -> (String, tokio::sync::mpsc::Receiver<Received>, std::sync::Arc<std::sync::atomic::AtomicU16>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/burnrate", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let answer = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(status));
    let cell = std::sync::Arc::clone(&answer);
    tokio::spawn(async move {
        'accept: while let Ok((mut socket, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body) = loop {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                raw.extend_from_slice(&buf[..n]);
                if n == 0 && !raw.windows(4).any(|w| w == b"\r\n\r\n") {
                    // A connection closed before it finished asking.
                    continue 'accept;
                }
                let text = String::from_utf8_lossy(&raw).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length || n == 0 {
                        break (head.to_owned(), body.to_owned());
                    }
                }
            };
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let status = cell.load(Ordering::SeqCst);
            let reply = format!("HTTP/1.1 {status} Answer\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = socket.write_all(reply.as_bytes()).await;
            let _ = tx.send(Received { headers, body, at: std::time::Instant::now(), status }).await;
        }
    });
    (url, rx, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_saved_only_for_a_url_the_guard_allows_and_its_test_event_arrives_signed() {
    use reqwest::Method;
    let app = burnrate_testkit::TestApp::spawn().await;
    let (c, key, _) = crate::wire::org_with_costs(&app, "Acme", 2).await;
    let (url, mut received) = receiver().await;

    let r = c
        .api(Method::POST, "/api/v1/webhooks", &key, Some(serde_json::json!({ "url": url, "description": "ops" })))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = created["id"].as_str().unwrap().to_owned();
    let listed = c.api(Method::GET, "/api/v1/webhooks", &key, None).await;
    assert!(listed.text.contains(&url) && !listed.text.contains(&secret[6..]), "{}", listed.text);

    // The test event arrives signed, and the reference library verifies it with the secret shown.
    let r = c.api(Method::POST, &format!("/api/v1/webhooks/{id}/test"), &key, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json()["delivered"].as_bool(), r.json()["status"].as_u64()), (Some(true), Some(204)), "{}", r.text);
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), received.recv()).await.unwrap().unwrap();
    let event: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(event["type"], "test");
    let headers: serde_json::Map<String, serde_json::Value> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .into_iter()
        .map(|h| (h.to_owned(), got.headers.get(h).cloned().unwrap_or_default().into()))
        .collect();
    let parsed = WebhookSecret::parse(&secret).unwrap();
    let answers = verify(&parsed, vec![serde_json::json!({ "headers": headers, "body": got.body })]).await;
    assert_eq!(answers, ["ok"]);

    // URLs the guard refuses are not saved, and the answer says why.
    for (bad, why) in [
        ("http://10.0.0.1/hook", "not a public address"),
        ("http://93.184.215.14/hook", "scheme"),
        ("https://169.254.169.254/latest/meta-data/", "not a public address"),
        ("https://[::ffff:127.0.0.1]/hook", "not a public address"),
        ("https://user:pw@example.com/hook", "user name or password"),
        ("ftp://example.com/hook", "scheme"),
        ("not a url", "not a valid URL"),
    ] {
        let r = c.api(Method::POST, "/api/v1/webhooks", &key, Some(serde_json::json!({ "url": bad }))).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        let message = r.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.starts_with("URL: ") && message.contains(why), "{bad}: {message}");
    }
    let listed = c.api(Method::GET, "/api/v1/webhooks", &key, None).await.json();
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1, "only the allowed URL was saved");

    // The same from the webhooks page: the secret shown once, a test event sent with a button.
    let r = c.post_form("/webhooks", &[("url", url.as_str()), ("description", "from the page")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("id=\"new-webhook-secret\" class=\"secret\">whsec_"), "{}", r.text);
    let listed = c.api(Method::GET, "/api/v1/webhooks", &key, None).await.json();
    let page_id = listed["webhooks"][1]["id"].as_str().unwrap().to_owned();
    let r = c.post_form(&format!("/webhooks/{page_id}/test"), &[]).await;
    assert!(r.text.contains("Test event delivered: the receiver answered 204"), "{}", r.text);
    tokio::time::timeout(std::time::Duration::from_secs(5), received.recv()).await.unwrap().unwrap();
    let r = c.post_form("/webhooks", &[("url", "http://192.168.0.7/hook")]).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("URL: "), "{}", r.text);
    let page = c.get("/webhooks").await.text;
    assert!(!page.contains("new-webhook-secret"), "the secret is shown only once");

    let r = c.api(Method::DELETE, &format!("/api/v1/webhooks/{id}"), &key, None).await;
    assert_eq!(r.status, 204);
    let audit = c.get("/audit").await.text;
    assert!(audit.contains("webhook_created") && audit.contains("webhook_deleted"), "audited");
    assert!(!audit.contains(&secret[6..]), "the audit log shows no secret");
}

/// A catalog of SSRF payloads (tests/ssrf_payloads.txt): each is refused when the webhook is
/// saved, or, for a name the guard cannot judge before it resolves, when the test event dials
/// it; either way with a message naming why. The operator allows nothing here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ssrf_payload_of_the_catalog_is_refused_on_save_or_on_dial() {
    use reqwest::Method;
    let opts = burnrate_testkit::AppOptions { egress_allow: Some(Vec::new()), ..Default::default() };
    let app = burnrate_testkit::TestApp::spawn_with(opts).await;
    let (c, key, _) = crate::wire::org_with_costs(&app, "Acme", 2).await;
    let catalog = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ssrf_payloads.txt")).unwrap();
    let payloads: Vec<&str> = catalog.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(payloads.len() >= 60, "the catalog holds {} payloads", payloads.len());
    let (mut on_save, mut on_dial) = (0, 0);
    for url in payloads {
        let r = c.api(Method::POST, "/api/v1/webhooks", &key, Some(serde_json::json!({ "url": url }))).await;
        if r.status == 422 {
            let message = r.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
            assert!(message.starts_with("URL: ") && message.len() > 10, "{url}: {message}");
            on_save += 1;
            continue;
        }
        assert_eq!(r.status, 201, "{url}: {}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let t = c.api(Method::POST, &format!("/api/v1/webhooks/{id}/test"), &key, None).await.json();
        assert_eq!(t["delivered"], false, "{url} was delivered: {t}");
        let error = t["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("not a public address") || error.contains("did not resolve"),
            "{url}: refused for the wrong reason: {t}"
        );
        on_dial += 1;
        c.api(Method::DELETE, &format!("/api/v1/webhooks/{id}"), &key, None).await;
    }
    assert!(on_save + on_dial >= 60, "{on_save} refused on save, {on_dial} on dial");
}

/// A resolver that answers a public address the first time and loopback after that.
#[derive(Debug)]
struct Rebinding(std::sync::atomic::AtomicUsize);

impl burnrate_net::Lookup for Rebinding {
    fn lookup(&self, host: &str) -> futures::future::BoxFuture<'static, std::io::Result<Vec<std::net::IpAddr>>> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let answer = match (host, n) {
            ("rebind.example.com", 0) => Ok(vec!["93.184.215.14".parse().unwrap()]),
            ("rebind.example.com", _) => Ok(vec!["127.0.0.1".parse().unwrap()]),
            _ => Err(std::io::Error::other("unknown name")),
        };
        Box::pin(async move { answer })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_rebinding_to_loopback_after_the_save_is_refused_when_dialled() {
    use reqwest::Method;
    let opts = burnrate_testkit::AppOptions {
        egress_allow: Some(Vec::new()),
        lookup: Some(std::sync::Arc::new(Rebinding(std::sync::atomic::AtomicUsize::new(0)))),
        ..Default::default()
    };
    let app = burnrate_testkit::TestApp::spawn_with(opts).await;
    let (c, key, _) = crate::wire::org_with_costs(&app, "Acme", 2).await;
    // Saved: the name resolves to a public address now.
    let body = serde_json::json!({ "url": "https://rebind.example.com/hook" });
    let r = c.api(Method::POST, "/api/v1/webhooks", &key, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    // Dialled: it now resolves to loopback, and the address checked is the one dialled.
    let t = c.api(Method::POST, &format!("/api/v1/webhooks/{id}/test"), &key, None).await.json();
    assert_eq!(t["delivered"], false, "{t}");
    assert!(t["error"].as_str().unwrap_or_default().contains("127.0.0.1 is not a public address"), "{t}");
}

/// Names of the port test: `receiver.test` is loopback; `rebind.test` is public when saved and
/// loopback when dialled.
#[derive(Debug, Default)]
struct LoopbackNames(std::sync::atomic::AtomicUsize);

impl burnrate_net::Lookup for LoopbackNames {
    fn lookup(&self, host: &str) -> futures::future::BoxFuture<'static, std::io::Result<Vec<std::net::IpAddr>>> {
        let answer = match host {
            "receiver.test" => Ok(vec!["127.0.0.1".parse().unwrap()]),
            "rebind.test" => match self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Ok(vec!["93.184.215.14".parse().unwrap()]),
                _ => Ok(vec!["127.0.0.1".parse().unwrap()]),
            },
            _ => Err(std::io::Error::other("unknown name")),
        };
        Box::pin(async move { answer })
    }
}

/// An allow-list entry with a port opens that port only — for an address written in the URL and
/// for every address a name resolves to, when saved and when dialled; a source's base URL alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_port_opens_that_port_of_a_name_or_an_address_and_no_other() {
    use reqwest::Method;
    let (url, _received) = receiver().await;
    let port: u16 = url::Url::parse(&url).unwrap().port().unwrap();
    let other = if port == 65535 { port - 1 } else { port + 1 };
    let opts = burnrate_testkit::AppOptions {
        egress_allow: Some(vec![format!("127.0.0.1/32:{port}")]),
        lookup: Some(std::sync::Arc::new(LoopbackNames::default())),
        ..Default::default()
    };
    let app = burnrate_testkit::TestApp::spawn_with(opts).await;
    let (c, key, _) = crate::wire::org_with_costs(&app, "Acme", 2).await;
    let save = |url: String| {
        let c = &c;
        let key = &key;
        async move { c.api(Method::POST, "/api/v1/webhooks", key, Some(serde_json::json!({ "url": url }))).await }
    };
    let refusal =
        format!("127.0.0.1 may be reached only on the ports BURNRATE_EGRESS_ALLOW names for it, not on port {other}");

    // The allowed port of the address: saved and delivered.
    let r = save(url.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let t = c.api(Method::POST, &format!("/api/v1/webhooks/{id}/test"), &key, None).await.json();
    assert_eq!(t["delivered"], true, "{t}");

    // Another port of it, written as the address or as a name resolving to it: refused on save.
    for refused in [format!("http://127.0.0.1:{other}/hook"), format!("https://receiver.test:{other}/hook")] {
        let r = save(refused.clone()).await;
        assert_eq!(r.status, 422, "{refused}: {}", r.text);
        let message = r.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(&refusal), "{refused}: {message}");
    }

    // The name on the allowed port is saved (the receiver speaks no TLS, so it is not dialled).
    let r = save(format!("https://receiver.test:{port}/hook")).await;
    assert_eq!(r.status, 201, "{}", r.text);

    // A name that resolves elsewhere when saved is held to the port when it is dialled.
    let r = save(format!("https://rebind.test:{other}/hook")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let t = c.api(Method::POST, &format!("/api/v1/webhooks/{id}/test"), &key, None).await.json();
    assert_eq!(t["delivered"], false, "{t}");
    assert!(t["error"].as_str().unwrap_or_default().contains(&refusal), "{t}");

    // A provider's base URL is the same kind of destination.
    let body = serde_json::json!({
        "kind": "openai", "name": "proxy", "secret": "sk-admin-abcdefgh",
        "base_url": format!("https://receiver.test:{other}/"),
    });
    let r = c.api(Method::POST, "/api/v1/sources", &key, Some(body)).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let message = r.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.starts_with("Base URL: ") && message.contains(&refusal), "{message}");
}

mod fixtures {
    use burnrate_notify::{DaySpend, anomaly, forecast_period_end};
    use chrono::{Datelike, NaiveDate};
    use rust_decimal::Decimal;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// `days` of spend from `first`, `amount(i, day)` each.
    fn series(first: NaiveDate, days: i64, amount: impl Fn(i64, NaiveDate) -> Decimal) -> Vec<DaySpend> {
        (0..days)
            .map(|i| {
                let day = first + chrono::Duration::days(i);
                DaySpend { day, amount: amount(i, day) }
            })
            .collect()
    }

    /// A busy-weekday, quiet-weekend rhythm with a little day-to-day noise.
    fn weekly(i: i64, day: NaiveDate) -> Decimal {
        let base = if day.weekday().number_from_monday() <= 5 { 100 } else { 10 };
        Decimal::from(base) + Decimal::new((i * 37) % 11, 0)
    }

    #[test]
    fn the_forecast_sees_a_steady_rise_crossing_the_budget_before_the_spend_does() {
        // Rising half a dollar a day since January; March's budget is what March spends by the 25th.
        let history = series(date(2026, 1, 1), 90, |i, _| Decimal::from(10) + Decimal::new(i * 5, 1));
        let (start, end) = (date(2026, 3, 1), date(2026, 4, 1));
        let march: Vec<&DaySpend> = history.iter().filter(|d| d.day >= start && d.day < end).collect();
        let budget: Decimal = march.iter().filter(|d| d.day <= date(2026, 3, 25)).map(|d| d.amount).sum();
        let mut spent = Decimal::ZERO;
        let (mut forecast_day, mut actual_day) = (None, None);
        for d in &march {
            spent += d.amount;
            if actual_day.is_none() && spent >= budget {
                actual_day = Some(d.day);
            }
            if forecast_day.is_none() && forecast_period_end(&history, start, end, d.day) >= budget {
                forecast_day = Some(d.day);
            }
        }
        let (forecast_day, actual_day) = (forecast_day.unwrap(), actual_day.unwrap());
        assert_eq!(actual_day, date(2026, 3, 25));
        assert!(forecast_day < actual_day, "forecast crossed on {forecast_day}, spend on {actual_day}");

        // A budget 30 % above the month's spend is never forecast to be exceeded.
        let roomy = march.iter().map(|d| d.amount).sum::<Decimal>() * Decimal::new(13, 1);
        assert!(march.iter().all(|d| forecast_period_end(&history, start, end, d.day) < roomy));
    }

    #[test]
    fn a_weekly_rhythm_is_forecast_by_weekday_and_raises_no_anomaly() {
        let history = series(date(2026, 1, 5), 70, weekly);
        for d in &history[28..] {
            assert_eq!(anomaly(&history, d.day, Decimal::ONE), None, "{} ({})", d.day, d.amount);
        }
        // The rest of a month forecast on a Friday: a weekend and two weekdays to come, forecast
        // by weekday (a flat level would be a third too high) — within 10 % of what comes.
        let (start, end, last) = (date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 27));
        let full = series(date(2026, 1, 5), 86, weekly);
        let known: Vec<DaySpend> = full.iter().copied().filter(|d| d.day <= last).collect();
        let spent: Decimal = known.iter().filter(|d| d.day >= start).map(|d| d.amount).sum();
        let to_come: Decimal = full.iter().filter(|d| d.day > last && d.day < end).map(|d| d.amount).sum();
        let forecast_to_come = forecast_period_end(&known, start, end, last) - spent;
        let off = ((forecast_to_come - to_come) / to_come).abs();
        assert!(off < Decimal::new(10, 2), "forecast {forecast_to_come} for the last days against {to_come}");
    }

    #[test]
    fn a_spike_is_an_anomaly_and_small_change_is_not() {
        let spike_day = date(2026, 3, 11);
        let history =
            series(date(2026, 1, 5), 70, |i, day| if day == spike_day { Decimal::from(1_000) } else { weekly(i, day) });
        let found: Vec<NaiveDate> =
            history[28..].iter().filter_map(|d| anomaly(&history, d.day, Decimal::ONE)).map(|a| a.day).collect();
        assert_eq!(found, [spike_day]);
        let a = anomaly(&history, spike_day, Decimal::ONE).unwrap();
        assert_eq!(a.amount, Decimal::from(1_000));
        assert!(a.usual > Decimal::from(99) && a.usual < Decimal::from(112), "{a:?}");

        // Cents on a quiet scope: tripled, but below the floor, is no alert.
        let quiet = series(date(2026, 1, 5), 35, |i, _| if i == 34 { Decimal::new(9, 2) } else { Decimal::new(3, 2) });
        assert_eq!(anomaly(&quiet, quiet[34].day, Decimal::ONE), None);
        assert!(anomaly(&quiet, quiet[34].day, Decimal::new(1, 2)).is_some(), "above a cent's floor it is one");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_network_granted_to_one_organization_is_refused_to_anothers_webhooks_and_databases() {
    use reqwest::Method;
    // Loopback is inside the instance's ceiling, and no part of it is shared.
    let opts = burnrate_testkit::AppOptions {
        egress_allow: Some(vec!["127.0.0.0/8".into()]),
        egress_shared: Some(vec![]),
        ..Default::default()
    };
    let app = burnrate_testkit::TestApp::spawn_with(opts).await;
    let (url, mut received) = receiver().await;
    app.create_org("Acme", "owner@acme.test").await;
    app.create_org("Globex", "owner@globex.test").await;
    let (a, g) = (app.login("owner@acme.test").await, app.login("owner@globex.test").await);
    let (a_key, g_key) = (crate::create_key(&a, "a", "admin").await, crate::create_key(&g, "g", "admin").await);
    let ceiling = [("BURNRATE_EGRESS_ALLOW", "127.0.0.0/8")];
    let cli = |args: &'static [&'static str]| {
        let app = &app;
        async move {
            let out = crate::burnrate(app, args, &ceiling, None).await;
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let refused_here =
        |text: &str| text.contains("is in a private network the operator has not granted to this organization");

    // Before any grant, neither organization reaches it.
    let r = a.api(Method::POST, "/api/v1/webhooks", &a_key, Some(serde_json::json!({ "url": url }))).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(refused_here(&r.text), "{}", r.text);

    // The operator grants Acme loopback; Acme's destination is saved and its test event arrives.
    let (code, out, err) = cli(&["egress", "grant", "--org", "Acme", "127.0.0.1"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("granted 127.0.0.1/32 to organization Acme"), "{out}");
    let r = a.api(Method::POST, "/api/v1/webhooks", &a_key, Some(serde_json::json!({ "url": url }))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let hook = r.json()["id"].as_str().unwrap().to_owned();
    let t = a.api(Method::POST, &format!("/api/v1/webhooks/{hook}/test"), &a_key, None).await.json();
    assert_eq!(t["delivered"], true, "{t}");
    assert!(received.recv().await.is_some());

    // Globex's destination and database source on the same network are refused, saying why.
    let r = g.api(Method::POST, "/api/v1/webhooks", &g_key, Some(serde_json::json!({ "url": url }))).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(refused_here(&r.text), "{}", r.text);
    let database = serde_json::json!({ "kind": "postgres", "name": "Shop", "host": "127.0.0.1", "port": 5432,
                                       "database": "shop", "user": "reader", "secret": "pw-of-the-reader" });
    let r = g.api(Method::POST, "/api/v1/sources", &g_key, Some(database.clone())).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(refused_here(&r.text), "{}", r.text);
    let r = a.api(Method::POST, "/api/v1/sources", &a_key, Some(database)).await;
    assert_eq!(r.status, 201, "Acme's own database on its granted network: {}", r.text);

    // The command refuses what the ceiling does not hold, and what is public.
    let (code, _, err) = cli(&["egress", "grant", "--org", "Globex", "10.0.0.0/8"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("10.0.0.0/8 is outside BURNRATE_EGRESS_ALLOW, the most any organization may reach: 127.0.0.0/8"),
        "{err}"
    );
    let (code, _, err) = cli(&["egress", "grant", "--org", "Globex", "8.8.8.8"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("holds public addresses"), "{err}");
    let (_, listed, _) = cli(&["egress", "list"]).await;
    assert!(listed.contains("Acme\t") && listed.contains("\t127.0.0.1/32") && !listed.contains("Globex"), "{listed}");

    // Revoked: Acme's next delivery is refused when dialled; both changes are in Acme's log.
    let (code, out, err) = cli(&["egress", "revoke", "--org", "Acme", "127.0.0.1/32"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("revoked 127.0.0.1/32 from organization Acme"), "{out}");
    let t = a.api(Method::POST, &format!("/api/v1/webhooks/{hook}/test"), &a_key, None).await.json();
    assert_eq!(t["delivered"], false, "{t}");
    assert!(refused_here(t["error"].as_str().unwrap_or_default()), "{t}");
    let audit = a.get("/audit").await.text;
    assert!(audit.contains("egress_granted") && audit.contains("egress_revoked"), "the grant's life is in Acme's log");
}

//! Webhook signatures, checked by an independent implementation: the Standard Webhooks
//! reference library from PyPI (scripts/test installs it and names its Python).

use burnrate_notify::WebhookSecret;

fn delivery(signed: &burnrate_notify::SignedWebhook, body: &str) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> =
        signed.headers().into_iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
    serde_json::json!({ "headers": headers, "body": body })
}

/// What the reference library says of each delivery, signed with `secret`.
async fn verify(secret: &WebhookSecret, deliveries: Vec<serde_json::Value>) -> Vec<String> {
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

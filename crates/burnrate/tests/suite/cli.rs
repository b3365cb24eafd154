use burnrate_testkit::{GOOD_PASSWORD, TestApp};

use crate::{burnrate, org_count};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_exits_2_and_names_the_setting() {
    let app = TestApp::spawn().await;
    let cases: [(&[(&str, &str)], &str); 14] = [
        (&[("BURNRATE_HTTP_ADDR", "not-an-address")], "BURNRATE_HTTP_ADDR"),
        (&[("BURNRATE_SIGNUP", "sometimes")], "BURNRATE_SIGNUP"),
        (&[("BURNRATE_QUERY_MEMORY_LIMIT", "12 parsecs")], "BURNRATE_QUERY_MEMORY_LIMIT"),
        (&[("BURNRATE_MASTER_KEYS", "k1:c2hvcnQ=")], "BURNRATE_MASTER_KEYS"),
        (&[("BURNRATE_HTTP_ADDR", "0.0.0.0:0")], "plain HTTP is served only on loopback"),
        (&[("BURNRATE_SYNC_LEASE", "0s")], "BURNRATE_SYNC_LEASE: must be greater than zero"),
        (&[("BURNRATE_API_RATE_PER_KEY", "lots")], "BURNRATE_API_RATE_PER_KEY: \"lots\" is not a positive number"),
        (
            &[("BURNRATE_QUERY_CONCURRENCY", "0")],
            "BURNRATE_QUERY_CONCURRENCY: \"0\" is not a number of queries at once",
        ),
        (
            &[("BURNRATE_QUERY_CONCURRENCY", "2"), ("BURNRATE_QUERY_CONCURRENCY_PER_ORG", "3")],
            "BURNRATE_QUERY_CONCURRENCY_PER_ORG: 3 is more than BURNRATE_QUERY_CONCURRENCY (2)",
        ),
        (
            &[("BURNRATE_WIRE_MAX_CONNECTIONS", "-1")],
            "BURNRATE_WIRE_MAX_CONNECTIONS: \"-1\" is not a number of connections from 1 to 100000",
        ),
        (
            &[("BURNRATE_WIRE_MAX_CONNECTIONS", "10"), ("BURNRATE_WIRE_MAX_CONNECTIONS_PER_ORG", "11")],
            "BURNRATE_WIRE_MAX_CONNECTIONS_PER_ORG: 11 is more than BURNRATE_WIRE_MAX_CONNECTIONS (10)",
        ),
        (&[("BURNRATE_QUERY_WAIT", "soon")], "BURNRATE_QUERY_WAIT: \"soon\" is not a duration such as 60s"),
        (&[("BURNRATE_METRICS_ADDR", "everywhere")], "BURNRATE_METRICS_ADDR: \"everywhere\" is not an address"),
        (&[("BURNRATE_LAKE_URL", "ftp://files.example/lake")], "BURNRATE_LAKE_URL: \"ftp://files.example/lake\""),
    ];
    for (env, expected) in cases {
        let out = burnrate(&app, &["serve"], env, None).await;
        assert_eq!(out.status.code(), Some(2), "{env:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{env:?}: {}", stderr(&out));
    }
    let out = burnrate(&app, &["serve"], &[("BURNRATE_MASTER_KEYS", "")], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("BURNRATE_MASTER_KEYS: not set"), "{}", stderr(&out));
    // A bucket the S3-compatible store (scripts/test's, named by AWS_*) does not have: refused at
    // start, not at the first sync.
    let aws: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).collect();
    assert!(
        aws.iter().any(|(k, _)| k == "AWS_ENDPOINT_URL"),
        "AWS_ENDPOINT_URL: an S3-compatible store (scripts/test)"
    );
    let mut env: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("BURNRATE_LAKE_URL", "s3://no-such-bucket/lake"));
    let out = burnrate(&app, &["serve"], &env, None).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("BURNRATE_LAKE_URL: s3://no-such-bucket/lake: "), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("burnrate.toml");
    std::fs::write(&config, "master_keys = \"k:AAAA\"\n").unwrap();
    let out = burnrate(&app, &["--config", config.to_str().unwrap(), "serve"], &[], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("secrets may only come from the environment"), "{}", stderr(&out));
    std::fs::write(&config, "http_adr = \"127.0.0.1:1\"\n").unwrap();
    let out = burnrate(&app, &["--config", config.to_str().unwrap(), "serve"], &[], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown setting `http_adr`"), "{}", stderr(&out));
    std::fs::write(&config, "http_addr = [broken\n").unwrap();
    let out = burnrate(&app, &["--config", config.to_str().unwrap(), "serve"], &[], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not valid TOML"), "{}", stderr(&out));
    let out = burnrate(&app, &["serve", "--no-such-flag"], &[], None).await;
    assert_eq!(out.status.code(), Some(2), "bad usage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_makes_a_verified_member_who_can_log_in() {
    let app = TestApp::spawn().await;
    let out = burnrate(
        &app,
        &["user", "create", "--org", "Cli Org", "--email", "cli@example.com", "--role", "owner", "--password-stdin"],
        &[],
        Some(&format!("{GOOD_PASSWORD}\n")),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(app.login("cli@example.com").await.get("/").await.text.contains("Cli Org"));

    // Joining the existing organization by name.
    let out = burnrate(
        &app,
        &[
            "user",
            "create",
            "--org",
            "Cli Org",
            "--email",
            "second@example.com",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        &[],
        Some(GOOD_PASSWORD),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(app.login("second@example.com").await.get("/").await.text.contains("viewer"));

    // A weak password, a malformed email or a missing master key change nothing.
    let before = org_count(&app).await;
    let out = burnrate(
        &app,
        &["user", "create", "--org", "New Org", "--email", "weak@example.com", "--password-stdin"],
        &[],
        Some("password1234\n"),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("too easy to guess"), "{}", stderr(&out));
    let out = burnrate(
        &app,
        &["user", "create", "--org", "New Org", "--email", "bad email", "--password-stdin"],
        &[],
        Some(GOOD_PASSWORD),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--email"), "{}", stderr(&out));
    let out = burnrate(
        &app,
        &["user", "create", "--org", "New Org", "--email", "nokey@example.com", "--password-stdin"],
        &[("BURNRATE_MASTER_KEYS", "")],
        Some(GOOD_PASSWORD),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(org_count(&app).await, before);
    // An existing account cannot be given a new password this way.
    let out = burnrate(
        &app,
        &["user", "create", "--org", "Cli Org", "--email", "cli@example.com", "--password-stdin"],
        &[],
        Some("another strong passphrase here"),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(app.login("cli@example.com").await.get("/").await.status, 200, "the old password still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_generate_prints_a_key_the_binary_then_seals_with() {
    let app = TestApp::spawn().await;
    let out = burnrate(&app, &["keys", "generate"], &[("BURNRATE_MASTER_KEYS", "")], None).await;
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let ring = burnrate_crypto::MasterKeyRing::parse(&key).expect("a kid:base64 key");
    assert!(key.starts_with(ring.active_kid()));
    // Used as BURNRATE_MASTER_KEYS on a fresh database, it seals a new account's email.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let env = [("BURNRATE_MASTER_KEYS", key.as_str()), ("BURNRATE_DATABASE_URL", db.as_str())];
    let args = ["user", "create", "--org", "Fresh", "--email", "fresh@example.com", "--password-stdin"];
    let out = burnrate(&app, &args, &env, Some(GOOD_PASSWORD)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let verify = burnrate(&app, &["audit", "verify"], &[("BURNRATE_DATABASE_URL", db.as_str())], None).await;
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("1 entries verified"),
        "the new organization's log was written"
    );
}

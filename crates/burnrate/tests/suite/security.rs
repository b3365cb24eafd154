use burnrate_core::Role;
use burnrate_testkit::{AppOptions, GOOD_PASSWORD, TestApp, TestClient};
use burnrate_web::Quota;

use crate::create_key;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_has_the_s9_flags_and_the_token_is_stored_only_hashed() {
    let app = TestApp::spawn().await;
    let (_, user) = app.create_org("Org", "c@example.com").await;
    let c = app.client();
    let r = c.post_form("/login", &[("email", "c@example.com"), ("password", GOOD_PASSWORD)]).await;
    let cookie =
        r.set_cookies().into_iter().find(|c| c.starts_with("__Host-burnrate_session=")).expect("a session cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    assert!(!cookie.contains("Domain="), "__Host- cookies have no Domain");
    let token = c.cookie("__Host-burnrate_session").unwrap();
    assert_eq!(token.len(), 43, "256-bit token");
    let mut tx = app.store.instance().await.unwrap();
    assert!(tx.session(token.as_bytes()).await.unwrap().is_none(), "not stored as is");
    assert!(tx.session(&burnrate_crypto::token_hash(&token)).await.unwrap().is_some(), "stored as its hash");
    assert_eq!(tx.user_sessions(user).await.unwrap().len(), 1);
    tx.commit().await.unwrap();

    // A new token on every login.
    let again = c.post_form("/login", &[("email", "c@example.com"), ("password", GOOD_PASSWORD)]).await;
    assert_eq!(again.status, 303);
    assert_ne!(c.cookie("__Host-burnrate_session").unwrap(), token);

    // The sessions page lists sessions and can end another one.
    let other = app.login("c@example.com").await;
    let page = c.get("/sessions").await;
    assert_eq!(page.text.matches("/end\"").count(), 1, "one other session can be ended");
    let r = c.post_form("/sessions/end-others", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(other.get("/").await.status, 303, "the other session ended");
    assert_eq!(c.get("/").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_csrf_token_or_from_another_origin_is_refused() {
    let app = TestApp::spawn().await;
    app.create_org("Org", "o@example.com").await;
    let c = app.login("o@example.com").await;
    let csrf = c.cookie("__Host-burnrate_csrf").unwrap();
    let r = c.post_form_raw("/members/invite", &[("email", "x@example.com"), ("role", "viewer")], Some(&app.url)).await;
    assert_eq!(r.status, 403, "no token");
    assert!(r.text.contains("did not come from this site"));
    let r = c
        .post_form_raw(
            "/members/invite",
            &[("email", "x@example.com"), ("role", "viewer"), ("csrf", "A".repeat(43).as_str())],
            Some(&app.url),
        )
        .await;
    assert_eq!(r.status, 403, "wrong token");
    let r = c
        .post_form_raw(
            "/members/invite",
            &[("email", "x@example.com"), ("role", "viewer"), ("csrf", &csrf)],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(r.status, 403, "foreign origin");
    let r = c.post_form_raw("/logout", &[("csrf", &csrf)], Some("https://evil.example")).await;
    assert_eq!(r.status, 403, "even logging out");
    // Login forms are protected too (login CSRF).
    let fresh = TestClient::new(&app.url);
    let r = fresh.post_form_raw("/login", &[("email", "o@example.com"), ("password", GOOD_PASSWORD)], None).await;
    assert_eq!(r.status, 403);
    // (On a Monday the owner's weekly digest may arrive meanwhile: only the invitation counts.)
    let invited = app.smtp.all().into_iter().filter(|m| m.to.iter().any(|t| t.contains("x@example.com"))).count();
    assert_eq!(invited, 0, "no invitation went out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_hsts_and_the_s7_headers_and_http_only_redirects() {
    let app = TestApp::spawn_with(AppOptions { https: true, ..Default::default() }).await;
    assert!(app.url.starts_with("https://"));
    let c = app.client();
    let r = c.get("/login").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("strict-transport-security").as_deref(), Some("max-age=31536000; includeSubDomains"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.header("x-content-type-options").as_deref(), Some("nosniff"));
    assert!(r.header("referrer-policy").is_some());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));

    let plain = TestClient::new(&app.http_url);
    let r = plain.get("/members?x=1").await;
    assert_eq!(r.status, 308);
    assert_eq!(r.location().unwrap(), format!("{}/members?x=1", app.url));
    let r = plain.get("/api/v1/org").await;
    assert_eq!(r.status, 403, "the API is not redirected over plain HTTP");
    assert_eq!(r.json()["error"]["code"], "https_required");
    assert!(r.header("strict-transport-security").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_the_instances_own_origin() {
    let app = TestApp::spawn().await;
    app.create_org("Org", "o@example.com").await;
    let owner = app.login("o@example.com").await;
    let key = create_key(&owner, "k", "read").await;
    let from = |origin: &str| owner.raw().get(owner.url("/api/v1/org")).bearer_auth(&key).header("origin", origin);
    let foreign = owner.send(from("https://evil.example")).await;
    assert_eq!(foreign.status, 200);
    assert!(foreign.header("access-control-allow-origin").is_none());
    let own = owner.send(from(&app.url)).await;
    assert_eq!(own.header("access-control-allow-origin").as_deref(), Some(app.url.as_str()));
    let preflight = owner
        .send(
            owner
                .raw()
                .request(reqwest::Method::OPTIONS, owner.url("/api/v1/org"))
                .header("origin", "https://evil.example")
                .header("access-control-request-method", "DELETE"),
        )
        .await;
    assert!(preflight.header("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_are_rate_limited() {
    let app =
        TestApp::spawn_with(AppOptions { login_per_account: Some(Quota::per_minute(5, 5)), ..Default::default() })
            .await;
    app.create_org("Org", "target@example.com").await;
    let c = app.client();
    for _ in 0..5 {
        let r =
            c.post_form("/login", &[("email", "target@example.com"), ("password", "not the password at all")]).await;
        assert_eq!(r.status, 401);
    }
    let r = c.post_form("/login", &[("email", "target@example.com"), ("password", GOOD_PASSWORD)]).await;
    assert_eq!(r.status, 429, "even the right password waits once the limit is hit");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(r.text.contains("Too many requests"));
    // Another account is not affected.
    let org = burnrate_store::OrgScope::trusted(first_org(&app).await);
    app.add_member(org, "other@example.com", Role::Viewer).await;
    assert_eq!(c.post_form("/login", &[("email", "other@example.com"), ("password", GOOD_PASSWORD)]).await.status, 303);
    let mut t = app.store.tenant(org).await.unwrap();
    let failures = t.audit_entries(50).await.unwrap().into_iter().filter(|e| e.action == "login_failed").count();
    t.commit().await.unwrap();
    assert_eq!(failures, 5, "each failed login is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_redis_let_exactly_the_limit_through() {
    let url = std::env::var("BURNRATE_TEST_REDIS_URL")
        .expect("BURNRATE_TEST_REDIS_URL: a Redis server for shared limits (scripts/test starts one)");
    // A fresh count: the limiter's keys from an earlier run are gone.
    let mut redis = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let stale: Vec<String> = redis::cmd("KEYS").arg("burnrate:rate:*").query_async(&mut redis).await.unwrap();
    if !stale.is_empty() {
        let _: () = redis::cmd("DEL").arg(&stale).query_async(&mut redis).await.unwrap();
    }
    // Ten sign-in attempts per address, refilled one a minute: nothing refills during the test.
    let options = || AppOptions {
        redis_url: Some(url.clone()),
        login_per_ip: Some(Quota::per_minute(1, 10)),
        ..Default::default()
    };
    let (a, b) = (TestApp::spawn_with(options()).await, TestApp::spawn_with(options()).await);
    let mut clients = Vec::new();
    for n in 0..100 {
        let c = if n % 2 == 0 { a.client() } else { b.client() };
        c.ensure_csrf().await;
        clients.push(c);
    }
    let attempts = clients.iter().enumerate().map(|(n, c)| async move {
        let email = format!("someone{n}@example.com");
        c.post_form("/login", &[("email", email.as_str()), ("password", "not the password at all")]).await.status
    });
    let statuses = futures::future::join_all(attempts).await;
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(100 - limited, 10, "exactly the limit got through, across both instances: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 429 || *s == 401), "{statuses:?}");
}

async fn first_org(app: &TestApp) -> burnrate_core::OrgId {
    let mut tx = app.store.instance().await.unwrap();
    let id = tx.list_org_ids().await.unwrap()[0];
    tx.commit().await.unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends() {
    let app = TestApp::spawn().await;
    app.create_org("Org", "idle@example.com").await;
    let c = app.login("idle@example.com").await;
    assert_eq!(c.get("/").await.status, 200);
    let hash = burnrate_crypto::token_hash(&c.cookie("__Host-burnrate_session").unwrap());
    let mut tx = app.store.instance().await.unwrap();
    tx.touch_session(&hash, chrono::Utc::now() - chrono::Duration::hours(3)).await.unwrap();
    tx.commit().await.unwrap();
    let r = c.get("/").await;
    assert_eq!(r.status, 303, "idle for longer than 2 hours");
    assert_eq!(r.location().as_deref(), Some("/login"));
    let mut tx = app.store.instance().await.unwrap();
    assert!(tx.session(&hash).await.unwrap().is_none(), "and it is deleted, not just refused");
    tx.commit().await.unwrap();
}

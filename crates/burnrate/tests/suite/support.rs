//! Support access (S18): an operator sees an organization only under a grant that the
//! organization consented to and a second operator approved; read-only, time-boxed, revocable,
//! and every request under it is in the organization's audit log.

use burnrate_testkit::{Authenticator, GOOD_PASSWORD, TestApp, TestClient, TestOperator};
use reqwest::Method;

use crate::{burnrate, execute_sql};

/// The status of every route an operator might open in `org`: each must be the same.
async fn org_routes(c: &TestClient, org: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    for path in [format!("/operator/orgs/{org}"), format!("/operator/orgs/{org}/audit")] {
        statuses.push(c.get(&path).await.status);
    }
    statuses
}

/// The id of the newest grant, as the operators' page lists it.
fn newest_grant(page: &str) -> String {
    let at = page.find("/operator/grants/").expect("a grant with an action");
    page[at + "/operator/grants/".len()..].split('/').next().unwrap().to_owned()
}

async fn request(c: &TestClient, org: &str, issue: &str) -> String {
    let r = c.post_form("/operator/grants", &[("org", org), ("issue", issue), ("hours", "4")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("Asked for 4 hours of access"), "{}", r.text);
    newest_grant(&r.text)
}

fn actions(entries: &[burnrate_store::AuditRecord], action: &str) -> Vec<burnrate_store::AuditRecord> {
    entries.iter().filter(|e| e.action == action).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_an_organization_only_with_consent_and_a_second_operators_approval_until_it_ends() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "owner@acme.test").await;
    let (other, _) = app.create_org("Globex", "owner@globex.test").await;
    let (org, other_org) = (scope.org_id().to_string(), other.org_id().to_string());
    let alice = app.add_operator("alice@ops.test", "Alice").await;
    let bob = app.add_operator("bob@ops.test", "Bob").await;

    // The operator login needs the password and a fresh authenticator code.
    let stranger = app.client();
    let wrong = stranger
        .post_form("/operator/login", &[("email", "alice@ops.test"), ("password", GOOD_PASSWORD), ("code", "000000")])
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("Wrong email, password or authenticator code."), "{}", wrong.text);
    assert_eq!(stranger.get("/operator").await.status, 303, "no session: back to the login");
    let ops_a = app.client();
    let used = alice.code().await;
    let login = [("email", "alice@ops.test"), ("password", GOOD_PASSWORD), ("code", used.as_str())];
    assert_eq!(ops_a.post_form("/operator/login", &login).await.status, 303);
    let replay = app
        .client()
        .post_form("/operator/login", &[("email", "alice@ops.test"), ("password", GOOD_PASSWORD), ("code", &used)])
        .await;
    assert_eq!(replay.status, 401, "a code works once");
    // An operator session is not a member's session.
    assert_eq!(ops_a.get("/sources").await.status, 303);

    let grant = request(&ops_a, "Acme", "Ticket 4711: the OpenAI source fails since Monday").await;
    let mail = app.smtp.wait_for("owner@acme.test", "[burnrate] Support asks for access to your organization").await;
    assert!(mail.body().contains("Ticket 4711") && mail.body().contains("/support"), "{}", mail.body());
    assert_eq!(org_routes(&ops_a, &org).await, [404, 404], "asked only");

    // The requester cannot approve their own request.
    let own = ops_a.post_form(&format!("/operator/grants/{grant}/approve"), &[]).await;
    assert_eq!(own.status, 403);
    assert!(own.text.contains("a different operator must approve"), "{}", own.text);

    // The organization consents: still nothing without the second operator.
    let owner = app.login("owner@acme.test").await;
    let page = owner.get("/support").await;
    assert!(page.text.contains("Ticket 4711") && page.text.contains("operator Alice"), "{}", page.text);
    let r = owner.post_form(&format!("/support/{grant}/consent"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("Access opens once a second operator approves"), "{}", r.text);
    assert_eq!(org_routes(&ops_a, &org).await, [404, 404], "consent without approval");

    // A second operator approves: now (and only now, only for Alice, only for Acme) it opens.
    let ops_b = app.operator_login(&bob).await;
    let r = ops_b.post_form(&format!("/operator/grants/{grant}/approve"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("Approved: access is open until"), "{}", r.text);
    assert_eq!(org_routes(&ops_a, &org).await, [200, 200]);
    assert_eq!(org_routes(&ops_b, &org).await, [404, 404], "the approver sees nothing");
    assert_eq!(org_routes(&ops_a, &other_org).await, [404, 404], "another organization");
    let view = ops_a.get(&format!("/operator/orgs/{org}")).await;
    assert!(view.text.contains("Read-only support access to <strong>Acme</strong>"), "{}", view.text);
    assert!(!view.text.contains("owner@acme.test"), "no member emails in the support view");
    // Read-only: nothing under the grant accepts a write.
    assert_eq!(ops_a.post_form(&format!("/operator/orgs/{org}"), &[]).await.status, 405);

    // The organization ends it: nothing again.
    let r = owner.post_form(&format!("/support/{grant}/revoke"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(org_routes(&ops_a, &org).await, [404, 404], "after revocation");
    let again = owner.post_form(&format!("/support/{grant}/consent"), &[]).await;
    assert_eq!(again.status, 409, "a revoked grant cannot be consented to again");

    // A second grant runs out: nothing again, without anyone acting.
    let second = request(&ops_a, &org, "Ticket 4712: budget alert did not fire").await;
    assert_eq!(owner.post_form(&format!("/support/{second}/consent"), &[]).await.status, 200);
    assert_eq!(ops_b.post_form(&format!("/operator/grants/{second}/approve"), &[]).await.status, 200);
    assert_eq!(org_routes(&ops_a, &org).await, [200, 200]);
    execute_sql(&app, "UPDATE support_grants SET expires_at = starts_at").await;
    assert_eq!(org_routes(&ops_a, &org).await, [404, 404], "after expiry");
    let page = owner.get("/support").await;
    assert!(page.text.contains("expired") && page.text.contains("revoked"), "past grants are listed: {}", page.text);

    // Everything is in Acme's log, by the operator's name; each page opened under a grant once.
    let mut tx = app.store.tenant(scope).await.unwrap();
    let entries = tx.audit_entries(1000).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(actions(&entries, "support_requested").len(), 2);
    assert_eq!(actions(&entries, "support_consented").len(), 2);
    assert_eq!(actions(&entries, "support_approved").len(), 2);
    assert_eq!(actions(&entries, "support_revoked").len(), 1);
    let access = actions(&entries, "support_access");
    assert_eq!(access.len(), 6, "two pages, the view, the refused write, two pages again");
    assert_eq!(access.iter().filter(|e| e.details.contains(r#""method":"POST""#)).count(), 1, "{access:?}");
    assert!(access.iter().all(|e| e.actor_type == "operator" && e.actor_label == "operator Alice"), "{access:?}");
    assert!(access.iter().any(|e| e.details.contains(&format!("/operator/orgs/{org}/audit"))), "{access:?}");
    assert!(entries.iter().all(|e| !e.details.contains("ops.test")), "no operator email in the log");
    let filtered = owner.get("/audit?actor=operator").await;
    let by_operators = entries.iter().filter(|e| e.actor_type == "operator").count();
    assert_eq!(by_operators, 10);
    assert_eq!(filtered.text.matches("<td>operator ").count(), by_operators, "{}", filtered.text);
    let mut tx = app.store.tenant(other).await.unwrap();
    assert!(tx.audit_entries(100).await.unwrap().iter().all(|e| !e.action.starts_with("support")));
    tx.commit().await.unwrap();
    assert!(burnrate(&app, &["audit", "verify"], &[], None).await.status.success());
}

/// The authenticator for the base32 secret `operator add` printed.
fn printed_secret(stdout: &str) -> Authenticator {
    let b32 = stdout.lines().find_map(|l| l.trim().strip_prefix("secret: ")).expect("the secret is printed");
    Authenticator::from_base32(b32)
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_work_grants_from_the_command_line_and_organizations_through_the_api() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    let admin_key = crate::create_key(&owner, "automation", "admin").await;
    let read_key = crate::create_key(&owner, "reader", "read").await;
    let password = format!("{GOOD_PASSWORD}\n");

    let out = burnrate(
        &app,
        &["operator", "add", "--email", "carol@ops.test", "--name", "Carol", "--password-stdin"],
        &[],
        Some(&password),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let carol_totp = printed_secret(&String::from_utf8_lossy(&out.stdout));
    assert!(text(&out).contains("otpauth://totp/burnrate:carol@ops.test?secret="), "{}", text(&out));
    let again =
        burnrate(&app, &["operator", "add", "--email", "carol@ops.test", "--password-stdin"], &[], Some(&password))
            .await;
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    // Each operator runs two commands at most, so no test waits for a fresh authenticator code.
    let dave = app.add_operator("dave@ops.test", "Dave").await;
    let erin = app.add_operator("erin@ops.test", "Erin").await;
    let carol = TestOperator::new("carol@ops.test", carol_totp);

    let support = |op: &'static str, code: String, args: Vec<String>| {
        let app = &app;
        let password = password.clone();
        async move {
            let mut all = vec!["support".to_owned()];
            all.extend(args);
            all.extend([
                "--operator".to_owned(),
                op.to_owned(),
                "--code".to_owned(),
                code,
                "--password-stdin".to_owned(),
            ]);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            burnrate(app, &refs, &[], Some(&password)).await
        }
    };
    let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let wrong = support("carol@ops.test", "123456".into(), args(&["list"])).await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(text(&wrong).contains("Wrong email, password or authenticator code."), "{}", text(&wrong));
    let too_long = support(
        "dave@ops.test",
        dave.code().await,
        args(&["request", "--org", "Acme", "--issue", "x", "--hours", "30"]),
    )
    .await;
    assert_eq!(too_long.status.code(), Some(2), "{}", text(&too_long));
    assert!(text(&too_long).contains("--hours"), "{}", text(&too_long));

    let out = support(
        "carol@ops.test",
        carol.code().await,
        args(&["request", "--org", "Acme", "--issue", "Ticket 99: missing costs"]),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let grant = text(&out).split_whitespace().nth(2).unwrap().to_owned();
    let own = support("carol@ops.test", carol.code().await, args(&["approve", &grant])).await;
    assert_eq!(own.status.code(), Some(1));
    assert!(text(&own).contains("a different operator must approve"), "{}", text(&own));
    let out = support("dave@ops.test", dave.code().await, args(&["approve", &grant])).await;
    assert!(text(&out).contains("waiting for the organization's consent"), "{}", text(&out));

    // The organization, by API: a read key lists, only an admin key consents.
    let listed = owner.api(Method::GET, "/api/v1/support-grants", &read_key, None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["support_grants"][0]["status"], "awaiting_consent");
    assert_eq!(listed.json()["support_grants"][0]["issue"], "Ticket 99: missing costs");
    let path = format!("/api/v1/support-grants/{grant}/consent");
    assert_eq!(owner.api(Method::POST, &path, &read_key, None).await.status, 403);
    let consented = owner.api(Method::POST, &path, &admin_key, None).await;
    assert_eq!(consented.status, 200, "{}", consented.text);
    assert_eq!(consented.json()["status"], "active");
    assert_eq!(owner.api(Method::POST, &path, &admin_key, None).await.status, 409);

    let listing = support("erin@ops.test", erin.code().await, args(&["list"])).await;
    assert!(listing.status.success(), "{}", text(&listing));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&listing.stdout).lines().next().unwrap()).unwrap();
    assert_eq!((line["id"].as_str(), line["status"].as_str()), (Some(grant.as_str()), Some("active")));
    let out = support("erin@ops.test", erin.code().await, args(&["revoke", &grant])).await;
    assert!(out.status.success(), "{}", text(&out));
    // An operator who leaves is disabled: their session ends and they cannot log in again.
    let frank = app.add_operator("frank@ops.test", "Frank").await;
    let web = app.operator_login(&frank).await;
    let asked = web.post_form("/operator/grants", &[("org", "Acme"), ("issue", "Ticket 100: slow page")]).await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    let out = burnrate(&app, &["operator", "remove", "--email", "frank@ops.test"], &[], None).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 open grant(s) revoked"), "{}", text(&out));
    let grants = owner.api(Method::GET, "/api/v1/support-grants", &admin_key, None).await.json();
    let franks = &grants["support_grants"][0];
    assert_eq!((franks["issue"].as_str(), franks["status"].as_str()), (Some("Ticket 100: slow page"), Some("revoked")));
    assert_eq!(franks["revoked_by"], "burnrate operator remove");
    assert_eq!(web.get("/operator").await.status, 303, "the session ended");
    let code = frank.code().await;
    let login = [("email", "frank@ops.test"), ("password", GOOD_PASSWORD), ("code", code.as_str())];
    assert_eq!(app.client().post_form("/operator/login", &login).await.status, 401, "a fresh code is refused");
    let again = burnrate(&app, &["operator", "remove", "--email", "frank@ops.test"], &[], None).await;
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    // A lost phone: a new key; the old key's codes stop working.
    let grace = app.add_operator("grace@ops.test", "Grace").await;
    let out = burnrate(&app, &["operator", "reset-totp", "--email", "grace@ops.test"], &[], None).await;
    assert!(out.status.success(), "{}", text(&out));
    let new_phone = printed_secret(&String::from_utf8_lossy(&out.stdout));
    let old = support("grace@ops.test", grace.code().await, args(&["list"])).await;
    assert_eq!(old.status.code(), Some(1), "the old key's code is refused: {}", text(&old));
    let new = support("grace@ops.test", new_phone.code().await, args(&["list"])).await;
    assert!(new.status.success(), "{}", text(&new));

    let revoked = owner.api(Method::GET, "/api/v1/support-grants", &admin_key, None).await.json();
    let carols = revoked["support_grants"].as_array().unwrap().iter().find(|g| g["id"] == grant.as_str()).unwrap();
    assert_eq!(carols["status"], "revoked");
    assert_eq!(carols["revoked_by"], "operator Erin");
    let missing = owner
        .api(Method::POST, &format!("/api/v1/support-grants/{}/revoke", uuid::Uuid::now_v7()), &admin_key, None)
        .await;
    assert_eq!(missing.status, 404);
    let mut tx = app.store.tenant(scope).await.unwrap();
    let entries = tx.audit_entries(100).await.unwrap();
    tx.commit().await.unwrap();
    let support_actions: Vec<_> =
        entries.iter().rev().filter(|e| e.action.starts_with("support")).map(|e| e.action.as_str()).collect();
    assert_eq!(
        support_actions,
        [
            "support_requested",
            "support_approved",
            "support_consented",
            "support_revoked",
            "support_requested",
            "support_revoked"
        ]
    );
}

/// S20: an operator's notice reaches every organization's admins by email, with its effective
/// date, and every member on the overview and through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_notice_reaches_every_organizations_admins_and_overview() {
    let app = TestApp::spawn().await;
    let (acme, _) = app.create_org("Acme", "owner@acme.test").await;
    app.add_member(acme, "member@acme.test", burnrate_core::Role::Member).await;
    let (globex, _) = app.create_org("Globex", "owner@globex.test").await;
    app.add_member(globex, "admin@globex.test", burnrate_core::Role::Admin).await;
    let alice = app.add_operator("alice@ops.test", "Alice").await;
    let ops = app.operator_login(&alice).await;

    let past = [("title", "Old"), ("body", "Too late."), ("effective", "2020-01-01")];
    let refused = ops.post_form("/operator/notices", &past).await;
    assert_eq!(refused.status, 422);
    assert!(refused.text.contains("2020-01-01 is in the past"), "{}", refused.text);

    let title = "New sub-processor: Example Mail Ltd";
    let body = "From next month we send email through Example Mail Ltd (EU).";
    let r = ops.post_form("/operator/notices", &[("title", title), ("body", body), ("effective", "")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let effective = (chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string();
    assert!(
        r.text.contains(&format!("Published: effective {effective}, emailed to 3 admins of 2 organizations.")),
        "{}",
        r.text
    );
    let subject = format!("[burnrate] Notice: {title} (effective {effective})");
    for admin in ["owner@acme.test", "owner@globex.test", "admin@globex.test"] {
        let mail = app.smtp.wait_for(admin, &subject).await;
        assert!(mail.body().contains(body) && mail.body().contains(&format!("takes effect on {effective}")));
    }
    assert!(
        app.smtp.all().iter().all(|m| !m.header("To").unwrap_or_default().contains("member@acme.test")),
        "members are not emailed"
    );

    let member = app.login("member@acme.test").await;
    let home = member.get("/").await;
    assert!(home.text.contains(&format!("Notice: {title}")) && home.text.contains(&effective), "{}", home.text);
    let owner = app.login("owner@acme.test").await;
    let key = crate::create_key(&owner, "reader", "read").await;
    let listed = owner.api(reqwest::Method::GET, "/api/v1/notices", &key, None).await.json();
    assert_eq!(listed["notices"][0]["title"], title);
    assert_eq!(listed["notices"][0]["effective_on"], effective.as_str());
    for scope in [acme, globex] {
        let mut tx = app.store.tenant(scope).await.unwrap();
        let entries = tx.audit_entries(100).await.unwrap();
        tx.commit().await.unwrap();
        let published: Vec<_> = entries.iter().filter(|e| e.action == "notice_published").collect();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].actor_label, "operator Alice");
    }
}

//! The route × role × organization table (S10, S12, S13): every route of the router and every
//! operation of the OpenAPI document has a row saying who may use it. Each role below a row's
//! level is refused (403), each at or above it may read, and another organization's admin gets
//! 404 for every id of this one. A route or an operation added without its row fails here.

use std::collections::BTreeSet;

use burnrate_core::Role;
use burnrate_testkit::{TestApp, TestClient};
use reqwest::Method;
use serde_json::json;

/// Who may use a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    /// Anybody, logged in or not (sign-in, sign-up, links from mail, health, the stylesheet).
    Anyone,
    /// An instance operator (`/operator`), never a member.
    Operator,
    /// Any member of the organization, viewers included.
    Viewer,
    /// Owners and admins.
    Admin,
}

/// The fields a form sends.
type Fields = &'static [(&'static str, &'static str)];

/// The UI's routes: method, path as the router names it, who, and the fields a form sends.
const UI: &[(&str, &str, Who, Fields)] = &[
    ("GET", "/login", Who::Anyone, &[]),
    ("POST", "/login", Who::Anyone, &[]),
    ("POST", "/login/code", Who::Anyone, &[]),
    ("GET", "/signup", Who::Anyone, &[]),
    ("POST", "/signup", Who::Anyone, &[]),
    ("GET", "/verify-email/{token}", Who::Anyone, &[]),
    ("POST", "/verify-email/{token}", Who::Anyone, &[]),
    ("GET", "/password-reset", Who::Anyone, &[]),
    ("POST", "/password-reset", Who::Anyone, &[]),
    ("GET", "/password-reset/{token}", Who::Anyone, &[]),
    ("POST", "/password-reset/{token}", Who::Anyone, &[]),
    ("GET", "/invitations/{token}", Who::Anyone, &[]),
    ("POST", "/invitations/{token}", Who::Anyone, &[]),
    ("GET", "/healthz", Who::Anyone, &[]),
    ("GET", "/readyz", Who::Anyone, &[]),
    ("GET", "/static/app.css", Who::Anyone, &[]),
    ("GET", "/openapi.json", Who::Anyone, &[]),
    ("GET", "/operator", Who::Operator, &[]),
    ("GET", "/operator/login", Who::Operator, &[]),
    ("POST", "/operator/login", Who::Operator, &[]),
    ("POST", "/operator/logout", Who::Operator, &[]),
    ("POST", "/operator/grants", Who::Operator, &[]),
    ("POST", "/operator/grants/{id}/approve", Who::Operator, &[]),
    ("POST", "/operator/grants/{id}/revoke", Who::Operator, &[]),
    ("POST", "/operator/notices", Who::Operator, &[]),
    ("GET", "/operator/orgs/{org}", Who::Operator, &[]),
    ("GET", "/operator/orgs/{org}/audit", Who::Operator, &[]),
    // One's own account and sessions.
    ("POST", "/logout", Who::Viewer, &[]),
    ("POST", "/account/second-factor/setup", Who::Viewer, &[]),
    ("POST", "/account/second-factor/confirm", Who::Viewer, &[("code", "000000")]),
    ("POST", "/account/second-factor/disable", Who::Viewer, &[("code", "000000")]),
    ("GET", "/sessions", Who::Viewer, &[]),
    ("POST", "/sessions/end-others", Who::Viewer, &[]),
    ("POST", "/sessions/{handle}/end", Who::Viewer, &[]),
    // Reading the organization.
    ("GET", "/", Who::Viewer, &[]),
    ("GET", "/sources", Who::Viewer, &[]),
    ("GET", "/budgets", Who::Viewer, &[]),
    ("GET", "/sql", Who::Viewer, &[]),
    ("GET", "/sql/console", Who::Viewer, &[]),
    ("POST", "/sql/console", Who::Viewer, &[("sql", "SELECT 1")]),
    ("POST", "/sql/console.csv", Who::Viewer, &[("sql", "SELECT 1")]),
    ("GET", "/webhooks", Who::Viewer, &[]),
    ("GET", "/members", Who::Viewer, &[]),
    ("GET", "/explore", Who::Viewer, &[]),
    ("GET", "/exports/focus?dataset=focus&format=csv", Who::Viewer, &[]),
    // Managing it.
    ("POST", "/sources", Who::Admin, &[("kind", "openai"), ("name", "x"), ("secret", "sk-admin-x")]),
    (
        "POST",
        "/sources/databases",
        Who::Admin,
        &[
            ("kind", "postgres"),
            ("name", "x"),
            ("host", "db.example.com"),
            ("port", "5432"),
            ("database", "d"),
            ("user", "u"),
            ("secret", "p"),
        ],
    ),
    ("POST", "/sources/{id}/sync", Who::Admin, &[]),
    ("POST", "/sources/{id}/test", Who::Admin, &[]),
    ("POST", "/sources/{id}/pause", Who::Admin, &[]),
    ("POST", "/sources/{id}/resume", Who::Admin, &[]),
    ("POST", "/sources/{id}/rotate", Who::Admin, &[("secret", "sk-admin-ROTATE0000000000000000")]),
    (
        "POST",
        "/sources/{id}/settings",
        Who::Admin,
        &[("base_url", ""), ("backfill_days", "30"), ("interval_minutes", "60")],
    ),
    ("POST", "/sources/{id}/delete", Who::Admin, &[("keep_data", "yes")]),
    ("POST", "/budgets", Who::Admin, &[("name", "B"), ("amount", "1"), ("currency", "USD"), ("period", "month")]),
    ("POST", "/budgets/{id}/delete", Who::Admin, &[]),
    ("POST", "/budgets/time-zone", Who::Admin, &[("time_zone", "Asia/Tokyo")]),
    ("GET", "/prices", Who::Viewer, &[]),
    ("GET", "/reconciliation", Who::Viewer, &[]),
    (
        "POST",
        "/prices/overrides",
        Who::Admin,
        &[("provider", "openai"), ("model", "gpt-4o"), ("effective_from", "2026-01-01"), ("discount_percent", "5")],
    ),
    ("POST", "/prices/overrides/{id}/delete", Who::Admin, &[]),
    ("POST", "/webhooks", Who::Admin, &[("url", "https://hooks.example.com/x")]),
    ("POST", "/webhooks/{id}/test", Who::Admin, &[]),
    ("POST", "/webhooks/{id}/delete", Who::Admin, &[]),
    ("POST", "/webhooks/{id}/deliveries/{delivery}/redeliver", Who::Admin, &[]),
    ("POST", "/webhooks/{id}/resume", Who::Admin, &[]),
    ("POST", "/sql/credentials", Who::Admin, &[("name", "bi")]),
    ("POST", "/sql/credentials/{id}/revoke", Who::Admin, &[]),
    ("POST", "/members/invite", Who::Admin, &[("email", "x@example.com"), ("role", "viewer")]),
    ("POST", "/members/{user_id}/role", Who::Admin, &[("role", "viewer")]),
    ("POST", "/members/{user_id}/remove", Who::Admin, &[]),
    ("POST", "/members/invitations/{id}/revoke", Who::Admin, &[]),
    ("GET", "/api-keys", Who::Admin, &[]),
    ("POST", "/api-keys", Who::Admin, &[("name", "k"), ("scope", "read")]),
    ("POST", "/api-keys/{id}/revoke", Who::Admin, &[]),
    ("GET", "/ingest-keys", Who::Admin, &[]),
    ("POST", "/ingest-keys", Who::Admin, &[("name", "k")]),
    ("POST", "/ingest-keys/{id}/revoke", Who::Admin, &[]),
    ("GET", "/approvals", Who::Admin, &[]),
    ("POST", "/approvals/{id}/approve", Who::Admin, &[]),
    ("POST", "/approvals/{id}/reject", Who::Admin, &[]),
    ("GET", "/audit", Who::Admin, &[]),
    ("GET", "/audit.csv", Who::Admin, &[]),
    ("GET", "/support", Who::Viewer, &[]),
    ("POST", "/support/{id}/consent", Who::Admin, &[]),
    ("POST", "/support/{id}/decline", Who::Admin, &[]),
    ("POST", "/support/{id}/revoke", Who::Admin, &[]),
];

/// The API's operations as the OpenAPI document names them, with the key scope each needs.
const API: &[(&str, &str, Role)] = &[
    ("get", "/org", Role::Viewer),
    ("patch", "/org", Role::Admin),
    ("get", "/spend", Role::Viewer),
    ("get", "/spend/attributed", Role::Viewer),
    ("get", "/notices", Role::Viewer),
    ("post", "/sql", Role::Viewer),
    ("get", "/exports", Role::Viewer),
    ("get", "/members", Role::Viewer),
    ("post", "/members", Role::Admin),
    ("patch", "/members/{user_id}", Role::Admin),
    ("delete", "/members/{user_id}", Role::Admin),
    ("get", "/invitations", Role::Admin),
    ("delete", "/invitations/{id}", Role::Admin),
    ("get", "/api-keys", Role::Admin),
    ("post", "/api-keys", Role::Admin),
    ("delete", "/api-keys/{id}", Role::Admin),
    ("get", "/ingest-keys", Role::Admin),
    ("post", "/ingest-keys", Role::Admin),
    ("delete", "/ingest-keys/{id}", Role::Admin),
    ("get", "/approvals", Role::Admin),
    ("get", "/approvals/{id}", Role::Admin),
    ("post", "/approvals/{id}/approve", Role::Admin),
    ("post", "/approvals/{id}/reject", Role::Admin),
    ("get", "/audit", Role::Admin),
    ("get", "/budgets", Role::Viewer),
    ("post", "/budgets", Role::Admin),
    ("patch", "/budgets/{id}", Role::Admin),
    ("delete", "/budgets/{id}", Role::Admin),
    ("get", "/prices/overrides", Role::Viewer),
    ("post", "/prices/overrides", Role::Admin),
    ("delete", "/prices/overrides/{id}", Role::Admin),
    ("post", "/prices/reprice", Role::Admin),
    ("get", "/reconciliation", Role::Viewer),
    ("get", "/sources", Role::Viewer),
    ("post", "/sources", Role::Admin),
    ("patch", "/sources/{id}", Role::Admin),
    ("delete", "/sources/{id}", Role::Admin),
    ("post", "/sources/{id}/pause", Role::Admin),
    ("post", "/sources/{id}/resume", Role::Admin),
    ("post", "/sources/{id}/rotate", Role::Admin),
    ("post", "/sources/{id}/sync", Role::Admin),
    ("post", "/sources/{id}/test", Role::Admin),
    ("get", "/sql-credentials", Role::Admin),
    ("post", "/sql-credentials", Role::Admin),
    ("delete", "/sql-credentials/{id}", Role::Admin),
    ("get", "/support-grants", Role::Viewer),
    ("post", "/support-grants/{id}/consent", Role::Admin),
    ("post", "/support-grants/{id}/decline", Role::Admin),
    ("post", "/support-grants/{id}/revoke", Role::Admin),
    ("get", "/webhooks", Role::Admin),
    ("post", "/webhooks", Role::Admin),
    ("delete", "/webhooks/{id}", Role::Admin),
    ("post", "/webhooks/{id}/test", Role::Admin),
    ("get", "/webhooks/{id}/deliveries", Role::Admin),
    ("post", "/webhooks/{id}/deliveries/{delivery}/redeliver", Role::Admin),
    ("post", "/webhooks/{id}/resume", Role::Admin),
];

/// The routes the router declares, read from its source — the table in `routes/mod.rs` and every
/// resource's fragment (`routes/<resource>/mod.rs`): `(METHOD, path)`. A resource added later is
/// read without a change here.
fn declared_routes() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src/routes");
    let mut source = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let fragment = entry.unwrap().path().join("mod.rs");
        if fragment.exists() {
            source += &std::fs::read_to_string(&fragment).unwrap();
        }
    }
    let mut routes = BTreeSet::new();
    // Each `.route("path", handlers)`, its arguments up to the parenthesis that closes it.
    for call in source.split(".route(").skip(1) {
        let mut depth = 1;
        let end = call
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(call.len(), |(i, _)| i);
        let arguments = &call[..end];
        let Some(path) = arguments.trim_start().strip_prefix('"').and_then(|a| a.split('"').next()) else { continue };
        for (handler, method) in [("get(", "GET"), ("post(", "POST"), ("patch(", "PATCH"), ("delete(", "DELETE")] {
            if arguments.contains(&format!(" {handler}")) || arguments.contains(&format!(".{handler}")) {
                routes.insert((method.to_owned(), path.to_owned()));
            }
        }
    }
    routes
}

/// Organization A with a thing of each kind, its owner, an admin, a member and a viewer logged in.
struct OrgA {
    ids: std::collections::HashMap<&'static str, String>,
    clients: Vec<(Role, TestClient)>,
    keys: Vec<(Role, String)>,
}

async fn org_a(app: &TestApp) -> OrgA {
    let (scope, owner) = app.create_org("Org A", "owner@a.test").await;
    let mut tx = app.store.tenant(scope).await.unwrap();
    tx.set_approval_actions(&[]).await.unwrap();
    tx.commit().await.unwrap();
    let owner_c = app.login("owner@a.test").await;
    let admin_key = crate::create_key(&owner_c, "admin", "admin").await;
    let (url, _received) = crate::notify::receiver().await;
    let call = |method: Method, path: &'static str, body: serde_json::Value| {
        let (c, key) = (&owner_c, &admin_key);
        async move {
            let r = c.api(method, &format!("/api/v1{path}"), key, Some(body)).await;
            assert!(r.status < 300, "{path}: {}", r.text);
            r.json()
        }
    };
    let budget =
        call(Method::POST, "/budgets", json!({ "name": "R", "amount": "10", "currency": "USD", "period": "month" }))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let webhook = call(Method::POST, "/webhooks", json!({ "url": url })).await["id"].as_str().unwrap().to_owned();
    let sql = call(Method::POST, "/sql-credentials", json!({ "name": "bi" })).await["id"].as_str().unwrap().to_owned();
    let invitation =
        call(Method::POST, "/members", json!({ "email": "invitee@a.test", "role": "viewer" })).await["invitation_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let mut tx = app.store.tenant(scope).await.unwrap();
    let config =
        serde_json::to_string(&burnrate_sync::SourceConfig::plain(burnrate_sync::SourceKind::OpenAi).unwrap()).unwrap();
    let new = burnrate_store::NewSource {
        kind: "openai",
        name: "prod",
        config: &config,
        secret: "sk-admin-ROUTES000000000000",
    };
    let source = tx.create_source(&app.vault, &new).await.unwrap().to_string();
    let key_id = tx.api_keys().await.unwrap()[0].id.to_string();
    let ingest_key = tx.create_ingest_key("routes", "bri_routes", b"routes-hash", owner).await.unwrap().to_string();
    let session = tx.user_sessions(owner).await.unwrap()[0].handle.to_string();
    tx.set_approval_actions(&["budget_raise".to_owned()]).await.unwrap();
    tx.commit().await.unwrap();
    let admin = app.add_member(scope, "admin@a.test", Role::Admin).await;
    let member = app.add_member(scope, "member@a.test", Role::Member).await;
    let viewer = app.add_member(scope, "viewer@a.test", Role::Viewer).await;
    let _ = (admin, viewer);
    let raised = owner_c
        .api(Method::PATCH, &format!("/api/v1/budgets/{budget}"), &admin_key, Some(json!({ "amount": "99" })))
        .await;
    assert_eq!(raised.status, 202, "{}", raised.text);
    let approval = raised.json()["approval_id"].as_str().unwrap().to_owned();
    let ids = [
        ("budgets", budget),
        ("webhooks", webhook.clone()),
        ("sql", sql.clone()),
        ("sql-credentials", sql),
        ("invitations", invitation),
        ("sources", source),
        ("api-keys", key_id),
        ("ingest-keys", ingest_key),
        ("approvals", approval),
        ("sessions", session),
        ("user", member.to_string()),
        ("delivery", webhook),
    ]
    .into_iter()
    .collect();
    let mut clients = vec![(Role::Owner, owner_c)];
    let mut keys = vec![(Role::Admin, admin_key)];
    for (role, email) in
        [(Role::Admin, "admin@a.test"), (Role::Member, "member@a.test"), (Role::Viewer, "viewer@a.test")]
    {
        clients.push((role, app.login(email).await));
    }
    let owner_c = &clients[0].1;
    keys.push((Role::Member, crate::create_key(owner_c, "write", "write").await));
    keys.push((Role::Viewer, crate::create_key(owner_c, "read", "read").await));
    OrgA { ids, clients, keys }
}

impl OrgA {
    /// `template` with the path parameters naming A's things (a fresh id where A has none).
    fn path(&self, template: &str) -> String {
        let resource = template.trim_start_matches("/api/v1").split('/').nth(1).unwrap_or_default();
        let resource = match resource {
            "sql" => "sql",
            "members" if template.contains("/invitations/") => "invitations",
            r => r,
        };
        let id = self
            .ids
            .get(resource)
            .filter(|id| !id.is_empty())
            .cloned()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        template
            .replace("{user_id}", &self.ids["user"])
            .replace("{handle}", &self.ids["sessions"])
            .replace("{delivery}", &self.ids["delivery"])
            .replace("{id}", &id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ui_route_has_a_row_and_each_role_and_organization_gets_exactly_its_refusals() {
    let declared = declared_routes();
    let listed: BTreeSet<(String, String)> =
        UI.iter().map(|(m, p, _, _)| ((*m).to_owned(), p.split('?').next().unwrap().to_owned())).collect();
    assert_eq!(
        declared.difference(&listed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes without a row in UI"
    );
    assert_eq!(listed.difference(&declared).collect::<Vec<_>>(), Vec::<&(String, String)>::new(), "rows of no route");

    let app = TestApp::spawn().await;
    let a = org_a(&app).await;
    app.create_org("Org B", "owner@b.test").await;
    let b = app.login("owner@b.test").await;
    let mut failures = Vec::new();
    for (method, template, who, fields) in UI {
        if matches!(who, Who::Anyone | Who::Operator) {
            continue;
        }
        let path = a.path(template);
        for (role, client) in &a.clients {
            let allowed = *who == Who::Viewer || role.is_admin();
            let r = match *method {
                "GET" => client.get(&path).await,
                _ if allowed => continue, // allowed writes are the functional tests' to check
                _ => client.post_form(&path, fields).await,
            };
            let ok = if allowed { r.status == 200 } else { r.status == 403 };
            if !ok {
                failures.push(format!("{method} {path} as {role}: {}", r.status));
            }
        }
        if template.contains('{') {
            let r = if *method == "GET" { b.get(&path).await } else { b.post_form(&path, fields).await };
            if r.status != 404 {
                failures.push(format!("{method} {path} from another organization: {}", r.status));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_operation_has_a_row_and_each_scope_and_organization_gets_exactly_its_refusals() {
    let app = TestApp::spawn().await;
    let a = org_a(&app).await;
    let doc = a.clients[0].1.get("/api/v1/openapi.json").await.json();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let listed: BTreeSet<(String, String)> = API.iter().map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(documented.difference(&listed).collect::<Vec<_>>(), Vec::<&(String, String)>::new(), "without a row");
    assert_eq!(listed.difference(&documented).collect::<Vec<_>>(), Vec::<&(String, String)>::new(), "rows of nothing");

    app.create_org("Org B", "owner@b.test").await;
    let b = app.login("owner@b.test").await;
    let b_key = crate::create_key(&b, "b", "admin").await;
    let client = &a.clients[0].1;
    let mut failures = Vec::new();
    for (method, template, needs) in API {
        let mut path = format!("/api/v1{}", a.path(template));
        if *template == "/exports" {
            path.push_str("?dataset=focus&format=csv");
        }
        if *template == "/spend/attributed" {
            path.push_str("?group_by=customer");
        }
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        // A body the endpoint would accept, so that what answers is the refusal, not the parser.
        let body = crate::api::writes()
            .into_iter()
            .find(|(m, p, _)| *m == method && p == template)
            .and_then(|(_, _, body)| body)
            .or_else(|| (method == Method::POST).then(|| json!({})));
        for (scope, key) in &a.keys {
            let allowed = scope.at_least(*needs);
            let r = match method {
                Method::GET => client.api(method.clone(), &path, key, None).await,
                _ if allowed => continue,
                _ => client.api(method.clone(), &path, key, body.clone()).await,
            };
            let ok =
                if allowed { r.status == 200 } else { r.status == 403 && r.json()["error"]["code"] == "forbidden" };
            if !ok {
                failures.push(format!("{method} {path} with a {scope} key: {} {}", r.status, r.text));
            }
        }
        if template.contains('{') {
            let r = b.api(method.clone(), &path, &b_key, body.clone()).await;
            if r.status != 404 {
                failures.push(format!("{method} {path} from another organization: {} {}", r.status, r.text));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Budgets through `/api/v1/budgets`: exact amounts, validated fields with precise messages, one
//! organization's budgets only.

use reqwest::Method;
use serde_json::json;

use crate::wire::org_with_costs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_are_created_exactly_refused_precisely_and_kept_per_organization() {
    let app = burnrate_testkit::TestApp::spawn().await;
    let (a, key, _) = org_with_costs(&app, "Acme", 2).await;
    let budget = json!({
        "name": "Research models", "amount": "1500.10", "currency": "USD", "period": "month",
        "scope": { "provider": "OpenAI", "model": "gpt-4o*" }, "thresholds": [100, 50, 80, 50],
    });
    let r = a.api(Method::POST, "/api/v1/budgets", &key, Some(budget.clone())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    assert_eq!(created["amount"], "1500.10", "money stays exact text");
    assert_eq!(created["thresholds"], json!([50, 80, 100]), "sorted, without repeats");
    assert_eq!(created["scope"], json!({ "provider": "OpenAI", "model": "gpt-4o*" }));
    assert_eq!(created["forecast_alert"], true);
    let r = a.api(Method::POST, "/api/v1/budgets", &key, Some(budget)).await;
    assert_eq!(r.status, 409, "a second budget of the same name: {}", r.text);

    let defaults = json!({ "name": "Everything", "amount": "20000", "currency": "EUR", "period": "quarter" });
    let r = a.api(Method::POST, "/api/v1/budgets", &key, Some(defaults)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["thresholds"], json!([50, 80, 100]), "50, 80 and 100 % unless told");

    for (field, value, says) in [
        ("amount", json!("0"), "amount: a positive decimal"),
        ("amount", json!("-5"), "amount: a positive decimal"),
        ("amount", json!("1.0000000001"), "at most 9 decimals"),
        ("amount", json!("ten"), "amount: a positive decimal"),
        ("amount", json!(1500.5), "amount"),
        ("currency", json!("dollars"), "currency: a three-letter code"),
        ("period", json!("week"), "period: month, quarter or year"),
        ("thresholds", json!([]), "thresholds: 1 to 10 percentages"),
        ("thresholds", json!([0, 50]), "thresholds: 1 to 10 percentages"),
        ("thresholds", json!([50, 5000]), "thresholds: 1 to 10 percentages"),
        ("scope", json!({ "model": "" }), "scope.model"),
        ("scope", json!({ "team": "x" }), "team"),
    ] {
        let mut body = json!({ "name": "Bad", "amount": "10", "currency": "USD", "period": "month" });
        body[field] = value.clone();
        let r = a.api(Method::POST, "/api/v1/budgets", &key, Some(body)).await;
        assert_eq!(r.status, 422, "{field} = {value}: {}", r.text);
        let message = r.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(says), "{field} = {value}: {message}");
    }
    let listed = a.api(Method::GET, "/api/v1/budgets", &key, None).await.json();
    let names: Vec<&str> = listed["budgets"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Everything", "Research models"], "nothing refused was kept");

    // In SQL, exact, beside the spend they budget.
    let cred = crate::wire::create_credential(&a, &key, "budgets").await;
    let client = crate::wire::connect(&app.pg_addr.to_string(), &cred).await;
    let rows =
        client.query("SELECT name, amount, currency, period, scope FROM budgets ORDER BY name", &[]).await.unwrap();
    let got: Vec<(String, rust_decimal::Decimal, String, String, String)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect();
    assert_eq!(
        got,
        [
            ("Everything".into(), "20000".parse().unwrap(), "EUR".into(), "quarter".into(), "{}".into()),
            (
                "Research models".into(),
                "1500.10".parse().unwrap(),
                "USD".into(),
                "month".into(),
                r#"{"provider":"OpenAI","model":"gpt-4o*"}"#.into()
            ),
        ]
    );

    // Another organization sees none of them and cannot remove them.
    let (b, b_key, _) = org_with_costs(&app, "Globex", 2).await;
    let theirs = b.api(Method::GET, "/api/v1/budgets", &b_key, None).await.json();
    assert_eq!(theirs["budgets"], json!([]));
    let b_cred = crate::wire::create_credential(&b, &b_key, "budgets").await;
    let b_client = crate::wire::connect(&app.pg_addr.to_string(), &b_cred).await;
    let n: i64 = b_client.query_one("SELECT count(*) FROM budgets", &[]).await.unwrap().get(0);
    assert_eq!(n, 0, "another organization's SQL sees none of them");
    let id = created["id"].as_str().unwrap();
    assert_eq!(b.api(Method::DELETE, &format!("/api/v1/budgets/{id}"), &b_key, None).await.status, 404);
    assert_eq!(a.api(Method::DELETE, &format!("/api/v1/budgets/{id}"), &key, None).await.status, 204);
    let audit = a.get("/audit").await.text;
    assert!(audit.contains("budget_created") && audit.contains("budget_deleted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budgets_page_adds_lists_and_removes_budgets_and_names_a_mistake() {
    let app = burnrate_testkit::TestApp::spawn().await;
    let (a, _, _) = org_with_costs(&app, "Acme", 2).await;
    let page = a.get("/budgets").await.text;
    assert!(page.contains("No budgets yet."), "an empty state says what to do");
    assert!(a.get("/").await.text.contains("No budgets yet. <a href=\"/budgets\">Set one</a>"), "and the overview");
    let form = |amount: &'static str, thresholds: &'static str| {
        [
            ("name", "Research"),
            ("amount", amount),
            ("currency", "USD"),
            ("period", "month"),
            ("provider", "OpenAI"),
            ("model", "gpt-4o*"),
            ("thresholds", thresholds),
            ("forecast_alert", "yes"),
        ]
    };
    let r = a.post_form("/budgets", &form("1500.50", "80%, 50, 100")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("Budget Research added."), "{}", r.text);
    assert!(r.text.contains("1500.50 USD") && r.text.contains("provider OpenAI · model gpt-4o*"), "{}", r.text);
    assert!(r.text.contains("50 %, 80 %, 100 %"), "{}", r.text);

    assert!(r.text.contains("No alerts yet.") && r.text.contains("<th>Used</th>"), "{}", r.text);
    let home = a.get("/").await.text;
    let glance = &home[home.find("budgets-at-a-glance").unwrap()..];
    assert!(glance.contains(">Research</a>") && glance.contains("of 1500.50 USD ("), "the overview shows it: {glance}");

    let r = a.post_form("/budgets", &form("lots", "50")).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("amount: a positive decimal"), "{}", r.text);
    for typed in [r#"value="Research""#, r#"value="lots""#, r#"value="gpt-4o*""#, r#"value="OpenAI""#] {
        assert!(r.text.contains(typed), "the refused form keeps {typed}: {}", r.text);
    }

    // Periods follow the organization's time zone, which an admin sets here.
    assert!(a.get("/budgets").await.text.contains("<strong>UTC</strong>"));
    let r = a.post_form("/budgets/time-zone", &[("time_zone", "Mars/Olympus")]).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("not an IANA time zone name"), "{}", r.text);
    let r = a.post_form("/budgets/time-zone", &[("time_zone", "Asia/Tokyo")]).await;
    assert!(r.text.contains("Budget periods now follow Asia/Tokyo.") && r.text.contains("<strong>Asia/Tokyo</strong>"));
    let r = a.post_form("/budgets", &form("10", "half")).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("thresholds: percentages separated by commas"), "{}", r.text);

    // A member sees the budgets but no form and no remove button.
    let mut tx = app.store.instance().await.unwrap();
    let org = tx.find_org("Acme").await.unwrap().unwrap();
    tx.commit().await.unwrap();
    app.add_member(burnrate_store::OrgScope::trusted(org.id), "viewer@acme.test", burnrate_core::Role::Member).await;
    let viewer = app.login("viewer@acme.test").await.get("/budgets").await.text;
    assert!(viewer.contains("1500.50 USD") && !viewer.contains("Add a budget") && !viewer.contains("Remove"));
    assert!(!viewer.contains("Reporting time zone"), "members do not change the time zone");
    let member = app.login("viewer@acme.test").await;
    let r = member.post_form("/budgets/time-zone", &[("time_zone", "UTC")]).await;
    assert_eq!(r.status, 403, "{}", r.text);

    let id = page_budget_id(&a.get("/budgets").await.text);
    let r = a.post_form(&format!("/budgets/{id}/delete"), &[]).await;
    assert_eq!(r.status, 303);
    assert!(a.get("/budgets").await.text.contains("No budgets yet."));
}

/// The id in the first remove form of the budgets page.
fn page_budget_id(page: &str) -> String {
    let start = page.find("action=\"/budgets/").expect("a remove form") + "action=\"/budgets/".len();
    page[start..].split('/').next().unwrap().to_owned()
}

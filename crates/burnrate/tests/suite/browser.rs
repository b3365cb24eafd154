use std::time::Duration;

use burnrate_testkit::{Browser, GOOD_PASSWORD, TestApp};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_up_logs_in_sees_the_shell_and_logs_out() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start().await else { return };
    let b = &browser.client;
    b.goto(&format!("{}/signup", app.url)).await.unwrap();
    b.find(Locator::Css("input[name=org_name]")).await.unwrap().send_keys("Browser Co").await.unwrap();
    b.find(Locator::Css("input[name=email]")).await.unwrap().send_keys("person@example.com").await.unwrap();
    b.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(GOOD_PASSWORD).await.unwrap();
    b.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    // Wait for the next page's heading, not any heading: the old page's may still be there.
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//h1[text()='Check your inbox']"))
        .await
        .unwrap();

    let link = app.smtp.wait_for("person@example.com", "Confirm your email").await.link("/verify-email/").unwrap();
    b.goto(&link).await.unwrap();
    b.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//h1[text()='Email confirmed']"))
        .await
        .unwrap();

    b.goto(&format!("{}/login", app.url)).await.unwrap();
    b.find(Locator::Css("input[name=email]")).await.unwrap().send_keys("person@example.com").await.unwrap();
    b.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(GOOD_PASSWORD).await.unwrap();
    b.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    let org = b.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(".who .org")).await.unwrap();
    assert_eq!(org.text().await.unwrap(), "Browser Co");
    let nav = b.find(Locator::Css("nav")).await.unwrap().text().await.unwrap();
    for item in ["Overview", "Sources", "Members", "API keys", "Audit log"] {
        assert!(nav.contains(item), "{item} in {nav}");
    }
    screenshot(b, "overview").await;

    // Invite someone from the members page, as a person would.
    b.goto(&format!("{}/members", app.url)).await.unwrap();
    b.find(Locator::Css("form[action='/members/invite'] input[name=email]"))
        .await
        .unwrap()
        .send_keys("colleague@example.com")
        .await
        .unwrap();
    b.find(Locator::Css("form[action='/members/invite'] button")).await.unwrap().click().await.unwrap();
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//p[text()='Invitation sent.']"))
        .await
        .unwrap();
    let pending = b.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(pending.contains("colleague@example.com"), "{pending}");
    screenshot(b, "members").await;

    b.find(Locator::Id("logout")).await.unwrap().click().await.unwrap();
    b.wait().at_most(Duration::from_secs(10)).for_element(Locator::XPath("//h1[text()='Log in']")).await.unwrap();
    b.goto(&format!("{}/members", app.url)).await.unwrap();
    let url = b.current_url().await.unwrap();
    assert!(url.path().ends_with("/login"), "after logout a page asks to log in again: {url}");
    browser.close().await;
}

/// Saves what the page looks like for a person to review, when asked to (`scripts/test` does).
/// The window is stretched to the page's height first, so the whole page is in the picture.
pub async fn screenshot(b: &fantoccini::Client, name: &str) {
    if let Ok(dir) = std::env::var("BURNRATE_TEST_SCREENSHOTS") {
        let height = b.execute("return document.documentElement.scrollHeight", vec![]).await.unwrap();
        let height = height.as_u64().unwrap_or(900).clamp(900, 6000) as u32;
        b.set_window_size(1280, height).await.unwrap();
        let png = b.screenshot().await.unwrap();
        b.set_window_size(1280, 900).await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

/// The texts of `#sql-result`'s rows, cells joined by `|`.
async fn result_rows(b: &fantoccini::Client) -> Vec<String> {
    let mut out = Vec::new();
    for row in b.find_all(Locator::Css("#sql-result tbody tr")).await.unwrap() {
        let mut cells = Vec::new();
        for cell in row.find_all(Locator::Css("td")).await.unwrap() {
            cells.push(cell.text().await.unwrap());
        }
        out.push(cells.join("|"));
    }
    out
}

async fn run_in_console(b: &fantoccini::Client, sql: &str) {
    let editor = b.find(Locator::Id("sql-editor")).await.unwrap();
    editor.clear().await.unwrap();
    editor.send_keys(sql).await.unwrap();
    b.find(Locator::Id("sql-run")).await.unwrap().click().await.unwrap();
    wait_for_text(b, "#sql-summary, #sql-error", "").await;
}

/// Waits until an element matching `css` exists and its text contains `text`.
async fn wait_for_text(b: &fantoccini::Client, css: &str, text: &str) -> String {
    for _ in 0..100 {
        if let Ok(e) = b.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
            && t.contains(text)
        {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {css} containing {text:?}: {}", b.source().await.unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_console_runs_pages_explains_errors_and_downloads_csv() {
    let app = TestApp::spawn().await;
    let (c, _, records) = crate::wire::org_with_costs(&app, "Acme", 150).await;
    let Some(browser) = Browser::start().await else { return };
    let b = &browser.client;
    b.goto(&format!("{}/login", app.url)).await.unwrap();
    b.find(Locator::Css("input[name=email]")).await.unwrap().send_keys("owner@acme.test").await.unwrap();
    b.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(GOOD_PASSWORD).await.unwrap();
    b.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    b.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(".who .org")).await.unwrap();

    b.goto(&format!("{}/sql", app.url)).await.unwrap();
    b.find(Locator::Id("open-console")).await.unwrap().click().await.unwrap();
    let tables = wait_for_text(b, "#sql-schema", "costs").await;
    for table in ["costs", "usage", "sources", "audit_log"] {
        assert!(tables.lines().any(|l| l == table), "{table} in {tables}");
    }

    // An aggregate: exact sums, as the wire endpoint gives them.
    run_in_console(b, "SELECT provider_name, sum(billed_cost) AS spend FROM costs GROUP BY 1 ORDER BY 1").await;
    assert_eq!(result_rows(b).await, crate::wire::sum_by_provider(&records));
    screenshot(b, "sql-console").await;

    // 225 rows, a hundred a page.
    run_in_console(b, "SELECT sku_id, provider_name FROM costs ORDER BY provider_name, sku_id").await;
    let summary = wait_for_text(b, "#sql-summary", "Rows").await;
    assert!(summary.starts_with("Rows 1–100, more follow ("), "{summary}");
    let first_page = result_rows(b).await;
    assert_eq!(first_page.len(), 100);
    assert_eq!(first_page[0], "sku-0000000|Anthropic");
    b.find(Locator::Id("sql-next")).await.unwrap().click().await.unwrap();
    wait_for_text(b, "#sql-summary", "Rows 101–200").await;
    b.find(Locator::Id("sql-next")).await.unwrap().click().await.unwrap();
    wait_for_text(b, "#sql-summary", "Rows 201–225").await;
    assert!(b.find(Locator::Id("sql-next")).await.is_err(), "no next page after the last row");
    assert_eq!(result_rows(b).await.last().unwrap(), "sku-0000149|OpenAI");
    b.find(Locator::Id("sql-previous")).await.unwrap().click().await.unwrap();
    wait_for_text(b, "#sql-summary", "Rows 101–200, more follow").await;

    // A mistake is named, and what was typed stays in the editor.
    run_in_console(b, "SELECT nope FROM costs").await;
    let error = wait_for_text(b, "#sql-error", "nope").await;
    assert!(error.contains("nope"), "{error}");
    let kept = b.find(Locator::Id("sql-editor")).await.unwrap().prop("value").await.unwrap().unwrap_or_default();
    assert_eq!(kept, "SELECT nope FROM costs");
    run_in_console(b, "DELETE FROM costs").await;
    wait_for_text(b, "#sql-error", "read-only").await;
    browser.close().await;

    // The whole result as CSV, every row, money exact.
    let r = c.post_form("/sql/console.csv", &[("sql", "SELECT sku_id, billed_cost FROM costs ORDER BY sku_id")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type").as_deref(), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = r.text.lines().collect();
    assert_eq!(lines.len(), 1 + records.len());
    assert_eq!(lines[0], "sku_id,billed_cost");
    let mut expected: Vec<(String, String)> =
        records.iter().map(|r| (r.sku_id.clone().unwrap(), format!("{:.9}", r.billed_cost.amount()))).collect();
    expected.sort();
    assert_eq!(lines[1], format!("{},{}", expected[0].0, expected[0].1));

    // A member's console has the organization's spend but no audit log.
    let mut tx = app.store.instance().await.unwrap();
    let org = tx.find_org("Acme").await.unwrap().unwrap();
    tx.commit().await.unwrap();
    let scope = burnrate_store::OrgScope::trusted(org.id);
    app.add_member(scope, "viewer@acme.test", burnrate_core::Role::Member).await;
    let viewer = app.login("viewer@acme.test").await;
    let page = viewer.get("/sql/console").await.text;
    assert!(page.contains("<code>costs</code>") && !page.contains("<code>audit_log</code>"), "{page}");
    let r = viewer.post_form("/sql/console", &[("sql", "SELECT count(*) FROM audit_log")]).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("audit_log"), "{}", r.text);
}

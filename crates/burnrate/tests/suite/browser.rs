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
pub async fn screenshot(b: &fantoccini::Client, name: &str) {
    if let Ok(dir) = std::env::var("BURNRATE_TEST_SCREENSHOTS") {
        let png = b.screenshot().await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

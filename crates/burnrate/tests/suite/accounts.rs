use burnrate_core::{EmailAddress, Role};
use burnrate_crypto::token_hash;
use burnrate_store::TokenPurpose;
use burnrate_testkit::{GOOD_PASSWORD, TestApp};

use crate::org_count;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_confirm_email_log_in_and_log_out() {
    let app = TestApp::spawn().await;
    let c = app.client();
    let page = c.get("/signup").await;
    assert_eq!(page.status, 200);
    let r = c
        .post_form(
            "/signup",
            &[("org_name", "Acme Finance"), ("email", "Ada@Example.com"), ("password", GOOD_PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("Check your inbox"));

    // Not before the address is confirmed.
    let r = c.post_form("/login", &[("email", "ada@example.com"), ("password", GOOD_PASSWORD)]).await;
    assert_eq!(r.status, 403);
    assert!(r.text.contains("Confirm your email first"));

    let mail = app.smtp.wait_for("ada@example.com", "Confirm your email").await;
    let link = mail.link("/verify-email/").expect("a confirmation link");
    assert!(link.starts_with(&app.url), "links use the public URL: {link}");
    let r = c.get(&link).await;
    assert_eq!(r.status, 200);
    let r = c.post_form(&link, &[]).await;
    assert!(r.text.contains("Email confirmed"), "{}", r.text);
    let again = c.post_form(&link, &[]).await;
    assert_eq!(again.status, 410, "a confirmation link works once");

    let r = c.post_form("/login", &[("email", "ada@example.com"), ("password", GOOD_PASSWORD)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let home = c.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.text.contains("Acme Finance") && home.text.contains("owner"));

    let r = c.post_form("/logout", &[]).await;
    assert_eq!(r.status, 303);
    let home = c.get("/").await;
    assert_eq!(home.status, 303);
    assert_eq!(home.location().as_deref(), Some("/login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_reset_answer_identically_for_known_and_unknown_emails() {
    let app = TestApp::spawn().await;
    app.create_org("Org", "known@example.com").await;
    let c = app.client();
    let known = c.post_form("/login", &[("email", "known@example.com"), ("password", "wrong password entirely")]).await;
    let unknown =
        c.post_form("/login", &[("email", "nobody@example.com"), ("password", "wrong password entirely")]).await;
    assert_eq!(known.status, 401);
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.text.replace("known@example.com", "X"), unknown.text.replace("nobody@example.com", "X"));
    assert!(known.text.contains("Email or password is incorrect."));

    let known = c.post_form("/password-reset", &[("email", "known@example.com")]).await;
    let unknown = c.post_form("/password-reset", &[("email", "nobody@example.com")]).await;
    assert_eq!(known.status, 200);
    assert_eq!((known.status, known.text.clone()), (unknown.status, unknown.text));
    app.smtp.wait_for("known@example.com", "Reset your burnrate password").await;
    assert!(
        app.smtp.all().iter().all(|m| !m.to.contains(&"nobody@example.com".to_owned())),
        "no mail for unknown addresses"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_link_works_once_expires_and_ends_all_sessions() {
    let app = TestApp::spawn().await;
    let (_, user) = app.create_org("Org", "reset@example.com").await;
    let logged_in = app.login("reset@example.com").await;
    assert_eq!(logged_in.get("/").await.status, 200);

    let c = app.client();
    c.post_form("/password-reset", &[("email", "reset@example.com")]).await;
    let mail = app.smtp.wait_for("reset@example.com", "Reset your burnrate password").await;
    let link = mail.link("/password-reset/").expect("a reset link");
    assert_eq!(c.get(&link).await.status, 200);

    // A refused password does not use up the link.
    let weak = c.post_form(&link, &[("password", "password1234")]).await;
    assert_eq!(weak.status, 422);
    assert!(weak.text.contains("too easy to guess"), "{}", weak.text);
    let new_password = "granite lantern meadow sixteen";
    let ok = c.post_form(&link, &[("password", new_password)]).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(ok.text.contains("Password changed"));

    assert_eq!(logged_in.get("/").await.status, 303, "the reset ended the existing session");
    assert_eq!(
        c.post_form(&link, &[("password", "another fine long passphrase")]).await.status,
        410,
        "the link works once"
    );
    let old = app.client().post_form("/login", &[("email", "reset@example.com"), ("password", GOOD_PASSWORD)]).await;
    assert_eq!(old.status, 401);
    let new = app.client().post_form("/login", &[("email", "reset@example.com"), ("password", new_password)]).await;
    assert_eq!(new.status, 303);

    // An expired link is refused.
    let token = burnrate_crypto::random_token();
    let mut tx = app.store.instance().await.unwrap();
    tx.create_one_time_token(
        TokenPurpose::PasswordReset,
        &token_hash(&token),
        user,
        chrono::Utc::now() - chrono::Duration::minutes(1),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(c.get(&format!("/password-reset/{token}")).await.status, 410);
    assert_eq!(
        c.post_form(&format!("/password-reset/{token}"), &[("password", "yet another long passphrase")]).await.status,
        410
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_creates_an_account_with_the_invited_role() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Inviting Org", "owner@example.com").await;
    let owner = app.login("owner@example.com").await;
    let r = owner.post_form("/members/invite", &[("email", "new.person@example.com"), ("role", "viewer")]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let members = owner.get("/members").await;
    assert!(members.text.contains("new.person@example.com"), "pending invitation listed");

    let mail = app.smtp.wait_for("new.person@example.com", "Invitation to Inviting Org").await;
    let link = mail.link("/invitations/").expect("an invitation link");
    let invitee = app.client();
    let page = invitee.get(&link).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("viewer"));
    let r = invitee.post_form(&link, &[("password", GOOD_PASSWORD)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("You are now a member of Inviting Org"));
    assert_eq!(invitee.post_form(&link, &[("password", GOOD_PASSWORD)]).await.status, 410, "an invitation works once");

    let invitee = app.login("new.person@example.com").await;
    let home = invitee.get("/").await;
    assert!(home.text.contains("viewer"));
    let mut t = app.store.tenant(scope).await.unwrap();
    let actions: Vec<String> = t.audit_entries(50).await.unwrap().into_iter().map(|e| e.action).collect();
    t.commit().await.unwrap();
    assert!(
        actions.contains(&"invitation_created".into()) && actions.contains(&"invitation_accepted".into()),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sign_up_input_gets_clear_messages_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let c = app.client();
    let cases: [(&str, &str, &str, &str); 4] = [
        ("Org", "not-an-email", GOOD_PASSWORD, "Email: email address must have exactly one @"),
        ("Org", "weak@example.com", "password1234", "Password: password is too easy to guess"),
        ("Org", "long@example.com", &"correct horse battery staple ".repeat(8), "at most 128 characters"),
        ("", "empty@example.com", GOOD_PASSWORD, "Organization name: organization name is empty"),
    ];
    for (org, email, password, message) in cases {
        let r = c.post_form("/signup", &[("org_name", org), ("email", email), ("password", password)]).await;
        assert_eq!(r.status, 422, "{email}");
        assert!(r.text.contains(message), "expected {message:?} in the page for {email}");
    }
    let huge = "x".repeat(70 * 1024);
    let r =
        c.post_form("/signup", &[("org_name", &huge), ("email", "big@example.com"), ("password", GOOD_PASSWORD)]).await;
    assert_eq!(r.status, 413);
    assert!(r.text.contains("larger than 64 KiB"));
    assert_eq!(org_count(&app).await, 0, "nothing was written");
    let mut tx = app.store.instance().await.unwrap();
    for email in ["weak@example.com", "long@example.com", "empty@example.com", "big@example.com"] {
        assert!(tx.find_user_by_email(&app.vault, &EmailAddress::parse(email).unwrap()).await.unwrap().is_none());
    }
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_can_be_limited_to_invitations() {
    let app = TestApp::spawn_with(burnrate_testkit::AppOptions {
        signup: burnrate_web::SignupMode::Invite,
        ..Default::default()
    })
    .await;
    let c = app.client();
    assert!(c.get("/signup").await.text.contains("by invitation only"));
    let r =
        c.post_form("/signup", &[("org_name", "Org"), ("email", "x@example.com"), ("password", GOOD_PASSWORD)]).await;
    assert_eq!(r.status, 403);
    assert_eq!(org_count(&app).await, 0);
    // Invitations still work.
    let (scope, _) = app.create_org("Org", "o@example.com").await;
    let owner = app.login("o@example.com").await;
    owner.post_form("/members/invite", &[("email", "i@example.com"), ("role", "member")]).await;
    let link = app.smtp.wait_for("i@example.com", "Invitation").await.link("/invitations/").unwrap();
    let r = app.client().post_form(&link, &[("password", GOOD_PASSWORD)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut t = app.store.tenant(scope).await.unwrap();
    assert_eq!(
        t.members(&app.vault).await.unwrap().iter().find(|m| m.email.as_str() == "i@example.com").unwrap().role,
        Role::Member
    );
    t.commit().await.unwrap();
}

/// Two-step login: set up from the sessions page with a code from the app, asked after the
/// password from then on (each code once), and turned off only with a current code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_step_login_asks_for_a_fresh_code_after_the_password_once_turned_on() {
    let app = TestApp::spawn().await;
    let (scope, _) = app.create_org("Acme", "owner@acme.test").await;
    let c = app.login("owner@acme.test").await;
    let page = c.post_form("/account/second-factor/setup", &[]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let secret = page.text.split(r#"id="totp-secret">"#).nth(1).unwrap().split('<').next().unwrap();
    assert!(page.text.contains("otpauth://totp/burnrate:owner@acme.test?secret="), "{}", page.text);
    let phone = burnrate_testkit::Authenticator::from_base32(secret);
    let wrong = c.post_form("/account/second-factor/confirm", &[("code", "000000")]).await;
    assert_eq!(wrong.status, 422);
    assert!(c.get("/sessions").await.text.contains(secret), "still being set up: the key is shown again");
    let first = phone.code().await;
    let on = c.post_form("/account/second-factor/confirm", &[("code", &first)]).await;
    assert!(on.text.contains("Two-step login is on."), "{}", on.text);
    assert!(!on.text.contains(secret), "once on, the key is never shown again");

    // The password alone no longer logs in: it leads to the code step.
    let login = [("email", "owner@acme.test"), ("password", burnrate_testkit::GOOD_PASSWORD)];
    let b = app.client();
    let step = b.post_form("/login", &login).await;
    assert_eq!(step.status, 200);
    assert!(step.text.contains("Authenticator code"), "{}", step.text);
    assert_eq!(b.get("/").await.status, 303, "no session yet");
    let replayed = b.post_form("/login/code", &[("code", &first)]).await;
    assert_eq!(replayed.status, 401, "the code that turned it on was used already");
    let next = phone.code().await;
    assert_eq!(b.post_form("/login/code", &[("code", &next)]).await.status, 303);
    assert!(b.get("/").await.text.contains("Acme"), "logged in");
    // Without a challenge (another browser), a code alone does nothing.
    assert_eq!(app.client().post_form("/login/code", &[("code", &next)]).await.status, 401);

    // Off only with a current, unused code.
    let refused = b.post_form("/account/second-factor/disable", &[("code", &next)]).await;
    assert_eq!(refused.status, 422);
    let off = b.post_form("/account/second-factor/disable", &[("code", &phone.code().await)]).await;
    assert!(off.text.contains("Two-step login is off."), "{}", off.text);
    assert_eq!(app.client().post_form("/login", &login).await.status, 303, "the password is enough again");

    let mut tx = app.store.tenant(scope).await.unwrap();
    let entries = tx.audit_entries(100).await.unwrap();
    tx.commit().await.unwrap();
    let count = |a: &str| entries.iter().filter(|e| e.action == a).count();
    assert_eq!((count("second_factor_enabled"), count("second_factor_disabled")), (1, 1));
    assert_eq!(count("login_failed"), 1, "the replayed code");
    assert!(entries.iter().all(|e| !e.details.contains(secret)), "the key is never in the log");
}

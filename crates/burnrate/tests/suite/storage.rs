use burnrate_core::{EmailAddress, Role};
use burnrate_crypto::{MasterKey, MasterKeyRing};
use burnrate_store::{Actor, NewAuditEntry, OrgScope, Vault};
use burnrate_testkit::{BackendKind, TestApp};
use sqlx::Connection;

use crate::{burnrate, create_key};

/// Everything a person would fear to find in a stolen database file or dump, and the simulated
/// provider its source syncs from (kept running while the test runs).
async fn populate(app: &TestApp) -> (Vec<String>, OrgScope, burnrate_sim::SimProvider) {
    let (scope, _) = app.create_org("Org", "first.person@example.com").await;
    app.add_member(scope, "second.person@example.com", Role::Member).await;
    let owner = app.login("first.person@example.com").await;
    let key = create_key(&owner, "k", "read").await;
    owner.post_form("/members/invite", &[("email", "invited.person@example.com"), ("role", "viewer")]).await;
    owner.post_form("/password-reset", &[("email", "first.person@example.com")]).await;
    let reset = app.smtp.wait_for("first.person@example.com", "Reset").await.link("/password-reset/").unwrap();
    let reset_token = reset.rsplit('/').next().unwrap().to_owned();
    let session = owner.cookie("__Host-burnrate_session").unwrap();
    // A provider's admin key, a webhook's signing secret and a SQL credential's password.
    let admin = create_key(&owner, "a", "admin").await;
    let provider_key = "sk-admin-ATREST0000000000000000000000";
    let sim = burnrate_sim::SimProvider::openai(provider_key).await;
    let body =
        serde_json::json!({ "kind": "openai", "name": "prod", "secret": provider_key, "base_url": sim.base_url() });
    let r = owner.api(reqwest::Method::POST, "/api/v1/sources", &admin, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (url, _received) = crate::notify::receiver().await;
    let hook =
        owner.api(reqwest::Method::POST, "/api/v1/webhooks", &admin, Some(serde_json::json!({ "url": url }))).await;
    let hook_secret = hook.json()["secret"].as_str().expect("the signing secret, shown once").to_owned();
    let sql =
        owner.api(reqwest::Method::POST, "/api/v1/sql-credentials", &admin, Some(serde_json::json!({ "name": "bi" })));
    let sql_password = sql.await.json()["password"].as_str().unwrap().to_owned();
    (
        vec![
            provider_key.into(),
            hook_secret["whsec_".len()..].to_owned(),
            sql_password,
            "first.person@example.com".into(),
            "second.person@example.com".into(),
            "invited.person@example.com".into(),
            key[key.len() - 43..].to_owned(),
            reset_token,
            session,
        ],
        scope,
        sim,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_the_database_file_nor_a_dump_holds_an_email_or_a_secret() {
    let app = TestApp::spawn().await;
    let (secrets, _, _sim) = populate(&app).await;
    let bytes: Vec<u8> = match app.db.kind {
        BackendKind::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.db.app_url).await.unwrap();
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            let path = app.db.sqlite_path.clone().unwrap();
            let mut all = std::fs::read(&path).unwrap();
            for suffix in ["-wal", "-shm"] {
                if let Ok(more) = std::fs::read(format!("{}{suffix}", path.display())) {
                    all.extend(more);
                }
            }
            all
        }
        BackendKind::Postgres => {
            let su = std::env::var("BURNRATE_TEST_PG_URL").unwrap();
            let mut url = url::Url::parse(&su).unwrap();
            url.set_path(app.db.database.as_deref().unwrap());
            let out = tokio::process::Command::new("pg_dump")
                .arg("--dbname")
                .arg(url.as_str())
                .output()
                .await
                .expect("run pg_dump");
            assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
            // A dump shows bytea as hex, which would hide plaintext: every bytea column is read
            // back decoded too.
            let mut all = out.stdout;
            let mut conn = sqlx::PgConnection::connect(url.as_str()).await.unwrap();
            let columns: Vec<(String, String)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND data_type = 'bytea'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert!(columns.iter().any(|(t, _)| t == "sources"), "sealed source secrets are bytea: {columns:?}");
            for (table, column) in columns {
                let sql = format!("SELECT \"{column}\" FROM \"{table}\"");
                let values: Vec<Option<Vec<u8>>> =
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap();
                all.extend(values.into_iter().flatten().flatten());
            }
            conn.close().await.unwrap();
            all
        }
    };
    assert!(bytes.len() > 10_000, "read the real database");
    let text = String::from_utf8_lossy(&bytes);
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret:?} found in plaintext in the {:?} database", app.db.kind);
    }
    assert!(!text.contains("@example.com"), "no email address at all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_refuses_update_and_delete() {
    let app = TestApp::spawn().await;
    let (_, scope, _sim) = populate(&app).await;
    let org = scope.org_id().as_uuid();
    match app.db.kind {
        BackendKind::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.db.app_url).await.unwrap();
            let e = sqlx::query("UPDATE audit_log SET action = 'nothing' WHERE org_id = $1")
                .bind(org)
                .execute(&mut conn)
                .await
                .unwrap_err();
            assert!(e.to_string().contains("append-only"), "{e}");
            let e = sqlx::query("DELETE FROM audit_log").execute(&mut conn).await.unwrap_err();
            assert!(e.to_string().contains("append-only"), "{e}");
        }
        BackendKind::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.db.app_url).await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("SELECT set_config('app.org_id', $1, true)")
                .bind(org.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
            let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&mut *tx).await.unwrap();
            assert!(visible > 0);
            for sql in ["UPDATE audit_log SET action = 'nothing'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
                let e = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.unwrap_err();
                assert!(e.to_string().contains("permission denied"), "{sql}: {e}");
                tx.rollback().await.unwrap();
                tx = conn.begin().await.unwrap();
                sqlx::query("SELECT set_config('app.org_id', $1, true)")
                    .bind(org.to_string())
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            // Even the owner, who has the privilege, is stopped by the trigger.
            let mut owner = sqlx::PgConnection::connect(app.db.admin_url.as_deref().unwrap()).await.unwrap();
            let mut tx = owner.begin().await.unwrap();
            sqlx::query("SELECT set_config('app.org_id', $1, true)")
                .bind(org.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
            let e = sqlx::query("UPDATE audit_log SET action = 'nothing'").execute(&mut *tx).await.unwrap_err();
            assert!(e.to_string().contains("append-only"), "{e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_application_role_sees_no_tenant_row_without_its_org() {
    let app = TestApp::spawn().await;
    if app.db.kind != BackendKind::Postgres {
        eprintln!("PostgreSQL-only: row-level security");
        return;
    }
    let (_, scope, _sim) = populate(&app).await;
    let (other, _) = app.create_org("Other", "other.owner@example.com").await;
    let mut conn = sqlx::PgConnection::connect(&app.db.app_url).await.unwrap();
    for table in ["memberships", "invitations", "api_keys", "audit_log", "org_keys"] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} without app.org_id");
    }
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.org_id', $1, true)")
        .bind(other.org_id().to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(keys, 0, "the other org sees none of the first org's keys");
    let e = sqlx::query("INSERT INTO api_keys (id, org_id, name, prefix, key_hash, scope, created_by, created_at) VALUES ($1, $2, 'x', 'x', '\\x00', 'read', $1, now())")
        .bind(uuid::Uuid::now_v7()).bind(scope.org_id().as_uuid()).execute(&mut *tx).await.unwrap_err();
    assert!(e.to_string().contains("row-level security"), "writing into another org is refused: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_one_audit_row_makes_audit_verify_fail_naming_it() {
    let app = TestApp::spawn().await;
    let (_, scope, _sim) = populate(&app).await;
    let ok = burnrate(&app, &["audit", "verify"], &[], None).await;
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&format!("ok: organization {}", scope.org_id())));

    let org = scope.org_id().as_uuid();
    match app.db.kind {
        BackendKind::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.db.app_url).await.unwrap();
            // Someone with the file in hand can drop the trigger; the chain still gives it away.
            sqlx::query("DROP TRIGGER audit_log_no_update").execute(&mut conn).await.unwrap();
            sqlx::query("UPDATE audit_log SET details = '{\"role\":\"owner\"}' WHERE org_id = $1 AND seq = 2")
                .bind(org)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        BackendKind::Postgres => {
            let mut su = app.db.superuser().await;
            sqlx::query("SET session_replication_role = replica").execute(&mut su).await.unwrap();
            sqlx::query("UPDATE audit_log SET details = '{\"role\":\"owner\"}' WHERE org_id = $1 AND seq = 2")
                .bind(org)
                .execute(&mut su)
                .await
                .unwrap();
        }
    }
    let out = burnrate(&app, &["audit", "verify"], &[], None).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("FAILED: organization {}: audit entry 2 was changed", scope.org_id())),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_rewraps_data_keys_and_the_old_key_opens_until_then() {
    let app = TestApp::spawn().await;
    let (scope, user) = app.create_org("Org", "rotate@example.com").await;
    let mut t = app.store.tenant(scope).await.unwrap();
    t.audit(NewAuditEntry {
        actor: Actor::system("test"),
        action: burnrate_store::AuditAction::NoticePublished,
        target_type: None,
        target_id: None,
        details: serde_json::json!({}),
        ip: None,
        user_agent: None,
    })
    .await
    .unwrap();
    t.create_invitation(
        &app.vault,
        &EmailAddress::parse("sealed@example.com").unwrap(),
        Role::Viewer,
        user,
        b"hash",
        chrono::Utc::now() + chrono::Duration::days(1),
    )
    .await
    .unwrap();
    t.commit().await.unwrap();
    // A second organization with its own data key: rotation must re-wrap each under its owner.
    let (other, other_owner) = app.create_org("Other", "other@example.com").await;
    let mut t = app.store.tenant(other).await.unwrap();
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    let email = EmailAddress::parse("sealed2@example.com").unwrap();
    t.create_invitation(&app.vault, &email, Role::Viewer, other_owner, b"hash2", expires).await.unwrap();
    t.commit().await.unwrap();

    let new = MasterKey::generate("new").export().to_string();
    let both = format!("{new},{}", app.master_keys);
    let read_with = |spec: String| {
        let store = app.store.clone();
        async move {
            let vault = Vault::new(MasterKeyRing::parse(&spec).unwrap());
            let mut t = store.tenant(scope).await.unwrap();
            let r = t.user_email(&vault, user).await.map(|e| e.to_string());
            let inv = t.open_invitations(&vault).await.map(|i| i.len());
            t.commit().await.unwrap();
            r.and(inv.map(|_| ()))
        }
    };
    assert!(read_with(both.clone()).await.is_ok(), "new first, old still listed: the old key opens");
    assert!(read_with(new.clone()).await.is_err(), "before rotation the new key alone cannot open");

    let out = burnrate(&app, &["keys", "rotate"], &[("BURNRATE_MASTER_KEYS", &both)], None).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 data key(s) re-wrapped under master key new"));
    assert!(read_with(new).await.is_ok(), "after rotation the new key alone opens everything");
    assert!(read_with(app.master_keys.clone()).await.is_err(), "and the old one alone no longer does");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_mail_goes_out_exactly_once_with_several_instances_delivering() {
    let app = TestApp::spawn().await;
    let mut tx = app.store.instance().await.unwrap();
    for i in 0..30 {
        let message = burnrate_store::OutboxMessage {
            to: format!("person{i}@example.com"),
            subject: format!("Message {i}"),
            body: "hello".into(),
            org: None,
        };
        tx.enqueue_mail(&app.vault, &message).await.unwrap();
    }
    tx.commit().await.unwrap();
    // Two more instances, with their own connection pools, beside the app's own mail worker.
    let mailer = || async {
        let store = burnrate_store::Store::connect(&app.db.app_url).await.unwrap();
        let vault = std::sync::Arc::new(Vault::new(MasterKeyRing::parse(&app.master_keys).unwrap()));
        burnrate_notify::Mailer::new(
            store,
            vault,
            burnrate_web::RateLimiter::new(),
            Some(&app.smtp.url()),
            "burnrate <noreply@burnrate.test>",
        )
        .unwrap()
    };
    let (a, b) = (mailer().await, mailer().await);
    loop {
        let (x, y) = tokio::join!(a.deliver_queued(), b.deliver_queued());
        if x.unwrap() + y.unwrap() == 0 {
            break;
        }
    }
    // The app's own worker may still be sending a batch it claimed: wait for every recipient (not
    // merely the last message, which another worker may have sent first), then a moment more for
    // any duplicate to show.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut arrived: Vec<String> = app.smtp.all().into_iter().flat_map(|m| m.to).collect();
        arrived.sort();
        arrived.dedup();
        if arrived.len() >= 30 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut recipients: Vec<String> = app.smtp.all().into_iter().flat_map(|m| m.to).collect();
    recipients.sort();
    let before = recipients.len();
    recipients.dedup();
    assert_eq!(recipients.len(), 30, "every message arrived");
    assert_eq!(before, 30, "and none twice");
    let mut tx = app.store.instance().await.unwrap();
    assert!(tx.claim_mail(&app.vault, 100, i64::MAX / 2, 0).await.unwrap().is_empty(), "sent mail is deleted");
    tx.commit().await.unwrap();
}

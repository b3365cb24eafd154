//! The store's contract, area by area, as its callers rely on it — run against the backend
//! `BURNRATE_TEST_BACKEND` names, so `scripts/test` runs every test here on SQLite and on
//! PostgreSQL alike. Each test opens its own throw-away database, migrated as `burnrate serve`
//! migrates it.

use std::sync::Arc;

use burnrate_core::OrgName;
use burnrate_crypto::{MasterKey, MasterKeyRing};
use burnrate_store::testing::TestDb;
use burnrate_store::{NewSource, OrgScope, Store, Vault};

/// A migrated store on a fresh database (the database lives as long as the `TestDb`).
async fn store() -> (TestDb, Store, Arc<Vault>) {
    let db = TestDb::new().await;
    let store = db.open().await;
    let ring = MasterKeyRing::parse(&MasterKey::generate("contract").export()).expect("a generated key parses");
    (db, store, Arc::new(Vault::new(ring)))
}

async fn organization(store: &Store, name: &str) -> OrgScope {
    let mut tx = store.instance().await.unwrap();
    let scope = tx.create_org(&OrgName::parse(name).unwrap()).await.unwrap();
    tx.commit().await.unwrap();
    scope
}

mod tenancy {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_organization_reads_and_changes_only_its_own_rows() {
        let (_db, store, vault) = store().await;
        let (a, b) = (organization(&store, "A").await, organization(&store, "B").await);
        let mut tx = store.tenant(a).await.unwrap();
        let new = NewSource { kind: "openai", name: "prod", config: "{}", secret: "sk-admin-CONTRACT0000000001" };
        let id = tx.create_source(&vault, &new).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.tenant(b).await.unwrap();
        assert!(tx.sources().await.unwrap().is_empty(), "B lists none of A's sources");
        assert!(tx.source(id).await.unwrap().is_none(), "B cannot read A's source by its id");
        assert!(!tx.set_source_paused(id, true).await.unwrap(), "B cannot pause A's source");
        assert!(!tx.delete_source(id, false).await.unwrap(), "B cannot delete A's source");
        assert!(tx.open_source_secret(&vault, id).await.is_err(), "B cannot open A's credential");
        tx.commit().await.unwrap();

        let mut tx = store.tenant(a).await.unwrap();
        let source = tx.source(id).await.unwrap().expect("A still has its source");
        tx.commit().await.unwrap();
        assert!(!source.paused);
    }
}

mod sources {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_keeps_its_settings_its_sealed_secret_and_its_last_outcome() {
        let (_db, store, vault) = store().await;
        let org = organization(&store, "A").await;
        let config =
            r#"{"base_url":"https://billing.example","backfill_days":30,"repull_days":3,"interval_minutes":60}"#;
        let secret = "sk-admin-CONTRACTSECRET9876";
        let mut tx = store.tenant(org).await.unwrap();
        let id = tx.create_source(&vault, &NewSource { kind: "openai", name: "prod", config, secret }).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.tenant(org).await.unwrap();
        let source = tx.source(id).await.unwrap().unwrap();
        assert_eq!((source.kind.as_str(), source.name.as_str(), source.config.as_str()), ("openai", "prod", config));
        assert_eq!(source.secret_hint, "9876", "only the last four characters are shown");
        assert_eq!(tx.open_source_secret(&vault, id).await.unwrap().as_str(), secret);
        assert!(source.last_attempt_at.is_none() && source.last_success_at.is_none());

        tx.record_source_attempt(id, Err("OpenAI GET /v1/organization/costs: 401")).await.unwrap();
        let failed = tx.source(id).await.unwrap().unwrap();
        assert_eq!(failed.last_error.as_deref(), Some("OpenAI GET /v1/organization/costs: 401"));
        assert!(failed.last_attempt_at.is_some() && failed.last_success_at.is_none(), "a failure is not a success");

        tx.record_source_attempt(id, Ok("40 cost lines")).await.unwrap();
        let synced = tx.source(id).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        assert_eq!(synced.last_error, None, "a success clears the last error");
        assert_eq!(synced.last_sync_summary.as_deref(), Some("40 cost lines"));
        assert!(synced.last_success_at.is_some());
    }
}

mod jobs {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_keyed_job_is_queued_once_and_held_by_one_worker_at_a_time() {
        let (_db, store, _) = store().await;
        let now = 1_000_000;
        let mut tx = store.instance().await.unwrap();
        assert!(tx.enqueue_job("sync", None, "{}", Some("sync:tick-7"), now, now).await.unwrap());
        assert!(!tx.enqueue_job("sync", None, "{}", Some("sync:tick-7"), now, now).await.unwrap(), "the same tick");
        assert!(tx.enqueue_job("digest", None, "{}", None, now + 60_000, now).await.unwrap());
        tx.commit().await.unwrap();

        let claim = async |worker: &str, at: i64| {
            let mut tx = store.instance().await.unwrap();
            let job = tx.claim_job("sync", worker, at, 1_000).await.unwrap();
            tx.commit().await.unwrap();
            job
        };
        let job = claim("a", now).await.expect("the due job");
        assert_eq!((job.kind.as_str(), job.attempts), ("sync", 1));
        assert!(claim("b", now + 500).await.is_none(), "held by a while its lease runs");

        let mut tx = store.instance().await.unwrap();
        assert!(!tx.renew_job(job.id, "b", now + 2_000).await.unwrap(), "b does not hold it");
        assert!(tx.renew_job(job.id, "a", now + 2_000).await.unwrap());
        tx.commit().await.unwrap();
        assert!(claim("b", now + 1_500).await.is_none(), "renewed past its first lease");
        let taken = claim("b", now + 2_500).await.expect("taken over once the lease ran out");
        assert_eq!((taken.id, taken.attempts), (job.id, 2));

        let mut tx = store.instance().await.unwrap();
        tx.complete_job(job.id).await.unwrap();
        assert_eq!(tx.next_job_due("sync").await.unwrap(), None, "nothing left of the kind");
        assert_eq!(tx.next_job_due("digest").await.unwrap(), Some(now + 60_000), "not due before its time");
        tx.commit().await.unwrap();
        assert!(claim("a", now + 10_000).await.is_none(), "a done job is not claimed again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fair_claim_passes_over_an_organization_running_its_share() {
        let (_db, store, _) = store().await;
        let (a, b) = (organization(&store, "A").await, organization(&store, "B").await);
        let now = 1_000_000;
        let mut tx = store.instance().await.unwrap();
        // A's backlog is older than B's one job.
        for i in 0..3 {
            tx.enqueue_job("deliver", Some(a.org_id().as_uuid()), "{}", None, now + i, now).await.unwrap();
        }
        tx.enqueue_job("deliver", Some(b.org_id().as_uuid()), "{}", None, now + 10, now).await.unwrap();
        tx.commit().await.unwrap();

        let claim = async |worker: &str, at: i64| {
            let mut tx = store.instance().await.unwrap();
            let job = tx.claim_job_fairly("deliver", worker, at, 1_000, 2).await.unwrap();
            tx.commit().await.unwrap();
            job.map(|j| (j.id, j.org_id))
        };
        let at = now + 100;
        let (first, org) = claim("w1", at).await.unwrap();
        assert_eq!(org, Some(a.org_id().as_uuid()), "the longest due first");
        assert_eq!(claim("w2", at).await.unwrap().1, Some(a.org_id().as_uuid()), "A's second");
        assert_eq!(claim("w3", at).await.unwrap().1, Some(b.org_id().as_uuid()), "A runs its two: B's, though later");
        assert_eq!(claim("w4", at).await, None, "A's third waits while A runs two");

        // One of A's ends: its third goes.
        let mut tx = store.instance().await.unwrap();
        tx.complete_job(first).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(claim("w4", at).await.unwrap().1, Some(a.org_id().as_uuid()));
        // A lease run out does not count as running: the job is claimable again, by anyone.
        let later = at + 5_000;
        assert!(claim("w5", later).await.is_some(), "an abandoned claim is taken over");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fair_claims_made_at_once_still_leave_an_organization_its_share_only() {
        let (_db, store, _) = store().await;
        let (a, b) = (organization(&store, "A").await, organization(&store, "B").await);
        let now = 1_000_000;
        let mut tx = store.instance().await.unwrap();
        for i in 0..8 {
            tx.enqueue_job("deliver", Some(a.org_id().as_uuid()), "{}", None, now + i, now).await.unwrap();
        }
        tx.enqueue_job("deliver", Some(b.org_id().as_uuid()), "{}", None, now + 10, now).await.unwrap();
        tx.commit().await.unwrap();

        // Eight workers claim at once, each holding its transaction a moment (a deliverer reads
        // what it claimed before it commits).
        let mut workers = tokio::task::JoinSet::new();
        for n in 0..8 {
            let store = store.clone();
            workers.spawn(async move {
                let mut tx = store.instance().await.unwrap();
                let job = tx.claim_job_fairly("deliver", &format!("w{n}"), now + 100, 60_000, 2).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                tx.commit().await.unwrap();
                job.and_then(|j| j.org_id)
            });
        }
        let mut claimed = Vec::new();
        while let Some(org) = workers.join_next().await {
            claimed.push(org.unwrap());
        }
        let of = |scope: OrgScope| claimed.iter().filter(|o| **o == Some(scope.org_id().as_uuid())).count();
        assert_eq!((of(a), of(b)), (2, 1), "A's share and B's one: {claimed:?}");
    }
}

mod price_catalogues {
    use super::*;

    #[tokio::test]
    async fn the_newest_import_is_the_instances_and_every_one_is_kept() {
        let (_db, store, _) = store().await;
        let mut tx = store.read_instance().await.unwrap();
        assert!(tx.newest_price_catalogue_checksum().await.unwrap().is_none(), "none imported: the shipped one");
        tx.commit().await.unwrap();
        let mut tx = store.instance().await.unwrap();
        let first = tx.record_price_catalogue("genai-prices", "1", "aaa", "{\"v\":1}").await.unwrap();
        let second = tx.record_price_catalogue("genai-prices", "2", "bbb", "{\"v\":2}").await.unwrap();
        tx.commit().await.unwrap();
        assert!(second.imported_at >= first.imported_at);
        let mut tx = store.read_instance().await.unwrap();
        assert_eq!(tx.newest_price_catalogue_checksum().await.unwrap().as_deref(), Some("bbb"));
        let newest = tx.newest_price_catalogue().await.unwrap().unwrap();
        assert_eq!((newest.version.as_str(), newest.body.as_str()), ("2", "{\"v\":2}"));
        tx.commit().await.unwrap();
    }
}

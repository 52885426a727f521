#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Host enrollments on every backend: duplicates, decisions, the single
//! bundle fetch and removal are conditional, expiry is by timestamp.

use attest_store::testing::for_each_backend;
use attest_store::{
    HostEnrollmentRecord, HostEnrollmentRepo, Store, HOST_APPROVED, HOST_DENIED, HOST_ENROLLED,
    HOST_PENDING, HOST_REMOVED,
};

const T0: &str = "2026-05-14T17:00:00.000000Z";
const T1: &str = "2026-05-14T18:00:00.000000Z";
const EXPIRES: &str = "2026-05-15T17:00:00.000000Z";
const LATER: &str = "2026-05-15T17:00:01.000000Z";

fn request(id: &str, machine_id: &str, fqdn: &str) -> HostEnrollmentRecord {
    HostEnrollmentRecord {
        id: id.into(),
        token_sha256: format!("{id:0>64}"),
        machine_id: machine_id.into(),
        fqdn: fqdn.into(),
        ip_address: "192.0.2.1".into(),
        os_details: r#"{"name":"Debian"}"#.into(),
        status: HOST_PENDING.into(),
        requested_at: T0.into(),
        expires_at: EXPIRES.into(),
        ..HostEnrollmentRecord::default()
    }
}

async fn insert(store: &Store, r: &HostEnrollmentRecord) {
    let mut tx = store.begin_write().await.unwrap();
    HostEnrollmentRepo::lock_requests(&mut tx).await.unwrap();
    HostEnrollmentRepo::insert(&mut tx, r).await.unwrap();
    tx.commit().await.unwrap();
}

async fn taken(store: &Store, machine_id: &str, fqdn: &str, now: &str) -> Option<&'static str> {
    let mut tx = store.begin_write().await.unwrap();
    let t = HostEnrollmentRepo::taken(&mut tx, machine_id, fqdn, now)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    t
}

#[tokio::test]
async fn requests_are_found_by_token_hash_and_duplicates_are_named() {
    for_each_backend(|store| async move {
        let a = request("a", "m-a", "a.example.test");
        insert(&store, &a).await;
        let repo = store.host_enrollments();
        assert_eq!(
            repo.by_token(&a.token_sha256).await.unwrap(),
            Some(a.clone())
        );
        assert_eq!(repo.by_token(&"f".repeat(64)).await.unwrap(), None);
        assert_eq!(repo.get("a").await.unwrap(), Some(a.clone()));

        assert_eq!(
            taken(&store, "m-a", "x.example.test", T1).await,
            Some("machine_id")
        );
        assert_eq!(
            taken(&store, "m-x", "a.example.test", T1).await,
            Some("fqdn")
        );
        assert_eq!(taken(&store, "m-x", "x.example.test", T1).await, None);
        // An expired pending request no longer holds its names.
        assert_eq!(taken(&store, "m-a", "a.example.test", LATER).await, None);

        // The same token hash twice is a conflict.
        let mut tx = store.begin_write().await.unwrap();
        let dup = HostEnrollmentRecord {
            id: "b".into(),
            ..a.clone()
        };
        let err = HostEnrollmentRepo::insert(&mut tx, &dup).await.unwrap_err();
        assert!(
            matches!(err, attest_store::StoreError::Conflict(_)),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn decisions_fetch_and_removal_happen_once() {
    for_each_backend(|store| async move {
        insert(&store, &request("a", "m-a", "a.example.test")).await;
        insert(&store, &request("b", "m-b", "b.example.test")).await;
        insert(&store, &request("c", "m-c", "c.example.test")).await;
        let mut tx = store.begin_write().await.unwrap();
        assert!(
            HostEnrollmentRepo::decide(&mut tx, "a", HOST_APPROVED, T1, "alice", None)
                .await
                .unwrap()
        );
        // Decided already.
        assert!(
            !HostEnrollmentRepo::decide(&mut tx, "a", HOST_DENIED, T1, "bob", None)
                .await
                .unwrap()
        );
        assert!(
            HostEnrollmentRepo::decide(&mut tx, "b", HOST_DENIED, T1, "bob", Some("unknown"))
                .await
                .unwrap()
        );
        // Expired: no decision any more.
        assert!(
            !HostEnrollmentRepo::decide(&mut tx, "c", HOST_APPROVED, LATER, "alice", None)
                .await
                .unwrap()
        );
        // Only an approved request is consumed, once.
        assert!(!HostEnrollmentRepo::consume(&mut tx, "b", "01", T1)
            .await
            .unwrap());
        assert!(HostEnrollmentRepo::consume(&mut tx, "a", "0a", T1)
            .await
            .unwrap());
        assert!(!HostEnrollmentRepo::consume(&mut tx, "a", "0b", T1)
            .await
            .unwrap());
        // Removal: enrolled hosts only (a denied one has nothing to remove).
        assert!(!HostEnrollmentRepo::remove(&mut tx, "b", T1, "carol", None)
            .await
            .unwrap());
        assert!(
            HostEnrollmentRepo::remove(&mut tx, "a", T1, "carol", Some("retired"))
                .await
                .unwrap()
        );
        assert!(!HostEnrollmentRepo::remove(&mut tx, "a", T1, "carol", None)
            .await
            .unwrap());
        tx.commit().await.unwrap();

        let repo = store.host_enrollments();
        let a = repo.get("a").await.unwrap().unwrap();
        assert_eq!(a.status, HOST_REMOVED);
        assert_eq!(a.decided_by.as_deref(), Some("alice"));
        assert_eq!(a.cert_serial.as_deref(), Some("0a"));
        assert_eq!(a.enrolled_at.as_deref(), Some(T1));
        assert_eq!(a.removed_by.as_deref(), Some("carol"));
        assert_eq!(a.reason.as_deref(), Some("retired"));
        let b = repo.get("b").await.unwrap().unwrap();
        assert_eq!(
            (b.status.as_str(), b.reason.as_deref()),
            (HOST_DENIED, Some("unknown"))
        );

        let ids = |v: Vec<HostEnrollmentRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(repo.list(None, 10).await.unwrap()), ["a", "b", "c"]);
        assert_eq!(ids(repo.list(Some(HOST_PENDING), 10).await.unwrap()), ["c"]);
        assert_eq!(ids(repo.list(Some(HOST_REMOVED), 10).await.unwrap()), ["a"]);
        assert!(repo.list(Some(HOST_ENROLLED), 10).await.unwrap().is_empty());
        assert_eq!(ids(repo.list(None, 2).await.unwrap()), ["a", "b"]);

        // A removed host frees its names for a new request.
        assert_eq!(taken(&store, "m-a", "a.example.test", T1).await, None);
    })
    .await;
}

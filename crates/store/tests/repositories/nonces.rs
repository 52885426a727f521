//! Attestation nonces: capacity, redemption, purging, races.

use super::*;

// ----------------------------------------------------------------- nonces

const NOW: i64 = 1_778_778_300_000;
const TTL: i64 = 60_000;

pub(crate) fn nonce_at<'a>(id: &'a str, issued_at_ms: i64) -> NewNonce<'a> {
    NewNonce {
        nonce_id: id,
        nonce: "q83vEjRWeJA=",
        issued_at_ms,
        expires_at_ms: issued_at_ms + TTL,
    }
}

pub(crate) async fn issue(store: &Store, nonce: &NewNonce<'_>, capacity: u32) -> bool {
    let mut tx = store.begin_write().await.unwrap();
    let stored = NonceRepo::issue(&mut tx, nonce, capacity).await.unwrap();
    tx.commit().await.unwrap();
    stored
}

async fn redeem(store: &Store, id: &str, now_ms: i64) -> Redeemed {
    let mut tx = store.begin_write().await.unwrap();
    let r = NonceRepo::redeem(&mut tx, id, now_ms).await.unwrap();
    tx.commit().await.unwrap();
    r
}

async fn nonce_rows(store: &Store) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM attest_nonces")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

/// `peek` answers what `redeem` would, and spends nothing.
#[tokio::test]
async fn peek_reads_a_nonce_without_spending_it() {
    for_each_backend(|store| async move {
        let peek = |id: &'static str, now: i64| {
            let store = store.clone();
            async move {
                let mut conn = store.pool().acquire().await.unwrap();
                NonceRepo::peek(&mut conn, id, now).await.unwrap()
            }
        };
        assert!(issue(&store, &nonce_at("p1", NOW), 10).await);
        let fresh = Redeemed::Fresh("q83vEjRWeJA=".into());
        assert_eq!(peek("p1", NOW + 1).await, fresh);
        assert_eq!(peek("p1", NOW + 2).await, fresh, "still fresh");
        assert_eq!(peek("p1", NOW + TTL).await, Redeemed::Expired);
        assert_eq!(peek("nope", NOW).await, Redeemed::Unknown);
        assert_eq!(redeem(&store, "p1", NOW + 3).await, fresh);
        assert_eq!(peek("p1", NOW + 4).await, Redeemed::AlreadyConsumed);
    })
    .await;
}

#[tokio::test]
async fn nonce_capacity_counts_only_outstanding() {
    for_each_backend(|store| async move {
        assert!(!issue(&store, &nonce_at("zero", NOW), 0).await);
        assert!(issue(&store, &nonce_at("n1", NOW), 3).await);
        assert!(issue(&store, &nonce_at("n2", NOW + 1), 3).await);
        assert!(issue(&store, &nonce_at("n3", NOW + 2), 3).await);
        // At capacity: refused and not stored.
        assert!(!issue(&store, &nonce_at("n4", NOW + 3), 3).await);
        assert_eq!(redeem(&store, "n4", NOW + 4).await, Redeemed::Unknown);
        assert_eq!(redeem(&store, "zero", NOW + 4).await, Redeemed::Unknown);
        // A larger capacity admits more.
        assert!(issue(&store, &nonce_at("n5", NOW + 5), 4).await);
        assert!(!issue(&store, &nonce_at("n6", NOW + 6), 4).await);

        // A consumed nonce frees its slot.
        assert!(matches!(
            redeem(&store, "n2", NOW + 7).await,
            Redeemed::Fresh(_)
        ));
        assert!(issue(&store, &nonce_at("n7", NOW + 8), 4).await);
        assert!(!issue(&store, &nonce_at("n8", NOW + 9), 4).await);

        // An expired one too: at n1's expiry instant it no longer counts.
        assert!(!issue(&store, &nonce_at("n9", NOW + TTL - 1), 4).await);
        assert!(issue(&store, &nonce_at("n10", NOW + TTL), 4).await);
        assert!(!issue(&store, &nonce_at("n11", NOW + TTL), 4).await);
        // Expired and consumed rows stay (within retention) for the replies.
        assert_eq!(redeem(&store, "n1", NOW + TTL).await, Redeemed::Expired);
        assert_eq!(
            redeem(&store, "n2", NOW + TTL).await,
            Redeemed::AlreadyConsumed
        );
        assert_eq!(nonce_rows(&store).await, 6);
    })
    .await;
}

/// What the metrics extension reads: outstanding challenges at an instant.
#[tokio::test]
async fn nonces_outstanding_are_counted_at_an_instant() {
    for_each_backend(|store| async move {
        let count = |now: i64| {
            let store = store.clone();
            async move { store.nonces().count_outstanding(now).await.unwrap() }
        };
        assert_eq!(count(NOW).await, 0);
        assert!(issue(&store, &nonce_at("c1", NOW), 10).await);
        assert!(issue(&store, &nonce_at("c2", NOW + 10), 10).await);
        assert!(issue(&store, &nonce_at("c3", NOW + 20), 10).await);
        assert_eq!(count(NOW + 30).await, 3);
        // Redeemed: no longer outstanding.
        assert!(matches!(
            redeem(&store, "c2", NOW + 40).await,
            Redeemed::Fresh(_)
        ));
        assert_eq!(count(NOW + 50).await, 2);
        // Expired at its expiry instant, as `issue`'s capacity counts.
        assert_eq!(count(NOW + TTL - 1).await, 2);
        assert_eq!(count(NOW + TTL).await, 1);
        assert_eq!(count(NOW + TTL + 20).await, 0);
    })
    .await;
}

#[tokio::test]
async fn nonce_redeem_fresh_once_then_replay_expired_unknown() {
    for_each_backend(|store| async move {
        let n = NewNonce {
            nonce_id: "id-1",
            nonce: "3q2+7w==",
            issued_at_ms: NOW,
            expires_at_ms: NOW + TTL,
        };
        assert!(issue(&store, &n, 10).await);
        assert!(issue(&store, &nonce_at("id-2", NOW), 10).await);
        assert!(issue(&store, &nonce_at("id-3", NOW), 10).await);

        assert_eq!(
            redeem(&store, "id-1", NOW + 1).await,
            Redeemed::Fresh("3q2+7w==".into())
        );
        assert_eq!(
            redeem(&store, "id-1", NOW + 2).await,
            Redeemed::AlreadyConsumed
        );
        // A replay after expiry is still a replay.
        assert_eq!(
            redeem(&store, "id-1", NOW + TTL + 5).await,
            Redeemed::AlreadyConsumed
        );
        // Last valid millisecond, then the expiry instant itself.
        assert_eq!(
            redeem(&store, "id-2", NOW + TTL - 1).await,
            Redeemed::Fresh("q83vEjRWeJA=".into())
        );
        assert_eq!(redeem(&store, "id-3", NOW + TTL).await, Redeemed::Expired);
        // An expired nonce is not consumed by the attempt.
        assert_eq!(redeem(&store, "id-3", NOW + TTL).await, Redeemed::Expired);
        assert_eq!(redeem(&store, "nope", NOW).await, Redeemed::Unknown);

        // A redeem in a rolled-back transaction does not consume.
        assert!(issue(&store, &nonce_at("id-4", NOW), 10).await);
        let mut tx = store.begin_write().await.unwrap();
        assert!(matches!(
            NonceRepo::redeem(&mut tx, "id-4", NOW + 1).await.unwrap(),
            Redeemed::Fresh(_)
        ));
        tx.rollback().await.unwrap();
        assert!(matches!(
            redeem(&store, "id-4", NOW + 2).await,
            Redeemed::Fresh(_)
        ));
    })
    .await;
}

async fn purge(store: &Store, now_ms: i64) -> u64 {
    let mut tx = store.begin_write().await.unwrap();
    let n = NonceRepo::purge(&mut tx, now_ms).await.unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn nonces_past_retention_are_purged_and_issuing_does_not_purge() {
    for_each_backend(|store| async move {
        assert!(issue(&store, &nonce_at("old-used", NOW), 10).await);
        assert!(issue(&store, &nonce_at("old-idle", NOW), 10).await);
        assert!(issue(&store, &nonce_at("later", NOW + 1000), 10).await);
        assert!(matches!(
            redeem(&store, "old-used", NOW + 1).await,
            Redeemed::Fresh(_)
        ));
        let expiry = NOW + TTL;

        // Exactly at the retention boundary: kept.
        assert_eq!(purge(&store, expiry + NONCE_RETENTION_MS).await, 0);
        assert_eq!(nonce_rows(&store).await, 3);
        assert_eq!(
            redeem(&store, "old-used", expiry + NONCE_RETENTION_MS).await,
            Redeemed::AlreadyConsumed
        );
        assert_eq!(
            redeem(&store, "old-idle", expiry + NONCE_RETENTION_MS).await,
            Redeemed::Expired
        );

        // Neither redeeming nor issuing purges; the purge past the
        // boundary does.
        let later = expiry + NONCE_RETENTION_MS + 1;
        assert!(issue(&store, &nonce_at("tick", later), 10).await);
        assert_eq!(nonce_rows(&store).await, 4);
        assert_eq!(purge(&store, later).await, 2);
        assert_eq!(nonce_rows(&store).await, 2);
        assert_eq!(redeem(&store, "old-used", later).await, Redeemed::Unknown);
        assert_eq!(redeem(&store, "old-idle", later).await, Redeemed::Unknown);
        // The younger one (expiring 1 s later) is still remembered.
        assert_eq!(redeem(&store, "later", later).await, Redeemed::Expired);
    })
    .await;
}

/// Of concurrent redeemers of one nonce exactly one gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redeems_yield_exactly_one_fresh() {
    for_each_backend(|store| async move {
        for round in 0..10 {
            let id = format!("race-{round}");
            assert!(issue(&store, &nonce_at(&id, NOW), 100).await);
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
            let mut tasks = Vec::new();
            for _ in 0..2 {
                let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    redeem(&store, &id, NOW + 1).await
                }));
            }
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.unwrap());
            }
            let fresh = outcomes
                .iter()
                .filter(|r| matches!(r, Redeemed::Fresh(_)))
                .count();
            assert_eq!(fresh, 1, "round {round}: {outcomes:?}");
            assert!(
                outcomes.contains(&Redeemed::AlreadyConsumed),
                "round {round}: {outcomes:?}"
            );
        }
    })
    .await;
}

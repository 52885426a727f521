#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The machine lifecycle tables on every backend: machines (insert, get,
//! lookups, list/count, lock/save and concurrent changes), attestation
//! nonces (capacity, redeem, expiry, purge, concurrent redeem) and
//! dual-control approval votes.

use std::time::{Duration, Instant};

use attest_domain::audit::format_timestamp;
use attest_domain::machine::{MachineStatus, Role};
use attest_store::sqlx::{self, Row};
use attest_store::testing::for_each_backend;
use attest_store::{
    AkCredentialRecord, AkCredentialRedeemed, AkCredentialRepo, ApprovalRepo, Backend,
    EnrollmentCertRepo, IssuedCertRecord, MachineFilter, MachineRecord, MachineRepo,
    NewAkCredential, NewNonce, NonceRepo, Redeemed, Store, StoreError, VoteRecord,
    NONCE_RETENTION_MS,
};
use chrono::{DateTime, Utc};

// ---------------------------------------------------------------- helpers

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-14T17:05:00.123456Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// `t0 + secs`, in the stored format.
fn ts(secs: i64) -> String {
    format_timestamp(t0() + chrono::Duration::seconds(secs))
}

fn hex64(seed: &str) -> String {
    format!("{seed:0>64}")
}

fn hex96(seed: &str) -> String {
    format!("{seed:0>96}")
}

/// A freshly registered machine: every optional field empty.
fn machine(id: &str, registered_secs: i64) -> MachineRecord {
    MachineRecord {
        machine_id: id.to_owned(),
        ek_fingerprint: hex64(&format!("f{id}")),
        ek_sha256: Some(hex64(&format!("a{id}"))),
        ek_sha384: Some(hex96(&format!("b{id}"))),
        ek_material: None,
        ek_source: "register".into(),
        hw_uuid: None,
        hw_mac: None,
        hw_serial: None,
        hw_product: None,
        role: Role::WorkerApp,
        status: MachineStatus::PendingApproval,
        hostname: None,
        assigned_ip: None,
        wipe_pending: false,
        config_token_hash: None,
        config_token_issued_at: None,
        config_token_consumed_at: None,
        schematic_id: None,
        iso_url: None,
        ak_public_pem: None,
        ak_activated_at: None,
        ak_name: None,
        quote_reset_count: None,
        quote_restart_count: None,
        last_quote: None,
        last_quote_signature: None,
        last_attest_at: None,
        registered_at: ts(registered_secs),
        attested_at: None,
        locked_at: None,
        revoked_at: None,
        updated_at: ts(registered_secs),
        version: 0,
        failed_attestations: 0,
    }
}

/// A machine with every field set, each to a distinct value.
fn full_machine() -> MachineRecord {
    MachineRecord {
        machine_id: "550e8400-e29b-41d4-a716-446655440000".into(),
        ek_fingerprint: hex64("fe"),
        ek_sha256: Some(hex64("a256")),
        ek_sha384: Some(hex96("b384")),
        ek_material: Some("TUlJQmlqQU5CZ2txaGtpRzl3MEJBUUVGQUFPQw==".into()),
        ek_source: "attest".into(),
        hw_uuid: Some("4c4c4544-0042-3510-8052-b4c04f4e3232".into()),
        hw_mac: Some("52:54:00:12:34:56".into()),
        hw_serial: Some("SN-0001".into()),
        hw_product: Some("PowerEdge R650".into()),
        role: Role::Controlplane,
        status: MachineStatus::Attested,
        hostname: Some("cp-1".into()),
        assigned_ip: Some("10.0.0.11".into()),
        wipe_pending: true,
        config_token_hash: Some(hex64("c0ffee")),
        config_token_issued_at: Some(ts(10)),
        config_token_consumed_at: Some(ts(11)),
        schematic_id: Some("376567988ad370138ad8b2698212367b".into()),
        iso_url: Some("https://factory.example/image/376567988ad3/metal-amd64.iso".into()),
        ak_public_pem: Some(
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQY=\n-----END PUBLIC KEY-----\n".into(),
        ),
        ak_activated_at: Some(ts(12)),
        ak_name: Some("000b".to_owned() + &"ab".repeat(32)),
        quote_reset_count: Some(42),
        quote_restart_count: Some(i64::from(u32::MAX) + 7),
        last_quote: Some("/1RDR4AYACIAC".into()),
        last_quote_signature: Some("ABgACwAgQk9PVA==".into()),
        last_attest_at: Some(ts(13)),
        registered_at: ts(1),
        attested_at: Some(ts(14)),
        locked_at: Some(ts(15)),
        revoked_at: Some(ts(16)),
        updated_at: ts(17),
        version: 7,
        failed_attestations: 3,
    }
}

async fn try_insert(store: &Store, m: &MachineRecord) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await.unwrap();
    MachineRepo::insert(&mut tx, m).await?;
    tx.commit().await.unwrap();
    Ok(())
}

async fn insert(store: &Store, m: &MachineRecord) {
    try_insert(store, m).await.unwrap();
}

async fn find_by_ek(
    store: &Store,
    sha256: Option<&str>,
    sha384: Option<&str>,
) -> Option<MachineRecord> {
    let mut conn = store.pool().acquire().await.unwrap();
    MachineRepo::find_by_ek(&mut conn, sha256, sha384)
        .await
        .unwrap()
}

fn ids(machines: &[MachineRecord]) -> Vec<&str> {
    machines.iter().map(|m| m.machine_id.as_str()).collect()
}

// --------------------------------------------------------------- machines

#[tokio::test]
async fn insert_and_get_round_trip_every_field() {
    for_each_backend(|store| async move {
        let full = full_machine();
        insert(&store, &full).await;
        let got = store.machines().get(&full.machine_id).await.unwrap();
        assert_eq!(got.as_ref(), Some(&full));

        // NULLs and false come back as such, not as "" or 0.
        let bare = machine("m-bare", 2);
        insert(&store, &bare).await;
        assert_eq!(store.machines().get("m-bare").await.unwrap(), Some(bare));

        // The same read inside a transaction.
        let mut tx = store.begin_write().await.unwrap();
        let in_tx = MachineRepo::get_in(&mut tx, &full.machine_id)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(in_tx, Some(full));

        assert_eq!(store.machines().get("no-such-machine").await.unwrap(), None);
    })
    .await;
}

/// What the metrics extension reads: machines per stored status,
/// including a status this binary does not know.
#[tokio::test]
async fn machines_are_counted_by_status() {
    for_each_backend(|store| async move {
        assert_eq!(store.machines().count_by_status().await.unwrap(), vec![]);
        let mut approved = machine("m-a", 1);
        approved.status = MachineStatus::Registered;
        insert(&store, &approved).await;
        insert(&store, &machine("m-p1", 2)).await;
        insert(&store, &machine("m-p2", 3)).await;
        sqlx::query("UPDATE machines SET status = 'from_the_future' WHERE machine_id = 'm-p2'")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            store.machines().count_by_status().await.unwrap(),
            vec![
                ("from_the_future".to_owned(), 1),
                ("pending_approval".to_owned(), 1),
                ("registered".to_owned(), 1),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn insert_is_not_visible_after_rollback() {
    for_each_backend(|store| async move {
        let mut tx = store.begin_write().await.unwrap();
        MachineRepo::insert(&mut tx, &machine("m1", 1))
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(store.machines().get("m1").await.unwrap(), None);
        assert_eq!(
            store
                .machines()
                .count(MachineFilter::default())
                .await
                .unwrap(),
            0
        );
    })
    .await;
}

#[tokio::test]
async fn find_by_ek_matches_either_digest() {
    for_each_backend(|store| async move {
        let a = machine("m-a", 1);
        let b = machine("m-b", 2);
        // An offline import knows only one digest.
        let only256 = MachineRecord {
            ek_sha384: None,
            ..machine("m-256", 3)
        };
        let only384 = MachineRecord {
            ek_sha256: None,
            ..machine("m-384", 4)
        };
        for m in [&a, &b, &only256, &only384] {
            insert(&store, m).await;
        }
        let a256 = a.ek_sha256.as_deref();
        let a384 = a.ek_sha384.as_deref();

        assert_eq!(find_by_ek(&store, a256, None).await.as_ref(), Some(&a));
        assert_eq!(find_by_ek(&store, None, a384).await.as_ref(), Some(&a));
        assert_eq!(find_by_ek(&store, a256, a384).await.as_ref(), Some(&a));
        // One digest matching is enough, the other may be wrong.
        let wrong256 = hex64("dead");
        let wrong384 = hex96("beef");
        assert_eq!(
            find_by_ek(&store, Some(&wrong256), a384).await.as_ref(),
            Some(&a)
        );
        assert_eq!(
            find_by_ek(&store, a256, Some(&wrong384)).await.as_ref(),
            Some(&a)
        );
        assert_eq!(
            find_by_ek(&store, only256.ek_sha256.as_deref(), None)
                .await
                .as_ref(),
            Some(&only256)
        );
        assert_eq!(
            find_by_ek(&store, None, only384.ek_sha384.as_deref())
                .await
                .as_ref(),
            Some(&only384)
        );
        // A digest is only looked up in its own column.
        assert_eq!(find_by_ek(&store, None, a256).await, None);
        assert_eq!(
            find_by_ek(&store, only384.ek_sha384.as_deref(), None).await,
            None
        );
        // Nothing matching, or nothing asked: NULL digests never match.
        assert_eq!(
            find_by_ek(&store, Some(&wrong256), Some(&wrong384)).await,
            None
        );
        assert_eq!(find_by_ek(&store, None, None).await, None);
        assert_eq!(find_by_ek(&store, Some(""), Some("")).await, None);
        // Digests of two machines: the older registration wins.
        assert_eq!(
            find_by_ek(&store, b.ek_sha256.as_deref(), a384)
                .await
                .as_ref(),
            Some(&a)
        );

        // The same lookup inside a write transaction.
        let mut tx = store.begin_write().await.unwrap();
        let in_tx = MachineRepo::find_by_ek(&mut tx, None, b.ek_sha384.as_deref())
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(in_tx, Some(b));
    })
    .await;
}

#[tokio::test]
async fn duplicate_ek_or_id_is_a_conflict() {
    for_each_backend(|store| async move {
        let a = machine("m-a", 1);
        insert(&store, &a).await;

        let same256 = MachineRecord {
            ek_sha256: a.ek_sha256.clone(),
            ..machine("m-b", 2)
        };
        let err = try_insert(&store, &same256).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        let same384 = MachineRecord {
            ek_sha384: a.ek_sha384.clone(),
            ..machine("m-c", 3)
        };
        let err = try_insert(&store, &same384).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        let same_id = MachineRecord {
            machine_id: a.machine_id.clone(),
            ..machine("m-d", 4)
        };
        let err = try_insert(&store, &same_id).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        // Nothing of the refused inserts was kept; the original is intact.
        assert_eq!(
            store
                .machines()
                .count(MachineFilter::default())
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.machines().get("m-a").await.unwrap(), Some(a));

        // Several machines may lack the same digest (NULL is not a duplicate).
        for (i, id) in ["n-1", "n-2"].into_iter().enumerate() {
            insert(
                &store,
                &MachineRecord {
                    ek_sha384: None,
                    ..machine(id, 10 + i as i64)
                },
            )
            .await;
        }
        assert_eq!(
            store
                .machines()
                .count(MachineFilter::default())
                .await
                .unwrap(),
            3
        );
    })
    .await;
}

#[tokio::test]
async fn list_filters_orders_pages_and_counts() {
    for_each_backend(|store| async move {
        use MachineStatus::{Attested, PendingApproval, Registered};
        use Role::{Controlplane, Linux, WorkerApp};
        // (id, registered_at offset, status, role); inserted out of order.
        // m-b1/m-b2/m-b3 share a registration time, so the id breaks the tie.
        let rows = [
            ("m-e", 50, Attested, WorkerApp),
            ("m-b3", 20, Registered, Controlplane),
            ("m-a", 10, PendingApproval, WorkerApp),
            ("m-b1", 20, Attested, Controlplane),
            ("m-f", 60, PendingApproval, Linux),
            ("m-d", 40, Attested, Controlplane),
            ("m-b2", 20, PendingApproval, WorkerApp),
            ("m-c", 30, Registered, WorkerApp),
        ];
        for (id, secs, status, role) in rows {
            insert(
                &store,
                &MachineRecord {
                    status,
                    role,
                    ..machine(id, secs)
                },
            )
            .await;
        }
        let repo = store.machines();
        let all = MachineFilter::default();
        let by_status = MachineFilter {
            status: Some(Attested),
            role: None,
        };
        let by_role = MachineFilter {
            status: None,
            role: Some(Controlplane),
        };
        let both = MachineFilter {
            status: Some(PendingApproval),
            role: Some(WorkerApp),
        };
        let none_match = MachineFilter {
            status: Some(MachineStatus::Revoked),
            role: None,
        };
        let cases: [(MachineFilter, Vec<&str>); 5] = [
            (
                all,
                vec!["m-a", "m-b1", "m-b2", "m-b3", "m-c", "m-d", "m-e", "m-f"],
            ),
            (by_status, vec!["m-b1", "m-d", "m-e"]),
            (by_role, vec!["m-b1", "m-b3", "m-d"]),
            (both, vec!["m-a", "m-b2"]),
            (none_match, vec![]),
        ];
        for (filter, expected) in &cases {
            let listed = repo.list(*filter, 100, 0).await.unwrap();
            assert_eq!(ids(&listed), *expected, "{filter:?}");
            assert_eq!(
                repo.count(*filter).await.unwrap(),
                expected.len() as i64,
                "{filter:?}"
            );
            for m in &listed {
                assert!(filter.status.is_none_or(|s| s == m.status), "{m:?}");
                assert!(filter.role.is_none_or(|r| r == m.role), "{m:?}");
            }
        }

        // Paging: consecutive pages tile the full list, the last is short.
        let mut paged = Vec::new();
        for page in 0..3 {
            let got = repo.list(all, 3, page * 3).await.unwrap();
            assert_eq!(got.len(), if page < 2 { 3 } else { 2 }, "page {page}");
            paged.extend(got);
        }
        assert_eq!(ids(&paged), cases[0].1);
        assert!(repo.list(all, 3, 8).await.unwrap().is_empty());
        assert!(repo.list(all, 0, 0).await.unwrap().is_empty());
        assert_eq!(ids(&repo.list(by_role, 1, 1).await.unwrap()), vec!["m-b3"]);

        // Keyset batches (the unpaged list streams them) tile every filter,
        // across the tie at one registration time.
        for (filter, expected) in &cases {
            for size in [1, 2, 3, 100] {
                let mut read: Vec<MachineRecord> = Vec::new();
                loop {
                    let after = read
                        .last()
                        .map(|m| (m.registered_at.as_str(), m.machine_id.as_str()));
                    let batch = repo.list_after(*filter, after, size).await.unwrap();
                    let short = (batch.len() as i64) < size;
                    read.extend(batch);
                    if short {
                        break;
                    }
                }
                assert_eq!(ids(&read), *expected, "{filter:?} in batches of {size}");
            }
        }
        assert_eq!(
            ids(&repo.list(by_status, 10, 2).await.unwrap()),
            vec!["m-e"]
        );
        // Listed records are whole, as get returns them.
        let listed = repo.list(all, 1, 0).await.unwrap();
        assert_eq!(Some(&listed[0]), repo.get("m-a").await.unwrap().as_ref());
    })
    .await;
}

#[tokio::test]
async fn lock_bumps_version_and_returns_the_record() {
    for_each_backend(|store| async move {
        let m = machine("m1", 1);
        insert(&store, &m).await;

        let mut tx = store.begin_write().await.unwrap();
        assert_eq!(MachineRepo::lock(&mut tx, "unknown").await.unwrap(), None);
        let locked = MachineRepo::lock(&mut tx, "m1").await.unwrap().unwrap();
        assert_eq!(locked.version, m.version + 1);
        assert_eq!(
            locked,
            MachineRecord {
                version: m.version + 1,
                ..m.clone()
            }
        );
        tx.commit().await.unwrap();
        assert_eq!(
            store.machines().get("m1").await.unwrap().unwrap().version,
            1
        );

        // A rolled-back lock leaves the version alone.
        let mut tx = store.begin_write().await.unwrap();
        let again = MachineRepo::lock(&mut tx, "m1").await.unwrap().unwrap();
        assert_eq!(again.version, 2);
        tx.rollback().await.unwrap();
        assert_eq!(
            store.machines().get("m1").await.unwrap().unwrap().version,
            1
        );
        // No row was created for the unknown id.
        assert_eq!(store.machines().get("unknown").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn save_persists_changes_but_not_id_or_ek() {
    for_each_backend(|store| async move {
        let m = machine("m1", 1);
        insert(&store, &m).await;
        let other = machine("m2", 2);
        insert(&store, &other).await;

        let mut tx = store.begin_write().await.unwrap();
        let mut rec = MachineRepo::lock(&mut tx, "m1").await.unwrap().unwrap();
        rec.status = MachineStatus::Registered;
        rec.role = Role::Controlplane;
        rec.hostname = Some("cp-1".into());
        rec.assigned_ip = Some("10.0.0.11".into());
        rec.config_token_hash = Some(hex64("70ce"));
        rec.config_token_issued_at = Some(ts(5));
        rec.wipe_pending = true;
        rec.quote_reset_count = Some(3);
        rec.updated_at = ts(5);
        // Fields save() must not write.
        let mut sent = rec.clone();
        sent.ek_fingerprint = hex64("ffff");
        sent.ek_sha256 = Some(hex64("9999"));
        sent.ek_sha384 = None;
        sent.version = 99;
        MachineRepo::save(&mut tx, &sent).await.unwrap();
        // Visible inside the transaction, not outside until commit.
        assert_eq!(
            MachineRepo::get_in(&mut tx, "m1").await.unwrap().as_ref(),
            Some(&rec)
        );
        tx.commit().await.unwrap();

        let stored = store.machines().get("m1").await.unwrap().unwrap();
        assert_eq!(stored, rec);
        assert_eq!(stored.machine_id, m.machine_id);
        assert_eq!(stored.ek_fingerprint, m.ek_fingerprint);
        assert_eq!(stored.ek_sha256, m.ek_sha256);
        assert_eq!(stored.ek_sha384, m.ek_sha384);
        assert_eq!(stored.version, 1);
        assert!(stored.config_token_outstanding());
        // Still found by its original EK.
        assert_eq!(
            find_by_ek(&store, m.ek_sha256.as_deref(), None).await,
            Some(stored.clone())
        );
        // The other machine is untouched.
        assert_eq!(
            store.machines().get("m2").await.unwrap(),
            Some(other.clone())
        );

        // Optional fields can be cleared again.
        let mut tx = store.begin_write().await.unwrap();
        let mut rec = MachineRepo::lock(&mut tx, "m1").await.unwrap().unwrap();
        rec.hostname = None;
        rec.config_token_hash = None;
        rec.config_token_issued_at = None;
        rec.wipe_pending = false;
        rec.quote_reset_count = None;
        MachineRepo::save(&mut tx, &rec).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.machines().get("m1").await.unwrap(), Some(rec));

        // A rolled-back save changes nothing.
        let before = store.machines().get("m2").await.unwrap().unwrap();
        let mut tx = store.begin_write().await.unwrap();
        let mut rec = MachineRepo::lock(&mut tx, "m2").await.unwrap().unwrap();
        rec.status = MachineStatus::Revoked;
        MachineRepo::save(&mut tx, &rec).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(store.machines().get("m2").await.unwrap(), Some(before));
    })
    .await;
}

#[tokio::test]
async fn save_of_unknown_machine_is_corrupt() {
    for_each_backend(|store| async move {
        insert(&store, &machine("m1", 1)).await;
        let mut tx = store.begin_write().await.unwrap();
        let err = MachineRepo::save(&mut tx, &machine("ghost", 2))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(msg) if msg.contains("ghost")),
            "{err:?}"
        );
        tx.rollback().await.unwrap();
        assert_eq!(store.machines().get("ghost").await.unwrap(), None);
        assert_eq!(
            store
                .machines()
                .count(MachineFilter::default())
                .await
                .unwrap(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn save_of_a_taken_config_token_hash_is_a_conflict() {
    for_each_backend(|store| async move {
        let token = hex64("70ce");
        insert(
            &store,
            &MachineRecord {
                config_token_hash: Some(token.clone()),
                ..machine("m1", 1)
            },
        )
        .await;
        insert(&store, &machine("m2", 2)).await;
        let mut tx = store.begin_write().await.unwrap();
        let mut rec = MachineRepo::lock(&mut tx, "m2").await.unwrap().unwrap();
        rec.config_token_hash = Some(token);
        let err = MachineRepo::save(&mut tx, &rec).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        tx.rollback().await.unwrap();
        assert_eq!(
            store
                .machines()
                .get("m2")
                .await
                .unwrap()
                .unwrap()
                .config_token_hash,
            None
        );
    })
    .await;
}

#[tokio::test]
async fn find_by_token_hash_and_outstanding_tokens() {
    for_each_backend(|store| async move {
        let outstanding = MachineRecord {
            config_token_hash: Some(hex64("0001")),
            config_token_issued_at: Some(ts(2)),
            ..machine("m-out", 1)
        };
        let consumed = MachineRecord {
            config_token_hash: Some(hex64("0002")),
            config_token_issued_at: Some(ts(3)),
            config_token_consumed_at: Some(ts(4)),
            ..machine("m-used", 2)
        };
        let none = machine("m-none", 3);
        for m in [&outstanding, &consumed, &none] {
            insert(&store, m).await;
        }
        let repo = store.machines();
        assert_eq!(
            repo.find_by_token_hash(&hex64("0001")).await.unwrap(),
            Some(outstanding.clone())
        );
        // A consumed token still finds its machine (the caller tells replay).
        assert_eq!(
            repo.find_by_token_hash(&hex64("0002")).await.unwrap(),
            Some(consumed.clone())
        );
        assert_eq!(repo.find_by_token_hash(&hex64("0003")).await.unwrap(), None);
        assert_eq!(repo.find_by_token_hash("").await.unwrap(), None);

        let stored = |id: &'static str| {
            let store = store.clone();
            async move { store.machines().get(id).await.unwrap().unwrap() }
        };
        assert!(stored("m-out").await.config_token_outstanding());
        assert!(!stored("m-used").await.config_token_outstanding());
        assert!(!stored("m-none").await.config_token_outstanding());

        // Consuming the token through save() ends "outstanding".
        let mut tx = store.begin_write().await.unwrap();
        let mut rec = MachineRepo::lock(&mut tx, "m-out").await.unwrap().unwrap();
        rec.config_token_consumed_at = Some(ts(9));
        MachineRepo::save(&mut tx, &rec).await.unwrap();
        tx.commit().await.unwrap();
        let after = repo
            .find_by_token_hash(&hex64("0001"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.machine_id, "m-out");
        assert!(!after.config_token_outstanding());
    })
    .await;
}

#[test]
fn config_token_outstanding_needs_a_hash_and_no_consumption() {
    let base = machine("m", 0);
    assert!(!base.config_token_outstanding());
    let issued = MachineRecord {
        config_token_hash: Some(hex64("1")),
        ..base.clone()
    };
    assert!(issued.config_token_outstanding());
    let consumed = MachineRecord {
        config_token_consumed_at: Some(ts(1)),
        ..issued.clone()
    };
    assert!(!consumed.config_token_outstanding());
    // A consumption time without a hash is not an outstanding token either.
    let stray = MachineRecord {
        config_token_consumed_at: Some(ts(1)),
        ..base
    };
    assert!(!stray.config_token_outstanding());
}

/// Two tasks change the same machine at once (lock, read, save, commit):
/// both commit, one after the other, and neither change is lost. SQLite
/// serialises them at `begin_write`; PostgreSQL at the `UPDATE` in `lock`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_to_one_machine_serialise() {
    for_each_backend(|store| async move {
        let m = MachineRecord {
            hostname: Some(String::new()),
            quote_reset_count: Some(0),
            ..machine("m1", 1)
        };
        insert(&store, &m).await;
        for round in 0..3_i64 {
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
            let mut tasks = Vec::new();
            for tag in ["a", "b"] {
                let store = store.clone();
                let barrier = barrier.clone();
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    let mut tx = store.begin_write().await.unwrap();
                    let mut rec = MachineRepo::lock(&mut tx, "m1").await.unwrap().unwrap();
                    let locked_at = Instant::now();
                    let seen = rec.version;
                    // Hold the row a while so the other task must wait for it.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    rec.hostname = Some(format!("{}{tag}", rec.hostname.unwrap()));
                    rec.quote_reset_count = Some(rec.quote_reset_count.unwrap() + 1);
                    MachineRepo::save(&mut tx, &rec).await.unwrap();
                    let committing_at = Instant::now();
                    tx.commit().await.unwrap();
                    (seen, locked_at, committing_at)
                }));
            }
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap());
            }
            results.sort_by_key(|r| r.1);
            let (first, second) = (results[0], results[1]);
            // The second task got the row only once the first was committing...
            assert!(second.1 >= first.2, "locks overlapped in round {round}");
            // ...and saw its version.
            let base = m.version + 2 * round;
            assert_eq!((first.0, second.0), (base + 1, base + 2));

            let stored = store.machines().get("m1").await.unwrap().unwrap();
            assert_eq!(stored.version, base + 2);
            assert_eq!(stored.quote_reset_count, Some(2 * (round + 1)));
            let hostname = stored.hostname.unwrap();
            assert_eq!(hostname.len() as i64, 2 * (round + 1), "{hostname}");
            let tail = &hostname[hostname.len() - 2..];
            assert!(tail == "ab" || tail == "ba", "{hostname}");
        }
    })
    .await;
}

// ----------------------------------------------------------------- nonces

const NOW: i64 = 1_778_778_300_000;
const TTL: i64 = 60_000;

fn nonce_at<'a>(id: &'a str, issued_at_ms: i64) -> NewNonce<'a> {
    NewNonce {
        nonce_id: id,
        nonce: "q83vEjRWeJA=",
        issued_at_ms,
        expires_at_ms: issued_at_ms + TTL,
    }
}

async fn issue(store: &Store, nonce: &NewNonce<'_>, capacity: u32) -> bool {
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

#[tokio::test]
async fn nonces_past_retention_are_purged_by_the_next_issue() {
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
        assert!(issue(&store, &nonce_at("tick-1", expiry + NONCE_RETENTION_MS), 10).await);
        assert_eq!(nonce_rows(&store).await, 4);
        assert_eq!(
            redeem(&store, "old-used", expiry + NONCE_RETENTION_MS).await,
            Redeemed::AlreadyConsumed
        );
        assert_eq!(
            redeem(&store, "old-idle", expiry + NONCE_RETENTION_MS).await,
            Redeemed::Expired
        );

        // Redeeming does not purge; the next issue past the boundary does.
        let later = expiry + NONCE_RETENTION_MS + 1;
        assert_eq!(nonce_rows(&store).await, 4);
        assert!(issue(&store, &nonce_at("tick-2", later), 10).await);
        assert_eq!(nonce_rows(&store).await, 3);
        assert_eq!(redeem(&store, "old-used", later).await, Redeemed::Unknown);
        assert_eq!(redeem(&store, "old-idle", later).await, Redeemed::Unknown);
        // The younger one (expiring 1 s later) is still remembered.
        assert_eq!(redeem(&store, "later", later).await, Redeemed::Expired);

        // A refused issue purges as well.
        let much_later = NOW + 1000 + TTL + NONCE_RETENTION_MS + 1;
        assert!(!issue(&store, &nonce_at("refused", much_later), 0).await);
        assert_eq!(redeem(&store, "later", much_later).await, Redeemed::Unknown);
        assert_eq!(nonce_rows(&store).await, 2);
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

// -------------------------------------------------------------- approvals

fn vote(machine_id: &str, operator: &str, secs: i64) -> VoteRecord {
    VoteRecord {
        id: 0,
        machine_id: machine_id.to_owned(),
        operator_cn: operator.to_owned(),
        operator_principal: Some(format!("oidc:{operator}")),
        role: Role::Controlplane.as_str().to_owned(),
        hostname: Some(format!("host-{operator}")),
        assigned_ip: Some(format!("10.0.0.{secs}")),
        created_at: ts(secs),
        expires_at: ts(secs + 3600),
        consumed: false,
    }
}

async fn insert_vote(store: &Store, v: &VoteRecord) -> VoteRecord {
    let mut tx = store.begin_write().await.unwrap();
    let stored = ApprovalRepo::insert(&mut tx, v).await.unwrap();
    tx.commit().await.unwrap();
    stored
}

#[tokio::test]
async fn votes_insert_list_and_consume() {
    for_each_backend(|store| async move {
        insert(&store, &machine("m1", 1)).await;
        insert(&store, &machine("m2", 2)).await;
        assert!(store.approvals().list("m1").await.unwrap().is_empty());

        let v1 = insert_vote(&store, &vote("m1", "alice", 10)).await;
        let w1 = insert_vote(&store, &vote("m2", "carol", 11)).await;
        let v2 = insert_vote(
            &store,
            &VoteRecord {
                hostname: None,
                assigned_ip: None,
                role: Role::WorkerInfra.as_str().to_owned(),
                ..vote("m1", "bob", 12)
            },
        )
        .await;
        // A consumed flag given at insert is kept.
        let v3 = insert_vote(
            &store,
            &VoteRecord {
                consumed: true,
                ..vote("m1", "dave", 13)
            },
        )
        .await;
        assert!(v1.id < w1.id && w1.id < v2.id && v2.id < v3.id);
        assert_eq!(
            v2,
            VoteRecord {
                id: v2.id,
                hostname: None,
                assigned_ip: None,
                role: "worker-infra".into(),
                ..vote("m1", "bob", 12)
            }
        );

        // Oldest first, every field as inserted, only this machine's.
        let listed = store.approvals().list("m1").await.unwrap();
        assert_eq!(listed, vec![v1.clone(), v2.clone(), v3.clone()]);
        assert_eq!(
            store.approvals().list("m2").await.unwrap(),
            vec![w1.clone()]
        );
        assert!(store.approvals().list("m3").await.unwrap().is_empty());

        // consume marks exactly the given ids.
        let mut tx = store.begin_write().await.unwrap();
        ApprovalRepo::consume(&mut tx, "m1", &[v2.id])
            .await
            .unwrap();
        // Seen inside the transaction through list_in.
        let in_tx = ApprovalRepo::list_in(&mut tx, "m1").await.unwrap();
        assert_eq!(
            in_tx.iter().map(|v| v.consumed).collect::<Vec<_>>(),
            [false, true, true]
        );
        tx.commit().await.unwrap();
        let listed = store.approvals().list("m1").await.unwrap();
        assert_eq!(
            listed,
            vec![
                v1.clone(),
                VoteRecord {
                    consumed: true,
                    ..v2.clone()
                },
                v3.clone()
            ]
        );
        assert_eq!(
            store.approvals().list("m2").await.unwrap(),
            vec![w1.clone()]
        );

        // Several at once; an empty list is a no-op; consuming twice is fine.
        let mut tx = store.begin_write().await.unwrap();
        ApprovalRepo::consume(&mut tx, "m1", &[]).await.unwrap();
        ApprovalRepo::consume(&mut tx, "m1", &[v1.id, v2.id])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let listed = store.approvals().list("m1").await.unwrap();
        assert!(listed.iter().all(|v| v.consumed), "{listed:?}");
        assert!(!store.approvals().list("m2").await.unwrap()[0].consumed);
    })
    .await;
}

#[tokio::test]
async fn consuming_another_machines_vote_is_corrupt() {
    for_each_backend(|store| async move {
        insert(&store, &machine("m1", 1)).await;
        insert(&store, &machine("m2", 2)).await;
        let own = insert_vote(&store, &vote("m1", "alice", 10)).await;
        let foreign = insert_vote(&store, &vote("m2", "bob", 11)).await;

        for ids in [
            vec![foreign.id],
            vec![own.id, foreign.id],
            vec![foreign.id + 100],
        ] {
            let mut tx = store.begin_write().await.unwrap();
            let err = ApprovalRepo::consume(&mut tx, "m1", &ids)
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{ids:?}: {err:?}");
            // The caller rolls back: nothing is consumed, not even `own`.
            tx.rollback().await.unwrap();
        }
        assert_eq!(store.approvals().list("m1").await.unwrap(), vec![own]);
        assert_eq!(store.approvals().list("m2").await.unwrap(), vec![foreign]);
    })
    .await;
}

/// `approval_votes.machine_id` references `machines`: PostgreSQL always
/// enforces it, SQLite because the store turns `foreign_keys` on for every
/// pooled connection.
#[tokio::test]
async fn votes_need_an_existing_machine() {
    for_each_backend(|store| async move {
        if store.backend() == Backend::Sqlite {
            let mut tx = store.begin_write().await.unwrap();
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            assert_eq!(fk, 1, "foreign keys are off on SQLite");
        }
        let mut tx = store.begin_write().await.unwrap();
        let err = ApprovalRepo::insert(&mut tx, &vote("ghost", "alice", 10))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Query(sqlx::Error::Database(db)) if db.is_foreign_key_violation()),
            "{err:?}"
        );
        tx.rollback().await.unwrap();
        assert!(store.approvals().list("ghost").await.unwrap().is_empty());
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM approval_votes")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(n, 0);
    })
    .await;
}

// ------------------------------------------- lookups, certificates, credentials

#[tokio::test]
async fn find_by_mac_prefers_the_most_recently_changed() {
    for_each_backend(|store| async move {
        let mut a = machine("m-mac-a", 1);
        a.hw_mac = Some("aa:bb:cc:dd:ee:01".into());
        let mut b = machine("m-mac-b", 2);
        b.hw_mac = Some("aa:bb:cc:dd:ee:01".into());
        insert(&store, &a).await;
        insert(&store, &b).await;
        let got = store
            .machines()
            .find_by_mac("aa:bb:cc:dd:ee:01")
            .await
            .unwrap();
        assert_eq!(got.unwrap().machine_id, "m-mac-b");
        a.updated_at = ts(50);
        let mut tx = store.begin_write().await.unwrap();
        MachineRepo::save(&mut tx, &a).await.unwrap();
        tx.commit().await.unwrap();
        let got = store
            .machines()
            .find_by_mac("aa:bb:cc:dd:ee:01")
            .await
            .unwrap();
        assert_eq!(got.unwrap().machine_id, "m-mac-a");
        assert!(store
            .machines()
            .find_by_mac("aa:bb:cc:dd:ee:02")
            .await
            .unwrap()
            .is_none());
        // An attested machine is not shadowed by a newer record claiming its MAC.
        b.status = MachineStatus::Attested;
        b.updated_at = ts(10);
        let mut tx = store.begin_write().await.unwrap();
        MachineRepo::save(&mut tx, &b).await.unwrap();
        tx.commit().await.unwrap();
        let got = store
            .machines()
            .find_by_mac("aa:bb:cc:dd:ee:01")
            .await
            .unwrap();
        assert_eq!(got.unwrap().machine_id, "m-mac-b");
    })
    .await;
}

#[tokio::test]
async fn nonces_redeem_by_value_once() {
    for_each_backend(|store| async move {
        let now = t0().timestamp_millis();
        assert!(issue(&store, &nonce_at("n-val", now), 10).await);
        let value = nonce_at("n-val", now).nonce.to_owned();
        let mut tx = store.begin_write().await.unwrap();
        let first = NonceRepo::redeem_value(&mut tx, &value, now + 1)
            .await
            .unwrap();
        let second = NonceRepo::redeem_value(&mut tx, &value, now + 2)
            .await
            .unwrap();
        let unknown = NonceRepo::redeem_value(&mut tx, "not-issued", now + 2)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(first, Redeemed::Fresh(value));
        assert_eq!(second, Redeemed::AlreadyConsumed);
        assert_eq!(unknown, Redeemed::Unknown);
    })
    .await;
}

fn cert(serial: &str, machine_id: Option<&str>, not_after_secs: i64) -> IssuedCertRecord {
    IssuedCertRecord {
        serial_hex: serial.to_owned(),
        subject_cn: machine_id.unwrap_or("alice").to_owned(),
        purpose: if machine_id.is_some() {
            "request-cert"
        } else {
            "operator"
        }
        .into(),
        machine_id: machine_id.map(str::to_owned),
        issued_at: ts(0),
        not_after: ts(not_after_secs),
        revoked_at: None,
        revocation_reason: None,
        principal: machine_id.is_none().then(|| "oidc:alice".to_owned()),
        holder_proof: machine_id.map(|_| "tpm".to_owned()),
    }
}

#[tokio::test]
async fn enrollment_certs_revoke_per_machine_and_list_unexpired_revocations() {
    for_each_backend(|store| async move {
        insert(&store, &machine("m-c1", 1)).await;
        insert(&store, &machine("m-c2", 1)).await;
        let mut tx = store.begin_write().await.unwrap();
        for c in [
            cert("0a01", Some("m-c1"), 1000),
            cert("0a02", Some("m-c1"), 10),
            cert("0a03", Some("m-c2"), 1000),
            cert("0a04", None, 1000),
        ] {
            EnrollmentCertRepo::insert(&mut tx, &c).await.unwrap();
        }
        tx.commit().await.unwrap();
        // A serial is unique (on PostgreSQL the failed insert spoils its
        // transaction, so it gets one of its own).
        let mut tx = store.begin_write().await.unwrap();
        let dup = EnrollmentCertRepo::insert(&mut tx, &cert("0a01", Some("m-c2"), 5)).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        drop(tx);

        let mut tx = store.begin_write().await.unwrap();
        let n = EnrollmentCertRepo::revoke_machine(&mut tx, "m-c1", &ts(5), "cessationOfOperation")
            .await
            .unwrap();
        assert_eq!(n, 2);
        // Revoking again changes nothing (revoked_at stays the first one).
        let n = EnrollmentCertRepo::revoke_machine(&mut tx, "m-c1", &ts(6), "keyCompromise")
            .await
            .unwrap();
        assert_eq!(n, 0);
        tx.commit().await.unwrap();

        let c1 = store.enrollment_certs().get("0a01").await.unwrap().unwrap();
        assert!(c1.revoked_at.is_some());
        assert_eq!(c1.revoked_at.as_deref(), Some(ts(5).as_str()));
        assert_eq!(
            c1.revocation_reason.as_deref(),
            Some("cessationOfOperation")
        );
        let c3 = store.enrollment_certs().get("0a03").await.unwrap().unwrap();
        assert!(c3.revoked_at.is_none());
        assert_eq!(
            store
                .enrollment_certs()
                .for_machine("m-c1")
                .await
                .unwrap()
                .len(),
            2
        );
        // At t0+20 the 0a02 certificate has expired and leaves the CRL.
        let revoked = store.enrollment_certs().revoked(&ts(20)).await.unwrap();
        let serials: Vec<_> = revoked.iter().map(|r| r.serial_hex.as_str()).collect();
        assert_eq!(serials, ["0a01"]);
        let revoked = store.enrollment_certs().revoked(&ts(7)).await.unwrap();
        assert_eq!(revoked.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn ak_credentials_redeem_once_for_their_machine_only() {
    for_each_backend(|store| async move {
        insert(&store, &machine("m-ak", 1)).await;
        let now = t0().timestamp_millis();
        let new = |id: &'static str, expires: i64| NewAkCredential {
            activation_id: id,
            machine_id: "m-ak",
            ak_name: "000bab",
            ak_tpm_public: "AAEC",
            secret_sha256: "5e",
            issued_at_ms: now,
            expires_at_ms: now + expires,
        };
        let mut tx = store.begin_write().await.unwrap();
        AkCredentialRepo::issue(&mut tx, &new("c-1", 300_000), 3_600_000)
            .await
            .unwrap();
        AkCredentialRepo::issue(&mut tx, &new("c-2", 10), 3_600_000)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin_write().await.unwrap();
        let other = AkCredentialRepo::redeem(&mut tx, "c-1", "m-other", now + 1)
            .await
            .unwrap();
        let fresh = AkCredentialRepo::redeem(&mut tx, "c-1", "m-ak", now + 1)
            .await
            .unwrap();
        let again = AkCredentialRepo::redeem(&mut tx, "c-1", "m-ak", now + 2)
            .await
            .unwrap();
        let expired = AkCredentialRepo::redeem(&mut tx, "c-2", "m-ak", now + 20)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(other, AkCredentialRedeemed::Unknown);
        assert_eq!(
            fresh,
            AkCredentialRedeemed::Fresh(AkCredentialRecord {
                machine_id: "m-ak".into(),
                ak_name: "000bab".into(),
                ak_tpm_public: "AAEC".into(),
                secret_sha256: "5e".into(),
            })
        );
        assert_eq!(again, AkCredentialRedeemed::AlreadyConsumed);
        assert_eq!(expired, AkCredentialRedeemed::Expired);

        // Issuing later purges challenges expired for longer than the retention.
        let mut tx = store.begin_write().await.unwrap();
        let later = NewAkCredential {
            issued_at_ms: now + 7_200_000,
            expires_at_ms: now + 7_500_000,
            ..new("c-3", 0)
        };
        AkCredentialRepo::issue(&mut tx, &later, 3_600_000)
            .await
            .unwrap();
        let gone = AkCredentialRepo::redeem(&mut tx, "c-2", "m-ak", now + 7_200_001)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(gone, AkCredentialRedeemed::Unknown);
    })
    .await;
}

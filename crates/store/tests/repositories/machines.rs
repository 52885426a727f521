//! The machine repository: records, lists, locks, saves, tokens.

use super::*;

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

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The audit log on every backend: append, list, verify, tampering,
//! concurrent appenders (tasks and OS processes).

use std::sync::Arc;

use attest_domain::audit::checkpoint::ExpectedCheckpoint;
use attest_domain::audit::{format_timestamp, ChainVerifier, Hashed, GENESIS_HASH};
use attest_store::sqlx::{self, Row};
use attest_store::testing::{for_each_backend, TestDb};
use attest_store::{AuditCheckpoint, AuditRepo, Backend, NewAuditEntry, Store};
use chrono::{DateTime, Duration, Utc};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-14T17:05:00.123456Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn entry(i: usize) -> NewAuditEntry {
    NewAuditEntry {
        operator_cn: format!("op{}", i % 3),
        action: "approve".into(),
        machine_id: (i % 2 == 0).then(|| format!("550e8400-0000-0000-0000-{i:012}")),
        prev_state: Some("pending_approval".into()),
        new_state: (i % 3 != 0).then(|| "registered".into()),
        detail: if i % 4 == 0 {
            Some(String::new())
        } else {
            Some(format!("n={i}"))
        },
    }
}

async fn append_n(store: &Store, n: usize) {
    for i in 1..=n {
        store
            .audit()
            .append_one(&entry(i), t0() + Duration::seconds(i as i64))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn append_list_count_verify() {
    for_each_backend(|store| async move {
        let empty = store.audit().verify().await.unwrap();
        assert!(empty.valid);
        assert_eq!((empty.entries, empty.root_hash), (0, None));

        let first = store.audit().append_one(&entry(4), t0()).await.unwrap();
        assert_eq!(first.id, 1);
        assert_eq!(first.prev_hash, GENESIS_HASH);
        assert_eq!(first.timestamp, "2026-05-14T17:05:00.123456+00:00");
        assert_eq!(first.entry_hash, first.hashed().entry_hash());
        let second = store.audit().append_one(&entry(1), t0()).await.unwrap();
        assert_eq!(second.prev_hash, first.entry_hash);
        append_n(&store, 8).await;

        assert_eq!(store.audit().count().await.unwrap(), 10);
        let page1 = store.audit().list(1, 4).await.unwrap();
        assert_eq!(
            page1.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![10, 9, 8, 7]
        );
        let page3 = store.audit().list(3, 4).await.unwrap();
        assert_eq!(page3.iter().map(|e| e.id).collect::<Vec<_>>(), vec![2, 1]);
        // Stored exactly as returned, NULL and "" kept apart.
        assert_eq!(page3[1], first);
        assert_eq!(page3[1].detail.as_deref(), Some(""));
        assert_eq!(page3[0].machine_id, None);

        let report = store.audit().verify().await.unwrap();
        assert!(report.valid, "{report:?}");
        assert_eq!(report.entries, 10);
        assert_eq!(
            report.root_hash.as_deref(),
            Some(page1[0].entry_hash.as_str())
        );
        assert_eq!((report.first_invalid_id, report.error), (None, None));
    })
    .await;
}

/// An in-memory SQLite database is verified through the pool (nothing
/// else can open it), with the same answers as a file.
/// What the metrics extension reads: entries per action, by action.
#[tokio::test]
async fn entries_are_counted_by_action() {
    for_each_backend(|store| async move {
        assert_eq!(store.audit().count_by_action().await.unwrap(), vec![]);
        for (i, action) in ["revoke", "approve", "lock", "approve", "approve"]
            .into_iter()
            .enumerate()
        {
            let mut e = entry(i);
            e.action = action.into();
            store.audit().append_one(&e, t0()).await.unwrap();
        }
        assert_eq!(
            store.audit().count_by_action().await.unwrap(),
            vec![
                ("approve".to_owned(), 3),
                ("lock".to_owned(), 1),
                ("revoke".to_owned(), 1),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn an_in_memory_database_verifies_too() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store
        .migrate(&[attest_store::CORE_MIGRATIONS])
        .await
        .unwrap();
    let empty = store.audit().verify().await.unwrap();
    assert!(empty.valid && empty.entries == 0, "{empty:?}");
    append_n(&store, 5).await;
    let report = store.audit().verify().await.unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries, 5);
    let newest = store.audit().list(1, 1).await.unwrap();
    assert_eq!(
        report.root_hash.as_deref(),
        Some(newest[0].entry_hash.as_str())
    );
    // Rows written behind the log's back (no tip update) break the chain.
    sqlx::query(
        "INSERT INTO audit_log (id, timestamp, operator_cn, action, prev_hash, entry_hash) \
         VALUES (6, 't', 'mallory', 'approve', 'x', 'y')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let broken = store.audit().verify().await.unwrap();
    assert!(!broken.valid);
    assert_eq!(broken.first_invalid_id, Some(6));
}

/// An entry appended in a rolled-back transaction leaves no trace: the
/// next entry takes the same id and the chain stays valid.
#[tokio::test]
async fn append_shares_the_callers_transaction() {
    for_each_backend(|store| async move {
        sqlx::query("CREATE TABLE machines_demo (id TEXT PRIMARY KEY, state TEXT NOT NULL)")
            .execute(store.pool())
            .await
            .unwrap();
        let mut tx = store.begin_write().await.unwrap();
        sqlx::query("INSERT INTO machines_demo (id, state) VALUES ($1, $2)")
            .bind("m1")
            .bind("registered")
            .execute(&mut *tx)
            .await
            .unwrap();
        let e = AuditRepo::append(&mut tx, &entry(1), t0()).await.unwrap();
        assert_eq!(e.id, 1);
        tx.rollback().await.unwrap();
        assert_eq!(store.audit().count().await.unwrap(), 0);

        let mut tx = store.begin_write().await.unwrap();
        sqlx::query("INSERT INTO machines_demo (id, state) VALUES ($1, $2)")
            .bind("m1")
            .bind("registered")
            .execute(&mut *tx)
            .await
            .unwrap();
        let e = AuditRepo::append(&mut tx, &entry(2), t0()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(e.id, 1);
        assert_eq!(e.prev_hash, GENESIS_HASH);
        assert!(store.audit().verify().await.unwrap().valid);
    })
    .await;
}

#[tokio::test]
async fn append_only_triggers_refuse_update_and_delete() {
    for_each_backend(|store| async move {
        append_n(&store, 2).await;
        let update = sqlx::query("UPDATE audit_log SET detail = 'x' WHERE id = 1")
            .execute(store.pool())
            .await;
        assert!(update.unwrap_err().to_string().contains("append-only"));
        let delete = sqlx::query("DELETE FROM audit_log WHERE id = 1")
            .execute(store.pool())
            .await;
        assert!(delete.unwrap_err().to_string().contains("append-only"));
    })
    .await;
}

/// What an attacker with database access would do first.
async fn drop_guards(store: &Store) {
    let sql = match store.backend() {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete",
        Backend::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER USER",
    };
    sqlx::Executor::execute(store.pool(), sql).await.unwrap();
}

async fn reset_chain(store: &Store, n: usize) {
    sqlx::query("DELETE FROM audit_log")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_chain_tip SET last_id = 0, last_hash = $1")
        .bind(GENESIS_HASH)
        .execute(store.pool())
        .await
        .unwrap();
    append_n(store, n).await;
    assert!(store.audit().verify().await.unwrap().valid);
}

async fn exec(store: &Store, sql: &str) {
    sqlx::Executor::execute(store.pool(), sql).await.unwrap();
}

#[tokio::test]
async fn tampering_is_detected() {
    for_each_backend(|store| async move {
        drop_guards(&store).await;
        // (statement tampering with a 10-entry chain, first_invalid_id, error prefix)
        let cases: &[(&str, i64, &str)] = &[
            ("UPDATE audit_log SET timestamp = '2026-05-14T17:05:05.000000+00:00' WHERE id = 4", 4, "entry_hash mismatch at entry id=4"),
            ("UPDATE audit_log SET operator_cn = 'mallory' WHERE id = 4", 4, "entry_hash mismatch at entry id=4"),
            ("UPDATE audit_log SET action = 'revoke' WHERE id = 4", 4, "entry_hash mismatch at entry id=4"),
            ("UPDATE audit_log SET machine_id = 'other' WHERE id = 4", 4, "entry_hash mismatch at entry id=4"),
            ("UPDATE audit_log SET machine_id = NULL WHERE id = 4", 4, "entry_hash mismatch at entry id=4"),
            ("UPDATE audit_log SET prev_state = NULL WHERE id = 4", 4, "entry_hash mismatch at entry id=4"),
            ("UPDATE audit_log SET new_state = 'revoked' WHERE id = 4", 4, "entry_hash mismatch at entry id=4"),
            ("UPDATE audit_log SET detail = NULL WHERE id = 4", 4, "entry_hash mismatch at entry id=4"),
            ("UPDATE audit_log SET detail = '' WHERE id = 5", 5, "entry_hash mismatch at entry id=5"),
            ("UPDATE audit_log SET prev_hash = 'ab' || substr(prev_hash, 3) WHERE id = 4", 4, "entry_hash mismatch at entry id=4"),
            ("UPDATE audit_log SET entry_hash = upper(entry_hash) WHERE id = 4", 4, "entry_hash mismatch at entry id=4"),
            ("UPDATE audit_log SET id = 100 WHERE id = 4", 5, "id gap at entry id=5 (expected id=4)"),
            ("DELETE FROM audit_log WHERE id = 4", 5, "id gap at entry id=5 (expected id=4)"),
            ("DELETE FROM audit_log WHERE id = 1", 2, "prev_hash mismatch at entry id=2"),
            ("DELETE FROM audit_log WHERE id = 10", 10, "entries missing after id=9"),
            ("UPDATE audit_chain_tip SET last_hash = (SELECT prev_hash FROM audit_log WHERE id = 10)", 10, "chain tip hash mismatch at entry id=10"),
        ];
        for &(sql, id, error) in cases {
            reset_chain(&store, 10).await;
            exec(&store, sql).await;
            let r = store.audit().verify().await.unwrap();
            assert!(!r.valid, "{sql}: {r:?}");
            assert_eq!(r.first_invalid_id, Some(id), "{sql}: {r:?}");
            assert!(r.error.as_deref().unwrap().starts_with(error), "{sql}: {r:?}");
            assert_eq!(r.root_hash, None);
        }

        // Swap two rows' contents (everything but the id).
        reset_chain(&store, 10).await;
        let rows = store.audit().list_range(10, 0).await.unwrap();
        let (five, four) = (&rows[5], &rows[6]);
        assert_eq!((four.id, five.id), (4, 5));
        for (target, src) in [(4_i64, five), (5, four)] {
            sqlx::query(
                "UPDATE audit_log SET timestamp = $1, operator_cn = $2, action = $3, machine_id = $4, \
                 prev_state = $5, new_state = $6, detail = $7, prev_hash = $8, entry_hash = $9 WHERE id = $10",
            )
            .bind(&src.timestamp)
            .bind(&src.operator_cn)
            .bind(&src.action)
            .bind(src.machine_id.as_deref())
            .bind(src.prev_state.as_deref())
            .bind(src.new_state.as_deref())
            .bind(src.detail.as_deref())
            .bind(&src.prev_hash)
            .bind(&src.entry_hash)
            .bind(target)
            .execute(store.pool())
            .await
            .unwrap();
        }
        let r = store.audit().verify().await.unwrap();
        assert_eq!(r.first_invalid_id, Some(4), "{r:?}");
        assert_eq!(r.error.as_deref(), Some("entry_hash mismatch at entry id=4"));
        assert_eq!(r.entries, 10);

        // Edit a row and re-hash it: the next entry's link breaks.
        reset_chain(&store, 10).await;
        let mut e4 = store.audit().list_range(1, 6).await.unwrap().remove(0);
        assert_eq!(e4.id, 4);
        e4.detail = Some("forged".into());
        e4.entry_hash = e4.hashed().entry_hash();
        sqlx::query("UPDATE audit_log SET detail = $1, entry_hash = $2 WHERE id = $3")
            .bind(e4.detail.as_deref())
            .bind(&e4.entry_hash)
            .bind(4_i64)
            .execute(store.pool())
            .await
            .unwrap();
        let r = store.audit().verify().await.unwrap();
        assert_eq!(r.first_invalid_id, Some(5));
        assert_eq!(r.error.as_deref(), Some("prev_hash mismatch at entry id=5"));

        // A well-formed entry appended behind the store's back (tip not moved).
        reset_chain(&store, 10).await;
        let mut forged = store.audit().list_range(1, 0).await.unwrap().remove(0);
        forged.prev_hash = forged.entry_hash.clone();
        forged.id = 11;
        forged.timestamp = format_timestamp(t0());
        forged.entry_hash = forged.hashed().entry_hash();
        sqlx::query(
            "INSERT INTO audit_log (id, timestamp, operator_cn, action, machine_id, prev_state, \
             new_state, detail, prev_hash, entry_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(forged.id)
        .bind(&forged.timestamp)
        .bind(&forged.operator_cn)
        .bind(&forged.action)
        .bind(forged.machine_id.as_deref())
        .bind(forged.prev_state.as_deref())
        .bind(forged.new_state.as_deref())
        .bind(forged.detail.as_deref())
        .bind(&forged.prev_hash)
        .bind(&forged.entry_hash)
        .execute(store.pool())
        .await
        .unwrap();
        let r = store.audit().verify().await.unwrap();
        assert_eq!(r.first_invalid_id, Some(11), "{r:?}");
        assert_eq!(r.entries, 11);
    })
    .await;
}

/// The checkpoints of the store, as expectations for the verifier.
async fn stored_expectations(store: &Store) -> Vec<ExpectedCheckpoint> {
    store
        .audit_checkpoints()
        .all()
        .await
        .unwrap()
        .iter()
        .map(ExpectedCheckpoint::from)
        .collect()
}

async fn checkpoint_now(store: &Store, timestamp: &str) -> AuditCheckpoint {
    let report = store.audit().verify().await.unwrap();
    assert!(report.valid, "{report:?}");
    store
        .audit_checkpoints()
        .insert(&AuditCheckpoint {
            id: None,
            entries: report.entries,
            root_hash: report.root_hash.unwrap(),
            timestamp: timestamp.into(),
            key_id: "k".into(),
            algorithm: "test".into(),
            signature: "not checked by the store".into(),
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn checkpoints_are_stored_listed_and_append_only() {
    for_each_backend(|store| async move {
        assert_eq!(store.audit_checkpoints().latest().await.unwrap(), None);
        append_n(&store, 3).await;
        let first = checkpoint_now(&store, "2026-05-14T18:00:00.000000+00:00").await;
        append_n(&store, 2).await;
        let second = checkpoint_now(&store, "2026-05-14T19:00:00.000000+00:00").await;
        assert!(second.id > first.id);
        assert_eq!((first.entries, second.entries), (3, 5));
        let repo = store.audit_checkpoints();
        assert_eq!(repo.count().await.unwrap(), 2);
        assert_eq!(repo.latest().await.unwrap(), Some(second.clone()));
        assert_eq!(
            repo.all().await.unwrap(),
            vec![first.clone(), second.clone()]
        );
        assert_eq!(repo.list_range(1, 1).await.unwrap(), vec![first.clone()]);
        let r = store
            .audit()
            .verify_with(ChainVerifier::new().with_checkpoints(stored_expectations(&store).await))
            .await
            .unwrap();
        assert!(r.valid, "{r:?}");
        for sql in [
            "UPDATE audit_checkpoints SET entries = 1",
            "DELETE FROM audit_checkpoints",
        ] {
            let err = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
    })
    .await;
}

/// Security review (issue 15, item 11): an attacker with write access to
/// the database drops the guards, deletes the newest entries and moves the
/// tip back. The chain alone stays valid; a checkpoint taken before shows
/// the cut.
#[tokio::test]
async fn a_cut_off_tail_is_caught_by_an_earlier_checkpoint() {
    for_each_backend(|store| async move {
        append_n(&store, 10).await;
        let cp = checkpoint_now(&store, "2026-05-14T18:00:00.000000+00:00").await;
        let keep = stored_expectations(&store).await;

        drop_guards(&store).await;
        exec(&store, "DELETE FROM audit_log WHERE id > 7").await;
        let seventh: String = sqlx::query_scalar("SELECT entry_hash FROM audit_log WHERE id = 7")
            .fetch_one(store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE audit_chain_tip SET last_id = 7, last_hash = $1")
            .bind(&seventh)
            .execute(store.pool())
            .await
            .unwrap();

        let plain = store.audit().verify().await.unwrap();
        assert!(plain.valid, "the chain alone cannot tell: {plain:?}");
        let r = store
            .audit()
            .verify_with(ChainVerifier::new().with_checkpoints(keep.clone()))
            .await
            .unwrap();
        assert!(!r.valid);
        assert_eq!(r.entries, 7);
        assert_eq!(r.first_invalid_id, Some(8));
        let error = r.error.unwrap();
        assert!(
            error.starts_with(&format!(
                "entries missing after id=7: checkpoint id={} (signed 2026-05-14T18:00:00.000000+00:00) covers 10 entries",
                cp.id.unwrap()
            )),
            "{error}"
        );

        // The attacker appends new entries to reach the old length: the
        // content then diverges from the checkpoint at entry 10.
        append_n(&store, 3).await;
        let r = store
            .audit()
            .verify_with(ChainVerifier::new().with_checkpoints(keep))
            .await
            .unwrap();
        assert!(!r.valid);
        assert_eq!(r.first_invalid_id, Some(10));
        assert!(
            r.error.as_deref().unwrap().starts_with("chain diverges from checkpoint id="),
            "{r:?}"
        );
    })
    .await;
}

/// Contiguous ids 1..=n and a valid chain with n entries.
async fn assert_linear(store: &Store, n: i64) {
    let row = sqlx::query("SELECT MIN(id), MAX(id), COUNT(*) FROM audit_log")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let (min, max, count): (i64, i64, i64) = (
        row.try_get(0).unwrap(),
        row.try_get(1).unwrap(),
        row.try_get(2).unwrap(),
    );
    assert_eq!((min, max, count), (1, n, n));
    let r = store.audit().verify().await.unwrap();
    assert!(r.valid, "{r:?}");
    assert_eq!(r.entries, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_keep_one_chain() {
    for_each_backend(|store| async move {
        let store = Arc::new(store);
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let mut e = entry(i);
                    e.operator_cn = format!("task{t}");
                    store.audit().append_one(&e, Utc::now()).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_linear(&store, 400).await;
    })
    .await;
}

const CHILD_URL: &str = "ATTEST_STORE_TEST_CHILD_URL";
const CHILD_TAG: &str = "ATTEST_STORE_TEST_CHILD_TAG";
const PER_CHILD: usize = 150;

/// Helper run as a separate OS process by `two_processes_keep_one_chain`;
/// does nothing when run directly.
#[tokio::test]
#[ignore = "helper process for two_processes_keep_one_chain"]
async fn child_appender() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let tag = std::env::var(CHILD_TAG).unwrap();
    let store = Store::connect(&url).await.unwrap();
    for i in 0..PER_CHILD {
        let mut e = entry(i);
        e.operator_cn = format!("process-{tag}");
        store.audit().append_one(&e, Utc::now()).await.unwrap();
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_keep_one_chain() {
    let exe = std::env::current_exe().unwrap();
    for db in TestDb::all().await {
        eprintln!("-- two processes on {}", db.backend());
        let mut children = Vec::new();
        for tag in ["a", "b"] {
            children.push(
                tokio::process::Command::new(&exe)
                    .args(["child_appender", "--exact", "--ignored", "--test-threads=1"])
                    .env(CHILD_URL, db.url())
                    .env(CHILD_TAG, tag)
                    .output(),
            );
        }
        for child in futures::future::join_all(children).await {
            let out = child.unwrap();
            assert!(
                out.status.success(),
                "child failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
        }
        let store = db.store();
        assert_linear(store, 2 * PER_CHILD as i64).await;
        let order: Vec<String> =
            sqlx::query_scalar("SELECT operator_cn FROM audit_log ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
        eprintln!("-- the two processes' entries interleave {switches} times");
        for tag in ["a", "b"] {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE operator_cn = $1")
                    .bind(format!("process-{tag}"))
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
            assert_eq!(n, PER_CHILD as i64);
        }
        db.close().await;
    }
}

/// Verification throughput end to end (database fetch + hashing). Run with
/// `cargo test --release -p attest-store --test audit verify_throughput -- --ignored --nocapture`
/// (`ATTEST_VERIFY_BENCH_N` entries, default 200000).
#[tokio::test]
#[ignore = "benchmark"]
async fn verify_throughput() {
    let n: i64 = std::env::var("ATTEST_VERIFY_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    for db in TestDb::all().await {
        let store = db.store();
        let chain = fill_chain(store, n).await;
        let start = std::time::Instant::now();
        let r = attest_domain::audit::verify_entries(&chain);
        assert!(r.valid, "{r:?}");
        eprintln!(
            "-- hashing alone, in memory: {:.0} entries/s",
            n as f64 / start.elapsed().as_secs_f64()
        );
        // Plain fetch first, to tell database cost from hashing cost.
        use futures::TryStreamExt;
        let start = std::time::Instant::now();
        let mut rows = sqlx::query(
            "SELECT id, timestamp, operator_cn, action, machine_id, prev_state, new_state, \
             detail, prev_hash, entry_hash FROM audit_log ORDER BY id",
        )
        .fetch(store.pool());
        let mut k = 0_i64;
        while let Some(row) = rows.try_next().await.unwrap() {
            let _: &str = row.try_get(9).unwrap();
            k += 1;
        }
        drop(rows);
        eprintln!(
            "-- {}: streamed {k} rows in {:.2}s",
            db.backend(),
            start.elapsed().as_secs_f64()
        );
        let start = std::time::Instant::now();
        let r = store.audit().verify().await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert!(r.valid, "{r:?}");
        assert_eq!(r.entries, n);
        eprintln!(
            "-- {}: verified {n} entries in {secs:.2}s = {:.0} entries/s",
            db.backend(),
            n as f64 / secs
        );
        db.close().await;
    }
}

/// Writes a valid chain of `n` entries and returns it.
async fn fill_chain(store: &Store, n: i64) -> Vec<attest_store::AuditEntry> {
    let mut all = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut prev = GENESIS_HASH.to_string();
    let mut tx = store.begin_write().await.unwrap();
    let per_stmt = 100;
    let mut id = 1;
    while id <= n {
        let rows: Vec<attest_store::AuditEntry> = (id..(id + per_stmt).min(n + 1))
            .map(|i| {
                let new = entry(i as usize);
                let mut e = attest_store::AuditEntry {
                    id: i,
                    timestamp: format_timestamp(t0() + Duration::milliseconds(i)),
                    operator_cn: new.operator_cn,
                    action: new.action,
                    machine_id: new.machine_id,
                    prev_state: new.prev_state,
                    new_state: new.new_state,
                    detail: new.detail,
                    prev_hash: prev.clone(),
                    entry_hash: String::new(),
                };
                e.entry_hash = e.hashed().entry_hash();
                prev = e.entry_hash.clone();
                e
            })
            .collect();
        let values: Vec<String> = (0..rows.len())
            .map(|r| {
                let b = r * 10;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 10
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_log (id, timestamp, operator_cn, action, machine_id, prev_state, \
                 new_state, detail, prev_hash, entry_hash) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for e in &rows {
            q = q
                .bind(e.id)
                .bind(&e.timestamp)
                .bind(&e.operator_cn)
                .bind(&e.action)
                .bind(e.machine_id.as_deref())
                .bind(e.prev_state.as_deref())
                .bind(e.new_state.as_deref())
                .bind(e.detail.as_deref())
                .bind(&e.prev_hash)
                .bind(&e.entry_hash);
        }
        q.execute(&mut *tx).await.unwrap();
        all.extend(rows);
        id += per_stmt;
    }
    sqlx::query("UPDATE audit_chain_tip SET last_id = $1, last_hash = $2")
        .bind(n)
        .bind(&prev)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    all
}

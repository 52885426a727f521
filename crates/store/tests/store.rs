#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Connection set-up, placeholders and write transactions on every backend.

use std::sync::Arc;

use attest_store::sqlx::{self, Row};
use attest_store::testing::{for_each_backend, for_each_backend_with, TestDb};
use attest_store::{Backend, Store, StoreError, StoreOptions};

#[tokio::test]
async fn sqlite_connect_creates_directory_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/attest.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(path.exists());
    store.ping().await.unwrap();
    let mut conn = store.pool().acquire().await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(busy, 5000);
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Security review (issue 15, item 9): the database was created with the
/// umask's 0644, readable by every local user. Now the directories the
/// store creates are 0700 and the file and its `-wal` / `-shm` 0600.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_and_directories_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    // Under a usual umask (022) a plain new file is world-readable: what
    // SQLite gave the database before.
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"").unwrap();
    eprintln!("-- umask leaves new files at {:o}", mode_of(&probe));

    let path = dir.path().join("nested/deeper/attest.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = Store::connect(&url).await.unwrap();
    store
        .migrate(&[attest_store::CORE_MIGRATIONS])
        .await
        .unwrap();
    store
        .audit()
        .append_one(
            &attest_store::NewAuditEntry::new("alice", "approve"),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let wal = dir.path().join("nested/deeper/attest.db-wal");
    let shm = dir.path().join("nested/deeper/attest.db-shm");
    assert!(wal.exists() && shm.exists(), "WAL mode keeps both files");
    for d in ["nested", "nested/deeper"] {
        assert_eq!(mode_of(&dir.path().join(d)), 0o700, "{d}");
    }
    for f in [&path, &wal, &shm] {
        assert_eq!(mode_of(f), 0o600, "{}", f.display());
    }
    store.close().await;

    // A database an older version left world-readable is narrowed, with
    // its companions, the next time the store opens it; an existing
    // directory is left alone.
    use std::os::unix::fs::PermissionsExt;
    let open = std::fs::Permissions::from_mode(0o644);
    for f in [&path, &wal, &shm] {
        if f.exists() {
            std::fs::set_permissions(f, open.clone()).unwrap();
        }
    }
    std::fs::set_permissions(
        dir.path().join("nested"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let store = Store::connect(&url).await.unwrap();
    store.ping().await.unwrap();
    for f in [&path, &wal, &shm] {
        if f.exists() {
            assert_eq!(mode_of(f), 0o600, "{}", f.display());
        }
    }
    assert_eq!(mode_of(&dir.path().join("nested")), 0o755);
    store.close().await;

    // A read-only URL changes nothing.
    std::fs::set_permissions(&path, open).unwrap();
    let ro = format!("sqlite://{}?mode=ro", path.display());
    let store = Store::connect(&ro).await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(mode_of(&path), 0o644);
    store.close().await;
}

#[tokio::test]
async fn sqlite_memory_keeps_one_database() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store
        .migrate(&[attest_store::CORE_MIGRATIONS])
        .await
        .unwrap();
    assert_eq!(store.audit().count().await.unwrap(), 0);
}

#[tokio::test]
async fn bad_urls_are_refused_without_leaking_passwords() {
    let err = Store::connect("mysql://root:hunter2@localhost/x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl(_)));
    assert!(!err.to_string().contains("hunter2"));
    let options = StoreOptions {
        acquire_timeout: std::time::Duration::from_secs(1),
        ..StoreOptions::default()
    };
    let err = Store::connect_with("postgres://u:hunter2@127.0.0.1:1/x", options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn backend_and_ping() {
    for db in TestDb::all().await {
        db.store().ping().await.unwrap();
        let expected = if db.url().starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        assert_eq!(db.store().backend(), expected);
        db.close().await;
    }
}

/// `$N` means parameter N on both backends, in any order and repeated.
#[tokio::test]
async fn dollar_placeholders_bind_by_number() {
    for_each_backend(|store| async move {
        let row = sqlx::query("SELECT $2 AS b, $1 AS a, $2 AS b2")
            .bind("one")
            .bind("two")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>("a").unwrap(), "one");
        assert_eq!(row.try_get::<String, _>("b").unwrap(), "two");
        assert_eq!(row.try_get::<String, _>("b2").unwrap(), "two");
    })
    .await;
}

/// The portable column types round-trip on both backends.
#[tokio::test]
async fn portable_types_round_trip() {
    for_each_backend(|store| async move {
        let ddl = match store.backend() {
            Backend::Sqlite => "CREATE TABLE t (id INTEGER PRIMARY KEY, n BIGINT NOT NULL, s TEXT NULL, b BLOB NOT NULL, f INTEGER NOT NULL)",
            Backend::Postgres => "CREATE TABLE t (id BIGINT PRIMARY KEY, n BIGINT NOT NULL, s TEXT NULL, b BYTEA NOT NULL, f BOOLEAN NOT NULL)",
        };
        sqlx::query(ddl).execute(store.pool()).await.unwrap();
        let mut tx = store.begin_write().await.unwrap();
        sqlx::query("INSERT INTO t (id, n, s, b, f) VALUES ($1, $2, $3, $4, $5)")
            .bind(1_i64)
            .bind(i64::MAX)
            .bind(None::<String>)
            .bind(vec![0_u8, 255, 7])
            .bind(true)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let row = sqlx::query("SELECT id, n, s, b, f FROM t WHERE id = $1")
            .bind(1_i64)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(row.try_get::<i64, _>(0).unwrap(), 1);
        assert_eq!(row.try_get::<i64, _>(1).unwrap(), i64::MAX);
        assert_eq!(row.try_get::<Option<String>, _>(2).unwrap(), None);
        assert_eq!(row.try_get::<Vec<u8>, _>(3).unwrap(), vec![0, 255, 7]);
        assert!(attest_store::get_bool(&row, 4).unwrap());
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE f = $1")
            .bind(true)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(n, 1);
    })
    .await;
}

/// Many tasks doing read-modify-write transactions: no SQLITE_BUSY, no lost
/// update. The first statement is the UPDATE, which is what serialises the
/// transactions on PostgreSQL (READ COMMITTED).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_write_transactions_serialize() {
    for_each_backend_with(&[], |store| async move {
        sqlx::query(
            "CREATE TABLE counter (k INTEGER PRIMARY KEY, n BIGINT NOT NULL, log TEXT NOT NULL)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query("INSERT INTO counter (k, n, log) VALUES (1, 0, '')")
            .execute(store.pool())
            .await
            .unwrap();
        let store = Arc::new(store);
        let mut tasks = Vec::new();
        for t in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    let mut tx = store.begin_write().await.unwrap();
                    let n: i64 =
                        sqlx::query_scalar("UPDATE counter SET n = n + 1 WHERE k = 1 RETURNING n")
                            .fetch_one(&mut *tx)
                            .await
                            .unwrap();
                    // Read-modify-write after the lock is held.
                    let log: String = sqlx::query_scalar("SELECT log FROM counter WHERE k = 1")
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query("UPDATE counter SET log = $1 WHERE k = 1")
                        .bind(format!("{log}{n}:{t},"))
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let row = sqlx::query("SELECT n, log FROM counter WHERE k = 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(row.try_get::<i64, _>(0).unwrap(), 400);
        let log: String = row.try_get(1).unwrap();
        assert_eq!(log.split(',').filter(|s| !s.is_empty()).count(), 400);
    })
    .await;
}

/// SQLite only: a transaction that reads first and writes later would hit
/// SQLITE_BUSY under a deferred BEGIN; with begin_write it just works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_read_then_write_has_no_lost_updates() {
    let db = TestDb::sqlite_with(&[]).await;
    let store = db.store().clone();
    sqlx::query("CREATE TABLE c (k INTEGER PRIMARY KEY, n BIGINT NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO c (k, n) VALUES (1, 0)")
        .execute(store.pool())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                let mut tx = store.begin_write().await.unwrap();
                let n: i64 = sqlx::query_scalar("SELECT n FROM c WHERE k = 1")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                sqlx::query("UPDATE c SET n = $1 WHERE k = 1")
                    .bind(n + 1)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT n FROM c WHERE k = 1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 200);
}

#[tokio::test]
async fn write_helper_commits_on_ok_and_rolls_back_on_err() {
    for_each_backend_with(&[], |store| async move {
        sqlx::query("CREATE TABLE w (k BIGINT PRIMARY KEY)")
            .execute(store.pool())
            .await
            .unwrap();
        store
            .write(|tx| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO w (k) VALUES ($1)")
                        .bind(1_i64)
                        .execute(&mut **tx)
                        .await?;
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .unwrap();
        let err = store
            .write(|tx| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO w (k) VALUES ($1)")
                        .bind(2_i64)
                        .execute(&mut **tx)
                        .await?;
                    Err::<(), _>(StoreError::Corrupt("boom".into()))
                })
            })
            .await;
        assert!(err.is_err());
        // A dropped transaction rolls back too.
        {
            let mut tx = store.begin_write().await.unwrap();
            sqlx::query("INSERT INTO w (k) VALUES (3)")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        let keys: Vec<i64> = sqlx::query_scalar("SELECT k FROM w ORDER BY k")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(keys, vec![1]);
    })
    .await;
}

/// A write the storage refuses (SQLITE_FULL, here from `max_page_count`
/// rather than a full disk) is an outage, not a bug, and it does not
/// poison the connection: SQLite rolls the transaction back by itself,
/// the driver's own ROLLBACK then fails and it still counts a transaction
/// open, so without the pool's check every later BEGIN on that connection
/// failed. The fault harness exercises the same with a real full disk.
#[tokio::test]
async fn a_full_database_refuses_writes_as_an_outage_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/full.db?mode=rwc", dir.path().display());
    let options = StoreOptions {
        max_connections: 1,
        ..StoreOptions::default()
    };
    let store = Store::connect_with(&url, options).await.unwrap();
    sqlx::query("CREATE TABLE blobs (b BLOB NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    let pages: i64 = sqlx::query("PRAGMA page_count")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    // The pool's one connection: a few pages more than the file has.
    sqlx::query(&format!("PRAGMA max_page_count = {}", pages + 4))
        .execute(store.pool())
        .await
        .unwrap();
    let big = vec![7u8; 64 * 1024];
    let mut tx = store.begin_write().await.unwrap();
    let err = sqlx::query("INSERT INTO blobs (b) VALUES ($1)")
        .bind(big.clone())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)
        .unwrap_err();
    assert_eq!(
        err.outage(),
        Some(attest_store::Outage::StorageFull),
        "{err}"
    );
    drop(tx);
    // Space returns: the next transaction works on a sound connection.
    sqlx::query("PRAGMA max_page_count = 1000000")
        .execute(store.pool())
        .await
        .unwrap();
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query("INSERT INTO blobs (b) VALUES ($1)")
        .bind(big)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM blobs")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// Every write transaction is counted when it begins, and again when it
/// commits; a rolled-back or dropped one only begins.
#[tokio::test]
async fn write_transactions_are_counted() {
    for db in TestDb::all().await {
        let store = db.store();
        let before = store.write_stats();
        let tx = store.begin_write().await.unwrap();
        tx.commit().await.unwrap();
        let tx = store.begin_write().await.unwrap();
        tx.rollback().await.unwrap();
        drop(store.begin_write().await.unwrap());
        let refused: Result<(), StoreError> = store
            .write(|_| Box::pin(async { Err(StoreError::Conflict("refused".into())) }))
            .await;
        assert!(refused.is_err());
        let after = store.write_stats();
        assert_eq!(after.begun - before.begun, 4, "{}", db.backend());
        assert_eq!(after.committed - before.committed, 1, "{}", db.backend());
        db.close().await;
    }
}

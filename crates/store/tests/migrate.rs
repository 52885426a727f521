#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The migration runner on every backend.

use attest_store::sqlx::{self, Row};
use attest_store::testing::TestDb;
use attest_store::{Migration, MigrationSet, Store, StoreError, CORE_MIGRATIONS};

const EXT_V1: Migration = Migration {
    version: 1,
    name: "widgets",
    sqlite: "CREATE TABLE ext_widgets (id INTEGER PRIMARY KEY, on_ INTEGER NOT NULL)",
    postgres: "CREATE TABLE ext_widgets (id BIGINT PRIMARY KEY, on_ BOOLEAN NOT NULL)",
};
const EXT_V2: Migration = Migration {
    version: 2,
    name: "widget_names",
    sqlite: "ALTER TABLE ext_widgets ADD COLUMN name TEXT NULL",
    postgres: "ALTER TABLE ext_widgets ADD COLUMN name TEXT NULL",
};
const EXT: MigrationSet = MigrationSet {
    component: std::borrow::Cow::Borrowed("extension_demo"),
    migrations: &[EXT_V1, EXT_V2],
};
const EXT_V3: Migration = Migration {
    version: 3,
    name: "three",
    sqlite: "CREATE TABLE ext_three (id INTEGER)",
    postgres: "CREATE TABLE ext_three (id BIGINT)",
};
const V1_V3: MigrationSet = MigrationSet {
    component: std::borrow::Cow::Borrowed("extension_demo"),
    migrations: &[EXT_V1, EXT_V3],
};
const V1_V2_V3: MigrationSet = MigrationSet {
    component: std::borrow::Cow::Borrowed("extension_demo"),
    migrations: &[EXT_V1, EXT_V2, EXT_V3],
};
const EXT_ONLY_V1: MigrationSet = MigrationSet {
    component: std::borrow::Cow::Borrowed("extension_demo"),
    migrations: &[EXT_V1],
};

/// Core migrations plus the two of `EXT`.
fn core_and_ext() -> usize {
    CORE_MIGRATIONS.migrations.len() + EXT.migrations.len()
}

async fn fresh() -> Vec<TestDb> {
    TestDb::all_with(&[]).await
}

#[tokio::test]
async fn applies_pending_once_and_counts() {
    for db in fresh().await {
        let store = db.store();
        let report = store.migrate(&[CORE_MIGRATIONS, EXT]).await.unwrap();
        let all = core_and_ext();
        assert_eq!((report.applied, report.total), (all, all));
        assert_eq!(report.applied_migrations[0].component, "core");
        assert_eq!(report.applied_migrations[all - 1].name, "widget_names");
        let again = store.migrate(&[CORE_MIGRATIONS, EXT]).await.unwrap();
        assert_eq!((again.applied, again.total), (0, all));
        let rows = sqlx::query(
            "SELECT component, version, name, checksum, applied_at FROM schema_migrations \
             ORDER BY component, version",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(rows.len(), all);
        let checksum: String = rows[0].try_get("checksum").unwrap();
        assert_eq!(
            checksum,
            CORE_MIGRATIONS.migrations[0].checksum(store.backend())
        );
        assert_eq!(checksum.len(), 64);
        let applied_at: String = rows[0].try_get("applied_at").unwrap();
        assert_eq!(applied_at.len(), "2026-05-14T17:05:00.123456+00:00".len());
        assert!(applied_at.ends_with("+00:00"));
        db.close().await;
    }
}

#[tokio::test]
async fn newer_schema_is_refused() {
    for db in fresh().await {
        let store = db.store();
        store.migrate(&[CORE_MIGRATIONS, EXT]).await.unwrap();
        let err = store
            .migrate(&[CORE_MIGRATIONS, EXT_ONLY_V1])
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::SchemaTooNew { component, db_version: 2, binary_version: 1 }
                    if component == "extension_demo"
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "database schema for component 'extension_demo' is at version 2 but this binary \
             only knows up to 1; upgrade the binary or restore a matching backup"
        );
        db.close().await;
    }
}

#[tokio::test]
async fn changed_migration_is_refused() {
    const CHANGED: MigrationSet = MigrationSet {
        component: std::borrow::Cow::Borrowed("extension_demo"),
        migrations: &[Migration {
            sqlite: "CREATE TABLE ext_widgets (id INTEGER PRIMARY KEY)",
            postgres: "CREATE TABLE ext_widgets (id BIGINT PRIMARY KEY)",
            ..EXT_V1
        }],
    };
    for db in fresh().await {
        let store = db.store();
        store.migrate(&[EXT_ONLY_V1]).await.unwrap();
        let err = store.migrate(&[CHANGED]).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::ChecksumMismatch { version: 1, .. }),
            "{err}"
        );
        db.close().await;
    }
}

#[tokio::test]
async fn history_the_binary_lacks_is_refused() {
    for db in fresh().await {
        let store = db.store();
        // Database has 1 and 2; binary knows 1 and 3.
        store.migrate(&[EXT]).await.unwrap();
        let err = store.migrate(&[V1_V3]).await.unwrap_err();
        assert!(matches!(&err, StoreError::Migration { .. }), "{err}");
        assert!(
            err.to_string().contains("version 2 'widget_names'"),
            "{err}"
        );
        db.close().await;
    }
    for db in fresh().await {
        let store = db.store();
        // Database has 1 and 3; binary knows 1, 2 and 3: 2 cannot go in late.
        store.migrate(&[V1_V3]).await.unwrap();
        let err = store.migrate(&[V1_V2_V3]).await.unwrap_err();
        assert!(err.to_string().contains("is missing"), "{err}");
        db.close().await;
    }
}

#[tokio::test]
async fn failing_migration_rolls_back() {
    const BROKEN: MigrationSet = MigrationSet {
        component: std::borrow::Cow::Borrowed("extension_broken"),
        migrations: &[Migration {
            version: 1,
            name: "broken",
            sqlite: "CREATE TABLE ext_half (id INTEGER); CREATE TABLE oops (",
            postgres: "CREATE TABLE ext_half (id BIGINT); CREATE TABLE oops (",
        }],
    };
    for db in fresh().await {
        let store = db.store();
        let err = store.migrate(&[CORE_MIGRATIONS, BROKEN]).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::MigrationFailed { version: 1, .. }),
            "{err}"
        );
        // Core went in; the broken one left nothing behind.
        let versions: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT component FROM schema_migrations ORDER BY component",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(versions, vec!["core".to_string()]);
        let half = sqlx::query("SELECT COUNT(*) FROM ext_half")
            .fetch_one(store.pool())
            .await;
        assert!(half.is_err(), "ext_half must not exist");
        db.close().await;
    }
}

#[tokio::test]
async fn malformed_sets_are_refused() {
    const DUP: MigrationSet = MigrationSet {
        component: std::borrow::Cow::Borrowed("extension_dup"),
        migrations: &[EXT_V2, EXT_V1],
    };
    let db = TestDb::sqlite_with(&[]).await;
    let err = db.store().migrate(&[DUP]).await.unwrap_err();
    assert!(err.to_string().contains("must be above"), "{err}");
    let err = db.store().migrate(&[EXT, EXT]).await.unwrap_err();
    assert!(err.to_string().contains("given twice"), "{err}");
}

/// Several independent stores (separate pools, as separate processes
/// would have) migrating one database at once: each migration runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrators_apply_each_migration_once() {
    for db in fresh().await {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let url = db.url().to_string();
            tasks.push(tokio::spawn(async move {
                let store = Store::connect(&url).await.unwrap();
                let report = store.migrate(&[CORE_MIGRATIONS, EXT]).await.unwrap();
                store.close().await;
                report.applied
            }));
        }
        let mut applied = 0;
        for task in tasks {
            applied += task.await.unwrap();
        }
        assert_eq!(applied, core_and_ext());
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(db.store().pool())
            .await
            .unwrap();
        assert_eq!(n, core_and_ext() as i64);
        db.close().await;
    }
}

/// `schema_status` reports, without changing anything, what `migrate`
/// would refuse (too new, unknown component) and what it would only apply.
#[tokio::test]
async fn schema_status_reports_without_migrating() {
    for db in fresh().await {
        let store = db.store();
        store.migrate(&[CORE_MIGRATIONS, EXT]).await.unwrap();
        let status = store.schema_status(&[CORE_MIGRATIONS, EXT]).await.unwrap();
        assert_eq!(status.len(), 2);
        assert!(status.iter().all(|c| c.problem.is_none() && c.known));
        assert_eq!(status[1].db_version, 2);

        // The binary knows less than the database: refused, as migrate would.
        let status = store
            .schema_status(&[CORE_MIGRATIONS, EXT_ONLY_V1])
            .await
            .unwrap();
        let ext = &status[1];
        assert!(ext.refused(), "{ext:?}");
        assert!(
            ext.problem.as_deref().unwrap().contains("version 2"),
            "{ext:?}"
        );

        // The binary knows more: pending only, not refused, nothing applied.
        let status = store
            .schema_status(&[CORE_MIGRATIONS, V1_V2_V3])
            .await
            .unwrap();
        assert!(
            status[1].pending_only && !status[1].refused(),
            "{:?}",
            status[1]
        );
        let applied: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM schema_migrations WHERE component = 'extension_demo'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(applied, 2);

        // A component the binary does not know at all.
        let status = store.schema_status(&[CORE_MIGRATIONS]).await.unwrap();
        let unknown = status
            .iter()
            .find(|c| c.component == "extension_demo")
            .unwrap();
        assert!(!unknown.known && unknown.refused(), "{unknown:?}");
        db.close().await;
    }
}

//! Throwaway databases for tests (cargo feature `testing`).
//!
//! Every storage test should run on SQLite and, when `TEST_DATABASE_URL`
//! names a PostgreSQL server (e.g. `postgres://postgres@127.0.0.1:5432/postgres`),
//! on a fresh PostgreSQL database too: use [`for_each_backend`] or
//! [`TestDb::all`]. Test support panics on set-up failure, hence the allows.
#![allow(clippy::expect_used, clippy::panic)]

use std::future::Future;

use sqlx::{AnyConnection, Connection, Executor};

use crate::{Backend, MigrationSet, Store, CORE_MIGRATIONS};

/// Env var naming the PostgreSQL server tests may create databases on.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

enum Kind {
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
        dropped: bool,
    },
}

/// A fresh database and a [`Store`] on it; removed when dropped (the
/// PostgreSQL database best effort: prefer [`TestDb::close`]).
pub struct TestDb {
    store: Store,
    url: String,
    kind: Kind,
}

impl TestDb {
    /// A new SQLite file in a temporary directory, with core migrations.
    pub async fn sqlite() -> TestDb {
        Self::sqlite_with(&[CORE_MIGRATIONS]).await
    }

    /// A new SQLite file migrated with `sets` (empty: no tables at all).
    pub async fn sqlite_with(sets: &[MigrationSet]) -> TestDb {
        let dir = tempfile::tempdir().expect("create temp dir");
        let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
        let store = Store::connect(&url)
            .await
            .expect("open SQLite test database");
        let db = TestDb {
            store,
            url,
            kind: Kind::Sqlite { _dir: dir },
        };
        db.migrate(sets).await;
        db
    }

    /// A new database on the `TEST_DATABASE_URL` server, with core
    /// migrations; `None` when the variable is unset.
    pub async fn postgres() -> Option<TestDb> {
        Self::postgres_with(&[CORE_MIGRATIONS]).await
    }

    /// Like [`postgres`](Self::postgres), migrated with `sets`.
    pub async fn postgres_with(sets: &[MigrationSet]) -> Option<TestDb> {
        let admin_url = std::env::var(TEST_DATABASE_URL).ok()?;
        sqlx::any::install_default_drivers();
        let name = format!("attest_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AnyConnection::connect(&admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        let url = url.to_string();
        let store = Store::connect(&url)
            .await
            .expect("connect to test database");
        let db = TestDb {
            store,
            url,
            kind: Kind::Postgres {
                admin_url,
                name,
                dropped: false,
            },
        };
        db.migrate(sets).await;
        Some(db)
    }

    /// SQLite, plus PostgreSQL when configured; core migrations applied.
    pub async fn all() -> Vec<TestDb> {
        Self::all_with(&[CORE_MIGRATIONS]).await
    }

    /// SQLite, plus PostgreSQL when configured; migrated with `sets`.
    pub async fn all_with(sets: &[MigrationSet]) -> Vec<TestDb> {
        let mut dbs = vec![Self::sqlite_with(sets).await];
        dbs.extend(Self::postgres_with(sets).await);
        dbs
    }

    async fn migrate(&self, sets: &[MigrationSet]) {
        if !sets.is_empty() {
            self.store
                .migrate(sets)
                .await
                .expect("migrate test database");
        }
    }

    /// The store on this database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The URL of this database (to open more connections or processes).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Closes the pool and removes the database.
    pub async fn close(mut self) {
        self.store.close().await;
        if let Kind::Postgres {
            admin_url,
            name,
            dropped,
        } = &mut self.kind
        {
            drop_pg_database(admin_url, name).await;
            *dropped = true;
        }
    }
}

async fn drop_pg_database(admin_url: &str, name: &str) {
    if let Ok(mut admin) = AnyConnection::connect(admin_url).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
        let _ = admin.close().await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Kind::Postgres {
            admin_url,
            name,
            dropped: false,
        } = &self.kind
        {
            // Drop cannot await; run the DROP on a private runtime thread.
            let (admin_url, name) = (admin_url.clone(), name.clone());
            let handle = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(drop_pg_database(&admin_url, &name));
                }
            });
            let _ = handle.join();
        }
    }
}

/// Runs `body` once per available backend, each time on a fresh database
/// with core migrations; prints which backend is running.
pub async fn for_each_backend<F, Fut>(body: F)
where
    F: FnMut(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    for_each_backend_with(&[CORE_MIGRATIONS], body).await;
}

/// Like [`for_each_backend`], migrated with `sets`.
pub async fn for_each_backend_with<F, Fut>(sets: &[MigrationSet], mut body: F)
where
    F: FnMut(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    for db in TestDb::all_with(sets).await {
        eprintln!("-- running on {}", db.backend());
        body(db.store().clone()).await;
        db.close().await;
    }
}

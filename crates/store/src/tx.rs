//! Write transactions that serialise cleanly on both backends.
//!
//! SQLite: `BEGIN IMMEDIATE` takes the database's write lock up front, so a
//! transaction never starts as a reader and later fails to upgrade (the
//! SQLITE_BUSY case the busy timeout cannot resolve); inside one process an
//! async mutex queues writers first. PostgreSQL: plain `BEGIN` (READ
//! COMMITTED); code that must serialise on a row makes an `UPDATE …` of
//! that row its first statement (as the audit append does with the chain
//! tip). Why, in detail: `docs/storage.md`.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::{Any, AnyConnection, Transaction};
use tokio::sync::OwnedMutexGuard;

use crate::error::{Result, StoreError};
use crate::{Backend, Store};

/// Write transactions of this process since it started: what a commit
/// costs is what bounds write throughput, so operators and benchmarks
/// count them (`attestation_db_write_transactions_total` on `/metrics`).
#[derive(Debug, Default)]
pub struct WriteCounts {
    begun: AtomicU64,
    committed: AtomicU64,
}

/// A reading of [`WriteCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Write transactions opened.
    pub begun: u64,
    /// Of those, committed (the rest rolled back, failed or are open).
    pub committed: u64,
}

/// An open write transaction. Dropping it without [`commit`](Self::commit)
/// rolls back. Derefs to the connection, so `query(…).execute(&mut *tx)`.
pub struct WriteTx {
    // Field order matters: the transaction drops (queues its rollback)
    // before the in-process write lock is released.
    tx: Transaction<'static, Any>,
    backend: Backend,
    counts: Arc<WriteCounts>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Which database the transaction runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Makes the transaction's writes durable and visible.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        self.counts.committed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Discards the transaction's writes.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Store {
    /// Opens a write transaction.
    ///
    /// Do not open a second one in the same task before the first ends: on
    /// SQLite it would wait for the first forever.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        self.write_counts.begun.fetch_add(1, Ordering::Relaxed);
        Ok(WriteTx {
            tx,
            backend: self.backend,
            counts: self.write_counts.clone(),
            _guard: guard,
        })
    }

    /// Write transactions this process has begun and committed so far.
    pub fn write_stats(&self) -> WriteStats {
        WriteStats {
            begun: self.write_counts.begun.load(Ordering::Relaxed),
            committed: self.write_counts.committed.load(Ordering::Relaxed),
        }
    }

    /// Runs `f` in a write transaction: commits on `Ok`, rolls back on `Err`.
    ///
    /// ```ignore
    /// store.write(|tx| Box::pin(async move {
    ///     AuditRepo::append(tx, &entry, now).await
    /// })).await?;
    /// ```
    pub async fn write<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, std::result::Result<T, E>>,
        E: From<StoreError>,
    {
        self.write_with(async move |tx| f(tx).await).await
    }

    /// Runs the async closure `f` in a write transaction: commits on
    /// `Ok`, rolls back on `Err`. Unlike [`Store::write`], `f` may borrow
    /// from its caller, so services need not clone what they write.
    ///
    /// ```ignore
    /// store.write_with(async |tx| AuditRepo::append(tx, &entry, now).await).await?;
    /// ```
    pub async fn write_with<T, E>(
        &self,
        f: impl AsyncFnOnce(&mut WriteTx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut tx = self.begin_write().await?;
        match f(&mut tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(e) => {
                // The caller's error matters more than a failed rollback,
                // and the connection is discarded by sqlx if rollback fails.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// Opens a read-only transaction that sees one consistent snapshot
    /// (REPEATABLE READ on PostgreSQL; a deferred read transaction in WAL
    /// mode on SQLite, whose snapshot starts at its first read).
    pub async fn begin_snapshot(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        })
    }
}

//! Database access for SQLite and PostgreSQL through one query layer.
//!
//! Every query is written once, with `$1, $2, …` placeholders, and runs on
//! an [`sqlx::AnyPool`]; the only per-backend text is migration DDL and the
//! `BEGIN` statement (see `docs/storage.md`).
//!
//! Entry points: [`Store::connect`], [`Store::migrate`] with
//! [`CORE_MIGRATIONS`] (plus each extension's set), [`Store::begin_write`]
//! for transactions, [`Store::audit`] for the hash-chained audit log and
//! [`Store::audit_checkpoints`] for its signed checkpoints,
//! [`Store::machines`], [`Store::approvals`] and [`Store::nonces`] for the
//! machine lifecycle, [`Store::enrollment_certs`] and
//! [`Store::ak_credentials`] for certificates and AK credential activation,
//! [`Store::host_enrollments`] for host agents joining the control plane.

mod ak_credentials;
mod approvals;
mod audit;
mod backend;
pub mod backup;
mod enrollment_certs;
mod error;
mod files;
mod host_enrollments;
mod machines;
mod migrate;
mod nonces;
mod outbox;
mod rate_limits;
#[cfg(feature = "testing")]
pub mod testing;
mod tx;

use std::sync::Arc;
use std::time::Duration;

use attest_domain::clock::{SharedClock, SystemClock};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, ColumnIndex, Connection, Executor, Row};

pub use ak_credentials::{
    AkCredentialRecord, AkCredentialRedeemed, AkCredentialRepo, NewAkCredential,
};
pub use approvals::{ApprovalRepo, VoteRecord};
pub use attest_domain::audit::checkpoint::AuditCheckpoint;
pub use attest_domain::audit::{AuditEntry, VerifyReport};
pub use audit::checkpoints::CheckpointRepo;
pub use audit::pg_copy::{CopyError, CopyRows};
pub use audit::{ActionFilter, AuditRepo, NewAuditEntry};
pub use backend::{redacted_url, Backend};
pub use enrollment_certs::{EnrollmentCertRepo, HolderProof, IssuedCertRecord, RevokedCert};
pub use error::{Outage, Result, StoreError};
pub use files::{DIR_MODE as SQLITE_DIR_MODE, FILE_MODE as SQLITE_FILE_MODE};
pub use host_enrollments::{
    HostEnrollmentRecord, HostEnrollmentRepo, HOST_APPROVED, HOST_DENIED, HOST_ENROLLED,
    HOST_PENDING, HOST_REMOVED,
};
pub use machines::{MachineFilter, MachineRecord, MachineRepo};
pub use migrate::{
    AppliedMigration, ComponentSchema, Migration, MigrationReport, MigrationSet, CORE_MIGRATIONS,
};
pub use nonces::{NewNonce, NonceRepo, Redeemed, NONCE_RETENTION_MS};
pub use outbox::{OutboxEvent, OutboxRepo};
pub use rate_limits::{RateLimitRepo, SourceCount};
pub use tx::{WriteStats, WriteTx};

/// Re-exported so callers can name row and connection types without their
/// own sqlx dependency drifting from ours.
pub use sqlx;

use backend::{sqlite_target, SqliteTarget};

/// Connection settings besides the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Upper bound of pooled connections (in-memory SQLite always uses 1).
    pub max_connections: u32,
    /// How long to wait for a free pooled connection.
    pub acquire_timeout: Duration,
    /// SQLite only: how long a statement waits for another writer's lock.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Handle to the database; cheap to clone (all clones share one pool).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: serialises this process's write transactions in FIFO
    /// order so they queue on a fair async mutex rather than spin in
    /// SQLite's busy handler. `BEGIN IMMEDIATE` still guards other processes.
    write_lock: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Write transactions begun and committed by this process.
    write_counts: Arc<tx::WriteCounts>,
    clock: SharedClock,
    /// The full URL (with any password): only for opening the native
    /// connection audit verification reads through; never logged.
    url: Arc<str>,
    busy_timeout: Duration,
    redacted: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("url", &self.redacted)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects with default [`StoreOptions`].
    ///
    /// `sqlite://PATH?mode=rwc` creates the file (0600) and its parent
    /// directory (0700), and narrows an existing file to 0600 (see
    /// `files.rs`); `postgres://user:pass@host:port/db` needs an existing
    /// database.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Connects with explicit pool settings.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let redacted: Arc<str> = redacted_url(url).into();
        let connect_err = |source| StoreError::Connect {
            url: redacted.to_string(),
            source,
        };
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // A connection whose transaction could be neither committed
            // nor rolled back (SQLite rolls back by itself on a full disk,
            // so the driver's ROLLBACK fails and it still counts a
            // transaction open) would refuse every later BEGIN: close it
            // instead of handing it out. The pool's ping before this
            // check has run any rollback the transaction's drop queued.
            .before_acquire(|conn, _meta| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            });
        let mut write_lock = None;
        if backend == Backend::Sqlite {
            write_lock = Some(Arc::new(tokio::sync::Mutex::new(())));
            match sqlite_target(url)? {
                SqliteTarget::Memory => {
                    // Each in-memory connection is its own database: keep one forever.
                    pool_options = pool_options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
                SqliteTarget::File(path) => {
                    let mode = files::OpenMode::of_url(url);
                    tokio::task::spawn_blocking(move || files::prepare_sqlite_file(&path, mode))
                        .await
                        .map_err(|e| {
                            StoreError::Task(format!("preparing the database file: {e}"))
                        })??;
                    // A read-only database keeps whatever journal mode it has.
                    if !url.contains("mode=ro") {
                        enable_wal(url, options.busy_timeout)
                            .await
                            .map_err(connect_err)?;
                    }
                }
            }
            let busy_ms = options.busy_timeout.as_millis();
            pool_options = pool_options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(format!("PRAGMA busy_timeout = {busy_ms}").as_str())
                        .await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect(url).await.map_err(connect_err)?;
        Ok(Self {
            pool,
            backend,
            write_lock,
            write_counts: Arc::default(),
            clock: Arc::new(SystemClock),
            url: url.into(),
            busy_timeout: options.busy_timeout,
            redacted,
        })
    }

    /// Replaces the clock used for bookkeeping timestamps (`applied_at`).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock this store stamps bookkeeping rows with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection URL without its password, for logs.
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }

    /// The full connection URL, password included: never log it.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// SQLite only: how long a statement waits for another writer's lock.
    pub(crate) fn busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    /// The underlying pool, for reads that need no transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A pooled connection for reads outside a transaction.
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// Round trip to the database, for readiness probes.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        conn.ping().await?;
        Ok(())
    }

    /// Closes every pooled connection; later use fails.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Reads a boolean column on either backend.
///
/// Declare flags `BOOLEAN` on PostgreSQL but `INTEGER` (0/1) on SQLite:
/// sqlx's Any driver cannot read SQLite's `BOOLEAN` declared type at all,
/// and reads SQLite integers as integers. Binding a `bool` works on both.
pub fn get_bool<I>(row: &AnyRow, index: I) -> Result<bool>
where
    I: ColumnIndex<AnyRow> + Copy,
{
    match row.try_get::<bool, _>(index) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(index)? != 0),
    }
}

/// The `(key, count)` rows of a `SELECT key, COUNT(*) … GROUP BY key`
/// query, in the query's order: the read behind the per-status and
/// per-action counts the metrics extension exports.
pub(crate) async fn grouped_counts(store: &Store, sql: &str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(sql).fetch_all(store.pool()).await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Switches the file to WAL once, on a lone connection: changing the
/// journal mode needs an exclusive lock, which pooled connections opening
/// side by side would fight over. WAL persists in the file.
async fn enable_wal(url: &str, busy_timeout: Duration) -> std::result::Result<(), sqlx::Error> {
    let mut conn = AnyConnection::connect(url).await?;
    let busy_ms = busy_timeout.as_millis();
    conn.execute(format!("PRAGMA busy_timeout = {busy_ms}").as_str())
        .await?;
    let deadline = tokio::time::Instant::now() + busy_timeout;
    loop {
        match conn.execute("PRAGMA journal_mode = WAL").await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline && is_busy(&e) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
    conn.close().await
}

/// SQLITE_BUSY or SQLITE_LOCKED, including their extended codes.
fn is_busy(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    db.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// Every public future must be `Send` so handlers and spawned tasks can
/// hold it; this fails to compile otherwise.
#[cfg(test)]
#[allow(dead_code, clippy::unwrap_used)]
mod send_checks {
    use super::*;

    fn is_send<T: Send>(_: T) {}

    async fn all(store: Store, mut tx: WriteTx, entry: NewAuditEntry) {
        let now = chrono::Utc::now();
        is_send(Store::connect("sqlite::memory:"));
        is_send(store.migrate(&[CORE_MIGRATIONS]));
        is_send(store.begin_write());
        is_send(store.begin_snapshot());
        is_send(store.ping());
        is_send(AuditRepo::append(&mut tx, &entry, now));
        is_send(store.audit().append_one(&entry, now));
        is_send(store.audit().list(1, 50));
        is_send(store.audit().count());
        is_send(store.audit().verify());
        let owned = entry.clone();
        is_send(
            store
                .write(move |tx| Box::pin(async move { AuditRepo::append(tx, &owned, now).await })),
        );
    }
}

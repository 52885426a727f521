//! The store's one error type.

/// Everything the store can fail with. Messages never contain passwords:
/// URLs are passed through [`crate::redacted_url`] first.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one the store understands.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),

    /// Could not prepare the SQLite file's directory.
    #[error("cannot create database directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// Could not create the SQLite file or narrow its permissions.
    #[error("cannot prepare database file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// Could not connect (or configure a new connection).
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },

    /// A migration set is malformed, or the database's migration history
    /// does not fit the binary's.
    #[error("migrations of component '{component}': {message}")]
    Migration { component: String, message: String },

    /// A migration's SQL failed; its transaction was rolled back.
    #[error("migration {component}/{version} '{name}' failed: {source}")]
    MigrationFailed {
        component: String,
        version: i64,
        name: String,
        #[source]
        source: sqlx::Error,
    },

    /// The database was migrated by a newer binary.
    #[error(
        "database schema for component '{component}' is at version {db_version} but this \
         binary only knows up to {binary_version}; upgrade the binary or restore a matching backup"
    )]
    SchemaTooNew {
        component: String,
        db_version: i64,
        binary_version: i64,
    },

    /// An applied migration's SQL differs from the binary's copy.
    #[error(
        "migration {component}/{version} '{name}' was applied with checksum {db_checksum} but \
         this binary has {binary_checksum}; applied migrations must never change"
    )]
    ChecksumMismatch {
        component: String,
        version: i64,
        name: String,
        db_checksum: String,
        binary_checksum: String,
    },

    /// Stored data violates an invariant the schema relies on.
    #[error("database inconsistent: {0}")]
    Corrupt(String),

    /// A unique constraint refused the write: a concurrent request created
    /// the same thing first. Callers retry or report a conflict.
    #[error("conflicting write: {0}")]
    Conflict(String),

    /// A background task the store started (e.g. hashing during audit
    /// verification) panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),

    /// Any other database error.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),

    /// An error from the direct SQLite reader audit verification uses.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Why the database cannot serve a request right now, as opposed to a
/// request it refused or a bug: callers answer these with 503 and retry
/// later, and the server recovers by itself once the cause is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Unreachable, restarting, shutting down or out of connections.
    Unreachable,
    /// The storage under the database is full (or failing writes): reads
    /// keep working, writes fail until space returns.
    StorageFull,
}

impl StoreError {
    /// The outage this error reports, if it is one.
    pub fn outage(&self) -> Option<Outage> {
        match self {
            StoreError::Connect { .. } => Some(Outage::Unreachable),
            StoreError::Query(e) => sqlx_outage(e),
            StoreError::Sqlite(e) => match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) => {
                    Some(Outage::StorageFull)
                }
                _ => None,
            },
            _ => None,
        }
    }
}

fn sqlx_outage(err: &sqlx::Error) -> Option<Outage> {
    use sqlx::Error as E;
    match err {
        E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::WorkerCrashed => Some(Outage::Unreachable),
        E::Database(db) => {
            let code = db.code()?;
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse().ok().and_then(sqlite_code_outage)
            } else {
                sqlstate_outage(&code)
            }
        }
        _ => None,
    }
}

/// SQLite's (extended) result code: SQLITE_FULL (13) and SQLITE_IOERR
/// (10) with any extension are a write the file system refused (a full
/// disk shows as either).
fn sqlite_code_outage(extended: i32) -> Option<Outage> {
    matches!(extended & 0xff, 10 | 13).then_some(Outage::StorageFull)
}

/// A PostgreSQL SQLSTATE.
fn sqlstate_outage(code: &str) -> Option<Outage> {
    match code {
        // disk_full
        "53100" => Some(Outage::StorageFull),
        // too_many_connections; admin_shutdown, crash_shutdown,
        // cannot_connect_now (a restart in progress)
        "53300" | "57P01" | "57P02" | "57P03" => Some(Outage::Unreachable),
        // class 08: connection exception
        c if c.starts_with("08") => Some(Outage::Unreachable),
        _ => None,
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_codes_classify_as_outages_or_not() {
        assert_eq!(sqlite_code_outage(13), Some(Outage::StorageFull));
        // SQLITE_IOERR_WRITE (10 | 3 << 8)
        assert_eq!(sqlite_code_outage(778), Some(Outage::StorageFull));
        // SQLITE_CONSTRAINT_UNIQUE (2067): a refused write, not an outage
        assert_eq!(sqlite_code_outage(2067), None);
        assert_eq!(sqlstate_outage("57P01"), Some(Outage::Unreachable));
        assert_eq!(sqlstate_outage("08006"), Some(Outage::Unreachable));
        assert_eq!(sqlstate_outage("53100"), Some(Outage::StorageFull));
        // unique_violation
        assert_eq!(sqlstate_outage("23505"), None);
    }
}

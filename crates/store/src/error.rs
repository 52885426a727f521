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

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

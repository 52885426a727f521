//! Storage of the certificate-lifecycle application on the shared store.
//!
//! Its tables live next to the attestation service's in the one database
//! (SQLite or PostgreSQL, through `attest-store`'s query layer) as the
//! migration component `certs` ([`CERTS_MIGRATIONS`]), and every write
//! runs inside a caller's [`WriteTx`](attest_store::WriteTx) so that the
//! change and its audit entry on the one hash-chained log commit together.
//!
//! Repositories: [`rbac`] (roles, grants, who holds which role), [`keys`]
//! (API keys and the one-shot bootstrap), [`records`] (one generic
//! repository for simple resources) and [`catalog`] (teams, owners,
//! profiles, renewal policies on it).

use std::borrow::Cow;

use attest_store::{Migration, MigrationSet, StoreError};

pub mod authorities;
pub mod catalog;
pub mod certificates;
pub mod keys;
pub mod rbac;
pub mod records;

/// The component's migrations, applied by the server at start.
pub const CERTS_MIGRATIONS: MigrationSet = MigrationSet {
    component: Cow::Borrowed("certs"),
    migrations: &[
        Migration {
            version: 1,
            name: "rbac",
            sqlite: include_str!("../migrations/sqlite/0001_rbac.sql"),
            postgres: include_str!("../migrations/postgres/0001_rbac.sql"),
        },
        Migration {
            version: 2,
            name: "catalog",
            sqlite: include_str!("../migrations/sqlite/0002_catalog.sql"),
            postgres: include_str!("../migrations/postgres/0002_catalog.sql"),
        },
        Migration {
            version: 3,
            name: "authorities",
            sqlite: include_str!("../migrations/sqlite/0003_authorities.sql"),
            postgres: include_str!("../migrations/postgres/0003_authorities.sql"),
        },
        Migration {
            version: 4,
            name: "certificates",
            sqlite: include_str!("../migrations/sqlite/0004_certificates.sql"),
            postgres: include_str!("../migrations/postgres/0004_certificates.sql"),
        },
    ],
};

/// A unique or foreign-key refusal as [`StoreError::Conflict`] (the
/// caller says what conflicted), anything else unchanged. SQLite reports
/// an `ON DELETE RESTRICT` refusal as SQLITE_CONSTRAINT_TRIGGER (1811),
/// which sqlx does not classify as a foreign-key violation.
pub(crate) fn conflict_or(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db)
            if db.is_unique_violation()
                || db.is_foreign_key_violation()
                || db.code().as_deref() == Some("1811") =>
        {
            StoreError::Conflict(db.message().to_owned())
        }
        _ => StoreError::Query(err),
    }
}

/// Timestamps are stored as the wire's RFC 3339 text (UTC, seconds), so
/// text comparison orders them; every writer of these tables formats with
/// this.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

//! Chain verification over the whole log, as fast as the database can
//! hand rows over.
//!
//! Reading, not hashing, was the cost: sqlx copies every column of every
//! row into owned values and, for SQLite, sends each row across threads,
//! which held verification to ~70,000 (SQLite) and ~500,000 (PostgreSQL)
//! entries/s against ~3,000,000/s for the hashing alone. So verification
//! opens its own connection for one read-only snapshot:
//!
//! - SQLite file: rusqlite on a blocking thread, borrowing each column's
//!   text straight from the statement;
//! - PostgreSQL: `COPY (SELECT …) TO STDOUT (FORMAT binary)`, decoded by
//!   [`super::pg_copy`] as the chunks arrive;
//! - in-memory SQLite (only the pool's connection can see it): sqlx.

use std::path::Path;
use std::time::Duration;

use attest_domain::audit::{ChainVerifier, Hashed, HashedFields, VerifyReport};
use futures::TryStreamExt;
use sqlx::postgres::PgConnection;
use sqlx::{AnyConnection, Connection};

use super::pg_copy::CopyRows;
use super::{entry_from_row, COLUMNS};
use crate::backend::{sqlite_target, SqliteTarget};
use crate::error::{Result, StoreError};
use crate::{Backend, Store};

/// The recorded tip: the newest entry's id and hash.
const TIP_SQL: &str = "SELECT last_id, last_hash FROM audit_chain_tip WHERE singleton = 1";

/// The whole log, in chain order.
fn chain_sql() -> String {
    format!("SELECT {COLUMNS} FROM audit_log ORDER BY id")
}

/// Walks the chain inside one read-only snapshot and checks it against the
/// recorded tip.
pub(super) async fn verify(store: &Store, verifier: ChainVerifier) -> Result<VerifyReport> {
    match store.backend() {
        Backend::Postgres => {
            let mut conn =
                PgConnection::connect(store.url())
                    .await
                    .map_err(|source| StoreError::Connect {
                        url: store.redacted_url().to_string(),
                        source,
                    })?;
            let mut tx = conn
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            let report = walk_postgres(&mut tx, verifier).await;
            // Read-only, so ending it cannot lose anything; a walk that
            // failed mid-COPY leaves the connection unusable, so it is
            // dropped rather than asked to roll back, and no cleanup
            // error hides the walk's own answer.
            if report.is_ok() {
                let _ = tx.rollback().await;
                let _ = conn.close().await;
            }
            report
        }
        Backend::Sqlite => match sqlite_target(store.url())? {
            SqliteTarget::File(path) => {
                let busy_timeout = store.busy_timeout();
                let walked = tokio::task::spawn_blocking(move || {
                    walk_sqlite_file(&path, busy_timeout, verifier)
                })
                .await;
                joined(walked)?
            }
            SqliteTarget::Memory => {
                let mut tx = store.begin_snapshot().await?;
                let report = walk_pooled(&mut tx, verifier).await;
                if report.is_ok() {
                    let _ = tx.rollback().await;
                }
                report
            }
        },
    }
}

/// PostgreSQL: the log arrives as a binary `COPY` stream, decoded and
/// hashed in place as it comes (no per-row driver decoding into owned
/// values), while the server produces the next rows.
async fn walk_postgres(
    conn: &mut PgConnection,
    mut verifier: ChainVerifier,
) -> Result<VerifyReport> {
    let (tip_id, tip_hash): (i64, String) = sqlx::query_as(TIP_SQL)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(missing_tip)?;
    let mut rows = CopyRows::new();
    let mut stream = conn
        .copy_out_raw(&format!("COPY ({}) TO STDOUT (FORMAT binary)", chain_sql()))
        .await?;
    while let Some(chunk) = stream.try_next().await? {
        rows.feed(&chunk, |fields, stored| verifier.push(fields, stored))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    }
    rows.finish()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(verifier.finish_with_tip(tip_id, &tip_hash))
}
/// SQLite files are read with rusqlite on one blocking thread: it hands
/// out borrowed column text, so a row costs a step and a hash and nothing
/// else (sqlx's SQLite driver copies every value and sends each row across
/// threads, several times the cost of hashing it).
fn walk_sqlite_file(
    path: &Path,
    busy_timeout: Duration,
    mut verifier: ChainVerifier,
) -> Result<VerifyReport> {
    use rusqlite::{OpenFlags, TransactionBehavior};
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    // A deferred transaction takes its WAL snapshot at the first read and
    // keeps it for both statements.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let (tip_id, tip_hash): (i64, String) = tx
        .query_row(TIP_SQL, [], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => missing_tip(),
            other => other.into(),
        })?;
    {
        let mut statement = tx.prepare(&chain_sql())?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let text = |i: usize| -> rusqlite::Result<&str> { Ok(row.get_ref(i)?.as_str()?) };
            let optional = |i: usize| -> rusqlite::Result<Option<&str>> {
                Ok(row.get_ref(i)?.as_str_or_null()?)
            };
            let fields = HashedFields {
                id: row.get(0)?,
                timestamp: text(1)?,
                operator_cn: text(2)?,
                action: text(3)?,
                machine_id: optional(4)?,
                prev_state: optional(5)?,
                new_state: optional(6)?,
                detail: optional(7)?,
                prev_hash: text(8)?,
            };
            verifier.push(&fields, text(9)?);
        }
    }
    // Dropping the read transaction rolls it back; nothing was written.
    drop(tx);
    Ok(verifier.finish_with_tip(tip_id, &tip_hash))
}

/// An in-memory SQLite database exists only inside the pool's one
/// connection, so it is read through sqlx into owned entries (tests and
/// throwaway setups; speed does not matter here).
async fn walk_pooled(
    conn: &mut AnyConnection,
    mut verifier: ChainVerifier,
) -> Result<VerifyReport> {
    let (tip_id, tip_hash): (i64, String) = sqlx::query_as(TIP_SQL)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(missing_tip)?;
    let query = chain_sql();
    let mut rows = sqlx::query(&query).fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let entry = entry_from_row(&row)?;
        verifier.push(&entry.hashed(), &entry.entry_hash);
    }
    Ok(verifier.finish_with_tip(tip_id, &tip_hash))
}

fn missing_tip() -> StoreError {
    StoreError::Corrupt("audit_chain_tip row is missing".into())
}

/// A reader task that panicked or was cancelled is a store failure, not
/// a broken chain.
fn joined<T>(r: std::result::Result<T, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| StoreError::Task(format!("audit verification: {e}")))
}

//! Store-level pieces of `attestation backup`, `restore` and
//! `verify-backup`: a consistent online snapshot of an SQLite file, and
//! the connection details the PostgreSQL tools (`pg_dump`, `pg_restore`)
//! are run with.
//!
//! # Why `VACUUM INTO` and not the incremental backup API
//!
//! Both SQLite mechanisms can copy a live database, but only one stays
//! consistent *and finishes* while the server keeps writing:
//!
//! - `VACUUM INTO 'file'` is one statement inside one read transaction. In
//!   WAL mode that transaction sees exactly the commits made before it
//!   started (a snapshot), writers carry on beside it, and the output is a
//!   complete, compacted database with no `-wal` file to carry along.
//! - The online backup API copies pages in steps (`sqlite3_backup_step`);
//!   when *another connection* writes between two steps, the copy restarts
//!   from the first page. Under a steady stream of writes (a fleet
//!   attesting) a stepped copy may never finish. Copying all pages in one
//!   step avoids the restart but is then the same single read transaction
//!   as `VACUUM INTO`, without the compaction.
//!
//! So the snapshot is `VACUUM INTO` on a read-only connection of our own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::{sqlite_target, SqliteTarget};
use crate::error::{Result, StoreError};
use crate::files::FILE_MODE;
use crate::Backend;

/// The file an `sqlite:` URL names; `None` for an in-memory database or a
/// PostgreSQL URL.
pub fn sqlite_file(url: &str) -> Result<Option<PathBuf>> {
    if Backend::from_url(url)? != Backend::Sqlite {
        return Ok(None);
    }
    Ok(match sqlite_target(url)? {
        SqliteTarget::File(path) => Some(path),
        SqliteTarget::Memory => None,
    })
}

/// Writes a consistent snapshot of the SQLite database at `source` to
/// `dest` (created 0600; it must not exist yet) while other processes may
/// be writing to `source`. See the module documentation for why this is
/// `VACUUM INTO`.
pub async fn snapshot_sqlite(source: &Path, dest: &Path, busy_timeout: Duration) -> Result<()> {
    let source = source.to_path_buf();
    let dest = dest.to_path_buf();
    tokio::task::spawn_blocking(move || snapshot_blocking(&source, &dest, busy_timeout))
        .await
        .map_err(|e| StoreError::Task(format!("database snapshot: {e}")))?
}

fn snapshot_blocking(source: &Path, dest: &Path, busy_timeout: Duration) -> Result<()> {
    use rusqlite::OpenFlags;
    if !source.is_file() {
        return Err(StoreError::File {
            path: source.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no database file"),
        });
    }
    // An empty file created 0600 first: `VACUUM INTO` accepts an empty
    // target and keeps its mode, so the copy is never readable by others.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options.open(dest).map_err(|source| StoreError::File {
        path: dest.display().to_string(),
        source,
    })?;
    let dest_text = dest
        .to_str()
        .ok_or_else(|| StoreError::InvalidUrl(format!("{}: path is not UTF-8", dest.display())))?;
    let conn = rusqlite::Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    conn.execute("VACUUM INTO ?1", [dest_text])?;
    drop(conn);
    // One self-contained file: a copy left in WAL mode would make every
    // reader of the backup create `-wal` and `-shm` files beside it.
    let copy = rusqlite::Connection::open(dest)?;
    copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
    drop(copy);
    // Durable before the backup is reported as written.
    std::fs::File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::File {
            path: dest.display().to_string(),
            source,
        })?;
    Ok(())
}

/// A PostgreSQL URL split for the client tools: the URL without its
/// password (fit for a command line, which other local users can read)
/// and the password, to be handed over in `PGPASSWORD`.
#[derive(Clone)]
pub struct PgToolTarget {
    /// `postgres://user@host:port/db?…`, password removed.
    pub url: String,
    /// The password, if the URL had one.
    pub password: Option<String>,
}

impl std::fmt::Debug for PgToolTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgToolTarget")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Splits a PostgreSQL URL for `pg_dump` / `pg_restore`.
pub fn pg_tool_target(url: &str) -> Result<PgToolTarget> {
    if Backend::from_url(url)? != Backend::Postgres {
        return Err(StoreError::InvalidUrl(format!(
            "{}: not a PostgreSQL URL",
            crate::redacted_url(url)
        )));
    }
    let mut parsed = url::Url::parse(url)
        .map_err(|e| StoreError::InvalidUrl(format!("{}: {e}", crate::redacted_url(url))))?;
    let password = parsed.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    if password.is_some() && parsed.set_password(None).is_err() {
        return Err(StoreError::InvalidUrl(crate::redacted_url(url)));
    }
    Ok(PgToolTarget {
        url: parsed.to_string(),
        password,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn password_leaves_the_url() {
        let t =
            pg_tool_target("postgres://attest:s%40cret@db:5432/attest?sslmode=require").unwrap();
        assert_eq!(t.url, "postgres://attest@db:5432/attest?sslmode=require");
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        assert!(!format!("{t:?}").contains("cret"));
        let t = pg_tool_target("postgres://postgres@127.0.0.1/x").unwrap();
        assert_eq!(t.password, None);
        assert!(pg_tool_target("sqlite://a.db").is_err());
    }

    #[test]
    fn sqlite_file_of_urls() {
        assert_eq!(
            sqlite_file("sqlite:///srv/a.db?mode=rwc").unwrap(),
            Some(PathBuf::from("/srv/a.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:").unwrap(), None);
        assert_eq!(sqlite_file("postgres://u@h/d").unwrap(), None);
    }

    #[tokio::test]
    async fn snapshot_is_a_private_copy_that_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.db");
        {
            let conn = rusqlite::Connection::open(&src).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (42);",
            )
            .unwrap();
        }
        let dest = dir.path().join("copy.db");
        snapshot_sqlite(&src, &dest, Duration::from_secs(1))
            .await
            .unwrap();
        let copy = rusqlite::Connection::open(&dest).unwrap();
        let x: i64 = copy.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 42);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(snapshot_sqlite(&src, &dest, Duration::from_secs(1))
            .await
            .is_err());
        let missing = dir.path().join("missing.db");
        assert!(
            snapshot_sqlite(&missing, &dir.path().join("c2.db"), Duration::from_secs(1))
                .await
                .is_err()
        );
    }
}

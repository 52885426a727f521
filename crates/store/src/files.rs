//! Owner-only files for an SQLite database.
//!
//! SQLite creates its file with the process umask (usually 0644), so any
//! local user could read every row: webhook secrets, audit entries,
//! machine records. The store therefore creates the database's directory
//! 0700 and the file 0600 before SQLite opens it; SQLite gives the `-wal`
//! and `-shm` files it creates later the database file's mode. A database
//! that already exists with wider permissions (made by an older version)
//! is narrowed to 0600, together with its `-wal` and `-shm` files.

use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

/// Mode of the database directory when the store creates it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the database file and its `-wal` / `-shm` companions.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) owner-only; an existing directory
/// is left as it is (it may be shared on purpose, like `.`).
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir).map_err(|source| StoreError::CreateDir {
        path: dir.display().to_string(),
        source,
    })
}

/// How the URL opens the file (its `mode=` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// `mode=rwc`: created when missing.
    Create,
    /// `mode=rw` or none: must exist.
    ReadWrite,
    /// `mode=ro`: left exactly as it is.
    ReadOnly,
}

impl OpenMode {
    pub(crate) fn of_url(url: &str) -> Self {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let has = |kv: &str| query.split('&').any(|p| p == kv);
        if has("mode=rwc") {
            Self::Create
        } else if has("mode=ro") {
            Self::ReadOnly
        } else {
            Self::ReadWrite
        }
    }
}

/// Prepares the database file at `path`: its directory owner-only, the
/// file itself created 0600 when the URL creates it and it is missing, and
/// an existing file and its companions narrowed to 0600 (a warning if that
/// is not allowed). A read-only URL changes nothing.
pub(crate) fn prepare_sqlite_file(path: &Path, mode: OpenMode) -> Result<()> {
    if mode == OpenMode::ReadOnly {
        return Ok(());
    }
    let create = mode == OpenMode::Create;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let file_error = |path: &Path, source| StoreError::File {
        path: path.display().to_string(),
        source,
    };
    if create && !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(FILE_MODE);
        }
        match options.open(path) {
            Ok(_) => {}
            // Another process created it first: narrow it below.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(file_error(path, e)),
        }
    }
    for file in companions(path) {
        // Not fatal: a file this user may use but not chmod (another
        // owner's) still works; the warning says what to fix.
        if let Err(e) = narrow(&file) {
            tracing::warn!(
                file = %file.display(),
                error = %e,
                "cannot make the database file owner-only; other local users may read it"
            );
        }
    }
    Ok(())
}

/// The database file and the `-wal` and `-shm` files SQLite keeps beside it.
fn companions(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

/// Clears group and other permission bits of `file`, if it exists.
#[cfg(unix)]
fn narrow(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode & 0o700))?;
    tracing::warn!(
        file = %file.display(),
        old_mode = format_args!("{:o}", mode & 0o777),
        "database file was readable by other users; narrowed it to owner-only"
    );
    Ok(())
}

#[cfg(not(unix))]
fn narrow(_file: &Path) -> std::io::Result<()> {
    Ok(())
}

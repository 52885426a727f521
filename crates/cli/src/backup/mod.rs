//! `attestation backup`, `restore` and `verify-backup`: run on the
//! server's host with the server's own settings (flags, `ITL_*`
//! variables, the config file: resolved exactly as `serve` does), so they
//! find the database and the data directory where the server keeps them.
//!
//! The backup layout is described in [`layout`]; the SQLite snapshot's
//! consistency under concurrent writes in `attest_store::backup`.

mod files;
mod layout;
mod pg;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use attest_server::config::{ProcessEnv, ServeArgs, Settings};
use attest_store::backup::{snapshot_sqlite, sqlite_file};
use attest_store::{Backend, StoreError};
use clap::Args;

use crate::error::{EXIT_FAILURE, EXIT_USAGE};
use layout::{Manifest, FILES_DIR, FORMAT, PGDUMP_FILE, SQLITE_FILE, VERSION};

/// How long the snapshot waits for a writer's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// `attestation backup <dir>`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup directory to create (must not exist).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub settings: ServeArgs,
}

/// `attestation restore <dir>`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup directory to restore from.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Overwrite a database that already holds data, and existing key files.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub settings: ServeArgs,
}

/// `attestation verify-backup <dir>`.
#[derive(Debug, Args)]
pub struct VerifyBackupArgs {
    /// The backup directory to check.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub settings: ServeArgs,
}

/// Why a backup command failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The settings do not resolve (as `serve` would refuse them).
    #[error("configuration error: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The database refused or failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// `pg_dump` / `pg_restore` failed or is missing.
    #[error("{0}")]
    Tool(String),
    /// The backup or the target is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Restoring would overwrite data.
    #[error("{0} (use --force to overwrite)")]
    NotEmpty(String),
}

impl BackupError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }
}

/// Runs one of the three commands on its own runtime.
pub fn run<F, Fut>(settings: &ServeArgs, command: F) -> ExitCode
where
    F: FnOnce(Settings) -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode, BackupError>>,
{
    let outcome = Settings::resolve(settings, &ProcessEnv)
        .map_err(|e| BackupError::Config(e.to_string()))
        .and_then(|settings| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    BackupError::Invalid(format!("cannot start the async runtime: {e}"))
                })?;
            runtime.block_on(command(settings))
        });
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("attestation: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// Takes a backup into `dir` (written as `<dir>.partial`, renamed when
/// complete, so a directory named `dir` is always a whole backup).
pub async fn backup(settings: Settings, dir: PathBuf) -> Result<ExitCode, BackupError> {
    if dir.exists() {
        return Err(BackupError::Invalid(format!(
            "{} already exists; give a new directory",
            dir.display()
        )));
    }
    let partial = with_suffix(&dir, ".partial");
    if partial.exists() {
        return Err(BackupError::Invalid(format!(
            "{} exists (an interrupted backup?); remove it first",
            partial.display()
        )));
    }
    files::private_dir(&partial)?;
    let result = write_backup(&settings, &partial).await;
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &dir).map_err(|e| BackupError::io(&dir, e))?;
    if let Some(parent) = dir.parent() {
        files::sync_dir(parent);
    }
    println!(
        "backup written to {} ({}, {} files, database {})",
        dir.display(),
        manifest.backend,
        manifest.files.len(),
        manifest.database
    );
    Ok(ExitCode::SUCCESS)
}

async fn write_backup(settings: &Settings, out: &Path) -> Result<Manifest, BackupError> {
    let backend = Backend::from_url(&settings.database_url)?;
    let mut entries = Vec::new();
    let database = match backend {
        Backend::Sqlite => {
            let source = sqlite_file(&settings.database_url)?.ok_or_else(|| {
                BackupError::Invalid("an in-memory database cannot be backed up".into())
            })?;
            let dest = out.join(SQLITE_FILE);
            snapshot_sqlite(&source, &dest, BUSY_TIMEOUT).await?;
            SQLITE_FILE
        }
        Backend::Postgres => {
            pg::dump(&settings.database_url, &out.join(PGDUMP_FILE))?;
            PGDUMP_FILE
        }
    };
    entries.push(files::entry(&out.join(database), database.to_string())?);
    let mut has_ca_key = false;
    for place in layout::places(settings) {
        let names = layout::present(&place).map_err(|e| BackupError::io(&place.dir, e))?;
        for name in names {
            let rel = layout::backup_path(place.name, &name);
            let from = place.dir.join(&name);
            let mode = files::mode_of(&from)?;
            files::copy_with_mode(&from, &out.join(&rel), mode)?;
            has_ca_key |= place.name == layout::CA_PLACE && name == attest_pki::CA_KEY_FILE;
            entries.push(files::entry(&out.join(&rel), rel)?);
        }
    }
    if !has_ca_key {
        return Err(BackupError::Invalid(format!(
            "no CA key in {}: has the server ever started with these settings?",
            settings.ca_dir.display()
        )));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        binary_version: env!("CARGO_PKG_VERSION").into(),
        backend: backend.as_str().into(),
        database: database.into(),
        files: entries,
    };
    files::write_manifest(out, &manifest)?;
    files::sync_dir(out);
    Ok(manifest)
}

/// Restores the backup in `dir` into the database and directories the
/// settings name. Refuses to overwrite a database that holds data, or an
/// existing key file with other contents, unless `force`.
pub async fn restore(
    settings: Settings,
    dir: PathBuf,
    force: bool,
) -> Result<ExitCode, BackupError> {
    let manifest = files::read_checked(&dir)?;
    let backend = Backend::from_url(&settings.database_url)?;
    if backend.as_str() != manifest.backend {
        return Err(BackupError::Invalid(format!(
            "the backup is of a {} database but the settings name a {} one",
            manifest.backend, backend
        )));
    }
    let places = layout::places(&settings);
    let mut targets = Vec::new();
    for file in manifest
        .files
        .iter()
        .filter(|f| f.path.starts_with(FILES_DIR))
    {
        let to = layout::server_path(&places, &file.path).ok_or_else(|| {
            BackupError::Invalid(format!("the manifest names an unknown file: {}", file.path))
        })?;
        if !force && to.exists() && files::digest(&to)?.1 != file.sha256 {
            return Err(BackupError::NotEmpty(format!(
                "{} exists with other contents",
                to.display()
            )));
        }
        targets.push((file, to));
    }
    match backend {
        Backend::Sqlite => restore_sqlite(&settings, &dir, &manifest, force)?,
        Backend::Postgres => {
            pg::restore(&settings.database_url, &dir.join(&manifest.database), force).await?
        }
    }
    for (file, to) in &targets {
        files::copy_with_mode(&dir.join(&file.path), to, file.mode)?;
    }
    println!(
        "restored {} (taken {}) into {} and {} files under {}",
        dir.display(),
        manifest.created_at,
        attest_store::redacted_url(&settings.database_url),
        targets.len(),
        settings.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn restore_sqlite(
    settings: &Settings,
    dir: &Path,
    manifest: &Manifest,
    force: bool,
) -> Result<(), BackupError> {
    let target = sqlite_file(&settings.database_url)?
        .ok_or_else(|| BackupError::Invalid("cannot restore into an in-memory database".into()))?;
    let holds_data = std::fs::metadata(&target).is_ok_and(|m| m.len() > 0);
    if holds_data && !force {
        return Err(BackupError::NotEmpty(format!(
            "the database {} already holds data",
            target.display()
        )));
    }
    // A stale WAL beside the restored file would be replayed into it.
    for suffix in ["-wal", "-shm"] {
        let companion = with_suffix(&target, suffix);
        match std::fs::remove_file(&companion) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::io(&companion, e)),
        }
    }
    files::copy_with_mode(
        &dir.join(&manifest.database),
        &target,
        attest_store::SQLITE_FILE_MODE,
    )
}

/// `path` with `suffix` appended to its last component.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub use verify::verify_backup;

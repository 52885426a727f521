//! File handling of backups: owner-only directories, copies that keep a
//! file's mode, checksums, and the manifest's integrity check.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::layout::{inside, FileEntry, Manifest, FORMAT, MANIFEST, VERSION};
use super::BackupError;

/// Creates `dir` and missing parents 0700; an existing directory stays as it is.
pub fn private_dir(dir: &Path) -> Result<(), BackupError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| BackupError::io(dir, e))
}

/// The permission bits of `path`.
pub fn mode_of(path: &Path) -> Result<u32, BackupError> {
    let meta = fs::metadata(path).map_err(|e| BackupError::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(meta.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(0o600)
    }
}

/// Size and SHA-256 of the file at `path`.
pub fn digest(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = fs::File::open(path).map_err(|e| BackupError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| BackupError::io(path, e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// The manifest entry of `path`, recorded as `rel`.
pub fn entry(path: &Path, rel: String) -> Result<FileEntry, BackupError> {
    let (size, sha256) = digest(path)?;
    Ok(FileEntry {
        path: rel,
        mode: mode_of(path)?,
        size,
        sha256,
    })
}

/// Copies `from` to `to` with permission bits `mode`, durably and without
/// a moment where `to` is half-written or wider than `mode`: a temporary
/// file beside `to` is written, synced and renamed over it.
pub fn copy_with_mode(from: &Path, to: &Path, mode: u32) -> Result<(), BackupError> {
    let dir = to.parent().unwrap_or_else(|| Path::new("."));
    private_dir(dir)?;
    let tmp = temp_beside(to);
    let result = (|| {
        let mut src = fs::File::open(from).map_err(|e| BackupError::io(from, e))?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode & 0o700);
        }
        let mut dst = options.open(&tmp).map_err(|e| BackupError::io(&tmp, e))?;
        std::io::copy(&mut src, &mut dst).map_err(|e| BackupError::io(&tmp, e))?;
        dst.flush().map_err(|e| BackupError::io(&tmp, e))?;
        #[cfg(unix)]
        {
            // The umask may have narrowed it further: set exactly.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
                .map_err(|e| BackupError::io(&tmp, e))?;
        }
        dst.sync_all().map_err(|e| BackupError::io(&tmp, e))?;
        fs::rename(&tmp, to).map_err(|e| BackupError::io(to, e))?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `<name>.restore-tmp` beside `path`.
fn temp_beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".restore-tmp");
    PathBuf::from(name)
}

/// Makes renames inside `dir` durable; best effort.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes the manifest (0600) into `dir`.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let path = dir.join(MANIFEST);
    let text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| BackupError::Invalid(format!("cannot encode the manifest: {e}")))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(|e| BackupError::io(&path, e))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(|e| BackupError::io(&path, e))
}

/// Reads `dir/manifest.json` and checks every listed file against its
/// size and checksum: a backup that fails here must not be restored.
pub fn read_checked(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST);
    let text = fs::read(&path).map_err(|e| BackupError::io(&path, e))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| BackupError::Invalid(format!("{}: {e}", path.display())))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(BackupError::Invalid(format!(
            "{}: format '{}' version {} is not one this binary reads ('{FORMAT}' version {VERSION})",
            path.display(),
            manifest.format,
            manifest.version
        )));
    }
    if !manifest.files.iter().any(|f| f.path == manifest.database) {
        return Err(BackupError::Invalid(format!(
            "the manifest does not list the database file {}",
            manifest.database
        )));
    }
    for file in &manifest.files {
        let on_disk = inside(dir, &file.path).ok_or_else(|| {
            BackupError::Invalid(format!("the manifest names an unsafe path: {}", file.path))
        })?;
        let (size, sha256) = digest(&on_disk)?;
        if size != file.size || sha256 != file.sha256 {
            return Err(BackupError::Invalid(format!(
                "{} does not match the manifest (size {size}, expected {}; checksum {}): \
                 the backup is damaged or was changed",
                file.path,
                file.size,
                if sha256 == file.sha256 {
                    "matches"
                } else {
                    "differs"
                }
            )));
        }
    }
    Ok(manifest)
}

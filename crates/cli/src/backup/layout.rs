//! What a backup holds and where each piece lives on the server.
//!
//! A backup is a directory (format 1):
//!
//! ```text
//! <backup>/
//!   manifest.json                 format, version, backend, and every file's
//!                                 path, mode, size and SHA-256
//!   database.sqlite               SQLite: a consistent snapshot (VACUUM INTO)
//!   database.pgdump               PostgreSQL: `pg_dump --format=custom`
//!   files/enrollment-ca/…         ca.pem, ca-key.pem (encrypted), ca-key.passphrase if generated
//!   files/audit-checkpoint/…      checkpoint-key.pem, checkpoint-key.passphrase if generated
//!   files/master-key/…            shared-secret-master.key, if generated
//!   files/configs/…               the role base configs (ITL_CONFIG_CACHE_DIR)
//!   files/certs-tls/…             the certificate-lifecycle listener's CA and
//!                                 server certificate (keys sealed), if self-issued
//! ```
//!
//! A directory rather than an archive: every file keeps its mode (0600 for
//! keys) without an archive format's own rules, an operator can inspect
//! it with `ls` and `sqlite3`, and `tar` around it is a one-liner when a
//! single file is wanted.

use std::path::{Path, PathBuf};

use attest_server::config::keys::GENERATED_MASTER_KEY_FILE;
use attest_server::config::Settings;
use serde::{Deserialize, Serialize};

/// `format` of every manifest.
pub const FORMAT: &str = "attestation-backup";
/// The layout version this binary writes and reads.
pub const VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The SQLite snapshot's file name.
pub const SQLITE_FILE: &str = "database.sqlite";
/// The PostgreSQL dump's file name.
pub const PGDUMP_FILE: &str = "database.pgdump";
/// The directory of the data-directory files inside a backup.
pub const FILES_DIR: &str = "files";

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The layout version ([`VERSION`]).
    pub version: u32,
    /// When the backup was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The `attestation` version that took it.
    pub binary_version: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The database file inside the backup ([`SQLITE_FILE`] or [`PGDUMP_FILE`]).
    pub database: String,
    /// Every file of the backup except the manifest, the database included.
    pub files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the backup directory, `/`-separated.
    pub path: String,
    /// Unix permission bits, restored as they were.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the contents.
    pub sha256: String,
}

/// Which files of a directory belong in a backup.
#[derive(Debug, Clone, Copy)]
pub enum Names {
    /// These names, those that exist.
    Fixed(&'static [&'static str]),
    /// Every regular file directly inside.
    All,
}

/// A server directory whose files a backup carries, under `files/<name>/`.
#[derive(Debug, Clone)]
pub struct Place {
    /// Directory name inside `files/`.
    pub name: &'static str,
    /// Where the server keeps these files, per its settings.
    pub dir: PathBuf,
    /// Which of its files.
    pub names: Names,
}

/// The CA's place name: `verify-backup` reads the key from it.
pub const CA_PLACE: &str = "enrollment-ca";

/// The server directories a backup carries, resolved from `settings`
/// exactly as `serve` resolves them.
pub fn places(settings: &Settings) -> Vec<Place> {
    vec![
        Place {
            name: CA_PLACE,
            dir: settings.ca_dir.clone(),
            names: Names::Fixed(&[
                attest_pki::CA_CERT_FILE,
                attest_pki::CA_KEY_FILE,
                attest_pki::CA_PASSPHRASE_FILE,
            ]),
        },
        Place {
            name: "audit-checkpoint",
            dir: settings.audit.checkpoint_key_dir.clone(),
            names: Names::Fixed(&[
                attest_pki::CHECKPOINT_KEY_FILE,
                attest_pki::CHECKPOINT_PASSPHRASE_FILE,
            ]),
        },
        Place {
            name: "master-key",
            dir: settings.data_dir.clone(),
            names: Names::Fixed(&[GENERATED_MASTER_KEY_FILE]),
        },
        Place {
            name: "configs",
            dir: settings.delivery.config_cache_dir.clone(),
            names: Names::All,
        },
        // Clients trust this CA: a restore must not mint a new one.
        Place {
            name: "certs-tls",
            dir: match settings.certs.tls.as_ref().map(|t| &t.certificate) {
                Some(attest_server::config::certs::CertsCertificate::SelfIssued {
                    dir, ..
                }) => dir.clone(),
                _ => settings.data_dir.join("certs-tls"),
            },
            names: Names::Fixed(attest_certs_api::listener_tls::FILES),
        },
    ]
}

/// The files of `place` that exist on the server, by name.
pub fn present(place: &Place) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    match place.names {
        Names::Fixed(list) => {
            for name in list {
                if place.dir.join(name).is_file() {
                    names.push((*name).to_string());
                }
            }
        }
        Names::All => {
            let entries = match std::fs::read_dir(&place.dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    if let Some(name) = entry.file_name().to_str() {
                        names.push(name.to_string());
                    }
                }
            }
            names.sort();
        }
    }
    Ok(names)
}

/// A file's path inside the backup directory.
pub fn backup_path(place: &str, name: &str) -> String {
    format!("{FILES_DIR}/{place}/{name}")
}

/// Where a backed-up `files/<place>/<name>` goes on the server; `None` for
/// a path this binary does not place (the manifest is then refused).
pub fn server_path(places: &[Place], path: &str) -> Option<PathBuf> {
    let rest = path.strip_prefix(FILES_DIR)?.strip_prefix('/')?;
    let (place, name) = rest.split_once('/')?;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    let place = places.iter().find(|p| p.name == place)?;
    Some(place.dir.join(name))
}

/// `dir/rel` for a manifest path, refusing anything that would leave `dir`.
pub fn inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let ok = !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    ok.then(|| dir.join(rel))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        let places = vec![Place {
            name: "enrollment-ca",
            dir: PathBuf::from("/srv/ca"),
            names: Names::All,
        }];
        assert_eq!(
            server_path(&places, "files/enrollment-ca/ca.pem"),
            Some(PathBuf::from("/srv/ca/ca.pem"))
        );
        assert_eq!(server_path(&places, "files/enrollment-ca/../x"), None);
        assert_eq!(server_path(&places, "files/other/ca.pem"), None);
        assert_eq!(server_path(&places, "database.sqlite"), None);
        assert!(inside(Path::new("/b"), "files/a/b").is_some());
        assert!(inside(Path::new("/b"), "../etc/passwd").is_none());
        assert!(inside(Path::new("/b"), "/etc/passwd").is_none());
    }
}

//! `attestation verify-backup`: the checks that say a backup can be
//! restored into a working server, each reported on its own line.
//!
//! 1. every file matches the manifest (size, SHA-256);
//! 2. the schema is one this binary knows: each component's migration
//!    history fits the binary's sets (core and every built-in extension's),
//!    as `serve` would check it at start;
//! 3. the audit chain verifies (the store's own verification);
//! 4. the CA key decrypts with the configured passphrase
//!    (`ITL_CA_KEY_PASSPHRASE`, else the generated passphrase file the
//!    backup carries) and matches the CA certificate; the audit checkpoint
//!    key likewise, when the backup holds one.
//!
//! A SQLite backup's database is opened read-only in place. A PostgreSQL
//! dump cannot be read without restoring it, so for those the database
//! checks run on the database the settings name: restore the dump into a
//! scratch database and point `--database-url` at it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use attest_domain::clock::SystemClock;
use attest_server::config::Settings;
use attest_store::{MigrationSet, Store};
use secrecy::SecretString;

use super::files::read_checked;
use super::layout::{Manifest, CA_PLACE, FILES_DIR, SQLITE_FILE};
use super::BackupError;

/// One check's outcome.
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

impl Check {
    fn new(name: &'static str, result: Result<String, String>) -> Self {
        match result {
            Ok(detail) => Self {
                name,
                ok: true,
                detail,
            },
            Err(detail) => Self {
                name,
                ok: false,
                detail,
            },
        }
    }
}

/// Runs every check, prints the report, and exits 1 if any failed.
pub async fn verify_backup(
    settings: Settings,
    dir: std::path::PathBuf,
) -> Result<ExitCode, BackupError> {
    println!("verifying backup {}", dir.display());
    let mut checks = Vec::new();
    match read_checked(&dir) {
        Ok(manifest) => {
            checks.push(Check::new(
                "files",
                Ok(format!(
                    "{} files match the manifest ({} backup taken {} by attestation {})",
                    manifest.files.len(),
                    manifest.backend,
                    manifest.created_at,
                    manifest.binary_version
                )),
            ));
            database_checks(&settings, &dir, &manifest, &mut checks).await;
            checks.push(Check::new("ca key", ca_key(&settings, &dir)));
            if let Some(check) = checkpoint_key(&settings, &dir) {
                checks.push(check);
            }
        }
        Err(e) => checks.push(Check::new("files", Err(e.to_string()))),
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    for check in &checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        println!("  {mark} {:<14} {}", check.name, check.detail);
    }
    if failed == 0 {
        println!("backup OK: all {} checks passed", checks.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("backup NOT OK: {failed} of {} checks failed", checks.len());
        Ok(ExitCode::from(crate::error::EXIT_FAILURE))
    }
}

/// The migration sets of this binary: both applications' and each
/// built-in extension's, under the component names the server migrates
/// them with.
fn migration_sets() -> Vec<MigrationSet> {
    let mut sets = attest_server::serve::APPLICATION_MIGRATIONS.to_vec();
    for ext in crate::builtin::extensions() {
        if !ext.migrations().is_empty() {
            sets.push(MigrationSet {
                component: format!("extension_{}", ext.name()).into(),
                migrations: ext.migrations(),
            });
        }
    }
    sets
}

async fn database_checks(
    settings: &Settings,
    dir: &Path,
    manifest: &Manifest,
    checks: &mut Vec<Check>,
) {
    let url = if manifest.database == SQLITE_FILE {
        match std::fs::canonicalize(dir.join(SQLITE_FILE)) {
            Ok(path) => format!("sqlite://{}?mode=ro", path.display()),
            Err(e) => {
                checks.push(Check::new("database", Err(format!("{SQLITE_FILE}: {e}"))));
                return;
            }
        }
    } else {
        settings.database_url.clone()
    };
    let store = match Store::connect(&url).await {
        Ok(store) => store,
        Err(e) => {
            checks.push(Check::new("database", Err(e.to_string())));
            return;
        }
    };
    if manifest.database != SQLITE_FILE {
        checks.push(Check::new(
            "database",
            Ok(format!(
                "checking {} (where the dump was restored)",
                store.redacted_url()
            )),
        ));
    }
    checks.push(Check::new("schema", schema(&store).await));
    checks.push(Check::new("audit chain", audit(&store).await));
    store.close().await;
}

async fn schema(store: &Store) -> Result<String, String> {
    let status = store
        .schema_status(&migration_sets())
        .await
        .map_err(|e| format!("cannot read the migration history: {e}"))?;
    let line = |c: &attest_store::ComponentSchema| {
        format!(
            "{} {} (binary {})",
            c.component, c.db_version, c.binary_version
        )
    };
    let refused: Vec<String> = status
        .iter()
        .filter(|c| c.refused())
        .map(|c| format!("{}: {}", line(c), c.problem.as_deref().unwrap_or_default()))
        .collect();
    if !refused.is_empty() {
        return Err(format!(
            "not a schema this binary can run: {}",
            refused.join("; ")
        ));
    }
    let known: Vec<String> = status.iter().map(line).collect();
    let pending = status.iter().filter(|c| c.pending_only).count();
    let mut detail = known.join(", ");
    if pending > 0 {
        detail.push_str(&format!(
            " ({pending} component(s) older than this binary: migrated at start)"
        ));
    }
    Ok(detail)
}

async fn audit(store: &Store) -> Result<String, String> {
    let report = store
        .audit()
        .verify()
        .await
        .map_err(|e| format!("cannot verify: {e}"))?;
    if report.valid {
        Ok(format!(
            "{} entries verify, root hash {}",
            report.entries,
            report.root_hash.as_deref().unwrap_or("(empty log)")
        ))
    } else {
        Err(format!(
            "BROKEN at entry {}: {}",
            report
                .first_invalid_id
                .map_or_else(|| "?".to_string(), |id| id.to_string()),
            report.error.as_deref().unwrap_or("invalid")
        ))
    }
}

fn ca_key(settings: &Settings, dir: &Path) -> Result<String, String> {
    let ca_dir = dir.join(FILES_DIR).join(CA_PLACE);
    let pass_file = ca_dir.join(attest_pki::CA_PASSPHRASE_FILE);
    let (passphrase, source) = match &settings.ca_key_passphrase {
        Some(p) => (p.clone(), "ITL_CA_KEY_PASSPHRASE".to_string()),
        None => {
            let text = std::fs::read_to_string(&pass_file).map_err(|_| {
                "no passphrase: ITL_CA_KEY_PASSPHRASE is not set and the backup holds no \
                 generated passphrase file"
                    .to_string()
            })?;
            (
                SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned()),
                format!("the backup's {}", attest_pki::CA_PASSPHRASE_FILE),
            )
        }
    };
    let ca = attest_pki::EnrollmentCa::from_files(
        &ca_dir.join(attest_pki::CA_CERT_FILE),
        &ca_dir.join(attest_pki::CA_KEY_FILE),
        Some(passphrase),
        Arc::new(SystemClock),
    )
    .map_err(|e| format!("the CA key does not decrypt with {source}: {e}"))?;
    Ok(format!(
        "decrypts with {source} and matches the certificate ({})",
        ca.subject()
    ))
}

fn checkpoint_key(settings: &Settings, dir: &Path) -> Option<Check> {
    let key_dir = dir.join(FILES_DIR).join("audit-checkpoint");
    if !key_dir.join(attest_pki::CHECKPOINT_KEY_FILE).is_file() {
        return None;
    }
    let result = attest_pki::CheckpointSigner::load_or_create(
        &key_dir,
        settings.audit.checkpoint_key_passphrase.clone(),
    )
    .map(|signer| format!("decrypts (key id {})", signer.key_id()))
    .map_err(|e| format!("does not decrypt: {e}"));
    Some(Check::new("checkpoint key", result))
}

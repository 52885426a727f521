//! Settings of audit chain checkpoints (see `docs/audit.md`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use attest_settings::{Setting, Sources};
use secrecy::SecretString;

use super::ConfigError;

attest_settings::declare! {
    pub AUDIT_CHECKPOINT_INTERVAL_SECONDS: u64 = Setting::new("audit_checkpoint_interval_seconds", "ITL_AUDIT_CHECKPOINT_INTERVAL_SECONDS",
        "How often the server signs a checkpoint of the audit chain (entries, root hash, time) if the chain grew since the last one, and sends it as the `audit.checkpoint` webhook event; `0` turns periodic checkpoints off (`POST /api/v1/audit/checkpoints` still takes one). See [audit](audit.md).")
        .default("3600");
    pub AUDIT_CHECKPOINT_KEY_DIR: PathBuf = Setting::new("audit_checkpoint_key_dir", "ITL_AUDIT_CHECKPOINT_KEY_DIR",
        "Directory of the checkpoint signing key (`checkpoint-key.pem`, P-384, encrypted PKCS#8, mode 0600). Generated on first start; replicas must share it.")
        .derived("`<data_dir>/audit-checkpoint`");
    pub AUDIT_CHECKPOINT_KEY_PASSPHRASE: SecretString = Setting::new("audit_checkpoint_key_passphrase", "ITL_AUDIT_CHECKPOINT_KEY_PASSPHRASE",
        "Passphrase encrypting the checkpoint signing key at rest (as `ca_key_passphrase` does the CA key). When unset, a random passphrase is generated into `<audit_checkpoint_key_dir>/checkpoint-key.passphrase` (mode 0600) and a warning is logged.")
        .secret()
        .derived("generated");
}

/// The resolved group.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Between periodic checkpoints; `None`: no periodic checkpoints.
    pub checkpoint_interval: Option<Duration>,
    /// Where the checkpoint key lives.
    pub checkpoint_key_dir: PathBuf,
    /// Protects the checkpoint key file, if configured.
    pub checkpoint_key_passphrase: Option<SecretString>,
}

impl AuditSettings {
    /// Environment over file over defaults.
    pub(super) fn resolve(src: &Sources<'_>, data_dir: &Path) -> Result<Self, ConfigError> {
        let seconds = src.value(&AUDIT_CHECKPOINT_INTERVAL_SECONDS)?;
        if seconds > 366 * 86_400 {
            return Err(ConfigError::invalid(
                AUDIT_CHECKPOINT_INTERVAL_SECONDS.spec.key,
                "must be at most a year (31622400 seconds)",
            ));
        }
        Ok(Self {
            checkpoint_interval: (seconds > 0).then(|| Duration::from_secs(seconds)),
            checkpoint_key_dir: src
                .get(&AUDIT_CHECKPOINT_KEY_DIR)?
                .unwrap_or_else(|| data_dir.join("audit-checkpoint")),
            checkpoint_key_passphrase: src.get(&AUDIT_CHECKPOINT_KEY_PASSPHRASE)?,
        })
    }
}

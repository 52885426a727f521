//! Settings of the server's master key, which seals secrets kept in the
//! database (the vault's shared secrets, webhook signing secrets). The
//! variable names are the secret vault seed's.

use std::path::{Path, PathBuf};

use attest_settings::{Setting, Sources};
use secrecy::{ExposeSecret, SecretString};

use super::ConfigError;

/// The generated master key's file inside the data directory.
pub const GENERATED_MASTER_KEY_FILE: &str = "shared-secret-master.key";

attest_settings::declare! {
    pub SHARED_SECRET_MASTER_KEY: SecretString = Setting::new("shared_secret_master_key", "ITL_SHARED_SECRET_MASTER_KEY",
        "The server's master key: 64 hex digits (32 bytes, e.g. `openssl rand -hex 32`). Seals shared secrets (secret vault) and webhook signing secrets at rest (AES-256-GCM). Takes precedence over the passphrase; a malformed value stops start-up (never printed). Give every replica the same key.")
        .secret()
        .derived("see `shared_secret_passphrase`");
    pub SHARED_SECRET_PASSPHRASE: SecretString = Setting::new("shared_secret_passphrase", "ITL_SHARED_SECRET_PASSPHRASE",
        "Derives the master key (SHA-256, as the seed) when no master key is set. With neither, a random key is generated into `<data_dir>/shared-secret-master.key` (mode 0600) on first start and a warning is logged: supply the key from a secret store in production.")
        .secret()
        .derived("generated");
}

/// Where the master key comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    /// `ITL_SHARED_SECRET_MASTER_KEY`: 64 hex digits, checked when resolved.
    Hex(SecretString),
    /// `ITL_SHARED_SECRET_PASSPHRASE`.
    Passphrase(SecretString),
    /// Neither: read from, or generated into, this file.
    Generated(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hex(_) => f.write_str("Hex([redacted])"),
            Self::Passphrase(_) => f.write_str("Passphrase([redacted])"),
            Self::Generated(path) => f.debug_tuple("Generated").field(path).finish(),
        }
    }
}

impl MasterKeySource {
    /// Environment over file; a malformed key is an error naming the
    /// setting, never a silent fall-back to the passphrase.
    pub(super) fn resolve(src: &Sources<'_>, data_dir: &Path) -> Result<Self, ConfigError> {
        if let Some(key) = src.get(&SHARED_SECRET_MASTER_KEY)? {
            let ok = {
                let hex = key.expose_secret().trim();
                hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
            };
            if !ok {
                return Err(ConfigError::invalid(
                    SHARED_SECRET_MASTER_KEY.spec.key,
                    "must be 64 hexadecimal digits (32 bytes), e.g. from `openssl rand -hex 32`",
                ));
            }
            return Ok(Self::Hex(key));
        }
        if let Some(passphrase) = src.get(&SHARED_SECRET_PASSPHRASE)? {
            return Ok(Self::Passphrase(passphrase));
        }
        Ok(Self::Generated(data_dir.join(GENERATED_MASTER_KEY_FILE)))
    }
}

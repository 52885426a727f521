//! The server's master key, resolved once at start-up and lent to every
//! extension ([`attest_ext::ExtensionContext::master_key`]) to seal the
//! secrets it keeps in the database.
//!
//! In the secret vault seed's order: `ITL_SHARED_SECRET_MASTER_KEY`, else
//! SHA-256 of `ITL_SHARED_SECRET_PASSPHRASE`, else a key generated on first
//! start into the data directory (mode 0600), like the CA key's generated
//! passphrase. The seed's fallback was a random key per process, which
//! would make every sealed webhook secret unreadable after a restart.

use attest_ext::sealing::{
    MasterKey, SecretKey, KEY_ID_GENERATED, KEY_ID_MASTER_KEY, KEY_ID_PASSPHRASE,
};
use secrecy::{ExposeSecret, SecretString};

use crate::config::keys::MasterKeySource;
use crate::serve::StartupError;

/// Resolves the master key from `source`.
pub fn master_key(source: &MasterKeySource) -> Result<MasterKey, StartupError> {
    match source {
        MasterKeySource::Hex(hex) => Ok(MasterKey {
            key: SecretKey::from_hex(hex.expose_secret()).map_err(|_| {
                StartupError::MasterKey(
                    "ITL_SHARED_SECRET_MASTER_KEY must be 64 hexadecimal digits (32 bytes)".into(),
                )
            })?,
            key_id: KEY_ID_MASTER_KEY,
        }),
        MasterKeySource::Passphrase(passphrase) => Ok(MasterKey {
            key: SecretKey::from_passphrase(passphrase.expose_secret()),
            key_id: KEY_ID_PASSPHRASE,
        }),
        MasterKeySource::Generated(path) => {
            let (hex, created) = attest_pki::read_or_create_secret_file(path, || {
                SecretString::from(SecretKey::random().to_hex().as_str().to_owned())
            })
            .map_err(|e| StartupError::MasterKey(e.to_string()))?;
            let key = SecretKey::from_hex(hex.expose_secret()).map_err(|_| {
                StartupError::MasterKey(format!(
                    "{} must hold 64 hexadecimal digits (32 bytes)",
                    path.display()
                ))
            })?;
            if created {
                tracing::info!(file = %path.display(), "generated the master key");
            }
            tracing::warn!(
                file = %path.display(),
                "secrets at rest (shared secrets, webhook signing secrets) are sealed with a \
                 master key stored in the data directory; set ITL_SHARED_SECRET_MASTER_KEY \
                 (from a secret store, the same on every replica) for real protection"
            );
            Ok(MasterKey {
                key,
                key_id: KEY_ID_GENERATED,
            })
        }
    }
}

//! The shared-secret master key, resolved once at start-up in the seed's
//! order: `ITL_SHARED_SECRET_MASTER_KEY` (64 hex digits), else SHA-256 of
//! `ITL_SHARED_SECRET_PASSPHRASE`, else a random key that dies with the
//! process. A malformed key is an error rather than a silent fallback, so
//! a typo cannot quietly encrypt production secrets with a throwaway key.

use attest_ext::{ExtensionEnv, ExtensionError};
use zeroize::Zeroizing;

use crate::crypto::{SecretKey, KEY_LEN};

/// Hex-encoded 32-byte master key.
pub const ENV_MASTER_KEY: &str = "ITL_SHARED_SECRET_MASTER_KEY";
/// Passphrase whose SHA-256 is the master key.
pub const ENV_PASSPHRASE: &str = "ITL_SHARED_SECRET_PASSPHRASE";

/// `encryption_key_id` of secrets sealed with the configured hex key.
pub const KEY_ID_MASTER_KEY: &str = "env:ITL_SHARED_SECRET_MASTER_KEY";
/// `encryption_key_id` of secrets sealed with the passphrase-derived key.
pub const KEY_ID_PASSPHRASE: &str = "env:ITL_SHARED_SECRET_PASSPHRASE(sha256)";
/// `encryption_key_id` of secrets sealed with a per-process random key.
pub const KEY_ID_EPHEMERAL: &str = "random-ephemeral";

/// The master key and where it came from.
#[derive(Debug, Clone)]
pub struct MasterKey {
    /// The key (redacted in `Debug`, wiped on drop).
    pub key: SecretKey,
    /// Recorded in `encryption_key_id`.
    pub key_id: &'static str,
}

impl MasterKey {
    /// Resolves the key from the extension's environment.
    pub fn resolve(env: &ExtensionEnv) -> Result<Self, ExtensionError> {
        if let Some(raw) = env.get(ENV_MASTER_KEY) {
            let bytes = Zeroizing::new(hex::decode(raw.trim()).map_err(|_| {
                ExtensionError::new(format!(
                    "{ENV_MASTER_KEY} must be {} hexadecimal digits ({KEY_LEN} bytes); \
                     the value is not valid hex",
                    KEY_LEN * 2
                ))
            })?);
            let key = SecretKey::from_bytes(&bytes).map_err(|_| {
                ExtensionError::new(format!(
                    "{ENV_MASTER_KEY} must be {} hexadecimal digits ({KEY_LEN} bytes); got {} bytes",
                    KEY_LEN * 2,
                    bytes.len()
                ))
            })?;
            return Ok(Self {
                key,
                key_id: KEY_ID_MASTER_KEY,
            });
        }
        if let Some(passphrase) = env.get(ENV_PASSPHRASE) {
            return Ok(Self {
                key: SecretKey::from_passphrase(passphrase),
                key_id: KEY_ID_PASSPHRASE,
            });
        }
        tracing::warn!(
            "secret_vault: neither {ENV_MASTER_KEY} nor {ENV_PASSPHRASE} is set; shared secrets \
             are encrypted with a RANDOM EPHEMERAL key and become UNREADABLE after a restart \
             (development only)"
        );
        Ok(Self {
            key: SecretKey::random(),
            key_id: KEY_ID_EPHEMERAL,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ExtensionEnv {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn precedence_and_validation() {
        let hex_key = "0123456789abcdef".repeat(4);
        let both = env(&[(ENV_MASTER_KEY, &hex_key), (ENV_PASSPHRASE, "pw")]);
        assert_eq!(MasterKey::resolve(&both).unwrap().key_id, KEY_ID_MASTER_KEY);
        let pass = env(&[(ENV_PASSPHRASE, "pw")]);
        assert_eq!(MasterKey::resolve(&pass).unwrap().key_id, KEY_ID_PASSPHRASE);
        assert_eq!(
            MasterKey::resolve(&env(&[])).unwrap().key_id,
            KEY_ID_EPHEMERAL
        );

        let not_hex = env(&[(ENV_MASTER_KEY, "zz"), (ENV_PASSPHRASE, "pw")]);
        let err = MasterKey::resolve(&not_hex).unwrap_err().to_string();
        assert!(
            err.contains(ENV_MASTER_KEY) && err.contains("not valid hex"),
            "{err}"
        );
        let short = env(&[(ENV_MASTER_KEY, "abcd")]);
        let err = MasterKey::resolve(&short).unwrap_err().to_string();
        assert!(err.contains("got 2 bytes"), "{err}");
        assert!(!err.contains("abcd"), "the value is never echoed: {err}");
    }

    #[test]
    fn passphrase_key_decrypts_across_instances() {
        let pass = env(&[(ENV_PASSPHRASE, "same")]);
        let a = MasterKey::resolve(&pass).unwrap();
        let b = MasterKey::resolve(&pass).unwrap();
        let sealed = a.key.encrypt_str("v").unwrap();
        assert_eq!(&*b.key.decrypt_str(&sealed).unwrap(), "v");
        assert!(!format!("{a:?}").contains("same"));
    }
}

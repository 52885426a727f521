//! Webhook signing secrets at rest: sealed with the server's master key
//! (the SDK's [`attest_ext::sealing`], the same key and cipher as the secret
//! vault's shared secrets), opened only to sign a delivery.
//!
//! Versions before the `sealed_secrets` migration stored the secret in
//! plaintext in the seed's `secret` column. Start-up seals every such row
//! ([`crate::repo::seal_plaintext_secrets`]), and a delivery that meets one
//! written meanwhile (an older replica during an upgrade) seals it too.

use attest_ext::sealing::{MasterKey, Sealed};
use zeroize::Zeroizing;

/// A webhook's signing secret as the database holds it.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredSecret {
    /// Sealed under the master key `key_id`.
    Sealed { sealed: Sealed, key_id: String },
    /// Plaintext written by an older version; sealed as soon as seen.
    Plaintext(Zeroizing<String>),
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sealed { key_id, .. } => write!(f, "Sealed {{ key_id: {key_id:?} }}"),
            Self::Plaintext(_) => f.write_str("Plaintext([redacted])"),
        }
    }
}

/// Why a secret could not be sealed or opened. Never carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Encryption failed.
    #[error("cannot seal the signing secret: {0}")]
    Seal(String),
    /// Sealed under a key the server no longer has, or altered.
    #[error(
        "the signing secret cannot be opened with the server's master key ({current}); it was \
         sealed with {sealed_with}: set the webhook's secret again"
    )]
    Open {
        sealed_with: String,
        current: &'static str,
    },
}

impl StoredSecret {
    /// Seals `plaintext` with `master`.
    pub fn seal(master: &MasterKey, plaintext: &str) -> Result<Self, SecretError> {
        let sealed = master
            .key
            .encrypt_str(plaintext)
            .map_err(|e| SecretError::Seal(e.to_string()))?;
        Ok(Self::Sealed {
            sealed,
            key_id: master.key_id.to_owned(),
        })
    }

    /// This secret sealed (a plaintext one is sealed with `master`).
    pub fn sealed(self, master: &MasterKey) -> Result<Self, SecretError> {
        match self {
            Self::Plaintext(plain) => Self::seal(master, &plain),
            sealed => Ok(sealed),
        }
    }

    /// The plaintext, to sign with (wiped when dropped).
    pub fn open(&self, master: &MasterKey) -> Result<Zeroizing<String>, SecretError> {
        match self {
            Self::Plaintext(plain) => Ok(plain.clone()),
            Self::Sealed { sealed, key_id } => {
                master
                    .key
                    .decrypt_str(sealed)
                    .map_err(|_| SecretError::Open {
                        sealed_with: key_id.clone(),
                        current: master.key_id,
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use attest_ext::sealing::{SecretKey, KEY_ID_GENERATED, KEY_ID_MASTER_KEY};

    fn master(key_id: &'static str) -> MasterKey {
        MasterKey {
            key: SecretKey::random(),
            key_id,
        }
    }

    #[test]
    fn seals_opens_and_refuses_another_key() {
        let m = master(KEY_ID_MASTER_KEY);
        let s = StoredSecret::seal(&m, "my-signing-secret").unwrap();
        let StoredSecret::Sealed { sealed, key_id } = &s else {
            panic!("not sealed")
        };
        assert_eq!(key_id, KEY_ID_MASTER_KEY);
        assert!(!sealed
            .ciphertext
            .windows(6)
            .any(|w| w == b"secret".as_slice()));
        assert_eq!(s.open(&m).unwrap().as_str(), "my-signing-secret");
        let err = s.open(&master(KEY_ID_GENERATED)).unwrap_err().to_string();
        assert!(
            err.contains(KEY_ID_MASTER_KEY) && err.contains(KEY_ID_GENERATED),
            "{err}"
        );
        assert!(!err.contains("my-signing-secret"));
        assert!(!format!("{s:?}").contains("my-signing"));

        let legacy = StoredSecret::Plaintext(Zeroizing::new("old".into()));
        assert_eq!(format!("{legacy:?}"), "Plaintext([redacted])");
        assert_eq!(legacy.open(&m).unwrap().as_str(), "old");
        let sealed = legacy.sealed(&m).unwrap();
        assert!(matches!(sealed, StoredSecret::Sealed { .. }));
        assert_eq!(sealed.open(&m).unwrap().as_str(), "old");
    }
}

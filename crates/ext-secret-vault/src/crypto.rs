//! Machine-secret keys, the seed's `BaseCrypto` for machine secrets: a key
//! derived from the EK fingerprint with HKDF-SHA256 (the derivation is
//! `attest_domain::machine::secret_key`, shared with the CLI), which the
//! machine can recompute. Sealing itself (AES-256-GCM, ciphertext and tag
//! kept apart) is the SDK's [`attest_ext::sealing`], shared with the master key that
//! seals shared secrets.

use attest_domain::machine::secret_key::machine_secret_key;
use attest_ext::sealing::SecretKey;

pub use attest_domain::machine::secret_key::NotHexFingerprint as BadFingerprint;
pub use attest_domain::machine::secret_key::{ALGORITHM, HKDF_INFO, HKDF_SALT, KDF};
pub use attest_ext::sealing::{CryptoError, Sealed, NONCE_LEN, TAG_LEN};

/// The machine-secret key of [`attest_domain::machine::secret_key`]
/// (HKDF-SHA256 over the hex-decoded EK fingerprint), as a sealing key. A
/// machine and the CLI recompute it from the same fingerprint with the same
/// function.
pub fn machine_key(ek_fingerprint: &str) -> Result<SecretKey, BadFingerprint> {
    let key = machine_secret_key(ek_fingerprint)?;
    SecretKey::from_bytes(key.as_ref()).map_err(|_| BadFingerprint)
}

/// The key id recorded for a machine secret (the seed's `ek-<16 hex>`).
pub fn machine_key_id(ek_fingerprint: &str) -> String {
    let prefix: String = ek_fingerprint.chars().take(16).collect();
    format!("ek-{prefix}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The sealing key is the shared derivation's key (whose test vectors
    /// are in `attest_domain::machine::secret_key`).
    #[test]
    fn the_sealing_key_is_the_shared_derivation() {
        let fp = "ab".repeat(32);
        let derived = attest_domain::machine::secret_key::machine_secret_key(&fp).unwrap();
        assert_eq!(
            machine_key(&fp).unwrap().to_hex().as_str(),
            hex::encode(*derived)
        );
        assert_eq!(machine_key("not hex").unwrap_err(), BadFingerprint);
        assert_eq!(machine_key_id(&fp), "ek-abababababababab");
    }

    #[test]
    fn a_machine_key_seals_and_opens() {
        let key = machine_key(&"a".repeat(64)).unwrap();
        let sealed = key.encrypt_str("hello vault").unwrap();
        assert_eq!(&*key.decrypt_str(&sealed).unwrap(), "hello vault");
    }
}

//! Machine-secret keys, the seed's `BaseCrypto` for machine secrets: a key
//! derived from the EK fingerprint with HKDF-SHA256, which the machine can
//! recompute. Sealing itself (AES-256-GCM, ciphertext and tag kept apart)
//! is the SDK's [`attest_ext::sealing`], shared with the master key that
//! seals shared secrets.

use attest_ext::sealing::{SecretKey, KEY_LEN};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

pub use attest_ext::sealing::{CryptoError, Sealed, NONCE_LEN, TAG_LEN};

/// HKDF salt of machine-secret keys (the seed's).
pub const HKDF_SALT: &str = "ITL.ControlPlane.Attestation.SecretVault.v1";
/// HKDF info of machine-secret keys (the seed's).
pub const HKDF_INFO: &str = "machine-secret-encryption";
/// The cipher, as reported to machines.
pub const ALGORITHM: &str = "AES-256-GCM";
/// The key derivation, as reported to machines.
pub const KDF: &str = "HKDF-SHA256";

/// The EK fingerprint a machine key was asked for is not hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("EK fingerprint is not hexadecimal")]
pub struct BadFingerprint;

/// The machine-secret key: HKDF-SHA256 over the hex-decoded EK
/// fingerprint with [`HKDF_SALT`] and [`HKDF_INFO`]. A machine recomputes
/// it from its own fingerprint.
pub fn machine_key(ek_fingerprint: &str) -> Result<SecretKey, BadFingerprint> {
    let ikm = Zeroizing::new(hex::decode(ek_fingerprint.trim()).map_err(|_| BadFingerprint)?);
    let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT.as_bytes()), &ikm);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    // 32 bytes is far below HKDF-SHA256's limit, so expand cannot fail.
    hk.expand(HKDF_INFO.as_bytes(), key.as_mut())
        .map_err(|_| BadFingerprint)?;
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

    /// Expected keys computed independently with Python's `cryptography`:
    /// `HKDF(SHA256(), 32, salt=b"ITL.ControlPlane.Attestation.SecretVault.v1",
    /// info=b"machine-secret-encryption").derive(bytes.fromhex(fp))`.
    #[test]
    fn hkdf_matches_the_seed() {
        let cases = [
            (
                "a".repeat(64),
                "51e85fac10a49130a4f0974477eeb3954e80ac89190dfd6ceaf3d135bfbb276a",
            ),
            (
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".to_owned(),
                "df5ee0c38b0693469e51be5c7a2997068fd436e4fee97874c8c21850707b8e65",
            ),
        ];
        for (fp, want) in cases {
            let key = machine_key(&fp).unwrap();
            assert_eq!(key.to_hex().as_str(), want, "{fp}");
        }
        assert_eq!(machine_key("not hex").unwrap_err(), BadFingerprint);
        assert_eq!(machine_key_id(&"ab".repeat(32)), "ek-abababababababab");
    }

    #[test]
    fn a_machine_key_seals_and_opens() {
        let key = machine_key(&"a".repeat(64)).unwrap();
        let sealed = key.encrypt_str("hello vault").unwrap();
        assert_eq!(&*key.decrypt_str(&sealed).unwrap(), "hello vault");
    }
}

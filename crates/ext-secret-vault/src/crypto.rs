//! AES-256-GCM sealing with the seed's two key sources (its `BaseCrypto`):
//! machine secrets use a key derived from the EK fingerprint with
//! HKDF-SHA256, shared secrets the vault's master key.
//!
//! The ciphertext and the 16-byte tag are kept apart, as the seed stores
//! them in separate columns; the nonce is 12 random bytes per encryption.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// HKDF salt of machine-secret keys (the seed's).
pub const HKDF_SALT: &str = "ITL.ControlPlane.Attestation.SecretVault.v1";
/// HKDF info of machine-secret keys (the seed's).
pub const HKDF_INFO: &str = "machine-secret-encryption";
/// The cipher, as reported to machines.
pub const ALGORITHM: &str = "AES-256-GCM";
/// The key derivation, as reported to machines.
pub const KDF: &str = "HKDF-SHA256";
/// GCM nonce length in bytes (96 bits).
pub const NONCE_LEN: usize = 12;
/// GCM tag length in bytes (128 bits).
pub const TAG_LEN: usize = 16;
/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;

/// Why sealing or opening failed. Carries no key or plaintext material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The EK fingerprint is not hex.
    #[error("EK fingerprint is not hexadecimal")]
    BadFingerprint,
    /// A key of the wrong size.
    #[error("key must be {KEY_LEN} bytes")]
    BadKeyLength,
    /// Wrong key, or nonce, ciphertext or tag altered.
    #[error("decryption failed (wrong key or tampered data)")]
    Decrypt,
    /// Encryption failed (only for absurd input sizes).
    #[error("encryption failed")]
    Encrypt,
    /// The decrypted bytes are not UTF-8.
    #[error("decrypted value is not UTF-8")]
    NotUtf8,
}

/// A sealed value: ciphertext, nonce and tag, stored separately.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub tag: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// A 256-bit key, wiped from memory when dropped and never printed.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl SecretKey {
    /// A key from raw bytes (exactly 32).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::BadKeyLength);
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// 32 random bytes from the OS generator.
    pub fn random() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// SHA-256 of a passphrase, as the seed derives its master key.
    pub fn from_passphrase(passphrase: &str) -> Self {
        let mut digest = Sha256::digest(passphrase.as_bytes());
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&digest);
        digest.as_mut_slice().zeroize();
        Self(key)
    }

    /// The machine-secret key: HKDF-SHA256 over the hex-decoded EK
    /// fingerprint with [`HKDF_SALT`] and [`HKDF_INFO`]. A machine
    /// recomputes it from its own fingerprint.
    pub fn for_machine(ek_fingerprint: &str) -> Result<Self, CryptoError> {
        let ikm = Zeroizing::new(
            hex::decode(ek_fingerprint.trim()).map_err(|_| CryptoError::BadFingerprint)?,
        );
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT.as_bytes()), &ikm);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        hk.expand(HKDF_INFO.as_bytes(), key.as_mut())
            .map_err(|_| CryptoError::BadKeyLength)?;
        Ok(Self(key))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.0.as_ref().into())
    }

    /// Encrypts `plaintext` under a fresh random nonce.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.encrypt_with_nonce(plaintext, nonce)
    }

    fn encrypt_with_nonce(
        &self,
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Sealed, CryptoError> {
        let mut out = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &[],
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let split = out.len().checked_sub(TAG_LEN).ok_or(CryptoError::Encrypt)?;
        let tag = out.split_off(split);
        Ok(Sealed {
            ciphertext: out,
            nonce: nonce.to_vec(),
            tag,
        })
    }

    /// Decrypts a [`Sealed`] value; any alteration or a wrong key fails.
    pub fn decrypt(&self, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.nonce.len() != NONCE_LEN || sealed.tag.len() != TAG_LEN {
            return Err(CryptoError::Decrypt);
        }
        let mut joined = Vec::with_capacity(sealed.ciphertext.len() + TAG_LEN);
        joined.extend_from_slice(&sealed.ciphertext);
        joined.extend_from_slice(&sealed.tag);
        self.cipher()
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &joined,
                    aad: &[],
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt)
    }

    /// Encrypts a UTF-8 string.
    pub fn encrypt_str(&self, plaintext: &str) -> Result<Sealed, CryptoError> {
        self.encrypt(plaintext.as_bytes())
    }

    /// Decrypts to a UTF-8 string (wiped when dropped).
    pub fn decrypt_str(&self, sealed: &Sealed) -> Result<Zeroizing<String>, CryptoError> {
        let mut bytes = self.decrypt(sealed)?;
        let text = String::from_utf8(std::mem::take(&mut *bytes)).map_err(|e| {
            let mut raw = e.into_bytes();
            raw.zeroize();
            CryptoError::NotUtf8
        })?;
        Ok(Zeroizing::new(text))
    }
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
            let key = SecretKey::for_machine(&fp).unwrap();
            assert_eq!(hex::encode(key.0.as_ref()), want, "{fp}");
        }
        assert_eq!(
            SecretKey::for_machine("not hex").unwrap_err(),
            CryptoError::BadFingerprint
        );
    }

    /// Same key, nonce and plaintext as Python's `AESGCM(k).encrypt`,
    /// split into ciphertext and tag.
    #[test]
    fn aes_gcm_matches_python_and_splits_the_tag() {
        let key = SecretKey::for_machine(&"a".repeat(64)).unwrap();
        let nonce: [u8; 12] = core::array::from_fn(|i| i as u8);
        let sealed = key.encrypt_with_nonce(b"hello vault", nonce).unwrap();
        assert_eq!(hex::encode(&sealed.ciphertext), "b3e5d66300a1297cfe7740");
        assert_eq!(hex::encode(&sealed.tag), "63d724c2e44b71e49221ce1fd80faf73");
        assert_eq!(&*key.decrypt_str(&sealed).unwrap(), "hello vault");
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let key = SecretKey::random();
        let a = key.encrypt_str("s3cret ✓").unwrap();
        let b = key.encrypt_str("s3cret ✓").unwrap();
        assert_eq!(a.nonce.len(), NONCE_LEN);
        assert_eq!(a.tag.len(), TAG_LEN);
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(&*key.decrypt_str(&a).unwrap(), "s3cret ✓");
        assert_eq!(&*key.decrypt_str(&b).unwrap(), "s3cret ✓");
        let empty = key.encrypt_str("").unwrap();
        assert!(empty.ciphertext.is_empty());
        assert_eq!(&*key.decrypt_str(&empty).unwrap(), "");
    }

    #[test]
    fn wrong_key_or_tampering_fails_cleanly() {
        let key = SecretKey::random();
        let sealed = key.encrypt_str("value").unwrap();
        assert_eq!(
            SecretKey::random().decrypt(&sealed).unwrap_err(),
            CryptoError::Decrypt
        );
        let mut tag = sealed.clone();
        tag.tag[0] ^= 1;
        assert_eq!(key.decrypt(&tag).unwrap_err(), CryptoError::Decrypt);
        let mut ct = sealed.clone();
        ct.ciphertext[0] ^= 1;
        assert_eq!(key.decrypt(&ct).unwrap_err(), CryptoError::Decrypt);
        let mut nonce = sealed.clone();
        nonce.nonce.pop();
        assert_eq!(key.decrypt(&nonce).unwrap_err(), CryptoError::Decrypt);
        let mut short_tag = sealed;
        short_tag.tag.truncate(8);
        assert_eq!(key.decrypt(&short_tag).unwrap_err(), CryptoError::Decrypt);
    }

    #[test]
    fn key_sources() {
        // sha256("correct horse"), computed with Python's hashlib.
        let key = SecretKey::from_passphrase("correct horse");
        assert_eq!(
            hex::encode(key.0.as_ref()),
            "4104d36f8da2c254349f85836793ebe029e0c957063a34c91c2e9203187b5631"
        );
        assert_eq!(
            SecretKey::from_bytes(&[0u8; 31]).unwrap_err(),
            CryptoError::BadKeyLength
        );
        assert!(SecretKey::from_bytes(&[7u8; 32]).is_ok());
        assert_eq!(format!("{key:?}"), "SecretKey([redacted])");
        assert_eq!(machine_key_id(&"ab".repeat(32)), "ek-abababababababab");
    }
}

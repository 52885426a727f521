//! Sealing values at rest with the server's master key.
//!
//! One implementation for every extension that keeps secrets in the
//! database (the secret vault's shared secrets, webhook signing secrets):
//! AES-256-GCM with a random 96-bit nonce per value, the ciphertext and
//! the 16-byte tag kept apart (the seed stores them in separate columns).
//! The host resolves the [`MasterKey`] once at start-up (from
//! `ITL_SHARED_SECRET_MASTER_KEY`, `ITL_SHARED_SECRET_PASSPHRASE`, or a
//! key it generated into its data directory) and lends it to extensions
//! as [`ExtensionContext::master_key`](crate::ExtensionContext::master_key).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// GCM nonce length in bytes (96 bits).
pub const NONCE_LEN: usize = 12;
/// GCM tag length in bytes (128 bits).
pub const TAG_LEN: usize = 16;
/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;

/// `key_id` of a master key given as `ITL_SHARED_SECRET_MASTER_KEY`.
pub const KEY_ID_MASTER_KEY: &str = "env:ITL_SHARED_SECRET_MASTER_KEY";
/// `key_id` of a master key derived from `ITL_SHARED_SECRET_PASSPHRASE`.
pub const KEY_ID_PASSPHRASE: &str = "env:ITL_SHARED_SECRET_PASSPHRASE(sha256)";
/// `key_id` of the master key the server generated into its data
/// directory because none was configured.
pub const KEY_ID_GENERATED: &str = "file:shared-secret-master.key";

/// Why sealing or opening failed. Carries no key or plaintext material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// A key of the wrong size, or hex that is not a key.
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

    /// A key from 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(hex_key: &str) -> Result<Self, CryptoError> {
        let bytes =
            Zeroizing::new(hex::decode(hex_key.trim()).map_err(|_| CryptoError::BadKeyLength)?);
        Self::from_bytes(&bytes)
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

    /// The key as 64 lowercase hex digits (to write a generated key file).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
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

/// The server's master key and where it came from.
#[derive(Debug, Clone)]
pub struct MasterKey {
    /// The key (redacted in `Debug`, wiped on drop).
    pub key: SecretKey,
    /// Which key this is, recorded next to what it seals
    /// ([`KEY_ID_MASTER_KEY`], [`KEY_ID_PASSPHRASE`], [`KEY_ID_GENERATED`]).
    pub key_id: &'static str,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Same key, nonce and plaintext as Python's `AESGCM(k).encrypt`,
    /// split into ciphertext and tag.
    #[test]
    fn aes_gcm_matches_python_and_splits_the_tag() {
        let key =
            SecretKey::from_hex("51e85fac10a49130a4f0974477eeb3954e80ac89190dfd6ceaf3d135bfbb276a")
                .unwrap();
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
            key.to_hex().as_str(),
            "4104d36f8da2c254349f85836793ebe029e0c957063a34c91c2e9203187b5631"
        );
        assert_eq!(
            SecretKey::from_bytes(&[0u8; 31]).unwrap_err(),
            CryptoError::BadKeyLength
        );
        assert!(SecretKey::from_bytes(&[7u8; 32]).is_ok());
        assert_eq!(
            SecretKey::from_hex("zz").unwrap_err(),
            CryptoError::BadKeyLength
        );
        assert_eq!(
            SecretKey::from_hex("abcd").unwrap_err(),
            CryptoError::BadKeyLength
        );
        let hex_key = "0123456789abcdef".repeat(4);
        assert_eq!(
            SecretKey::from_hex(&format!(" {hex_key}\n"))
                .unwrap()
                .to_hex()
                .as_str(),
            hex_key
        );
        assert_eq!(format!("{key:?}"), "SecretKey([redacted])");
        let master = MasterKey {
            key,
            key_id: KEY_ID_PASSPHRASE,
        };
        assert!(!format!("{master:?}").contains("4104"));
    }
}

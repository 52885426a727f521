//! Stack secrets: the seed's per-stack AES-256-GCM key and `v1:` format.
//!
//! Each stack gets a random 256-bit key on its first `encrypt`. The key is
//! stored sealed under the vault's master key (`secrets_key` holds
//! `base64(nonce ‖ ciphertext ‖ tag)`, `secrets_key_id` the master key's
//! source), never in the clear. A secret's ciphertext is the ASCII text
//! `v1:<base64(12-byte nonce ‖ ciphertext ‖ 16-byte tag)>`; the CLI treats
//! it as opaque bytes (base64 again on the wire, as Go's `[]byte`).

use attest_ext::sealing::{MasterKey, Sealed, SecretKey};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

/// GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// GCM tag length.
pub const TAG_LEN: usize = 16;
/// Ciphertext prefix of the seed's format.
pub const PREFIX: &str = "v1:";

/// Why a secrets operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// Not `v1:<base64>` of at least nonce + tag.
    #[error("ciphertext is not in the v1: format")]
    Format,
    /// Wrong stack, or altered ciphertext.
    #[error("ciphertext does not decrypt with this stack's key")]
    Decrypt,
    /// The stored key does not open with the configured master key.
    #[error(
        "the stack's secrets key cannot be opened with the configured master key \
         (ITL_SHARED_SECRET_MASTER_KEY / ITL_SHARED_SECRET_PASSPHRASE changed?)"
    )]
    KeyUnavailable,
    /// Encryption failed (absurd sizes only).
    #[error("encryption failed")]
    Encrypt,
}

fn join(s: &Sealed) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.nonce.len() + s.ciphertext.len() + s.tag.len());
    out.extend_from_slice(&s.nonce);
    out.extend_from_slice(&s.ciphertext);
    out.extend_from_slice(&s.tag);
    out
}

fn split(bytes: &[u8]) -> Option<Sealed> {
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, rest) = bytes.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    Some(Sealed {
        ciphertext: ciphertext.to_vec(),
        nonce: nonce.to_vec(),
        tag: tag.to_vec(),
    })
}

/// A fresh stack key, and its sealed form for the `secrets_key` column.
pub fn new_stack_key(master: &MasterKey) -> Result<(SecretKey, String), SecretsError> {
    use rand::RngCore;
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    let key = SecretKey::from_bytes(raw.as_ref()).map_err(|_| SecretsError::Encrypt)?;
    let sealed = master
        .key
        .encrypt(raw.as_ref())
        .map_err(|_| SecretsError::Encrypt)?;
    Ok((key, STANDARD.encode(join(&sealed))))
}

/// The stack key from its stored, sealed form.
pub fn open_stack_key(master: &MasterKey, stored: &str) -> Result<SecretKey, SecretsError> {
    let bytes = STANDARD
        .decode(stored.trim())
        .map_err(|_| SecretsError::KeyUnavailable)?;
    let sealed = split(&bytes).ok_or(SecretsError::KeyUnavailable)?;
    let raw = master
        .key
        .decrypt(&sealed)
        .map_err(|_| SecretsError::KeyUnavailable)?;
    SecretKey::from_bytes(&raw).map_err(|_| SecretsError::KeyUnavailable)
}

/// Encrypts `plaintext` to the `v1:` text form.
pub fn encrypt(key: &SecretKey, plaintext: &[u8]) -> Result<String, SecretsError> {
    let sealed = key.encrypt(plaintext).map_err(|_| SecretsError::Encrypt)?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(join(&sealed))))
}

/// Decrypts the `v1:` text form.
pub fn decrypt(key: &SecretKey, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let text = std::str::from_utf8(ciphertext).map_err(|_| SecretsError::Format)?;
    let b64 = text.strip_prefix(PREFIX).ok_or(SecretsError::Format)?;
    let bytes = STANDARD.decode(b64).map_err(|_| SecretsError::Format)?;
    let sealed = split(&bytes).ok_or(SecretsError::Format)?;
    key.decrypt(&sealed).map_err(|_| SecretsError::Decrypt)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn master(hex: &str) -> MasterKey {
        MasterKey {
            key: SecretKey::from_hex(hex).unwrap(),
            key_id: "test",
        }
    }

    #[test]
    fn v1_round_trip_sealed_key_and_failures() {
        let m = master(&"ab".repeat(32));
        let (key, stored) = new_stack_key(&m).unwrap();
        let again = open_stack_key(&m, &stored).unwrap();
        let ct = encrypt(&key, b"s3cr3t!").unwrap();
        assert!(ct.starts_with("v1:"));
        let raw = STANDARD.decode(&ct[3..]).unwrap();
        assert_eq!(raw.len(), NONCE_LEN + 7 + TAG_LEN);
        assert_eq!(&*decrypt(&again, ct.as_bytes()).unwrap(), b"s3cr3t!");
        assert!(!stored.contains("s3cr3t"));

        let other = master(&"cd".repeat(32));
        assert_eq!(
            open_stack_key(&other, &stored).unwrap_err(),
            SecretsError::KeyUnavailable
        );
        let (key2, _) = new_stack_key(&m).unwrap();
        assert_eq!(
            decrypt(&key2, ct.as_bytes()).unwrap_err(),
            SecretsError::Decrypt
        );
        for bad in [&b"v2:AAAA"[..], b"v1:!!", b"v1:AAAA", b"\xff"] {
            assert_eq!(decrypt(&key, bad).unwrap_err(), SecretsError::Format);
        }
    }
}

//! EK-bound config envelopes.
//!
//! * `ek-aes256gcm-v1` (the seed's format): a fresh AES-256 key wrapped with
//!   RSA-OAEP-SHA256 (empty label) to the registered RSA key; payload
//!   AES-256-GCM with a 96-bit IV, ciphertext || 16-byte tag. A real EK is a
//!   *restricted* decryption key and `TPM2_RSA_Decrypt` refuses it, so only a
//!   non-restricted RSA key registered in the EK's place can open this.
//! * `ek-credential-aes256gcm-v1`: the same payload encryption, but the AES
//!   key travels as a TPM2_MakeCredential blob for an AK bound to the EK, so
//!   a real TPM opens it with `tpm2_activatecredential`. See docs/tpm.md.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::credential::{make_credential, CredentialBlob, CredentialError};
use crate::ek::EkPublicKey;
use crate::keys::PublicKey;

/// `format` value of the seed envelope.
pub const FORMAT_EK_AES256GCM_V1: &str = "ek-aes256gcm-v1";
/// `format` value of the TPM-openable envelope.
pub const FORMAT_EK_CREDENTIAL_AES256GCM_V1: &str = "ek-credential-aes256gcm-v1";

/// Envelope failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// `ek-aes256gcm-v1` needs an RSA key.
    #[error("ek-aes256gcm-v1 needs an RSA key; this EK is {0}")]
    NotRsa(String),
    /// `format` field is not the expected one.
    #[error("envelope format is {0:?}, expected {1:?}")]
    WrongFormat(String, &'static str),
    /// A base64 field does not decode.
    #[error("envelope field {0} is not valid base64")]
    Base64(&'static str),
    /// IV not 12 bytes or key not 32.
    #[error("envelope field {0} has the wrong length")]
    Length(&'static str),
    /// RSA-OAEP failed.
    #[error("RSA-OAEP operation failed")]
    Rsa,
    /// AES-GCM authentication failed.
    #[error("payload decryption failed (wrong key or tampered ciphertext)")]
    Decrypt,
    /// AES-GCM encryption failed.
    #[error("payload encryption failed")]
    Encrypt,
    /// MakeCredential failed.
    #[error(transparent)]
    Credential(#[from] CredentialError),
}

/// JSON of `ek-aes256gcm-v1`, field names exactly as the seed API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EkAes256GcmV1 {
    /// Always `ek-aes256gcm-v1`.
    pub format: String,
    /// Machine the config is for.
    pub machine_id: String,
    /// base64 RSA-OAEP-SHA256 ciphertext of the 32-byte AES key.
    pub wrapped_key: String,
    /// base64 96-bit GCM IV.
    pub iv: String,
    /// base64 AES-256-GCM ciphertext followed by the 16-byte tag.
    pub ciphertext: String,
}

/// JSON of `ek-credential-aes256gcm-v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EkCredentialAes256GcmV1 {
    /// Always `ek-credential-aes256gcm-v1`.
    pub format: String,
    /// Machine the config is for.
    pub machine_id: String,
    /// Hex TPM Name of the AK the credential is bound to (informational; the TPM enforces it).
    pub ak_name: String,
    /// base64 of the tpm2-tools credential file (0xBADCC0DE, version 1,
    /// TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET) protecting the 32-byte AES key.
    pub credential_blob: String,
    /// base64 96-bit GCM IV.
    pub iv: String,
    /// base64 AES-256-GCM ciphertext followed by the 16-byte tag.
    pub ciphertext: String,
}

fn gcm_seal(
    key: &[u8; 32],
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<([u8; 12], Vec<u8>), EnvelopeError> {
    let mut iv = [0u8; 12];
    rng.fill_bytes(&mut iv);
    let cipher = Aes256Gcm::new(key.into());
    let ct = cipher
        .encrypt(Nonce::from_slice(&iv), plaintext)
        .map_err(|_| EnvelopeError::Encrypt)?;
    Ok((iv, ct))
}

/// Decrypts an envelope payload with an AES-256 key (e.g. the one
/// `tpm2_activatecredential` or `tpm2_rsadecrypt` released).
pub fn open_payload(
    key: &[u8],
    iv_b64: &str,
    ciphertext_b64: &str,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if key.len() != 32 {
        return Err(EnvelopeError::Length("key"));
    }
    let iv = B64
        .decode(iv_b64)
        .map_err(|_| EnvelopeError::Base64("iv"))?;
    if iv.len() != 12 {
        return Err(EnvelopeError::Length("iv"));
    }
    let ct = B64
        .decode(ciphertext_b64)
        .map_err(|_| EnvelopeError::Base64("ciphertext"))?;
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| EnvelopeError::Length("key"))?;
    cipher
        .decrypt(Nonce::from_slice(&iv), ct.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| EnvelopeError::Decrypt)
}

/// Seals `plaintext` for the registered RSA key as `ek-aes256gcm-v1`.
pub fn seal_ek_aes256gcm_v1(
    key: &PublicKey,
    machine_id: &str,
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<EkAes256GcmV1, EnvelopeError> {
    let PublicKey::Rsa(rsa_key) = key else {
        return Err(EnvelopeError::NotRsa(key.describe()));
    };
    let mut aes_key = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(aes_key.as_mut());
    let wrapped = rsa_key
        .encrypt(rng, rsa::Oaep::new::<sha2::Sha256>(), aes_key.as_ref())
        .map_err(|_| EnvelopeError::Rsa)?;
    let (iv, ct) = gcm_seal(&aes_key, plaintext, rng)?;
    Ok(EkAes256GcmV1 {
        format: FORMAT_EK_AES256GCM_V1.into(),
        machine_id: machine_id.into(),
        wrapped_key: B64.encode(wrapped),
        iv: B64.encode(iv),
        ciphertext: B64.encode(ct),
    })
}

/// Opens `ek-aes256gcm-v1` with a software RSA private key (tests, tools).
pub fn open_ek_aes256gcm_v1(
    env: &EkAes256GcmV1,
    key: &rsa::RsaPrivateKey,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if env.format != FORMAT_EK_AES256GCM_V1 {
        return Err(EnvelopeError::WrongFormat(
            env.format.clone(),
            FORMAT_EK_AES256GCM_V1,
        ));
    }
    let wrapped = B64
        .decode(&env.wrapped_key)
        .map_err(|_| EnvelopeError::Base64("wrapped_key"))?;
    let aes_key = Zeroizing::new(
        key.decrypt(rsa::Oaep::new::<sha2::Sha256>(), &wrapped)
            .map_err(|_| EnvelopeError::Rsa)?,
    );
    open_payload(&aes_key, &env.iv, &env.ciphertext)
}

/// Seals `plaintext` as `ek-credential-aes256gcm-v1`: the AES key is a
/// MakeCredential secret for the AK named `ak_name` on the TPM owning `ek`.
pub fn seal_ek_credential_v1(
    ek: &EkPublicKey,
    ak_name: &[u8],
    machine_id: &str,
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<EkCredentialAes256GcmV1, EnvelopeError> {
    let mut aes_key = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(aes_key.as_mut());
    let blob = make_credential(ek, ak_name, aes_key.as_ref(), rng)?;
    let (iv, ct) = gcm_seal(&aes_key, plaintext, rng)?;
    Ok(EkCredentialAes256GcmV1 {
        format: FORMAT_EK_CREDENTIAL_AES256GCM_V1.into(),
        machine_id: machine_id.into(),
        ak_name: hex::encode(ak_name),
        credential_blob: B64.encode(blob.to_tpm2_tools_file()),
        iv: B64.encode(iv),
        ciphertext: B64.encode(ct),
    })
}

impl EkCredentialAes256GcmV1 {
    /// The decoded credential blob.
    pub fn credential(&self) -> Result<CredentialBlob, EnvelopeError> {
        let f = B64
            .decode(&self.credential_blob)
            .map_err(|_| EnvelopeError::Base64("credential_blob"))?;
        Ok(CredentialBlob::from_tpm2_tools_file(&f)?)
    }

    /// Decrypts with the AES key released by `tpm2_activatecredential`.
    pub fn open_with_key(&self, aes_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        if self.format != FORMAT_EK_CREDENTIAL_AES256GCM_V1 {
            return Err(EnvelopeError::WrongFormat(
                self.format.clone(),
                FORMAT_EK_CREDENTIAL_AES256GCM_V1,
            ));
        }
        open_payload(aes_key, &self.iv, &self.ciphertext)
    }
}

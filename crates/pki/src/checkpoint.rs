//! The audit checkpoint signing key: its own P-384 key, generated on first
//! start and kept encrypted at rest exactly like the enrollment CA key
//! (PKCS#8 PBES2, scrypt + AES-256-CBC, mode 0600, in a 0700 directory; the
//! passphrase from configuration or, failing that, generated next to it).
//!
//! A key of its own, not the CA's: a checkpoint signature must not be
//! confusable with a certificate signature, and the key can be rotated or
//! held elsewhere without touching the CA. What it signs is defined by
//! `attest_domain::audit::checkpoint`; this module only signs and checks.

use std::fmt;
use std::path::{Path, PathBuf};

use der::pem::LineEnding;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use signature::Signer;
use spki::EncodePublicKey;

use crate::keystore::{self, PassphraseSource, SECRET_MODE};
use crate::signer::P384Key;
use crate::PkiError;

/// Encrypted private key file inside the checkpoint key directory.
pub const CHECKPOINT_KEY_FILE: &str = "checkpoint-key.pem";
/// Generated passphrase file, used only when none is configured.
pub const CHECKPOINT_PASSPHRASE_FILE: &str = "checkpoint-key.passphrase";
/// How checkpoints are signed: ECDSA on P-384 over SHA-384, DER signature.
pub const CHECKPOINT_ALGORITHM: &str = "ecdsa-p384-sha384";

/// The key that signs audit checkpoints.
pub struct CheckpointSigner {
    key: P384Key,
    /// Uncompressed SEC1 point, what AWS-LC verifies with.
    public_point: Vec<u8>,
    key_id: String,
    public_key_pem: String,
    passphrase_source: PassphraseSource,
    path: PathBuf,
    created: bool,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .field("key", &"[redacted]")
            .field("passphrase_source", &self.passphrase_source)
            .finish()
    }
}

impl CheckpointSigner {
    /// Loads the key from `dir`, or creates it there on first start.
    ///
    /// `passphrase` protects the key file; without one it is generated into
    /// [`CHECKPOINT_PASSPHRASE_FILE`] (see [`Self::passphrase_source`]). A
    /// key file without its passphrase is an error, never replaced.
    pub fn load_or_create(dir: &Path, passphrase: Option<SecretString>) -> Result<Self, PkiError> {
        keystore::create_private_dir(dir)?;
        let key_path = dir.join(CHECKPOINT_KEY_FILE);
        let pass_path = dir.join(CHECKPOINT_PASSPHRASE_FILE);
        let (passphrase, source) = keystore::passphrase_for(passphrase, &pass_path)?;
        if key_path.exists() {
            let passphrase = passphrase.ok_or_else(|| {
                PkiError::IncompleteCaState(format!(
                    "{} exists but no passphrase is configured and {} is missing",
                    key_path.display(),
                    pass_path.display()
                ))
            })?;
            let text = keystore::read_text(&key_path)?;
            let source = if text.contains("BEGIN ENCRYPTED PRIVATE KEY") {
                source
            } else {
                PassphraseSource::Unencrypted
            };
            let pkcs8 = keystore::decode_private_key_pem(&text, Some(&passphrase))?;
            let key = <p384::ecdsa::SigningKey as pkcs8::DecodePrivateKey>::from_pkcs8_der(
                pkcs8.as_bytes(),
            )
            .map_err(|_| {
                PkiError::UnsupportedAlgorithm(format!(
                    "{} must hold a P-384 key",
                    key_path.display()
                ))
            })?;
            return Self::assemble(key, source, key_path, false);
        }
        let passphrase = match passphrase {
            Some(p) => p,
            None => keystore::generate_passphrase_file(&pass_path)?,
        };
        let key = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pkcs8 = pkcs8::EncodePrivateKey::to_pkcs8_der(&key)
            .map_err(|e| PkiError::Crypto(format!("encode private key: {e}")))?;
        let pem = keystore::encrypt_pkcs8_pem(pkcs8.as_bytes(), &passphrase)?;
        keystore::write_atomic(&key_path, pem.as_bytes(), SECRET_MODE)?;
        Self::assemble(key, source, key_path, true)
    }

    fn assemble(
        key: p384::ecdsa::SigningKey,
        passphrase_source: PassphraseSource,
        path: PathBuf,
        created: bool,
    ) -> Result<Self, PkiError> {
        let verifying = *key.verifying_key();
        let spki = verifying
            .to_public_key_der()
            .map_err(|e| PkiError::Crypto(format!("encode public key: {e}")))?;
        let public_key_pem = verifying
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| PkiError::Crypto(format!("encode public key: {e}")))?;
        Ok(Self {
            key: P384Key::new(key)?,
            public_point: verifying.to_encoded_point(false).as_bytes().to_vec(),
            key_id: hex::encode(Sha256::digest(spki.as_bytes())),
            public_key_pem,
            passphrase_source,
            path,
            created,
        })
    }

    /// Signs `message` (ECDSA P-384, SHA-384), returning the DER signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let signature: p384::ecdsa::DerSignature = self
            .key
            .try_sign(message)
            .map_err(|e| PkiError::Crypto(format!("sign checkpoint: {e}")))?;
        Ok(signature.as_bytes().to_vec())
    }

    /// Checks a DER signature made by [`Self::sign`] with this key
    /// (`SignatureMismatch` otherwise, also for an unparseable signature).
    /// AWS-LC verifies, as it signs: audit verification checks every
    /// stored checkpoint, so this cost grows with their number (see the
    /// `checkpoint_verify` benchmark).
    pub fn verify(&self, message: &[u8], signature_der: &[u8]) -> Result<(), PkiError> {
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1,
            &self.public_point,
        )
        .verify(message, signature_der)
        .map_err(|_| PkiError::SignatureMismatch)
    }

    /// Lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo DER.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as a `PUBLIC KEY` PEM.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// [`CHECKPOINT_ALGORITHM`].
    pub fn algorithm(&self) -> &'static str {
        CHECKPOINT_ALGORITHM
    }

    /// Where the key file's passphrase came from; [`PassphraseSource::File`]
    /// means it lies next to the key: warn.
    pub fn passphrase_source(&self) -> &PassphraseSource {
        &self.passphrase_source
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when this call generated the key (first start).
    pub fn created(&self) -> bool {
        self.created
    }
}

//! Attestation Key public keys and the policy on which ones are accepted.

use crate::keys::{KeyError, PublicKey, SignatureError};
use crate::wire::alg::HashAlg;
use crate::wire::public::{attrs, name_of_encoded};
use crate::wire::Signature;
use crate::wire::{PublicArea, WireError};

/// Which AK types a deployment accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AkPolicy {
    /// ECDSA P-256/P-384 or RSA >= 2048: every AK `tpm2_createak` makes by default.
    #[default]
    Standard,
    /// ECDSA P-384 or RSA >= 3072, as the seed's ak-activate endpoint demands.
    Strong,
}

/// Why an AK was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AkError {
    /// Key could not be decoded or is of an unsupported type.
    #[error("AK public key: {0}")]
    Key(#[from] KeyError),
    /// TPM2B_PUBLIC could not be parsed.
    #[error("AK TPM2B_PUBLIC: {0}")]
    Wire(#[from] WireError),
    /// The TPM object is not a restricted signing key, so it could sign forged attestations.
    #[error("AK is not a restricted signing key (objectAttributes 0x{0:08x})")]
    NotRestrictedSigning(u32),
    /// Key type/size not allowed by the configured [`AkPolicy`].
    #[error("AK key type {key} is not accepted; {policy}")]
    PolicyRejected {
        /// What the key is.
        key: String,
        /// What is accepted.
        policy: &'static str,
    },
}

/// An AK public key, optionally with its TPM Name when it came from a TPM2B_PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkPublicKey {
    key: PublicKey,
    name: Option<Vec<u8>>,
}

impl AkPublicKey {
    /// From a SubjectPublicKeyInfo PEM (the `ak_pub` field of ak-activate).
    pub fn from_spki_pem(pem: &str) -> Result<Self, AkError> {
        Ok(Self {
            key: PublicKey::from_spki_pem(pem)?,
            name: None,
        })
    }

    /// From a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, AkError> {
        Ok(Self {
            key: PublicKey::from_spki_der(der)?,
            name: None,
        })
    }

    /// From a TPM2B_PUBLIC (`tpm2_createak -u`). Requires a restricted signing
    /// key: only those refuse to sign data that starts with TPM_GENERATED_VALUE.
    pub fn from_tpm2b_public(bytes: &[u8]) -> Result<Self, AkError> {
        let (area, inner) = PublicArea::parse_tpm2b(bytes)?;
        let want = attrs::RESTRICTED | attrs::SIGN_ENCRYPT;
        if area.attributes & want != want || area.attributes & attrs::DECRYPT != 0 {
            return Err(AkError::NotRestrictedSigning(area.attributes));
        }
        let name = name_of_encoded(area.name_alg, inner)?;
        Ok(Self {
            key: PublicKey::from_public_area(&area)?,
            name: Some(name),
        })
    }

    /// Wraps an already decoded key.
    pub fn from_key(key: PublicKey) -> Self {
        Self { key, name: None }
    }

    /// The key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// TPM Name (nameAlg || digest), known only when built from TPM2B_PUBLIC.
    pub fn name(&self) -> Option<&[u8]> {
        self.name.as_deref()
    }

    /// Verifies `nonce_signature` (self-register): either a TPMT_SIGNATURE
    /// (what `tpm2_sign` writes) or a raw signature over `msg` — RSA
    /// PKCS#1 v1.5 with SHA-256 as the API specifies, or DER ECDSA with the
    /// curve's usual hash (SHA-256 for P-256, SHA-384 for P-384).
    pub fn verify_nonce_signature(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        if let Ok(tpmt) = Signature::parse(sig) {
            return self.key.verify_tpm_signature(msg, &tpmt);
        }
        let raw = match &self.key {
            PublicKey::Rsa(_) => Signature::RsaSsa {
                hash: HashAlg::Sha256,
                sig: sig.to_vec(),
            },
            PublicKey::P256(_) => {
                let s = p256::ecdsa::Signature::from_der(sig)
                    .map_err(|_| SignatureError::Invalid("ECDSA"))?;
                let (r, s) = s.split_bytes();
                Signature::Ecdsa {
                    hash: HashAlg::Sha256,
                    r: r.to_vec(),
                    s: s.to_vec(),
                }
            }
            PublicKey::P384(_) => {
                let s = p384::ecdsa::Signature::from_der(sig)
                    .map_err(|_| SignatureError::Invalid("ECDSA"))?;
                let (r, s) = s.split_bytes();
                Signature::Ecdsa {
                    hash: HashAlg::Sha384,
                    r: r.to_vec(),
                    s: s.to_vec(),
                }
            }
        };
        self.key.verify_tpm_signature(msg, &raw)
    }

    /// Checks the key type and size against `policy`.
    pub fn check_policy(&self, policy: AkPolicy) -> Result<(), AkError> {
        let ok = match (&self.key, policy) {
            (PublicKey::P384(_), _) | (PublicKey::P256(_), AkPolicy::Standard) => true,
            (PublicKey::P256(_), AkPolicy::Strong) => false,
            (PublicKey::Rsa(_), AkPolicy::Standard) => self.key.rsa_bits().unwrap_or(0) >= 2048,
            (PublicKey::Rsa(_), AkPolicy::Strong) => self.key.rsa_bits().unwrap_or(0) >= 3072,
        };
        if ok {
            return Ok(());
        }
        Err(AkError::PolicyRejected {
            key: self.key.describe(),
            policy: match policy {
                AkPolicy::Standard => "accepted: ECDSA P-256, ECDSA P-384, RSA >= 2048",
                AkPolicy::Strong => "accepted: ECDSA P-384, RSA >= 3072",
            },
        })
    }
}

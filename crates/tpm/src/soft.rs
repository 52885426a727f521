//! A software "TPM-like" signer: generates AKs and produces genuine
//! TPMS_ATTEST quotes and TPMT_SIGNATUREs, so tests, benchmarks and a fleet
//! simulator can exercise the verifier without a TPM. Not a security boundary.

use rand_core::CryptoRngCore;
use rsa::traits::PublicKeyParts;
use signature::hazmat::PrehashSigner;

use crate::ak::AkPublicKey;
use crate::keys::{ecc_x_y, pkcs1v15, PublicKey};
use crate::quote::PcrValues;
use crate::wire::alg::*;
use crate::wire::public::ak_template;
use crate::wire::{
    Attest, AttestBody, ClockInfo, EccScheme, PublicArea, PublicParams, PublicUnique, QuoteInfo,
    RsaScheme, Signature, WireError,
};

/// Failures of the software signer.
#[derive(Debug, thiserror::Error)]
pub enum SoftError {
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    KeyGen(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
    /// Encoding failed.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// AK types the software signer can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AkKind {
    /// ECDSA P-256 / SHA-256.
    EcdsaP256,
    /// ECDSA P-384 / SHA-384.
    EcdsaP384,
    /// RSA-2048 RSASSA / SHA-256.
    Rsa2048,
    /// RSA-3072 RSASSA / SHA-384.
    Rsa3072,
}

enum Signer {
    P256(p256::ecdsa::SigningKey),
    /// The same P-384 key twice: AWS-LC signs SHA-384 digests (its
    /// assembly P-384 is ~5× faster, which lets the fleet simulator sign
    /// thousands of quotes a second); RustCrypto signs any other digest
    /// size and encodes the public key.
    P384(
        p384::ecdsa::SigningKey,
        Box<aws_lc_rs::signature::EcdsaKeyPair>,
    ),
    Rsa(Box<rsa::RsaPrivateKey>),
}

/// A software AK.
pub struct SoftAk {
    signer: Signer,
    area: PublicArea,
    hash: HashAlg,
}

impl std::fmt::Debug for SoftAk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftAk")
            .field("area", &self.area)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl SoftAk {
    /// Generates a fresh AK.
    pub fn generate(kind: AkKind, rng: &mut impl CryptoRngCore) -> Result<Self, SoftError> {
        let (signer, hash) = match kind {
            AkKind::EcdsaP256 => (
                Signer::P256(p256::ecdsa::SigningKey::random(rng)),
                HashAlg::Sha256,
            ),
            AkKind::EcdsaP384 => {
                let key = p384::ecdsa::SigningKey::random(rng);
                let fast = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_and_public_key(
                    &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                    &key.to_bytes(),
                    key.verifying_key().to_encoded_point(false).as_bytes(),
                )
                .map_err(|e| SoftError::KeyGen(e.to_string()))?;
                (Signer::P384(key, Box::new(fast)), HashAlg::Sha384)
            }
            AkKind::Rsa2048 | AkKind::Rsa3072 => {
                let (bits, hash) = if kind == AkKind::Rsa2048 {
                    (2048, HashAlg::Sha256)
                } else {
                    (3072, HashAlg::Sha384)
                };
                let k = rsa::RsaPrivateKey::new(rng, bits)
                    .map_err(|e| SoftError::KeyGen(e.to_string()))?;
                (Signer::Rsa(Box::new(k)), hash)
            }
        };
        let area = match &signer {
            Signer::P256(k) => ecc_area(
                &PublicKey::P256((*k.verifying_key()).into()),
                TPM_ECC_NIST_P256,
                hash,
            ),
            Signer::P384(k, _) => ecc_area(
                &PublicKey::P384((*k.verifying_key()).into()),
                TPM_ECC_NIST_P384,
                hash,
            ),
            Signer::Rsa(k) => {
                let key_bits = u16::try_from(k.n().bits()).unwrap_or(0);
                Ok(ak_template(
                    PublicParams::Rsa {
                        symmetric: None,
                        scheme: RsaScheme::WithHash {
                            scheme: TPM_ALG_RSASSA,
                            hash: hash.tpm_id(),
                        },
                        key_bits,
                        exponent: 0,
                    },
                    PublicUnique::Rsa(k.n().to_bytes_be()),
                    TPM_ALG_SHA256,
                ))
            }
        }?;
        Ok(Self { signer, area, hash })
    }

    /// Uses another hash for signatures and pcrDigest (e.g. SHA-384 with a P-256 key).
    pub fn with_signature_hash(mut self, hash: HashAlg) -> Self {
        self.hash = hash;
        self
    }

    /// TPMT_PUBLIC of the AK.
    pub fn public_area(&self) -> &PublicArea {
        &self.area
    }

    /// TPM2B_PUBLIC bytes, as `tpm2_createak -u` writes.
    pub fn tpm2b_public(&self) -> Result<Vec<u8>, SoftError> {
        Ok(self.area.encode_tpm2b()?)
    }

    /// TPM Name of the AK.
    pub fn name(&self) -> Result<Vec<u8>, SoftError> {
        Ok(self.area.name()?)
    }

    /// The AK as the verifier sees it.
    pub fn ak_public(&self) -> Result<AkPublicKey, SoftError> {
        AkPublicKey::from_tpm2b_public(&self.tpm2b_public()?)
            .map_err(|e| SoftError::KeyGen(e.to_string()))
    }

    /// SubjectPublicKeyInfo PEM of the AK (the API's `ak_pub`).
    pub fn spki_pem(&self) -> Result<String, SoftError> {
        use spki::EncodePublicKey;
        let le = spki::der::pem::LineEnding::LF;
        let r = match &self.signer {
            Signer::P256(k) => k.verifying_key().to_public_key_pem(le),
            Signer::P384(k, _) => k.verifying_key().to_public_key_pem(le),
            Signer::Rsa(k) => k.to_public_key().to_public_key_pem(le),
        };
        r.map_err(|e| SoftError::Sign(e.to_string()))
    }

    /// Signs `msg` as a TPM would (TPMT_SIGNATURE).
    pub fn sign(&self, msg: &[u8]) -> Result<Signature, SoftError> {
        let digest = self.hash.digest(&[msg]);
        let err = |e: &dyn std::fmt::Display| SoftError::Sign(e.to_string());
        Ok(match &self.signer {
            Signer::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign_prehash(&digest).map_err(|e| err(&e))?;
                let (r, s) = s.split_bytes();
                Signature::Ecdsa {
                    hash: self.hash,
                    r: r.to_vec(),
                    s: s.to_vec(),
                }
            }
            Signer::P384(_, fast) if self.hash == HashAlg::Sha384 => {
                let d = aws_lc_rs::digest::Digest::import_less_safe(
                    &digest,
                    &aws_lc_rs::digest::SHA384,
                )
                .map_err(|e| err(&e))?;
                let sig = fast.sign_digest(&d).map_err(|e| err(&e))?;
                let (r, s) = sig.as_ref().split_at(48);
                Signature::Ecdsa {
                    hash: self.hash,
                    r: r.to_vec(),
                    s: s.to_vec(),
                }
            }
            Signer::P384(k, _) => {
                let s: p384::ecdsa::Signature = k.sign_prehash(&digest).map_err(|e| err(&e))?;
                let (r, s) = s.split_bytes();
                Signature::Ecdsa {
                    hash: self.hash,
                    r: r.to_vec(),
                    s: s.to_vec(),
                }
            }
            Signer::Rsa(k) => {
                let sig = k.sign(pkcs1v15(self.hash), &digest).map_err(|e| err(&e))?;
                Signature::RsaSsa {
                    hash: self.hash,
                    sig,
                }
            }
        })
    }

    /// Builds a genuine TPMS_ATTEST quote of `values` (selection = exactly
    /// those PCRs) with `nonce` as extraData.
    pub fn quote_attest(
        &self,
        values: &PcrValues,
        nonce: &[u8],
        clock: ClockInfo,
    ) -> Result<Attest, SoftError> {
        let pcr_select = values.selection()?;
        let ordered: Vec<&[u8]> = pcr_select
            .ordered_pcrs()
            .into_iter()
            .filter_map(|(b, i)| HashAlg::from_tpm(b).and_then(|b| values.get(b, i)))
            .collect();
        let pcr_digest = self.hash.digest(&ordered);
        Ok(Attest {
            magic: TPM_GENERATED_VALUE,
            attest_type: TPM_ST_ATTEST_QUOTE,
            qualified_signer: self.name()?,
            extra_data: nonce.to_vec(),
            clock_info: clock,
            firmware_version: 0x2019_1023_0016_3636,
            body: AttestBody::Quote(QuoteInfo {
                pcr_select,
                pcr_digest,
            }),
        })
    }

    /// Signs any TPMS_ATTEST (even a deliberately wrong one, for tests) and
    /// returns (TPM2B_ATTEST bytes, TPMT_SIGNATURE bytes).
    pub fn sign_attest(&self, attest: &Attest) -> Result<(Vec<u8>, Vec<u8>), SoftError> {
        let inner = attest.encode()?;
        let sig = self.sign(&inner)?.encode()?;
        Ok((attest.encode_tpm2b()?, sig))
    }

    /// A genuine quote: (TPM2B_ATTEST, TPMT_SIGNATURE).
    pub fn quote(
        &self,
        values: &PcrValues,
        nonce: &[u8],
        clock: ClockInfo,
    ) -> Result<(Vec<u8>, Vec<u8>), SoftError> {
        self.sign_attest(&self.quote_attest(values, nonce, clock)?)
    }
}

fn ecc_area(key: &PublicKey, curve: u16, hash: HashAlg) -> Result<PublicArea, SoftError> {
    let (x, y) = ecc_x_y(key).ok_or_else(|| SoftError::KeyGen("not an EC key".into()))?;
    Ok(ak_template(
        PublicParams::Ecc {
            symmetric: None,
            scheme: EccScheme::WithHash {
                scheme: TPM_ALG_ECDSA,
                hash: hash.tpm_id(),
            },
            curve,
            kdf: None,
        },
        PublicUnique::Ecc { x, y },
        TPM_ALG_SHA256,
    ))
}

/// A software EK private key: lets tests and simulators run the TPM side of
/// ActivateCredential.
pub enum SoftEk {
    /// RSA EK.
    Rsa(Box<rsa::RsaPrivateKey>),
    /// ECC P-256 EK.
    P256(p256::SecretKey),
    /// ECC P-384 EK.
    P384(p384::SecretKey),
}

impl std::fmt::Debug for SoftEk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftEk(..)")
    }
}

impl SoftEk {
    /// Generates an EK of the given type (RSA sizes 2048/3072).
    pub fn generate_rsa(bits: usize, rng: &mut impl CryptoRngCore) -> Result<Self, SoftError> {
        rsa::RsaPrivateKey::new(rng, bits)
            .map(|k| Self::Rsa(Box::new(k)))
            .map_err(|e| SoftError::KeyGen(e.to_string()))
    }

    /// EK public key with the default template parameters.
    pub fn public(&self) -> Result<crate::ek::EkPublicKey, SoftError> {
        let key = match self {
            Self::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
            Self::P256(k) => PublicKey::P256(k.public_key()),
            Self::P384(k) => PublicKey::P384(k.public_key()),
        };
        crate::ek::EkPublicKey::from_key(key).map_err(|e| SoftError::KeyGen(e.to_string()))
    }

    /// TPM2_ActivateCredential in software: recovers the seed with the EK
    /// private key, checks the HMAC binding to `ak_name`, returns the secret.
    pub fn activate_credential(
        &self,
        ak_name: &[u8],
        blob: &crate::credential::CredentialBlob,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, crate::credential::CredentialError> {
        use crate::credential::{kdfe, unprotect, CredentialError};
        let ek = self
            .public()
            .map_err(|e| CredentialError::Crypto(e.to_string()))?;
        let h = ek.name_alg;
        let mut r = crate::wire::Reader::new(&blob.encrypted_secret);
        let m = |e: WireError| CredentialError::Malformed(e.to_string());
        let enc = r.tpm2b(1024, "TPM2B_ENCRYPTED_SECRET").map_err(m)?;
        let bits = u32::try_from(h.size() * 8).unwrap_or(256);
        let seed = match self {
            Self::Rsa(k) => k
                .decrypt(crate::credential::oaep_identity(h), enc)
                .map_err(|_| CredentialError::Integrity)?,
            Self::P256(_) | Self::P384(_) => {
                let mut r = crate::wire::Reader::new(enc);
                let x = r.tpm2b(128, "x").map_err(m)?.to_vec();
                let y = r.tpm2b(128, "y").map_err(m)?.to_vec();
                let mut pt = vec![4u8];
                pt.extend_from_slice(&x);
                pt.extend_from_slice(&y);
                let (z, ek_x) = match self {
                    Self::P256(k) => {
                        let eph = p256::PublicKey::from_sec1_bytes(&pt)
                            .map_err(|_| CredentialError::Integrity)?;
                        let z = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), eph.as_affine());
                        (
                            z.raw_secret_bytes().to_vec(),
                            ecc_x_y(&PublicKey::P256(k.public_key())),
                        )
                    }
                    Self::P384(k) => {
                        let eph = p384::PublicKey::from_sec1_bytes(&pt)
                            .map_err(|_| CredentialError::Integrity)?;
                        let z = p384::ecdh::diffie_hellman(k.to_nonzero_scalar(), eph.as_affine());
                        (
                            z.raw_secret_bytes().to_vec(),
                            ecc_x_y(&PublicKey::P384(k.public_key())),
                        )
                    }
                    Self::Rsa(_) => return Err(CredentialError::Integrity),
                };
                let (ek_x, _) = ek_x.ok_or(CredentialError::Integrity)?;
                kdfe(h, &z, "IDENTITY", &x, &ek_x, bits)
            }
        };
        let seed = zeroize::Zeroizing::new(seed);
        unprotect(h, ek.sym_key_bits, &seed, ak_name, &blob.id_object)
    }
}

//! TPMT_SIGNATURE (Part 2 §11.3.4) for the schemes AKs use.

use super::alg::{HashAlg, TPM_ALG_ECDSA, TPM_ALG_NULL, TPM_ALG_RSAPSS, TPM_ALG_RSASSA};
use super::reader::{Reader, Writer};
use super::WireError;

/// TPM2B_PUBLIC_KEY_RSA max (RSA-4096 / 8 is 512).
pub const MAX_RSA_BYTES: usize = 512;
/// TPM2B_ECC_PARAMETER max (P-521 is 66; 128 leaves room).
pub const MAX_ECC_BYTES: usize = 128;

/// A parsed TPMT_SIGNATURE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// TPM_ALG_RSASSA (PKCS#1 v1.5).
    RsaSsa {
        /// Hash the TPM signed with.
        hash: HashAlg,
        /// Signature bytes (modulus length).
        sig: Vec<u8>,
    },
    /// TPM_ALG_RSAPSS.
    RsaPss {
        /// Hash the TPM signed with.
        hash: HashAlg,
        /// Signature bytes (modulus length).
        sig: Vec<u8>,
    },
    /// TPM_ALG_ECDSA.
    Ecdsa {
        /// Hash the TPM signed with.
        hash: HashAlg,
        /// Big-endian `r`.
        r: Vec<u8>,
        /// Big-endian `s`.
        s: Vec<u8>,
    },
}

impl Signature {
    /// Parses a complete TPMT_SIGNATURE (no trailing bytes).
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let sig = Self::read(&mut r)?;
        r.finish("TPMT_SIGNATURE")?;
        Ok(sig)
    }

    /// Reads a TPMT_SIGNATURE from a larger structure.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let alg = r.u16("TPMT_SIGNATURE.sigAlg")?;
        match alg {
            TPM_ALG_RSASSA | TPM_ALG_RSAPSS | TPM_ALG_ECDSA => {}
            TPM_ALG_NULL => {
                return Err(WireError::Invalid {
                    what: "TPMT_SIGNATURE.sigAlg",
                    reason: "TPM_ALG_NULL (unsigned)",
                })
            }
            other => {
                return Err(WireError::Unsupported {
                    what: "signature algorithm",
                    value: u32::from(other),
                })
            }
        }
        let hash_id = r.u16("TPMS_SIGNATURE.hash")?;
        let hash = HashAlg::from_tpm(hash_id)
            .filter(|h| *h != HashAlg::Sha1)
            .ok_or(WireError::Unsupported {
                what: "signature hash algorithm",
                value: u32::from(hash_id),
            })?;
        Ok(match alg {
            TPM_ALG_ECDSA => {
                let r_ = r
                    .tpm2b(MAX_ECC_BYTES, "TPMS_SIGNATURE_ECDSA.signatureR")?
                    .to_vec();
                let s = r
                    .tpm2b(MAX_ECC_BYTES, "TPMS_SIGNATURE_ECDSA.signatureS")?
                    .to_vec();
                Self::Ecdsa { hash, r: r_, s }
            }
            _ => {
                let sig = r.tpm2b(MAX_RSA_BYTES, "TPMS_SIGNATURE_RSA.sig")?.to_vec();
                if alg == TPM_ALG_RSASSA {
                    Self::RsaSsa { hash, sig }
                } else {
                    Self::RsaPss { hash, sig }
                }
            }
        })
    }

    /// Encodes TPMT_SIGNATURE.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut w = Writer::new();
        match self {
            Self::RsaSsa { hash, sig } => {
                w.u16(TPM_ALG_RSASSA).u16(hash.tpm_id()).tpm2b(sig, "sig")?;
            }
            Self::RsaPss { hash, sig } => {
                w.u16(TPM_ALG_RSAPSS).u16(hash.tpm_id()).tpm2b(sig, "sig")?;
            }
            Self::Ecdsa { hash, r, s } => {
                w.u16(TPM_ALG_ECDSA)
                    .u16(hash.tpm_id())
                    .tpm2b(r, "signatureR")?
                    .tpm2b(s, "signatureS")?;
            }
        }
        Ok(w.into_vec())
    }

    /// The hash algorithm the signer used (also the PCR digest algorithm of a quote).
    pub fn hash(&self) -> HashAlg {
        match self {
            Self::RsaSsa { hash, .. } | Self::RsaPss { hash, .. } | Self::Ecdsa { hash, .. } => {
                *hash
            }
        }
    }

    /// Short scheme name for messages.
    pub fn scheme_name(&self) -> &'static str {
        match self {
            Self::RsaSsa { .. } => "RSASSA",
            Self::RsaPss { .. } => "RSAPSS",
            Self::Ecdsa { .. } => "ECDSA",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            Signature::RsaSsa {
                hash: HashAlg::Sha256,
                sig: vec![1; 256],
            },
            Signature::RsaPss {
                hash: HashAlg::Sha384,
                sig: vec![2; 384],
            },
            Signature::Ecdsa {
                hash: HashAlg::Sha384,
                r: vec![3; 48],
                s: vec![4; 48],
            },
        ] {
            let enc = s.encode().unwrap();
            assert_eq!(Signature::parse(&enc).unwrap(), s);
            for n in 0..enc.len() {
                assert!(Signature::parse(&enc[..n]).is_err());
            }
        }
    }

    #[test]
    fn rejects_null_and_sha1() {
        assert!(Signature::parse(&[0, 0x10]).is_err());
        assert!(Signature::parse(&[0, 0x14, 0, 0x04, 0, 1, 0]).is_err());
    }
}

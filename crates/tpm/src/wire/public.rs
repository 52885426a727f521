//! TPM2B_PUBLIC / TPMT_PUBLIC (Part 2 §12.2) for RSA and ECC keys, plus the
//! TPM Name (nameAlg || H(TPMT_PUBLIC)) that MakeCredential binds to.

use super::alg::*;
use super::reader::{Reader, Writer};
use super::WireError;

/// TPMA_OBJECT bits this library cares about.
pub mod attrs {
    /// fixedTPM
    pub const FIXED_TPM: u32 = 1 << 1;
    /// stClear
    pub const ST_CLEAR: u32 = 1 << 2;
    /// fixedParent
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// sensitiveDataOrigin
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// userWithAuth
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    /// adminWithPolicy
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    /// noDA
    pub const NO_DA: u32 = 1 << 10;
    /// restricted
    pub const RESTRICTED: u32 = 1 << 16;
    /// decrypt
    pub const DECRYPT: u32 = 1 << 17;
    /// sign / encrypt
    pub const SIGN_ENCRYPT: u32 = 1 << 18;
}

/// Largest TPMT_PUBLIC accepted.
pub const MAX_PUBLIC: usize = 1024;

/// TPMT_SYM_DEF_OBJECT when not NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymDef {
    /// TPM_ALG_AES etc.
    pub alg: u16,
    /// Key size in bits.
    pub key_bits: u16,
    /// Mode, TPM_ALG_CFB for storage keys.
    pub mode: u16,
}

/// TPMT_RSA_SCHEME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaScheme {
    /// TPM_ALG_NULL: caller chooses per operation.
    Null,
    /// TPM_ALG_RSAES (no hash parameter).
    RsaEs,
    /// Schemes with a hash parameter: RSASSA, RSAPSS, OAEP.
    WithHash {
        /// Scheme id.
        scheme: u16,
        /// TPMI_ALG_HASH.
        hash: u16,
    },
}

/// TPMT_ECC_SCHEME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EccScheme {
    /// TPM_ALG_NULL.
    Null,
    /// ECDSA, ECDH, SM2, ECSCHNORR, ECMQV: hash parameter only.
    WithHash {
        /// Scheme id.
        scheme: u16,
        /// TPMI_ALG_HASH.
        hash: u16,
    },
    /// ECDAA: hash and count.
    Ecdaa {
        /// TPMI_ALG_HASH.
        hash: u16,
        /// Commit count.
        count: u16,
    },
}

/// Algorithm parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicParams {
    /// TPMS_RSA_PARMS.
    Rsa {
        /// Symmetric algorithm for storage/EK keys.
        symmetric: Option<SymDef>,
        /// Signing/decryption scheme.
        scheme: RsaScheme,
        /// Modulus size.
        key_bits: u16,
        /// Exponent; 0 means 65537.
        exponent: u32,
    },
    /// TPMS_ECC_PARMS.
    Ecc {
        /// Symmetric algorithm for storage/EK keys.
        symmetric: Option<SymDef>,
        /// Signing/key-exchange scheme.
        scheme: EccScheme,
        /// TPM_ECC_CURVE.
        curve: u16,
        /// TPMT_KDF_SCHEME: None for NULL, else (scheme, hash).
        kdf: Option<(u16, u16)>,
    },
}

/// TPMU_PUBLIC_ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicUnique {
    /// RSA modulus, big-endian.
    Rsa(Vec<u8>),
    /// ECC point coordinates, big-endian.
    Ecc {
        /// x
        x: Vec<u8>,
        /// y
        y: Vec<u8>,
    },
}

/// TPMT_PUBLIC for RSA or ECC objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicArea {
    /// nameAlg.
    pub name_alg: u16,
    /// TPMA_OBJECT.
    pub attributes: u32,
    /// authPolicy digest.
    pub auth_policy: Vec<u8>,
    /// Algorithm parameters.
    pub params: PublicParams,
    /// Public key.
    pub unique: PublicUnique,
}

fn read_sym(r: &mut Reader<'_>) -> Result<Option<SymDef>, WireError> {
    let alg = r.u16("TPMT_SYM_DEF_OBJECT.algorithm")?;
    match alg {
        TPM_ALG_NULL => Ok(None),
        TPM_ALG_AES | TPM_ALG_SM4 | TPM_ALG_CAMELLIA => {
            let key_bits = r.u16("TPMT_SYM_DEF_OBJECT.keyBits")?;
            let mode = r.u16("TPMT_SYM_DEF_OBJECT.mode")?;
            Ok(Some(SymDef {
                alg,
                key_bits,
                mode,
            }))
        }
        other => Err(WireError::Unsupported {
            what: "symmetric algorithm",
            value: u32::from(other),
        }),
    }
}

fn write_sym(w: &mut Writer, s: &Option<SymDef>) {
    match s {
        None => {
            w.u16(TPM_ALG_NULL);
        }
        Some(s) => {
            w.u16(s.alg).u16(s.key_bits).u16(s.mode);
        }
    }
}

impl PublicArea {
    /// Parses a TPM2B_PUBLIC and returns the area plus its TPMT_PUBLIC bytes
    /// (what the Name is computed over).
    pub fn parse_tpm2b(bytes: &[u8]) -> Result<(Self, &[u8]), WireError> {
        let mut r = Reader::new(bytes);
        let inner = r.tpm2b(MAX_PUBLIC, "TPM2B_PUBLIC")?;
        r.finish("TPM2B_PUBLIC")?;
        Ok((Self::parse(inner)?, inner))
    }

    /// Parses a complete TPMT_PUBLIC.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_PUBLIC {
            return Err(WireError::TooLarge {
                what: "TPMT_PUBLIC",
                size: bytes.len(),
                max: MAX_PUBLIC,
            });
        }
        let mut r = Reader::new(bytes);
        let typ = r.u16("TPMT_PUBLIC.type")?;
        let name_alg = r.u16("TPMT_PUBLIC.nameAlg")?;
        let attributes = r.u32("TPMT_PUBLIC.objectAttributes")?;
        let auth_policy = r.tpm2b(64, "TPMT_PUBLIC.authPolicy")?.to_vec();
        let (params, unique) = match typ {
            TPM_ALG_RSA => {
                let symmetric = read_sym(&mut r)?;
                let s = r.u16("TPMT_RSA_SCHEME.scheme")?;
                let scheme = match s {
                    TPM_ALG_NULL => RsaScheme::Null,
                    TPM_ALG_RSAES => RsaScheme::RsaEs,
                    TPM_ALG_RSASSA | TPM_ALG_RSAPSS | TPM_ALG_OAEP => RsaScheme::WithHash {
                        scheme: s,
                        hash: r.u16("TPMT_RSA_SCHEME.hashAlg")?,
                    },
                    other => {
                        return Err(WireError::Unsupported {
                            what: "RSA scheme",
                            value: u32::from(other),
                        })
                    }
                };
                let key_bits = r.u16("TPMS_RSA_PARMS.keyBits")?;
                let exponent = r.u32("TPMS_RSA_PARMS.exponent")?;
                let n = r
                    .tpm2b(super::signature::MAX_RSA_BYTES, "TPM2B_PUBLIC_KEY_RSA")?
                    .to_vec();
                (
                    PublicParams::Rsa {
                        symmetric,
                        scheme,
                        key_bits,
                        exponent,
                    },
                    PublicUnique::Rsa(n),
                )
            }
            TPM_ALG_ECC => {
                let symmetric = read_sym(&mut r)?;
                let s = r.u16("TPMT_ECC_SCHEME.scheme")?;
                let scheme = match s {
                    TPM_ALG_NULL => EccScheme::Null,
                    TPM_ALG_ECDSA | TPM_ALG_ECDH | TPM_ALG_SM2 | TPM_ALG_ECSCHNORR
                    | TPM_ALG_ECMQV => EccScheme::WithHash {
                        scheme: s,
                        hash: r.u16("TPMT_ECC_SCHEME.hashAlg")?,
                    },
                    TPM_ALG_ECDAA => EccScheme::Ecdaa {
                        hash: r.u16("TPMS_SCHEME_ECDAA.hashAlg")?,
                        count: r.u16("TPMS_SCHEME_ECDAA.count")?,
                    },
                    other => {
                        return Err(WireError::Unsupported {
                            what: "ECC scheme",
                            value: u32::from(other),
                        })
                    }
                };
                let curve = r.u16("TPMS_ECC_PARMS.curveID")?;
                let k = r.u16("TPMT_KDF_SCHEME.scheme")?;
                let kdf = match k {
                    TPM_ALG_NULL => None,
                    TPM_ALG_KDF1_SP800_56A | TPM_ALG_KDF2 | TPM_ALG_KDF1_SP800_108 => {
                        Some((k, r.u16("TPMT_KDF_SCHEME.hashAlg")?))
                    }
                    other => {
                        return Err(WireError::Unsupported {
                            what: "KDF scheme",
                            value: u32::from(other),
                        })
                    }
                };
                let x = r
                    .tpm2b(super::signature::MAX_ECC_BYTES, "TPMS_ECC_POINT.x")?
                    .to_vec();
                let y = r
                    .tpm2b(super::signature::MAX_ECC_BYTES, "TPMS_ECC_POINT.y")?
                    .to_vec();
                (
                    PublicParams::Ecc {
                        symmetric,
                        scheme,
                        curve,
                        kdf,
                    },
                    PublicUnique::Ecc { x, y },
                )
            }
            other => {
                return Err(WireError::Unsupported {
                    what: "public key type",
                    value: u32::from(other),
                })
            }
        };
        r.finish("TPMT_PUBLIC")?;
        Ok(Self {
            name_alg,
            attributes,
            auth_policy,
            params,
            unique,
        })
    }

    /// Encodes TPMT_PUBLIC. Fails if `params` and `unique` disagree on the type.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut w = Writer::new();
        match (&self.params, &self.unique) {
            (
                PublicParams::Rsa {
                    symmetric,
                    scheme,
                    key_bits,
                    exponent,
                },
                PublicUnique::Rsa(n),
            ) => {
                w.u16(TPM_ALG_RSA).u16(self.name_alg).u32(self.attributes);
                w.tpm2b(&self.auth_policy, "authPolicy")?;
                write_sym(&mut w, symmetric);
                match scheme {
                    RsaScheme::Null => w.u16(TPM_ALG_NULL),
                    RsaScheme::RsaEs => w.u16(TPM_ALG_RSAES),
                    RsaScheme::WithHash { scheme, hash } => w.u16(*scheme).u16(*hash),
                };
                w.u16(*key_bits)
                    .u32(*exponent)
                    .tpm2b(n, "TPM2B_PUBLIC_KEY_RSA")?;
            }
            (
                PublicParams::Ecc {
                    symmetric,
                    scheme,
                    curve,
                    kdf,
                },
                PublicUnique::Ecc { x, y },
            ) => {
                w.u16(TPM_ALG_ECC).u16(self.name_alg).u32(self.attributes);
                w.tpm2b(&self.auth_policy, "authPolicy")?;
                write_sym(&mut w, symmetric);
                match scheme {
                    EccScheme::Null => w.u16(TPM_ALG_NULL),
                    EccScheme::WithHash { scheme, hash } => w.u16(*scheme).u16(*hash),
                    EccScheme::Ecdaa { hash, count } => w.u16(TPM_ALG_ECDAA).u16(*hash).u16(*count),
                };
                w.u16(*curve);
                match kdf {
                    None => w.u16(TPM_ALG_NULL),
                    Some((s, h)) => w.u16(*s).u16(*h),
                };
                w.tpm2b(x, "x")?.tpm2b(y, "y")?;
            }
            _ => {
                return Err(WireError::Invalid {
                    what: "TPMT_PUBLIC",
                    reason: "parameters and unique differ in type",
                })
            }
        }
        Ok(w.into_vec())
    }

    /// Encodes TPM2B_PUBLIC.
    pub fn encode_tpm2b(&self) -> Result<Vec<u8>, WireError> {
        super::reader::wrap_tpm2b(&self.encode()?, "TPM2B_PUBLIC")
    }

    /// TPM Name of the object: nameAlg (u16) || H_nameAlg(TPMT_PUBLIC bytes).
    pub fn name(&self) -> Result<Vec<u8>, WireError> {
        name_of_encoded(self.name_alg, &self.encode()?)
    }

    /// True for restricted decryption keys such as the EK.
    pub fn is_restricted_decrypt(&self) -> bool {
        self.attributes & attrs::RESTRICTED != 0 && self.attributes & attrs::DECRYPT != 0
    }
}

/// Name over already-encoded TPMT_PUBLIC bytes (use the bytes as received so
/// the Name matches the TPM's even for unusual encodings).
pub fn name_of_encoded(name_alg: u16, tpmt_public: &[u8]) -> Result<Vec<u8>, WireError> {
    let h = HashAlg::from_tpm(name_alg).ok_or(WireError::Unsupported {
        what: "nameAlg",
        value: u32::from(name_alg),
    })?;
    let mut out = name_alg.to_be_bytes().to_vec();
    out.extend_from_slice(&h.digest(&[tpmt_public]));
    Ok(out)
}

/// The TCG default EK authPolicy for SHA-256 templates (PolicySecret(TPM_RH_ENDORSEMENT)).
pub const EK_POLICY_SHA256: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
];

/// The TCG EK template L-1 (RSA-2048, SHA-256, AES-128-CFB) with the given modulus.
pub fn ek_template_rsa2048(modulus: Vec<u8>) -> PublicArea {
    PublicArea {
        name_alg: TPM_ALG_SHA256,
        attributes: attrs::FIXED_TPM
            | attrs::FIXED_PARENT
            | attrs::SENSITIVE_DATA_ORIGIN
            | attrs::ADMIN_WITH_POLICY
            | attrs::RESTRICTED
            | attrs::DECRYPT,
        auth_policy: EK_POLICY_SHA256.to_vec(),
        params: PublicParams::Rsa {
            symmetric: Some(SymDef {
                alg: TPM_ALG_AES,
                key_bits: 128,
                mode: TPM_ALG_CFB,
            }),
            scheme: RsaScheme::Null,
            key_bits: 2048,
            exponent: 0,
        },
        unique: PublicUnique::Rsa(modulus),
    }
}

/// A restricted signing key template, as `tpm2_createak` makes.
pub fn ak_template(params: PublicParams, unique: PublicUnique, name_alg: u16) -> PublicArea {
    PublicArea {
        name_alg,
        attributes: attrs::FIXED_TPM
            | attrs::FIXED_PARENT
            | attrs::SENSITIVE_DATA_ORIGIN
            | attrs::USER_WITH_AUTH
            | attrs::RESTRICTED
            | attrs::SIGN_ENCRYPT,
        auth_policy: Vec::new(),
        params,
        unique,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rsa_and_ecc() {
        let rsa = ek_template_rsa2048(vec![0xa5; 256]);
        let enc = rsa.encode_tpm2b().unwrap();
        let (back, inner) = PublicArea::parse_tpm2b(&enc).unwrap();
        assert_eq!(back, rsa);
        assert_eq!(
            name_of_encoded(back.name_alg, inner).unwrap(),
            rsa.name().unwrap()
        );
        assert!(back.is_restricted_decrypt());

        let ecc = ak_template(
            PublicParams::Ecc {
                symmetric: None,
                scheme: EccScheme::WithHash {
                    scheme: TPM_ALG_ECDSA,
                    hash: TPM_ALG_SHA384,
                },
                curve: TPM_ECC_NIST_P384,
                kdf: None,
            },
            PublicUnique::Ecc {
                x: vec![1; 48],
                y: vec![2; 48],
            },
            TPM_ALG_SHA256,
        );
        let enc = ecc.encode_tpm2b().unwrap();
        assert_eq!(PublicArea::parse_tpm2b(&enc).unwrap().0, ecc);
        for n in 0..enc.len() {
            assert!(PublicArea::parse_tpm2b(&enc[..n]).is_err());
        }
    }
}

//! Public keys as this library accepts them (RSA, ECC P-256/P-384), decoded
//! from SubjectPublicKeyInfo or from a TPM public area, plus the signature
//! check over TPM-signed bytes.

use const_oid::ObjectIdentifier;
use der::Decode;
use elliptic_curve::generic_array::typenum::Unsigned;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use signature::hazmat::PrehashVerifier;
use spki::{DecodePublicKey, SubjectPublicKeyInfoRef};

use crate::wire::alg::{HashAlg, TPM_ECC_NIST_P256, TPM_ECC_NIST_P384};
use crate::wire::{PublicArea, PublicParams, PublicUnique, Signature};

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Why a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a DER SubjectPublicKeyInfo.
    #[error("public key is not a valid SubjectPublicKeyInfo: {0}")]
    Spki(String),
    /// Neither RSA nor EC.
    #[error("unsupported public key algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// EC key on a curve other than P-256/P-384.
    #[error("unsupported elliptic curve {0} (P-256 and P-384 are accepted)")]
    UnsupportedCurve(String),
    /// RSA modulus below 2048 bits or otherwise unusable.
    #[error("RSA key rejected: {0}")]
    BadRsa(String),
    /// Point not on the curve or wrongly sized.
    #[error("EC point is invalid")]
    BadPoint,
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// e.g. an ECDSA signature presented for an RSA key.
    #[error("{sig} signature cannot come from a {key} key")]
    SchemeMismatch {
        /// Signature scheme.
        sig: &'static str,
        /// Key description.
        key: String,
    },
    /// Cryptographic check failed.
    #[error("{0} signature does not verify")]
    Invalid(&'static str),
}

/// An RSA or NIST P-256/P-384 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA (>= 2048 bits).
    Rsa(RsaPublicKey),
    /// NIST P-256.
    P256(p256::PublicKey),
    /// NIST P-384.
    P384(p384::PublicKey),
}

impl PublicKey {
    /// Decodes a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki =
            SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::Spki(e.to_string()))?;
        let oid = spki.algorithm.oid;
        if oid == OID_RSA {
            let k = RsaPublicKey::from_public_key_der(der)
                .map_err(|e| KeyError::BadRsa(e.to_string()))?;
            return Self::rsa_checked(k);
        }
        if oid != OID_EC {
            return Err(KeyError::UnsupportedAlgorithm(oid.to_string()));
        }
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|_| KeyError::UnsupportedCurve("(missing curve parameter)".into()))?;
        if curve == OID_P256 {
            p256::PublicKey::from_public_key_der(der)
                .map(Self::P256)
                .map_err(|_| KeyError::BadPoint)
        } else if curve == OID_P384 {
            p384::PublicKey::from_public_key_der(der)
                .map(Self::P384)
                .map_err(|_| KeyError::BadPoint)
        } else {
            Err(KeyError::UnsupportedCurve(curve.to_string()))
        }
    }

    /// Decodes a PEM "PUBLIC KEY" (SubjectPublicKeyInfo).
    pub fn from_spki_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
            .map_err(|e| KeyError::Spki(e.to_string()))?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::Spki(format!(
                "PEM label is {label:?}, expected \"PUBLIC KEY\""
            )));
        }
        Self::from_spki_der(&der)
    }

    /// Extracts the key from a TPM public area.
    pub fn from_public_area(area: &PublicArea) -> Result<Self, KeyError> {
        match (&area.params, &area.unique) {
            (PublicParams::Rsa { exponent, .. }, PublicUnique::Rsa(n)) => {
                let e = if *exponent == 0 { 65537 } else { *exponent };
                let k = RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from(e))
                    .map_err(|e| KeyError::BadRsa(e.to_string()))?;
                Self::rsa_checked(k)
            }
            (PublicParams::Ecc { curve, .. }, PublicUnique::Ecc { x, y }) => match *curve {
                TPM_ECC_NIST_P256 => {
                    let pt = sec1_point(x, y, 32)?;
                    p256::PublicKey::from_sec1_bytes(&pt)
                        .map(Self::P256)
                        .map_err(|_| KeyError::BadPoint)
                }
                TPM_ECC_NIST_P384 => {
                    let pt = sec1_point(x, y, 48)?;
                    p384::PublicKey::from_sec1_bytes(&pt)
                        .map(Self::P384)
                        .map_err(|_| KeyError::BadPoint)
                }
                other => Err(KeyError::UnsupportedCurve(format!(
                    "TPM_ECC_CURVE 0x{other:04x}"
                ))),
            },
            _ => Err(KeyError::UnsupportedAlgorithm(
                "mismatched TPM public area".into(),
            )),
        }
    }

    fn rsa_checked(k: RsaPublicKey) -> Result<Self, KeyError> {
        let bits = k.n().bits();
        if bits < 2048 {
            return Err(KeyError::BadRsa(format!(
                "{bits}-bit modulus is below 2048 bits"
            )));
        }
        Ok(Self::Rsa(k))
    }

    /// "RSA-2048", "ECC P-256", ...
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa(k) => format!("RSA-{}", k.n().bits()),
            Self::P256(_) => "ECC P-256".into(),
            Self::P384(_) => "ECC P-384".into(),
        }
    }

    /// RSA modulus size in bits, if RSA.
    pub fn rsa_bits(&self) -> Option<usize> {
        match self {
            Self::Rsa(k) => Some(k.n().bits()),
            _ => None,
        }
    }

    /// Verifies a TPM signature over `msg` (the signed bytes, hashed here with
    /// the signature's own hash algorithm, whatever the key size).
    pub fn verify_tpm_signature(&self, msg: &[u8], sig: &Signature) -> Result<(), SignatureError> {
        if let Some(result) = self.verify_fast(msg, sig) {
            return result;
        }
        let digest = sig.hash().digest(&[msg]);
        match (self, sig) {
            (Self::P256(k), Signature::Ecdsa { r, s, .. }) => {
                let sig = ecdsa_sig::<p256::NistP256>(r, s)?;
                p256::ecdsa::VerifyingKey::from(k)
                    .verify_prehash(&digest, &sig)
                    .map_err(|_| SignatureError::Invalid("ECDSA"))
            }
            (Self::P384(k), Signature::Ecdsa { r, s, .. }) => {
                let sig = ecdsa_sig::<p384::NistP384>(r, s)?;
                p384::ecdsa::VerifyingKey::from(k)
                    .verify_prehash(&digest, &sig)
                    .map_err(|_| SignatureError::Invalid("ECDSA"))
            }
            (Self::Rsa(k), Signature::RsaSsa { hash, sig }) => k
                .verify(pkcs1v15(*hash), &digest, sig)
                .map_err(|_| SignatureError::Invalid("RSASSA")),
            (Self::Rsa(k), Signature::RsaPss { hash, sig }) => {
                // TPMs since spec 1.38 use salt = hash length; older ones the maximum.
                let em_len = k.n().bits().saturating_sub(1).div_ceil(8);
                let max_salt = em_len.saturating_sub(hash.size()).saturating_sub(2);
                for salt in [hash.size(), max_salt] {
                    if k.verify(pss(*hash, salt), &digest, sig).is_ok() {
                        return Ok(());
                    }
                }
                Err(SignatureError::Invalid("RSAPSS"))
            }
            (key, sig) => Err(SignatureError::SchemeMismatch {
                sig: sig.scheme_name(),
                key: key.describe(),
            }),
        }
    }

    /// AWS-LC (assembly P-256, P-384 and RSA) for the common combinations,
    /// several times faster than the portable code. `None` means "not
    /// covered here, use the RustCrypto path"; a rejection here is final
    /// except for RSA-PSS, where only salt = hash length is tried.
    fn verify_fast(&self, msg: &[u8], sig: &Signature) -> Option<Result<(), SignatureError>> {
        use aws_lc_rs::signature as rs;
        use HashAlg::{Sha256, Sha384, Sha512};
        let ecdsa_err = || Err(SignatureError::Invalid("ECDSA"));
        match (self, sig) {
            (Self::P256(k), Signature::Ecdsa { hash, r, s }) => {
                let Ok(sig) = ecdsa_sig::<p256::NistP256>(r, s) else {
                    return Some(ecdsa_err());
                };
                let point = elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(k, false);
                let ok = match hash {
                    Sha256 => {
                        rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_FIXED, point.as_bytes())
                            .verify(msg, &sig.to_bytes())
                    }
                    Sha384 => {
                        rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA384_ASN1, point.as_bytes())
                            .verify(msg, sig.to_der().as_bytes())
                    }
                    _ => return None,
                };
                Some(ok.or_else(|_| ecdsa_err()))
            }
            (Self::P384(k), Signature::Ecdsa { hash, r, s }) => {
                let Ok(sig) = ecdsa_sig::<p384::NistP384>(r, s) else {
                    return Some(ecdsa_err());
                };
                let point = elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(k, false);
                let ok = match hash {
                    Sha384 => {
                        rs::UnparsedPublicKey::new(&rs::ECDSA_P384_SHA384_FIXED, point.as_bytes())
                            .verify(msg, &sig.to_bytes())
                    }
                    Sha256 => {
                        rs::UnparsedPublicKey::new(&rs::ECDSA_P384_SHA256_ASN1, point.as_bytes())
                            .verify(msg, sig.to_der().as_bytes())
                    }
                    _ => return None,
                };
                Some(ok.or_else(|_| ecdsa_err()))
            }
            (Self::Rsa(k), Signature::RsaSsa { hash, sig }) => {
                let params = match hash {
                    Sha256 => &rs::RSA_PKCS1_2048_8192_SHA256,
                    Sha384 => &rs::RSA_PKCS1_2048_8192_SHA384,
                    Sha512 => &rs::RSA_PKCS1_2048_8192_SHA512,
                    HashAlg::Sha1 => return None,
                };
                let key = rs::RsaPublicKeyComponents {
                    n: k.n().to_bytes_be(),
                    e: k.e().to_bytes_be(),
                };
                Some(
                    key.verify(params, msg, sig)
                        .map_err(|_| SignatureError::Invalid("RSASSA")),
                )
            }
            (Self::Rsa(k), Signature::RsaPss { hash, sig }) => {
                let params = match hash {
                    Sha256 => &rs::RSA_PSS_2048_8192_SHA256,
                    Sha384 => &rs::RSA_PSS_2048_8192_SHA384,
                    Sha512 => &rs::RSA_PSS_2048_8192_SHA512,
                    HashAlg::Sha1 => return None,
                };
                let key = rs::RsaPublicKeyComponents {
                    n: k.n().to_bytes_be(),
                    e: k.e().to_bytes_be(),
                };
                // Fall through to the portable path (maximum salt) on failure.
                key.verify(params, msg, sig).is_ok().then_some(Ok(()))
            }
            _ => None,
        }
    }
}

pub(crate) fn pkcs1v15(h: HashAlg) -> rsa::Pkcs1v15Sign {
    match h {
        HashAlg::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
        HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
        HashAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
    }
}

pub(crate) fn pss(h: HashAlg, salt: usize) -> rsa::Pss {
    match h {
        HashAlg::Sha1 => rsa::Pss::new_with_salt::<sha1::Sha1>(salt),
        HashAlg::Sha256 => rsa::Pss::new_with_salt::<sha2::Sha256>(salt),
        HashAlg::Sha384 => rsa::Pss::new_with_salt::<sha2::Sha384>(salt),
        HashAlg::Sha512 => rsa::Pss::new_with_salt::<sha2::Sha512>(salt),
    }
}

/// Left-pads a big-endian integer to `len`, refusing longer values.
pub(crate) fn pad_be(v: &[u8], len: usize) -> Option<Vec<u8>> {
    let first = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    let v = v.get(first..)?;
    if v.len() > len {
        return None;
    }
    let mut out = vec![0u8; len - v.len()];
    out.extend_from_slice(v);
    Some(out)
}

fn sec1_point(x: &[u8], y: &[u8], len: usize) -> Result<Vec<u8>, KeyError> {
    let x = pad_be(x, len).ok_or(KeyError::BadPoint)?;
    let y = pad_be(y, len).ok_or(KeyError::BadPoint)?;
    let mut pt = vec![0x04];
    pt.extend_from_slice(&x);
    pt.extend_from_slice(&y);
    Ok(pt)
}

fn ecdsa_sig<C>(r: &[u8], s: &[u8]) -> Result<ecdsa::Signature<C>, SignatureError>
where
    C: ecdsa::PrimeCurve + elliptic_curve::CurveArithmetic,
    ecdsa::SignatureSize<C>: elliptic_curve::generic_array::ArrayLength<u8>,
{
    let len = <C as elliptic_curve::Curve>::FieldBytesSize::USIZE;
    let r = pad_be(r, len).ok_or(SignatureError::Invalid("ECDSA"))?;
    let s = pad_be(s, len).ok_or(SignatureError::Invalid("ECDSA"))?;
    let r = elliptic_curve::FieldBytes::<C>::clone_from_slice(&r);
    let s = elliptic_curve::FieldBytes::<C>::clone_from_slice(&s);
    ecdsa::Signature::from_scalars(r, s).map_err(|_| SignatureError::Invalid("ECDSA"))
}

/// Fixed-size big-endian affine x coordinate of an EC key (for KDFe).
pub(crate) fn ecc_x_y(key: &PublicKey) -> Option<(Vec<u8>, Vec<u8>)> {
    use elliptic_curve::sec1::ToEncodedPoint;
    let pt = match key {
        PublicKey::P256(k) => k.to_encoded_point(false).as_bytes().to_vec(),
        PublicKey::P384(k) => k.to_encoded_point(false).as_bytes().to_vec(),
        PublicKey::Rsa(_) => return None,
    };
    let coords = pt.get(1..)?;
    let half = coords.len() / 2;
    Some((coords.get(..half)?.to_vec(), coords.get(half..)?.to_vec()))
}

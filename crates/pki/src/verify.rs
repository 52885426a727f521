//! Verifying client certificates that claim to come from this CA.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use const_oid::db::rfc4519::{COMMON_NAME, ORGANIZATIONAL_UNIT_NAME};
use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER, ID_KP_CLIENT_AUTH,
};
use der::asn1::ObjectIdentifier;
use der::oid::AssociatedOid;
use der::{Decode, Encode, Tag, Tagged};
use sha2::Digest;
use signature::hazmat::PrehashVerifier;
use signature::Verifier;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage};
use x509_cert::Certificate;

use crate::ca::parse_cert_pem;
use crate::issue::time_to_chrono;
use crate::signer::CaKey;
use crate::{EnrollmentCa, PkiError};

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");

/// Decides whether a certificate issued by this CA has been revoked.
///
/// This is the hook for the CRL work that comes later: the CA consults it
/// after the signature and validity checks pass.
pub trait RevocationCheck: Send + Sync {
    /// True if the certificate with this serial (lowercase hex, as in
    /// [`crate::IssuedCert::serial_hex`]) must no longer be accepted.
    fn is_revoked(&self, serial_hex: &str) -> bool;
}

/// Nothing is revoked (there is no CRL yet).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocation;

impl RevocationCheck for NoRevocation {
    fn is_revoked(&self, _serial_hex: &str) -> bool {
        false
    }
}

/// A fixed set of revoked serials, lowercase hex.
#[derive(Debug, Clone, Default)]
pub struct RevokedSerials(pub HashSet<String>);

impl RevocationCheck for RevokedSerials {
    fn is_revoked(&self, serial_hex: &str) -> bool {
        self.0.contains(&serial_hex.to_ascii_lowercase())
    }
}

/// What a valid client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClientCert {
    /// Subject CN: the machine id or operator name.
    pub cn: String,
    /// Subject OU: the machine role, or `operator`. `None` if absent.
    pub ou: Option<String>,
    /// Serial number, lowercase hex.
    pub serial_hex: String,
    /// notBefore.
    pub not_before: DateTime<Utc>,
    /// notAfter.
    pub not_after: DateTime<Utc>,
}

impl EnrollmentCa {
    /// Verifies that `cert_pem` was issued by this CA and is usable now.
    ///
    /// Checks, in order: parse (`Malformed`), issuer name (`NotIssuedByCa`),
    /// signature with the CA key (`BadSignature`), validity against the CA's
    /// clock (`Expired`, `NotYetValid`), usage (`WrongUsage`: not a CA cert,
    /// clientAuth if an EKU is present, no unknown critical extensions), then
    /// the revocation hook (`Revoked`).
    pub fn verify_client_cert(&self, cert_pem: &str) -> Result<VerifiedClientCert, PkiError> {
        let cert = parse_cert_pem(cert_pem)?;
        let tbs = &cert.tbs_certificate;

        let issuer = tbs
            .issuer
            .to_der()
            .map_err(|e| PkiError::Malformed(format!("issuer: {e}")))?;
        let ca_subject = self
            .subject_name()
            .to_der()
            .map_err(|e| PkiError::Malformed(format!("CA subject: {e}")))?;
        if issuer != ca_subject {
            return Err(PkiError::NotIssuedByCa);
        }
        if cert.signature_algorithm != tbs.signature {
            return Err(PkiError::Malformed(
                "signatureAlgorithm differs from tbsCertificate.signature".into(),
            ));
        }
        let tbs_der = tbs
            .to_der()
            .map_err(|e| PkiError::Malformed(format!("tbsCertificate: {e}")))?;
        let sig = cert
            .signature
            .as_bytes()
            .ok_or_else(|| PkiError::Malformed("signature has unused bits".into()))?;
        verify_signature(&self.key, &cert.signature_algorithm.oid, &tbs_der, sig)?;

        let now = self.clock.now();
        let not_before = time_to_chrono(&tbs.validity.not_before);
        let not_after = time_to_chrono(&tbs.validity.not_after);
        if now < not_before {
            return Err(PkiError::NotYetValid { not_before });
        }
        if now > not_after {
            return Err(PkiError::Expired { not_after });
        }

        check_usage(&cert)?;

        let serial_hex = hex::encode(tbs.serial_number.as_bytes());
        if self.revocation.is_revoked(&serial_hex) {
            return Err(PkiError::Revoked { serial_hex });
        }

        let cn = single_attribute(&cert, COMMON_NAME, "CN")?
            .ok_or_else(|| PkiError::Malformed("subject has no CN".into()))?;
        let ou = single_attribute(&cert, ORGANIZATIONAL_UNIT_NAME, "OU")?;
        Ok(VerifiedClientCert {
            cn,
            ou,
            serial_hex,
            not_before,
            not_after,
        })
    }
}

fn verify_signature(
    key: &CaKey,
    alg: &ObjectIdentifier,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), PkiError> {
    let ok = match key {
        CaKey::P384(k) => ecdsa_verify_p384(k.verifying_key(), alg, msg, sig),
        CaKey::P256(k) => ecdsa_verify_p256(k.verifying_key(), alg, msg, sig),
        CaKey::Rsa(k) => {
            let private: &rsa::RsaPrivateKey = (**k).as_ref();
            let public = private.to_public_key();
            let Ok(signature) = rsa::pkcs1v15::Signature::try_from(sig) else {
                return Err(PkiError::BadSignature);
            };
            if *alg == SHA256_WITH_RSA {
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public)
                    .verify(msg, &signature)
                    .is_ok()
            } else if *alg == SHA384_WITH_RSA {
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(public)
                    .verify(msg, &signature)
                    .is_ok()
            } else if *alg == SHA512_WITH_RSA {
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(public)
                    .verify(msg, &signature)
                    .is_ok()
            } else {
                false
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(PkiError::BadSignature)
    }
}

/// The digest a certificate's ECDSA signature algorithm names.
fn ecdsa_digest(alg: &ObjectIdentifier, msg: &[u8]) -> Option<Vec<u8>> {
    if *alg == ECDSA_WITH_SHA256 {
        Some(sha2::Sha256::digest(msg).to_vec())
    } else if *alg == ECDSA_WITH_SHA384 {
        Some(sha2::Sha384::digest(msg).to_vec())
    } else if *alg == ECDSA_WITH_SHA512 {
        Some(sha2::Sha512::digest(msg).to_vec())
    } else {
        None
    }
}

/// ECDSA over the CA curve with whichever SHA-2 the certificate names.
macro_rules! ecdsa_verify_fn {
    ($name:ident, $curve:ident) => {
        fn $name(
            key: &$curve::ecdsa::VerifyingKey,
            alg: &ObjectIdentifier,
            msg: &[u8],
            sig: &[u8],
        ) -> bool {
            let Ok(signature) = $curve::ecdsa::Signature::from_der(sig) else {
                return false;
            };
            let Some(digest) = ecdsa_digest(alg, msg) else {
                return false;
            };
            key.verify_prehash(&digest, &signature).is_ok()
        }
    };
}

ecdsa_verify_fn!(ecdsa_verify_p384, p384);
ecdsa_verify_fn!(ecdsa_verify_p256, p256);

/// A client certificate must not be a CA, must allow clientAuth if it
/// restricts EKUs at all, and must not carry critical extensions we do not
/// understand (RFC 5280 4.2).
fn check_usage(cert: &Certificate) -> Result<(), PkiError> {
    if let Some(bc) = find_extension::<BasicConstraints>(cert)? {
        if bc.ca {
            return Err(PkiError::WrongUsage("certificate is a CA".into()));
        }
    }
    if let Some(eku) = find_extension::<ExtendedKeyUsage>(cert)? {
        if !eku.0.contains(&ID_KP_CLIENT_AUTH) {
            return Err(PkiError::WrongUsage(
                "extendedKeyUsage lacks clientAuth".into(),
            ));
        }
    }
    let known = [
        ID_CE_BASIC_CONSTRAINTS,
        ID_CE_KEY_USAGE,
        ID_CE_EXT_KEY_USAGE,
        ID_CE_SUBJECT_KEY_IDENTIFIER,
        ID_CE_AUTHORITY_KEY_IDENTIFIER,
        ID_CE_SUBJECT_ALT_NAME,
    ];
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.critical && !known.contains(&ext.extn_id) {
            return Err(PkiError::WrongUsage(format!(
                "unknown critical extension {}",
                ext.extn_id
            )));
        }
    }
    Ok(())
}

/// The decoded extension of type `E`, if present (error if present twice).
pub(crate) fn find_extension<E>(cert: &Certificate) -> Result<Option<E>, PkiError>
where
    E: AssociatedOid + for<'a> Decode<'a>,
{
    let mut found = None;
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.extn_id == E::OID {
            if found.is_some() {
                return Err(PkiError::Malformed(format!(
                    "duplicate extension {}",
                    E::OID
                )));
            }
            let value = E::from_der(ext.extn_value.as_bytes())
                .map_err(|e| PkiError::Malformed(format!("extension {}: {e}", E::OID)))?;
            found = Some(value);
        }
    }
    Ok(found)
}

/// The subject attribute `oid`, if present exactly once (error if repeated,
/// so `OU=worker, OU=operator` cannot be read two ways).
fn single_attribute(
    cert: &Certificate,
    oid: ObjectIdentifier,
    what: &str,
) -> Result<Option<String>, PkiError> {
    let mut found = None;
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid != oid {
                continue;
            }
            if found.is_some() {
                return Err(PkiError::Malformed(format!(
                    "subject has more than one {what}"
                )));
            }
            let text = match atv.value.tag() {
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
                    std::str::from_utf8(atv.value.value())
                        .map_err(|_| PkiError::Malformed(format!("{what} is not UTF-8")))?
                }
                other => {
                    return Err(PkiError::Malformed(format!(
                        "{what} has unsupported string type {other}"
                    )))
                }
            };
            found = Some(text.to_owned());
        }
    }
    Ok(found)
}

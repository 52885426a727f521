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
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
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

/// Largest certificate PEM accepted for verification (a P-384 or RSA-4096
/// client certificate is 1-3 KiB), so parsing cost stays bounded whoever
/// calls [`EnrollmentCa::verify_client_cert`].
const MAX_CERT_PEM_BYTES: usize = 64 * 1024;

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
    /// The subject's public key (SubjectPublicKeyInfo DER), so a caller can
    /// check a signature the holder made, with [`crate::verify_with_spki`].
    pub spki_der: Vec<u8>,
}

impl EnrollmentCa {
    /// Verifies that `cert_pem` was issued by this CA and is usable now.
    ///
    /// Checks, in order: parse (`Malformed`), issuer name (`NotIssuedByCa`),
    /// signature with the CA key (`BadSignature`), validity of the
    /// certificate and of the CA itself against the CA's clock (`Expired`,
    /// `NotYetValid`), usage (`WrongUsage`: not a CA cert, keyUsage without
    /// certificate/CRL signing, extendedKeyUsage present and containing
    /// clientAuth, no duplicate or unknown critical extensions), then the
    /// revocation hook (`Revoked`).
    pub fn verify_client_cert(&self, cert_pem: &str) -> Result<VerifiedClientCert, PkiError> {
        if cert_pem.len() > MAX_CERT_PEM_BYTES {
            return Err(PkiError::Malformed("certificate PEM too large".into()));
        }
        self.verify_parsed_client_cert(&parse_cert_pem(cert_pem)?)
    }

    /// [`EnrollmentCa::verify_client_cert`] for a DER certificate (as a TLS
    /// handshake hands it over).
    pub fn verify_client_cert_der(&self, cert_der: &[u8]) -> Result<VerifiedClientCert, PkiError> {
        if cert_der.len() > MAX_CERT_PEM_BYTES {
            return Err(PkiError::Malformed("certificate too large".into()));
        }
        let cert = Certificate::from_der(cert_der)
            .map_err(|e| PkiError::Malformed(format!("certificate: {e}")))?;
        self.verify_parsed_client_cert(&cert)
    }

    fn verify_parsed_client_cert(
        &self,
        cert: &Certificate,
    ) -> Result<VerifiedClientCert, PkiError> {
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
        // RFC 5280 path validation: the issuing CA must be valid now too
        // (certificates issued elsewhere with the CA key may outlive it).
        let ca_validity = &self.cert.tbs_certificate.validity;
        let ca_not_before = time_to_chrono(&ca_validity.not_before);
        let ca_not_after = time_to_chrono(&ca_validity.not_after);
        if now < ca_not_before {
            return Err(PkiError::NotYetValid {
                not_before: ca_not_before,
            });
        }
        if now > ca_not_after {
            return Err(PkiError::Expired {
                not_after: ca_not_after,
            });
        }

        check_usage(cert)?;

        let serial_hex = hex::encode(tbs.serial_number.as_bytes());
        if self.revocation.is_revoked(&serial_hex) {
            return Err(PkiError::Revoked { serial_hex });
        }

        let cn = single_attribute(cert, COMMON_NAME, "CN")?
            .ok_or_else(|| PkiError::Malformed("subject has no CN".into()))?;
        let ou = single_attribute(cert, ORGANIZATIONAL_UNIT_NAME, "OU")?;
        let spki_der = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| PkiError::Malformed(format!("subject public key: {e}")))?;
        Ok(VerifiedClientCert {
            cn,
            ou,
            serial_hex,
            not_before,
            not_after,
            spki_der,
        })
    }
}

pub(crate) fn verify_signature(
    key: &CaKey,
    alg: &ObjectIdentifier,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), PkiError> {
    let ok = match key {
        CaKey::P384(k) => ecdsa_verify_p384(k.verifying_key(), alg, msg, sig),
        CaKey::P256(k) => ecdsa_verify_p256(k.verifying_key(), alg, msg, sig),
        CaKey::Rsa(k) => {
            let public = k.private().to_public_key();
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

/// A client certificate must not be a CA (basicConstraints CA:TRUE, or a
/// keyUsage allowing certificate or CRL signing), must carry a keyUsage with
/// digitalSignature if it has one, must name clientAuth in an
/// extendedKeyUsage (every certificate this CA issues has one), and must not
/// carry duplicate extensions or critical extensions we do not understand
/// (RFC 5280 4.2).
fn check_usage(cert: &Certificate) -> Result<(), PkiError> {
    let mut seen = HashSet::new();
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if !seen.insert(ext.extn_id) {
            return Err(PkiError::Malformed(format!(
                "duplicate extension {}",
                ext.extn_id
            )));
        }
    }
    if let Some(bc) = find_extension::<BasicConstraints>(cert)? {
        if bc.ca {
            return Err(PkiError::WrongUsage("certificate is a CA".into()));
        }
    }
    if let Some(ku) = find_extension::<KeyUsage>(cert)? {
        if ku.key_cert_sign() || ku.crl_sign() {
            return Err(PkiError::WrongUsage(
                "keyUsage allows certificate or CRL signing".into(),
            ));
        }
        if !ku.digital_signature() {
            return Err(PkiError::WrongUsage(
                "keyUsage lacks digitalSignature".into(),
            ));
        }
    }
    match find_extension::<ExtendedKeyUsage>(cert)? {
        Some(eku) if eku.0.contains(&ID_KP_CLIENT_AUTH) => {}
        Some(_) => {
            return Err(PkiError::WrongUsage(
                "extendedKeyUsage lacks clientAuth".into(),
            ))
        }
        None => {
            return Err(PkiError::WrongUsage(
                "no extendedKeyUsage with clientAuth".into(),
            ))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use attest_domain::clock::{ManualClock, SharedClock};
    use chrono::{Duration, Utc};
    use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
    use der::pem::LineEnding;
    use der::{Encode, EncodePem};
    use spki::{EncodePublicKey, SubjectPublicKeyInfoOwned};
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

    use crate::issue::{cn_ou_name, random_serial, validity_from};
    use crate::signer::{CaKey, ExtraExtensions};
    use crate::{CaOptions, EnrollmentCa, PkiError};

    fn ca(validity: Duration) -> (tempfile::TempDir, ManualClock, EnrollmentCa) {
        let dir = tempfile::tempdir().unwrap();
        let manual = ManualClock::new(Utc::now());
        let clock: SharedClock = Arc::new(manual.clone());
        let opts = CaOptions {
            key_passphrase: Some(secrecy::SecretString::from("p".to_owned())),
            validity,
            ..CaOptions::default()
        };
        let ca = EnrollmentCa::load_or_create(dir.path(), opts, clock).unwrap();
        (dir, manual, ca)
    }

    fn subject_spki() -> SubjectPublicKeyInfoOwned {
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let der = key.public_key().to_public_key_der().unwrap();
        SubjectPublicKeyInfoOwned::try_from(der.as_bytes()).unwrap()
    }

    fn client_extensions() -> ExtraExtensions {
        ExtraExtensions {
            basic_constraints: Some(BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }),
            key_usage: Some(KeyUsage(KeyUsages::DigitalSignature.into())),
            extended_key_usage: Some(ExtendedKeyUsage(vec![ID_KP_CLIENT_AUTH])),
            ..ExtraExtensions::default()
        }
    }

    /// `CN=alice, OU=operator`, signed with the CA key, with exactly `extra`,
    /// not capped at the CA's notAfter (as a certificate made with openssl
    /// and the CA key would be).
    fn leaf(ca: &EnrollmentCa, extra: &ExtraExtensions, lifetime: Duration) -> String {
        let (validity, _, _) = validity_from(ca.clock.now(), lifetime, None).unwrap();
        let cert = ca
            .key
            .build(
                Profile::Manual {
                    issuer: Some(ca.subject_name().clone()),
                },
                random_serial().unwrap(),
                validity,
                cn_ou_name("alice", "operator").unwrap(),
                subject_spki(),
                extra,
            )
            .unwrap();
        cert.to_pem(LineEnding::LF).unwrap()
    }

    fn wrong_usage(r: Result<super::VerifiedClientCert, PkiError>) {
        assert!(matches!(r, Err(PkiError::WrongUsage(_))), "{r:?}");
    }

    #[test]
    fn leaf_usage_is_enforced() {
        let (_dir, _clock, ca) = ca(Duration::days(365));
        let days = Duration::days(10);
        ca.verify_client_cert(&leaf(&ca, &client_extensions(), days))
            .unwrap();

        // Regression: a certificate without any extendedKeyUsage passed.
        let mut no_eku = client_extensions();
        no_eku.extended_key_usage = None;
        wrong_usage(ca.verify_client_cert(&leaf(&ca, &no_eku, days)));

        let mut server_only = client_extensions();
        server_only.extended_key_usage = Some(ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH]));
        wrong_usage(ca.verify_client_cert(&leaf(&ca, &server_only, days)));

        // Regression: keyUsage was ignored, so a certificate allowed to sign
        // certificates (without basicConstraints) passed as a client cert.
        let mut cert_signer = client_extensions();
        cert_signer.basic_constraints = None;
        cert_signer.key_usage = Some(KeyUsage(
            KeyUsages::DigitalSignature | KeyUsages::KeyCertSign,
        ));
        wrong_usage(ca.verify_client_cert(&leaf(&ca, &cert_signer, days)));

        let mut encipher_only = client_extensions();
        encipher_only.key_usage = Some(KeyUsage(KeyUsages::KeyEncipherment.into()));
        wrong_usage(ca.verify_client_cert(&leaf(&ca, &encipher_only, days)));

        let mut ca_flag = client_extensions();
        ca_flag.basic_constraints = Some(BasicConstraints {
            ca: true,
            path_len_constraint: None,
        });
        wrong_usage(ca.verify_client_cert(&leaf(&ca, &ca_flag, days)));
    }

    #[test]
    fn issuing_ca_must_be_valid_too() {
        // Regression: a leaf outliving the CA certificate was accepted
        // after the CA expired.
        let (_dir, clock, ca) = ca(Duration::days(2));
        let pem = leaf(&ca, &client_extensions(), Duration::days(30));
        ca.verify_client_cert(&pem).unwrap();
        clock.advance(Duration::days(3));
        match ca.verify_client_cert(&pem) {
            Err(PkiError::Expired { not_after }) => assert_eq!(not_after, ca.not_after()),
            other => panic!("expected the CA to be expired, got {other:?}"),
        }
    }

    #[test]
    fn duplicate_extensions_are_refused() {
        let (_dir, _clock, ca) = ca(Duration::days(365));
        let CaKey::P384(signer) = &ca.key else {
            panic!("default CA is P-384");
        };
        let (validity, _, _) = validity_from(ca.clock.now(), Duration::days(1), None).unwrap();
        let mut builder = CertificateBuilder::new(
            Profile::Manual {
                issuer: Some(ca.subject_name().clone()),
            },
            random_serial().unwrap(),
            validity,
            cn_ou_name("alice", "operator").unwrap(),
            subject_spki(),
            signer,
        )
        .unwrap();
        let eku = ExtendedKeyUsage(vec![ID_KP_CLIENT_AUTH]);
        builder.add_extension(&eku).unwrap();
        builder
            .add_extension(&KeyUsage(KeyUsages::DigitalSignature.into()))
            .unwrap();
        builder
            .add_extension(&KeyUsage(KeyUsages::KeyCertSign.into()))
            .unwrap();
        let cert = builder.build::<p384::ecdsa::DerSignature>().unwrap();
        let pem = cert.to_pem(LineEnding::LF).unwrap();
        assert!(matches!(
            ca.verify_client_cert(&pem),
            Err(PkiError::Malformed(_))
        ));
    }

    #[test]
    fn der_and_pem_are_verified_alike() {
        let (_dir, _clock, ca) = ca(Duration::days(365));
        let pem = leaf(&ca, &client_extensions(), Duration::days(10));
        let der = crate::ca::parse_cert_pem(&pem).unwrap().to_der().unwrap();
        assert_eq!(
            ca.verify_client_cert_der(&der).unwrap(),
            ca.verify_client_cert(&pem).unwrap()
        );
        let (_other_dir, _, other) = self::ca(Duration::days(365));
        assert!(matches!(
            other.verify_client_cert_der(&der),
            Err(PkiError::NotIssuedByCa | PkiError::BadSignature)
        ));
        assert!(matches!(
            ca.verify_client_cert_der(b"not DER"),
            Err(PkiError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_pem_is_refused_before_parsing() {
        let (_dir, _clock, ca) = ca(Duration::days(365));
        let huge = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            "A".repeat(1024 * 1024)
        );
        assert!(matches!(
            ca.verify_client_cert(&huge),
            Err(PkiError::Malformed(m)) if m.contains("too large")
        ));
    }
}

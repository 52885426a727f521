//! [`Authority`]: one CA certificate and its key, made as a root, issued
//! as an intermediate by another `Authority`, imported from an operator's
//! PEM files or reloaded from storage.

use std::fmt;

use chrono::{DateTime, Utc};
use const_oid::db::rfc4519::{COMMON_NAME, ORGANIZATION_NAME};
use der::asn1::OctetString;
use der::pem::LineEnding;
use der::referenced::OwnedToRef;
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence};
use x509_cert::{Certificate, TbsCertificate, Version};
use zeroize::Zeroizing;

use super::extensions::{self, extension};
use super::names;
use super::request::{CaRequest, NameConstraints};
use crate::issue::{random_serial, rdn, time_to_chrono, validity_from, BACKDATE};
use crate::signer::CaKey;
use crate::{KeyAlgorithm, PkiError};

/// Largest PEM input accepted by [`Authority::import`] (a CA chain with an
/// RSA-4096 key is a few KiB).
const MAX_PEM_LEN: usize = 256 * 1024;

/// A CA: its certificate and signing key, with what every issuance needs
/// (issuer name, key identifier, signature algorithm, limits) worked out
/// once so issuing never reparses the certificate.
///
/// Not `Clone` (one owner of the key; share it behind an `Arc`); `Debug`
/// shows the subject and serial, never the key.
pub struct Authority {
    pub(super) key: CaKey,
    pub(super) key_algorithm: KeyAlgorithm,
    pub(super) cert_der: Vec<u8>,
    pub(super) cert_pem: String,
    /// The subject, the issuer of everything this CA signs.
    pub(super) subject: Name,
    /// SubjectKeyIdentifier: the keyIdentifier of children's AKI.
    pub(super) key_id: Vec<u8>,
    /// The authorityKeyIdentifier extension of every child, ready made.
    pub(super) child_aki: Extension,
    pub(super) signature_algorithm: AlgorithmIdentifierOwned,
    pub(super) not_before: DateTime<Utc>,
    pub(super) not_after: DateTime<Utc>,
    pub(super) path_len: Option<u8>,
    pub(super) name_constraints: Option<NameConstraints>,
    pub(super) serial_hex: String,
    pub(super) self_signed: bool,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("subject", &self.subject())
            .field("serial", &self.serial_hex)
            .field("key_algorithm", &self.key_algorithm)
            .field("not_after", &self.not_after)
            .field("path_len", &self.path_len)
            .field("name_constraints", &self.name_constraints)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Authority {
    /// Generates a key and a self-signed root certificate for it, valid
    /// from a few minutes before `now` for `req.validity`.
    ///
    /// Extensions: basicConstraints CA:TRUE with `req.path_len` (critical),
    /// keyUsage keyCertSign + cRLSign (critical), SKI, AKI = SKI, and
    /// `req.name_constraints` (critical) when not empty.
    pub fn generate_root(req: &CaRequest, now: DateTime<Utc>) -> Result<Authority, PkiError> {
        let subject = ca_name(req)?;
        let constraints = names::child_constraints(None, req.name_constraints.as_ref())?;
        let key = generate_ca_key(req.key_algorithm)?;
        let spki = key.public_spki()?;
        let ski = key_identifier(&spki)?;
        let (validity, _, _) = validity_from(now, req.validity, None)?;
        let signature = key.signature_algorithm()?;
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: random_serial()?,
            signature,
            issuer: subject.clone(),
            validity,
            subject,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(ca_extensions(
                &ski,
                aki_extension(&ski)?,
                req.path_len,
                constraints.as_ref(),
            )?),
        };
        let der = extensions::sign_certificate(&key, &tbs)?;
        Self::assemble(der, key)
    }

    /// Generates a key and issues a sub-CA certificate for it.
    ///
    /// The path length must stay below this CA's (`None` under a limited
    /// parent means the parent's limit minus one; a parent with pathLen 0
    /// issues no CAs); the validity is capped at this CA's notAfter; the
    /// name constraints are the request's, whose permitted subtrees must
    /// lie within this CA's (this CA's when the request names none), plus
    /// this CA's excluded subtrees.
    pub fn issue_intermediate(
        &self,
        req: &CaRequest,
        now: DateTime<Utc>,
    ) -> Result<Authority, PkiError> {
        let path_len = match (self.path_len, req.path_len) {
            (Some(0), _) => {
                return Err(PkiError::PathLength(format!(
                    "{} has pathLen 0 and may not issue CA certificates",
                    self.subject()
                )))
            }
            (Some(parent), Some(child)) if child >= parent => {
                return Err(PkiError::PathLength(format!(
                    "a sub-CA of {} needs pathLen below {parent}, not {child}",
                    self.subject()
                )))
            }
            (Some(parent), None) => Some(parent - 1),
            (_, child) => child,
        };
        self.check_current(now)?;
        let subject = ca_name(req)?;
        let constraints = names::child_constraints(
            self.name_constraints.as_ref(),
            req.name_constraints.as_ref(),
        )?;
        let key = generate_ca_key(req.key_algorithm)?;
        let spki = key.public_spki()?;
        let ski = key_identifier(&spki)?;
        let (validity, _, _) = validity_from(now, req.validity, Some(self.not_after))?;
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: random_serial()?,
            signature: self.signature_algorithm.clone(),
            issuer: self.subject.clone(),
            validity,
            subject,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(ca_extensions(
                &ski,
                self.child_aki.clone(),
                path_len,
                constraints.as_ref(),
            )?),
        };
        let der = extensions::sign_certificate(&self.key, &tbs)?;
        Self::assemble(der, key)
    }

    /// Loads an operator-supplied CA: the first `CERTIFICATE` block of
    /// `cert_pem` and the first private key block of `key_pem` (PKCS#8
    /// `PRIVATE KEY`, SEC1 `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`;
    /// not encrypted). The certificate must be a CA (basicConstraints
    /// CA:TRUE, keyCertSign if it has a keyUsage) and the key its own.
    pub fn import(cert_pem: &str, key_pem: &str) -> Result<Authority, PkiError> {
        if cert_pem.len() > MAX_PEM_LEN || key_pem.len() > MAX_PEM_LEN {
            return Err(PkiError::Malformed(format!(
                "PEM input larger than {MAX_PEM_LEN} bytes"
            )));
        }
        let cert_block = pem_block(cert_pem, |label| label == "CERTIFICATE")
            .ok_or_else(|| PkiError::Malformed("no CERTIFICATE PEM block".into()))?;
        let (_, cert_der) = der::pem::decode_vec(cert_block.as_bytes())
            .map_err(|e| PkiError::Malformed(format!("certificate PEM: {e}")))?;
        let key_block = pem_block(key_pem, |label| label.ends_with("PRIVATE KEY"))
            .ok_or_else(|| PkiError::Malformed("no private key PEM block".into()))?;
        let pkcs8 = crate::keystore::decode_private_key_pem(key_block, None)?;
        let key = CaKey::from_pkcs8_der(pkcs8.as_bytes())?;
        Self::assemble(cert_der, key)
    }

    /// Reloads a CA from storage: the certificate DER and the plaintext
    /// PKCS#8 key [`Authority::key_pkcs8_der`] gave. Checked like
    /// [`Authority::import`].
    pub fn from_parts(cert_der: &[u8], key_pkcs8_der: &[u8]) -> Result<Authority, PkiError> {
        let key = CaKey::from_pkcs8_der(key_pkcs8_der)?;
        Self::assemble(cert_der.to_vec(), key)
    }

    /// The private key as plaintext PKCS#8 DER, wiped on drop: for the
    /// caller to seal before it stores it.
    pub fn key_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        let doc = self.key.to_pkcs8_der()?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The subject, RFC 4514 style (`CN=…,O=…`).
    pub fn subject(&self) -> String {
        self.subject.to_string()
    }

    /// notBefore.
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    /// notAfter; nothing this CA issues outlives it.
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// basicConstraints pathLenConstraint (`None`: unlimited).
    pub fn path_len(&self) -> Option<u8> {
        self.path_len
    }

    /// The DNS name constraints this CA's certificate carries.
    pub fn name_constraints(&self) -> Option<&NameConstraints> {
        self.name_constraints.as_ref()
    }

    /// The SubjectKeyIdentifier (the AKI of everything this CA issues).
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// Serial number, lowercase hex.
    pub fn serial_hex(&self) -> String {
        self.serial_hex.clone()
    }

    /// The CA key's algorithm.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.key_algorithm
    }

    /// True when the certificate names itself as issuer and its signature
    /// verifies with its own key (a root).
    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }

    /// Refuses issuing at `now` outside this CA's validity: the result
    /// would not verify. A notBefore up to the backdating margin ahead is
    /// tolerated (an imported CA made a moment ago on a clock slightly ahead).
    pub(super) fn check_current(&self, now: DateTime<Utc>) -> Result<(), PkiError> {
        if now + BACKDATE < self.not_before {
            return Err(PkiError::InvalidValidity(format!(
                "the CA certificate is not valid before {}",
                self.not_before
            )));
        }
        if now >= self.not_after {
            return Err(PkiError::InvalidValidity(format!(
                "the CA certificate expired at {}",
                self.not_after
            )));
        }
        Ok(())
    }

    /// Checks a certificate and key as a CA and works out everything
    /// issuance needs.
    fn assemble(cert_der: Vec<u8>, key: CaKey) -> Result<Self, PkiError> {
        let cert = Certificate::from_der(&cert_der)
            .map_err(|e| PkiError::Malformed(format!("CA certificate: {e}")))?;
        let tbs = &cert.tbs_certificate;
        let cert_spki = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| PkiError::Malformed(format!("CA public key: {e}")))?;
        let key_spki = key
            .public_spki()?
            .to_der()
            .map_err(|e| PkiError::Crypto(format!("CA public key: {e}")))?;
        if cert_spki != key_spki {
            return Err(PkiError::KeyMismatch);
        }
        let key_algorithm = ca_key_algorithm(&key)?;
        let basic = crate::verify::find_extension::<BasicConstraints>(&cert)?;
        let path_len = match basic {
            Some(bc) if bc.ca => bc.path_len_constraint,
            _ => {
                return Err(PkiError::NotACa(format!(
                    "{} has no basicConstraints CA:TRUE",
                    tbs.subject
                )))
            }
        };
        if let Some(usage) = crate::verify::find_extension::<KeyUsage>(&cert)? {
            if !usage.key_cert_sign() {
                return Err(PkiError::NotACa(format!(
                    "{}'s keyUsage does not allow keyCertSign",
                    tbs.subject
                )));
            }
        }
        let key_id = match crate::verify::find_extension::<SubjectKeyIdentifier>(&cert)? {
            Some(ski) => ski.0.as_bytes().to_vec(),
            None => key_identifier(&tbs.subject_public_key_info)?
                .0
                .as_bytes()
                .to_vec(),
        };
        let name_constraints = extensions::read_name_constraints(&cert)?;
        let child_aki = aki_extension(&SubjectKeyIdentifier(
            OctetString::new(key_id.clone())
                .map_err(|e| PkiError::Crypto(format!("key identifier: {e}")))?,
        ))?;
        let self_signed = tbs.issuer == tbs.subject && signed_by_own_key(&cert, &key);
        let cert_pem = der::pem::encode_string("CERTIFICATE", LineEnding::LF, &cert_der)
            .map_err(|e| PkiError::Crypto(format!("encode certificate: {e}")))?;
        Ok(Self {
            signature_algorithm: key.signature_algorithm()?,
            key,
            key_algorithm,
            cert_pem,
            subject: tbs.subject.clone(),
            key_id,
            child_aki,
            not_before: time_to_chrono(&tbs.validity.not_before),
            not_after: time_to_chrono(&tbs.validity.not_after),
            path_len,
            name_constraints,
            serial_hex: hex::encode(tbs.serial_number.as_bytes()),
            self_signed,
            cert_der,
        })
    }
}

/// `O=<organization>, CN=<common name>` (O first in the DER, the usual
/// order for CA names), or `CN=` alone.
fn ca_name(req: &CaRequest) -> Result<Name, PkiError> {
    let mut rdns = Vec::with_capacity(2);
    if let Some(org) = &req.organization {
        rdns.push(rdn(ORGANIZATION_NAME, "O", org)?);
    }
    rdns.push(rdn(COMMON_NAME, "CN", &req.common_name)?);
    Ok(RdnSequence(rdns))
}

fn generate_ca_key(alg: KeyAlgorithm) -> Result<CaKey, PkiError> {
    match alg {
        KeyAlgorithm::EcP256 => CaKey::generate_p256(),
        KeyAlgorithm::EcP384 => CaKey::generate_p384(),
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            CaKey::generate_rsa(alg.bits() as usize)
        }
    }
}

/// The [`KeyAlgorithm`] of a CA key; RSA sizes other than 2048, 3072 and
/// 4096 bits are refused.
fn ca_key_algorithm(key: &CaKey) -> Result<KeyAlgorithm, PkiError> {
    match key {
        CaKey::P256(_) => Ok(KeyAlgorithm::EcP256),
        CaKey::P384(_) => Ok(KeyAlgorithm::EcP384),
        CaKey::Rsa(k) => {
            let bits =
                u32::try_from(rsa::traits::PublicKeyParts::n(k.private()).bits()).unwrap_or(0);
            KeyAlgorithm::from_family_and_bits("RSA", bits).ok_or_else(|| {
                PkiError::UnsupportedAlgorithm(format!(
                    "RSA CA keys of {bits} bits (2048, 3072 or 4096 only)"
                ))
            })
        }
    }
}

/// RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Result<SubjectKeyIdentifier, PkiError> {
    SubjectKeyIdentifier::try_from(spki.owned_to_ref())
        .map_err(|e| PkiError::Crypto(format!("key identifier: {e}")))
}

/// authorityKeyIdentifier naming `issuer_ski`, keyIdentifier only.
fn aki_extension(issuer_ski: &SubjectKeyIdentifier) -> Result<Extension, PkiError> {
    extension(
        &AuthorityKeyIdentifier {
            key_identifier: Some(issuer_ski.0.clone()),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )
}

/// SKI, AKI, basicConstraints, keyUsage and (when any) nameConstraints of
/// a CA certificate.
fn ca_extensions(
    ski: &SubjectKeyIdentifier,
    aki: Extension,
    path_len: Option<u8>,
    constraints: Option<&NameConstraints>,
) -> Result<Vec<Extension>, PkiError> {
    let mut exts = vec![
        extension(ski, false)?,
        aki,
        extension(
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
            true,
        )?,
        extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
    ];
    if let Some(nc) = constraints {
        exts.push(extensions::name_constraints(nc)?);
    }
    Ok(exts)
}

/// Whether `cert`'s signature verifies with `key`'s public half.
fn signed_by_own_key(cert: &Certificate, key: &CaKey) -> bool {
    let Ok(tbs) = cert.tbs_certificate.to_der() else {
        return false;
    };
    let Some(sig) = cert.signature.as_bytes() else {
        return false;
    };
    crate::verify::verify_signature(key, &cert.signature_algorithm.oid, &tbs, sig).is_ok()
}

/// The first PEM block of `text` whose label `wanted` accepts, with its
/// BEGIN and END lines (operators' files may hold several blocks, e.g.
/// `EC PARAMETERS` before `EC PRIVATE KEY`, or a chain).
fn pem_block(text: &str, wanted: impl Fn(&str) -> bool) -> Option<&str> {
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let label_end = block["-----BEGIN ".len()..].find("-----")? + "-----BEGIN ".len();
        let label = &block["-----BEGIN ".len()..label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block.find(&end_marker)? + end_marker.len();
        if wanted(label) {
            return Some(&block[..end]);
        }
        rest = &block[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pem_block_finds_the_wanted_label() {
        let text =
            "junk\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                    -----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let block = pem_block(text, |l| l.ends_with("PRIVATE KEY")).unwrap();
        assert!(block.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        assert!(block.ends_with("-----END EC PRIVATE KEY-----"));
        assert!(pem_block(text, |l| l == "CERTIFICATE").is_none());
        assert!(pem_block("-----BEGIN CERTIFICATE-----\nAAAA", |_| true).is_none());
    }
}

//! EK certificate chain validation against a directory of TPM manufacturer
//! CA certificates. Off unless the server is configured with a directory.
//!
//! Tolerates what real EK certificates carry: an empty subject, a critical
//! SubjectAltName holding TPM manufacturer/model/version attributes, EKU
//! 2.23.133.8.1, subject directory attributes. Signatures are checked over
//! the TBS bytes exactly as received (never re-encoded).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use signature::hazmat::PrehashVerifier;
use x509_cert::Certificate;

use crate::ek::EkMaterial;
use crate::keys::{pkcs1v15, PublicKey};
use crate::wire::alg::HashAlg;

/// Maximum intermediates between EK certificate and root.
pub const MAX_DEPTH: usize = 6;

const OID_TCG_EK_CERT_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.8.1");
const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
/// Extensions understood or deliberately tolerated when marked critical.
const KNOWN_CRITICAL: &[&str] = &[
    "2.5.29.19", // basicConstraints
    "2.5.29.15", // keyUsage
    "2.5.29.17", // subjectAltName (TPM manufacturer attributes)
    "2.5.29.37", // extKeyUsage
    "2.5.29.32", // certificatePolicies
    "2.5.29.9",  // subjectDirectoryAttributes (TPM spec)
    "2.5.29.35", // authorityKeyIdentifier
    "2.5.29.14", // subjectKeyIdentifier
];

/// Why a chain did not validate or the store could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// EK material is a bare key, so there is nothing to validate.
    #[error("EK material is a bare public key; chain validation needs an EK certificate")]
    NoCertificate,
    /// Reading the directory failed.
    #[error("cannot read TPM root directory {path}: {reason}")]
    Io {
        /// Path.
        path: PathBuf,
        /// OS error.
        reason: String,
    },
    /// A file in the store is not a certificate.
    #[error("TPM root store file {path} is not a PEM/DER certificate: {reason}")]
    BadStoreCertificate {
        /// Path.
        path: PathBuf,
        /// Parse error.
        reason: String,
    },
    /// No self-signed root in the store.
    #[error("TPM root store contains no self-signed root certificate")]
    NoRoots,
    /// Nothing in the store issued this certificate.
    #[error("no trusted issuer found for certificate issued by \"{0}\"")]
    UnknownIssuer(String),
    /// Issuer found but signature wrong.
    #[error("signature on certificate \"{0}\" does not verify with its issuer's key")]
    BadSignature(String),
    /// Signature algorithm not supported.
    #[error("unsupported certificate signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(String),
    /// Outside validity period.
    #[error("certificate \"{0}\" is not valid at the verification time")]
    OutsideValidity(String),
    /// An issuer is not marked as a CA.
    #[error("issuer certificate \"{0}\" is not a CA (basicConstraints)")]
    NotCa(String),
    /// Critical extension that is neither understood nor a known EK quirk.
    #[error("EK certificate has an unknown critical extension {0}")]
    UnknownCriticalExtension(String),
    /// EKU present but without tcg-kp-EKCertificate.
    #[error("EK certificate extended key usage lacks tcg-kp-EKCertificate (2.23.133.8.1)")]
    WrongExtendedKeyUsage,
    /// Chain longer than [`MAX_DEPTH`].
    #[error("certificate chain is longer than {MAX_DEPTH}")]
    TooDeep,
}

#[derive(Debug, Clone)]
struct StoreCert {
    cert: Certificate,
    der: Vec<u8>,
    subject_der: Vec<u8>,
}

/// Trusted TPM manufacturer roots plus intermediates found next to them.
#[derive(Debug, Clone, Default)]
pub struct RootStore {
    roots: Vec<StoreCert>,
    intermediates: Vec<StoreCert>,
}

/// Result of a successful validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    /// Subjects from the EK's issuer up to the root.
    pub path: Vec<String>,
}

impl RootStore {
    /// Loads every `.pem`, `.crt`, `.cer` and `.der` file in `dir` (PEM files
    /// may hold several certificates). Self-signed ones become trust anchors;
    /// others are intermediates that must themselves chain to an anchor.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, ChainError> {
        let dir = dir.as_ref();
        let io = |e: std::io::Error| ChainError::Io {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        };
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    ["pem", "crt", "cer", "der"].contains(&e.to_ascii_lowercase().as_str())
                })
            })
            .collect();
        entries.sort();
        let mut store = Self::default();
        for path in entries {
            let data = std::fs::read(&path).map_err(|e| ChainError::Io {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let bad = |reason: String| ChainError::BadStoreCertificate {
                path: path.clone(),
                reason,
            };
            let ders: Vec<Vec<u8>> = if data.trim_ascii_start().starts_with(b"-----BEGIN") {
                let text = String::from_utf8_lossy(&data);
                pem_blocks(&text).map_err(bad)?
            } else {
                vec![data.clone()]
            };
            for der in ders {
                store.add_der(der).map_err(bad)?;
            }
        }
        if store.roots.is_empty() {
            return Err(ChainError::NoRoots);
        }
        Ok(store)
    }

    /// Adds one DER certificate (self-signed → root, otherwise intermediate).
    pub fn add_der(&mut self, der: Vec<u8>) -> Result<(), String> {
        let cert = Certificate::from_der(&der).map_err(|e| e.to_string())?;
        let subject_der = cert
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|e| e.to_string())?;
        let issuer_der = cert
            .tbs_certificate
            .issuer
            .to_der()
            .map_err(|e| e.to_string())?;
        let entry = StoreCert {
            cert,
            der,
            subject_der,
        };
        let self_signed = issuer_der == entry.subject_der
            && verify_signed_by(&entry.der, &entry.cert, &entry.cert).is_ok();
        if self_signed {
            self.roots.push(entry);
        } else {
            self.intermediates.push(entry);
        }
        Ok(())
    }

    /// Number of trust anchors.
    pub fn root_count(&self) -> usize {
        self.roots.len()
    }
}

fn pem_blocks(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let tail = rest.get(start..).unwrap_or_default();
        let end_marker = "-----END CERTIFICATE-----";
        let end = tail.find(end_marker).ok_or("unterminated PEM block")? + end_marker.len();
        let block = tail.get(..end).unwrap_or_default();
        let (_, der) = der::pem::decode_vec(block.as_bytes()).map_err(|e| e.to_string())?;
        out.push(der);
        rest = tail.get(end..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err("no CERTIFICATE PEM block".into());
    }
    Ok(out)
}

fn subject_text(c: &Certificate) -> String {
    let s = c.tbs_certificate.subject.to_string();
    if s.is_empty() {
        "(empty subject)".into()
    } else {
        s
    }
}

/// TBS bytes as received: the second TLV inside the outer SEQUENCE.
fn tbs_bytes(der: &[u8]) -> Option<&[u8]> {
    let hdr = |b: &[u8]| -> Option<(usize, usize)> {
        let l0 = *b.get(1)?;
        if l0 < 0x80 {
            return Some((2, usize::from(l0)));
        }
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        Some((2 + n, len))
    };
    let (outer_hdr, _) = hdr(der)?;
    let inner = der.get(outer_hdr..)?;
    let (h, len) = hdr(inner)?;
    inner.get(..h.checked_add(len)?)
}

fn verify_signed_by(
    child_der: &[u8],
    child: &Certificate,
    issuer: &Certificate,
) -> Result<(), ChainError> {
    let subject = subject_text(child);
    let tbs = tbs_bytes(child_der).ok_or_else(|| ChainError::BadSignature(subject.clone()))?;
    let spki = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| ChainError::BadSignature(subject.clone()))?;
    let key =
        PublicKey::from_spki_der(&spki).map_err(|_| ChainError::BadSignature(subject.clone()))?;
    let sig = child
        .signature
        .as_bytes()
        .ok_or_else(|| ChainError::BadSignature(subject.clone()))?;
    let oid = child.signature_algorithm.oid.to_string();
    let (hash, rsa) = match oid.as_str() {
        "1.2.840.113549.1.1.11" => (HashAlg::Sha256, true),
        "1.2.840.113549.1.1.12" => (HashAlg::Sha384, true),
        "1.2.840.113549.1.1.13" => (HashAlg::Sha512, true),
        "1.2.840.10045.4.3.2" => (HashAlg::Sha256, false),
        "1.2.840.10045.4.3.3" => (HashAlg::Sha384, false),
        "1.2.840.10045.4.3.4" => (HashAlg::Sha512, false),
        _ => return Err(ChainError::UnsupportedSignatureAlgorithm(oid)),
    };
    let digest = hash.digest(&[tbs]);
    let ok = match (&key, rsa) {
        (PublicKey::Rsa(k), true) => k.verify(pkcs1v15(hash), &digest, sig).is_ok(),
        (PublicKey::P256(k), false) => p256::ecdsa::Signature::from_der(sig).is_ok_and(|s| {
            p256::ecdsa::VerifyingKey::from(k)
                .verify_prehash(&digest, &s)
                .is_ok()
        }),
        (PublicKey::P384(k), false) => p384::ecdsa::Signature::from_der(sig).is_ok_and(|s| {
            p384::ecdsa::VerifyingKey::from(k)
                .verify_prehash(&digest, &s)
                .is_ok()
        }),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ChainError::BadSignature(subject))
    }
}

fn check_time(c: &Certificate, at: Option<SystemTime>) -> Result<(), ChainError> {
    let Some(at) = at else { return Ok(()) };
    let now = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let v = &c.tbs_certificate.validity;
    if now < v.not_before.to_unix_duration() || now > v.not_after.to_unix_duration() {
        return Err(ChainError::OutsideValidity(subject_text(c)));
    }
    Ok(())
}

fn is_ca(c: &Certificate) -> bool {
    c.tbs_certificate.extensions.iter().flatten().any(|e| {
        e.extn_id == OID_BASIC_CONSTRAINTS
            && x509_cert::ext::pkix::BasicConstraints::from_der(e.extn_value.as_bytes())
                .is_ok_and(|b| b.ca)
    })
}

fn check_leaf_extensions(c: &Certificate) -> Result<(), ChainError> {
    for e in c.tbs_certificate.extensions.iter().flatten() {
        let oid = e.extn_id.to_string();
        if e.critical && !KNOWN_CRITICAL.contains(&oid.as_str()) {
            return Err(ChainError::UnknownCriticalExtension(oid));
        }
        if e.extn_id == OID_EKU {
            let eku = x509_cert::ext::pkix::ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                .map_err(|_| ChainError::WrongExtendedKeyUsage)?;
            if !eku.0.contains(&OID_TCG_EK_CERT_EKU) {
                return Err(ChainError::WrongExtendedKeyUsage);
            }
        }
    }
    Ok(())
}

/// Validates the EK certificate up to a root in `store`. `at` is the
/// verification time (None skips validity periods: several vendors' EK
/// certificates outlive their CAs).
pub fn verify_chain(
    ek: &EkMaterial,
    store: &RootStore,
    at: Option<SystemTime>,
) -> Result<ChainInfo, ChainError> {
    let leaf = ek.certificate().ok_or(ChainError::NoCertificate)?;
    check_leaf_extensions(leaf)?;
    check_time(leaf, at)?;
    let leaf_der = leaf.to_der().ok();
    // Use the bytes as received (minus any NV zero padding) for the signature.
    let raw = ek.raw();
    let raw = match leaf_der.as_ref() {
        Some(d) if raw.len() > d.len() && raw.starts_with(d) => d.as_slice(),
        _ => raw,
    };
    let mut path = Vec::new();
    walk(raw, leaf, store, at, 0, &mut path)?;
    Ok(ChainInfo { path })
}

fn walk(
    der: &[u8],
    cert: &Certificate,
    store: &RootStore,
    at: Option<SystemTime>,
    depth: usize,
    path: &mut Vec<String>,
) -> Result<(), ChainError> {
    if depth > MAX_DEPTH {
        return Err(ChainError::TooDeep);
    }
    let issuer_der = cert.tbs_certificate.issuer.to_der().unwrap_or_default();
    let mut last_err = ChainError::UnknownIssuer(cert.tbs_certificate.issuer.to_string());
    for root in store.roots.iter().filter(|r| r.subject_der == issuer_der) {
        match verify_signed_by(der, cert, &root.cert).and_then(|()| check_time(&root.cert, at)) {
            Ok(()) => {
                path.push(subject_text(&root.cert));
                return Ok(());
            }
            Err(e) => last_err = e,
        }
    }
    for int in store
        .intermediates
        .iter()
        .filter(|i| i.subject_der == issuer_der)
    {
        let step = verify_signed_by(der, cert, &int.cert)
            .and_then(|()| check_time(&int.cert, at))
            .and_then(|()| {
                if is_ca(&int.cert) {
                    Ok(())
                } else {
                    Err(ChainError::NotCa(subject_text(&int.cert)))
                }
            });
        match step {
            Ok(()) => {
                path.push(subject_text(&int.cert));
                match walk(&int.der, &int.cert, store, at, depth + 1, path) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        path.pop();
                        last_err = e;
                    }
                }
            }
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

//! Endorsement Key material as machines send it at registration: decoding,
//! fingerprinting and the constant-time fingerprint comparison.
//!
//! Fingerprint = SHA-256 or SHA-384 of the DER bytes of the material: the
//! certificate DER, the SubjectPublicKeyInfo DER, or the TPM2B_PUBLIC bytes,
//! after base64 (and, if present, PEM armour) is removed. See docs/tpm.md.

use base64::Engine;
use der::{Decode, Encode};
use subtle::ConstantTimeEq;
use x509_cert::Certificate;

use crate::keys::{KeyError, PublicKey};
use crate::wire::alg::{HashAlg, TPM_ALG_AES};
use crate::wire::public::PublicParams;
use crate::wire::{PublicArea, WireError};

/// Largest decoded EK material accepted (real EK certificates are 1–2 KiB).
pub const MAX_EK_BYTES: usize = 16 * 1024;

/// The `ek_source` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EkSource {
    /// An X.509 EK certificate (from NV 0x01c00002 / 0x01c0000a / 0x01c00016...).
    #[default]
    Cert,
    /// A bare public key: SubjectPublicKeyInfo or TPM2B_PUBLIC.
    Pub,
    /// From an offline USB agent receipt: certificate or public key, detected.
    OfflineImport,
}

impl std::str::FromStr for EkSource {
    type Err = EkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cert" => Ok(Self::Cert),
            "pub" => Ok(Self::Pub),
            "offline-import" => Ok(Self::OfflineImport),
            other => Err(EkError::UnknownSource(other.chars().take(32).collect())),
        }
    }
}

/// Which hash a fingerprint uses (told apart by length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintAlg {
    /// 64 hex characters.
    Sha256,
    /// 96 hex characters.
    Sha384,
}

/// Why EK material or its fingerprint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EkError {
    /// `ek_source` not one of cert/pub/offline-import.
    #[error("unknown ek_source {0:?}; expected \"cert\", \"pub\" or \"offline-import\"")]
    UnknownSource(String),
    /// Nothing was sent.
    #[error("EK material is empty")]
    Empty,
    /// Material larger than [`MAX_EK_BYTES`].
    #[error("EK material is {0} bytes, more than the 16384 allowed")]
    TooLarge(usize),
    /// Not base64.
    #[error("EK material is not valid base64")]
    Base64,
    /// PEM armour present but broken.
    #[error("EK material PEM is malformed: {0}")]
    Pem(String),
    /// PEM label does not fit `ek_source`.
    #[error("EK material PEM label {label:?} does not match ek_source {declared}")]
    PemLabel {
        /// Found label.
        label: String,
        /// Declared source.
        declared: &'static str,
    },
    /// `ek_source=cert` but not an X.509 certificate.
    #[error("EK material is not a valid X.509 certificate: {0}")]
    NotACertificate(String),
    /// `ek_source=pub` but neither SPKI nor TPM2B_PUBLIC.
    #[error("EK material is neither a SubjectPublicKeyInfo nor a TPM2B_PUBLIC: {0}")]
    NotAPublicKey(String),
    /// offline-import material matched no known form.
    #[error("EK material is not a certificate, SubjectPublicKeyInfo or TPM2B_PUBLIC")]
    Unrecognised,
    /// Key type unsupported or key invalid.
    #[error("EK public key rejected: {0}")]
    Key(#[from] KeyError),
    /// RSA size outside 2048/3072/4096.
    #[error("EK RSA key size {0} is not supported (2048, 3072, 4096)")]
    RsaSize(usize),
    /// TPM public area says it is not an EK-like restricted decryption key.
    #[error("EK TPM2B_PUBLIC is not a restricted decryption key")]
    NotRestrictedDecrypt,
    /// Claimed fingerprint is not 64/96 hex characters.
    #[error("ek_fingerprint must be 64 (SHA-256) or 96 (SHA-384) hexadecimal characters")]
    FingerprintFormat,
    /// Claimed fingerprint differs from the computed one.
    #[error("ek_fingerprint does not match the {0} fingerprint of the EK material")]
    FingerprintMismatch(&'static str),
}

/// The EK public key plus the template parameters MakeCredential needs
/// (nameAlg and the symmetric key size). From a certificate or SPKI these
/// come from the TCG EK Credential Profile default templates; from a
/// TPM2B_PUBLIC they are read from the area itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkPublicKey {
    /// The key.
    pub key: PublicKey,
    /// EK nameAlg (also the OAEP / KDF hash).
    pub name_alg: HashAlg,
    /// AES key size of the EK's symmetric definition (128 or 256).
    pub sym_key_bits: u16,
    /// The TPM public area, when known.
    pub area: Option<PublicArea>,
}

impl EkPublicKey {
    /// Assumes the TCG default template for this key type: RSA-2048 and
    /// P-256 → SHA-256/AES-128 (L-1, L-2); RSA-3072+ and P-384 → SHA-384/AES-256 (H-3, H-4 style).
    pub fn from_key(key: PublicKey) -> Result<Self, EkError> {
        let (name_alg, sym_key_bits) = match &key {
            PublicKey::Rsa(_) => match key.rsa_bits().unwrap_or(0) {
                2048 => (HashAlg::Sha256, 128),
                3072 | 4096 => (HashAlg::Sha384, 256),
                other => return Err(EkError::RsaSize(other)),
            },
            PublicKey::P256(_) => (HashAlg::Sha256, 128),
            PublicKey::P384(_) => (HashAlg::Sha384, 256),
        };
        Ok(Self {
            key,
            name_alg,
            sym_key_bits,
            area: None,
        })
    }

    /// From a TPM public area (exact nameAlg and symmetric parameters).
    pub fn from_public_area(area: PublicArea) -> Result<Self, EkError> {
        if !area.is_restricted_decrypt() {
            return Err(EkError::NotRestrictedDecrypt);
        }
        let key = PublicKey::from_public_area(&area)?;
        let mut out = Self::from_key(key)?;
        out.name_alg = HashAlg::from_tpm(area.name_alg)
            .filter(|h| *h != HashAlg::Sha1)
            .ok_or(EkError::Key(KeyError::UnsupportedAlgorithm(format!(
                "nameAlg 0x{:04x}",
                area.name_alg
            ))))?;
        let sym = match &area.params {
            PublicParams::Rsa { symmetric, .. } | PublicParams::Ecc { symmetric, .. } => *symmetric,
        };
        match sym {
            Some(s) if s.alg == TPM_ALG_AES && (s.key_bits == 128 || s.key_bits == 256) => {
                out.sym_key_bits = s.key_bits
            }
            _ => {
                return Err(EkError::Key(KeyError::UnsupportedAlgorithm(
                    "EK symmetric algorithm (AES-128/256 CFB expected)".into(),
                )))
            }
        }
        out.area = Some(area);
        Ok(out)
    }
}

/// The form the EK material came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EkForm {
    /// X.509 certificate.
    Certificate(Box<Certificate>),
    /// SubjectPublicKeyInfo.
    Spki,
    /// TPM2B_PUBLIC.
    TpmPublic,
}

/// Decoded EK material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkMaterial {
    source: EkSource,
    raw: Vec<u8>,
    form: EkForm,
    public: EkPublicKey,
}

impl EkMaterial {
    /// Decodes `ek_cert_pem`: base64 of PEM or DER (raw PEM text is tolerated too).
    pub fn parse(b64: &str, source: EkSource) -> Result<Self, EkError> {
        let text = b64.trim();
        if text.is_empty() {
            return Err(EkError::Empty);
        }
        if text.len() > MAX_EK_BYTES * 2 {
            return Err(EkError::TooLarge(text.len()));
        }
        let decoded = if text.starts_with("-----BEGIN") {
            text.as_bytes().to_vec()
        } else {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| EkError::Base64)?
        };
        Self::from_bytes(&decoded, source)
    }

    /// Decodes already base64-decoded material (PEM text or binary).
    pub fn from_bytes(bytes: &[u8], source: EkSource) -> Result<Self, EkError> {
        if bytes.is_empty() {
            return Err(EkError::Empty);
        }
        if bytes.len() > MAX_EK_BYTES {
            return Err(EkError::TooLarge(bytes.len()));
        }
        let trimmed = bytes.trim_ascii_start();
        let (label, raw) = if trimmed.starts_with(b"-----BEGIN") {
            let (label, der) = der::pem::decode_vec(trimmed.trim_ascii())
                .map_err(|e| EkError::Pem(e.to_string()))?;
            (Some(label.to_owned()), der)
        } else {
            (None, bytes.to_vec())
        };
        let src_name = match source {
            EkSource::Cert => "cert",
            EkSource::Pub => "pub",
            EkSource::OfflineImport => "offline-import",
        };
        let label_ok = |want: &[&str]| match &label {
            Some(l) if !want.contains(&l.as_str()) => Err(EkError::PemLabel {
                label: l.clone(),
                declared: src_name,
            }),
            _ => Ok(()),
        };
        let (form, public) = match source {
            EkSource::Cert => {
                label_ok(&["CERTIFICATE"])?;
                parse_cert(&raw)?
            }
            EkSource::Pub => {
                label_ok(&["PUBLIC KEY"])?;
                parse_pub(&raw)?
            }
            EkSource::OfflineImport => {
                label_ok(&["CERTIFICATE", "PUBLIC KEY"])?;
                match parse_cert(&raw) {
                    Ok(v) => v,
                    Err(EkError::NotACertificate(_)) => parse_pub(&raw).map_err(|e| match e {
                        EkError::NotAPublicKey(_) => EkError::Unrecognised,
                        other => other,
                    })?,
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(Self {
            source,
            raw,
            form,
            public,
        })
    }

    /// The declared source.
    pub fn source(&self) -> EkSource {
        self.source
    }

    /// The fingerprinted bytes: DER certificate, DER SPKI or TPM2B_PUBLIC.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Certificate / SPKI / TPM2B_PUBLIC.
    pub fn form(&self) -> &EkForm {
        &self.form
    }

    /// The certificate, if the material is one.
    pub fn certificate(&self) -> Option<&Certificate> {
        match &self.form {
            EkForm::Certificate(c) => Some(c),
            _ => None,
        }
    }

    /// The EK public key and template parameters.
    pub fn public_key(&self) -> &EkPublicKey {
        &self.public
    }

    /// Lower-case hex SHA-256 of [`Self::raw`].
    pub fn fingerprint_sha256(&self) -> String {
        hex::encode(HashAlg::Sha256.digest(&[&self.raw]))
    }

    /// Lower-case hex SHA-384 of [`Self::raw`].
    pub fn fingerprint_sha384(&self) -> String {
        hex::encode(HashAlg::Sha384.digest(&[&self.raw]))
    }

    /// Compares a claimed fingerprint (64 or 96 hex chars, any case) with the
    /// computed one in constant time.
    pub fn verify_fingerprint(&self, claimed: &str) -> Result<FingerprintAlg, EkError> {
        let claimed = claimed.trim();
        let (alg, hash) = match claimed.len() {
            64 => (FingerprintAlg::Sha256, HashAlg::Sha256),
            96 => (FingerprintAlg::Sha384, HashAlg::Sha384),
            _ => return Err(EkError::FingerprintFormat),
        };
        let claimed = hex::decode(claimed).map_err(|_| EkError::FingerprintFormat)?;
        let computed = hash.digest(&[&self.raw]);
        if bool::from(computed.as_slice().ct_eq(&claimed)) {
            Ok(alg)
        } else {
            Err(EkError::FingerprintMismatch(hash.name()))
        }
    }
}

/// Checks a claimed fingerprint's shape without material (offline import).
pub fn check_fingerprint_format(claimed: &str) -> Result<FingerprintAlg, EkError> {
    let c = claimed.trim();
    if !c.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EkError::FingerprintFormat);
    }
    match c.len() {
        64 => Ok(FingerprintAlg::Sha256),
        96 => Ok(FingerprintAlg::Sha384),
        _ => Err(EkError::FingerprintFormat),
    }
}

/// Length of the leading DER TLV, so NV-read certificates padded with zeros still parse.
fn der_tlv_len(b: &[u8]) -> Option<usize> {
    let first_len = *b.get(1)?;
    if first_len < 0x80 {
        return Some(2 + usize::from(first_len));
    }
    let n = usize::from(first_len & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | usize::from(*b.get(2 + i)?);
    }
    len.checked_add(2 + n)
}

fn parse_cert(raw: &[u8]) -> Result<(EkForm, EkPublicKey), EkError> {
    // Tolerate zero padding after the certificate (some NV indices are larger than the cert).
    let body = match der_tlv_len(raw) {
        Some(n) if n < raw.len() && raw.get(n..).is_some_and(|t| t.iter().all(|b| *b == 0)) => {
            raw.get(..n).unwrap_or(raw)
        }
        _ => raw,
    };
    let cert = Certificate::from_der(body).map_err(|e| EkError::NotACertificate(e.to_string()))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| EkError::NotACertificate(e.to_string()))?;
    let key = PublicKey::from_spki_der(&spki)?;
    Ok((
        EkForm::Certificate(Box::new(cert)),
        EkPublicKey::from_key(key)?,
    ))
}

fn parse_pub(raw: &[u8]) -> Result<(EkForm, EkPublicKey), EkError> {
    if raw.first() == Some(&0x30) {
        let key = PublicKey::from_spki_der(raw).map_err(|e| match e {
            KeyError::Spki(m) => EkError::NotAPublicKey(m),
            other => EkError::Key(other),
        })?;
        return Ok((EkForm::Spki, EkPublicKey::from_key(key)?));
    }
    let (area, _) = PublicArea::parse_tpm2b(raw)
        .map_err(|e: WireError| EkError::NotAPublicKey(e.to_string()))?;
    Ok((EkForm::TpmPublic, EkPublicKey::from_public_area(area)?))
}

//! Issuing end-entity (client) certificates.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use const_oid::db::rfc4519::{COMMON_NAME, ORGANIZATIONAL_UNIT_NAME};
use const_oid::db::rfc5280::ID_KP_CLIENT_AUTH;
use der::asn1::{GeneralizedTime, SetOfVec, UtcTime, Utf8StringRef};
use der::pem::LineEnding;
use der::referenced::OwnedToRef;
use der::{Any, Encode, EncodePem};
use rand_core::{OsRng, RngCore};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::Profile;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use zeroize::Zeroizing;

use crate::{EnrollmentCa, PkiError};

/// How far notBefore is backdated, so a relying party whose clock is a bit
/// behind ours still accepts a freshly issued certificate.
pub(crate) const BACKDATE: Duration = Duration::minutes(5);

/// Upper bound on a DN attribute (RFC 5280 ub-common-name / ub-organizational-unit-name).
const MAX_NAME_LEN: usize = 64;

/// A key type: of the keys [`EnrollmentCa::issue_with_new_key`] and
/// [`crate::authority::generate_key_pair`] generate, and of the CAs
/// [`crate::authority::Authority`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA P-384 (SEC1 `EC PRIVATE KEY` from `issue_with_new_key`).
    EcP384,
    /// ECDSA P-256 (SEC1 `EC PRIVATE KEY` from `issue_with_new_key`).
    EcP256,
    /// RSA 2048 (PKCS#1 `RSA PRIVATE KEY` from `issue_with_new_key`).
    Rsa2048,
    /// RSA 3072 (PKCS#1 `RSA PRIVATE KEY` from `issue_with_new_key`).
    Rsa3072,
    /// RSA 4096 (PKCS#1 `RSA PRIVATE KEY` from `issue_with_new_key`).
    Rsa4096,
}

impl KeyAlgorithm {
    /// `"ECDSA"` or `"RSA"`, as [`crate::authority::KeyDescription`] names it.
    pub fn family(self) -> &'static str {
        match self {
            Self::EcP256 | Self::EcP384 => "ECDSA",
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => "RSA",
        }
    }

    /// Key size in bits: the curve order for ECDSA, the modulus for RSA.
    pub fn bits(self) -> u32 {
        match self {
            Self::EcP256 => 256,
            Self::EcP384 => 384,
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
        }
    }

    /// True for the ECDSA variants.
    pub fn is_ec(self) -> bool {
        matches!(self, Self::EcP256 | Self::EcP384)
    }

    /// The variant for a family (`"ECDSA"`/`"EC"`/`"RSA"`, any case) and a
    /// size, e.g. certctl's `("ECDSA", 256)`; `None` for anything else.
    pub fn from_family_and_bits(family: &str, bits: u32) -> Option<Self> {
        let ec = family.eq_ignore_ascii_case("ECDSA") || family.eq_ignore_ascii_case("EC");
        let rsa = family.eq_ignore_ascii_case("RSA");
        match (ec, rsa, bits) {
            (true, _, 256) => Some(Self::EcP256),
            (true, _, 384) => Some(Self::EcP384),
            (_, true, 2048) => Some(Self::Rsa2048),
            (_, true, 3072) => Some(Self::Rsa3072),
            (_, true, 4096) => Some(Self::Rsa4096),
            _ => None,
        }
    }
}

/// A certificate this CA issued.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Serial number, lowercase hex without leading zeros beyond one byte.
    pub serial_hex: String,
    /// notBefore (backdated a few minutes for clock skew).
    pub not_before: DateTime<Utc>,
    /// notAfter.
    pub not_after: DateTime<Utc>,
}

impl EnrollmentCa {
    /// Issues a client certificate `CN=<subject_cn>, OU=<subject_ou>` for
    /// `spki`, valid from now (per the CA's clock) for `validity`, capped at
    /// the CA's own notAfter.
    ///
    /// Extensions: basicConstraints CA:FALSE, keyUsage digitalSignature,
    /// extendedKeyUsage clientAuth, SKI, AKI = the CA's key identifier.
    pub fn issue(
        &self,
        subject_cn: &str,
        subject_ou: &str,
        spki: SubjectPublicKeyInfoOwned,
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        self.issue_leaf(
            subject_cn,
            subject_ou,
            spki,
            validity,
            vec![ID_KP_CLIENT_AUTH],
            None,
        )
    }

    /// Issues an end-entity certificate `CN=<subject_cn>, OU=<subject_ou>`
    /// with the extended key usages `eku` and, when given, the subject
    /// alternative names `san` (shared by client and host certificates).
    pub(crate) fn issue_leaf(
        &self,
        subject_cn: &str,
        subject_ou: &str,
        spki: SubjectPublicKeyInfoOwned,
        validity: Duration,
        eku: Vec<der::asn1::ObjectIdentifier>,
        san: Option<x509_cert::ext::pkix::SubjectAltName>,
    ) -> Result<IssuedCert, PkiError> {
        check_subject_key(&spki)?;
        let subject = cn_ou_name(subject_cn, subject_ou)?;
        let (validity, not_before, not_after) =
            validity_from(self.clock.now(), validity, Some(self.not_after()))?;
        let serial = random_serial()?;
        let serial_hex = hex::encode(serial.as_bytes());
        let ski = SubjectKeyIdentifier::try_from(spki.owned_to_ref())
            .map_err(|e| PkiError::Crypto(format!("key identifier: {e}")))?;
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(
                der::asn1::OctetString::new(self.key_id.clone())
                    .map_err(|e| PkiError::Crypto(format!("key identifier: {e}")))?,
            ),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        let extra = crate::signer::ExtraExtensions {
            subject_key_id: Some(ski),
            authority_key_id: Some(aki),
            basic_constraints: Some(BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }),
            key_usage: Some(KeyUsage(KeyUsages::DigitalSignature.into())),
            extended_key_usage: Some(ExtendedKeyUsage(eku)),
            subject_alt_name: san,
        };
        let cert = self.key.build(
            Profile::Manual {
                issuer: Some(self.subject_name().clone()),
            },
            serial,
            validity,
            subject,
            spki,
            &extra,
        )?;
        let cert_der = cert
            .to_der()
            .map_err(|e| PkiError::Crypto(format!("encode certificate: {e}")))?;
        let cert_pem = cert
            .to_pem(LineEnding::LF)
            .map_err(|e| PkiError::Crypto(format!("encode certificate: {e}")))?;
        Ok(IssuedCert {
            cert_pem,
            cert_der,
            serial_hex,
            not_before,
            not_after,
        })
    }

    /// Generates a key pair and issues a certificate for it, as
    /// `request-cert` does. EC keys come back as SEC1 `EC PRIVATE KEY` PEM,
    /// RSA keys as PKCS#1 `RSA PRIVATE KEY` PEM; the string is wiped on drop.
    pub fn issue_with_new_key(
        &self,
        subject_cn: &str,
        subject_ou: &str,
        validity: Duration,
        algorithm: KeyAlgorithm,
    ) -> Result<(IssuedCert, Zeroizing<String>), PkiError> {
        let (spki_der, key_pem) = generate_key(algorithm)?;
        let spki = SubjectPublicKeyInfoOwned::try_from(spki_der.as_slice())
            .map_err(|e| PkiError::Crypto(format!("decode public key: {e}")))?;
        let issued = self.issue(subject_cn, subject_ou, spki, validity)?;
        Ok((issued, key_pem))
    }
}

/// Returns (SPKI DER, private key PEM).
pub(crate) fn generate_key(
    algorithm: KeyAlgorithm,
) -> Result<(Vec<u8>, Zeroizing<String>), PkiError> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use pkcs1::EncodeRsaPrivateKey;
    use spki::EncodePublicKey;
    let crypto = |what: &str, e: &dyn std::fmt::Display| PkiError::Crypto(format!("{what}: {e}"));
    match algorithm {
        KeyAlgorithm::EcP384 => {
            // AWS-LC generates (assembly P-384, about 5x faster than the
            // portable code; every request-cert does this); RustCrypto
            // encodes.
            use aws_lc_rs::encoding::AsBigEndian;
            use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_ASN1_SIGNING};
            let pair = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING)
                .map_err(|e| crypto("P-384 key generation", &e))?;
            let scalar = pair
                .private_key()
                .as_be_bytes()
                .map_err(|e| crypto("P-384 key export", &e))?;
            let point = pair.public_key().as_ref();
            let pem = sec1_pem(scalar.as_ref(), point, const_oid::db::rfc5912::SECP_384_R_1)?;
            let spki = p384::PublicKey::from_sec1_bytes(point)
                .map_err(|e| crypto("P-384 public key", &e))?
                .to_public_key_der()
                .map_err(|e| crypto("encode public key", &e))?;
            Ok((spki.into_vec(), pem))
        }
        KeyAlgorithm::EcP256 => {
            let key = p256::SecretKey::random(&mut OsRng);
            let pem = sec1_pem(
                &key.to_bytes(),
                key.public_key().to_encoded_point(false).as_bytes(),
                const_oid::db::rfc5912::SECP_256_R_1,
            )?;
            let spki = key
                .public_key()
                .to_public_key_der()
                .map_err(|e| crypto("encode public key", &e))?;
            Ok((spki.into_vec(), pem))
        }
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            use pkcs8::DecodePrivateKey;
            let pkcs8 = crate::signer::generate_rsa_pkcs8(algorithm.bits() as usize)?;
            let key = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8.as_slice())
                .map_err(|e| crypto("RSA key generation", &e))?;
            let pem = key
                .to_pkcs1_pem(LineEnding::LF)
                .map_err(|e| crypto("encode RSA key", &e))?;
            let spki = key
                .to_public_key()
                .to_public_key_der()
                .map_err(|e| crypto("encode public key", &e))?;
            Ok((spki.into_vec(), pem))
        }
    }
}

/// SEC1 `EC PRIVATE KEY` PEM *with* the named-curve parameters.
///
/// `elliptic-curve`'s own `to_sec1_pem` omits them, and then OpenSSL and
/// Python `cryptography` cannot tell which curve the key is on.
fn sec1_pem(
    private_key: &[u8],
    public_point: &[u8],
    curve: der::asn1::ObjectIdentifier,
) -> Result<Zeroizing<String>, PkiError> {
    let key = sec1::EcPrivateKey {
        private_key,
        parameters: Some(sec1::EcParameters::NamedCurve(curve)),
        public_key: Some(public_point),
    };
    let der = Zeroizing::new(
        key.to_der()
            .map_err(|e| PkiError::Crypto(format!("encode EC key: {e}")))?,
    );
    der::pem::encode_string("EC PRIVATE KEY", LineEnding::LF, &der)
        .map(Zeroizing::new)
        .map_err(|e| PkiError::Crypto(format!("encode EC key: {e}")))
}

/// Only EC P-256/P-384 and RSA >= 2048 subject keys are certified.
fn check_subject_key(spki: &SubjectPublicKeyInfoOwned) -> Result<(), PkiError> {
    use spki::DecodePublicKey;
    let der = spki
        .to_der()
        .map_err(|e| PkiError::Malformed(format!("public key: {e}")))?;
    if p384::PublicKey::from_public_key_der(&der).is_ok()
        || p256::PublicKey::from_public_key_der(&der).is_ok()
    {
        return Ok(());
    }
    match rsa::RsaPublicKey::from_public_key_der(&der) {
        Ok(k) if rsa::traits::PublicKeyParts::size(&k) >= 256 => Ok(()),
        Ok(_) => Err(PkiError::UnsupportedAlgorithm(
            "RSA keys shorter than 2048 bits".into(),
        )),
        Err(_) => Err(PkiError::UnsupportedAlgorithm(format!(
            "subject key algorithm {}",
            spki.algorithm.oid
        ))),
    }
}

/// A random positive serial: 16 bytes from the OS with the top bit cleared
/// (positive) and the next bit set (no leading zero byte to strip), so 126
/// bits of entropy and a fixed 16-byte encoding.
pub(crate) fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    SerialNumber::new(&bytes).map_err(|e| PkiError::Crypto(format!("serial number: {e}")))
}

/// `CN=<cn>` alone (the CA's own subject).
pub(crate) fn single_name(cn: &str) -> Result<Name, PkiError> {
    Ok(RdnSequence(vec![rdn(COMMON_NAME, "CN", cn)?]))
}

/// `CN=<cn>, OU=<ou>`, in that order, as the seed's certificates are.
pub(crate) fn cn_ou_name(cn: &str, ou: &str) -> Result<Name, PkiError> {
    Ok(RdnSequence(vec![
        rdn(COMMON_NAME, "CN", cn)?,
        rdn(ORGANIZATIONAL_UNIT_NAME, "OU", ou)?,
    ]))
}

pub(crate) fn rdn(
    oid: der::asn1::ObjectIdentifier,
    what: &str,
    value: &str,
) -> Result<RelativeDistinguishedName, PkiError> {
    if value.is_empty() || value.chars().count() > MAX_NAME_LEN {
        return Err(PkiError::InvalidName(format!(
            "{what} must be 1..={MAX_NAME_LEN} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(PkiError::InvalidName(format!(
            "{what} must not contain control characters"
        )));
    }
    let utf8 =
        Utf8StringRef::new(value).map_err(|e| PkiError::InvalidName(format!("{what}: {e}")))?;
    let atv = AttributeTypeAndValue {
        oid,
        value: Any::from(utf8),
    };
    let set =
        SetOfVec::try_from(vec![atv]).map_err(|e| PkiError::InvalidName(format!("{what}: {e}")))?;
    Ok(RelativeDistinguishedName(set))
}

/// Validity `[now - BACKDATE, now + lifetime]`, notAfter capped at `cap`.
/// Times are truncated to whole seconds, as X.509 encodes them.
pub(crate) fn validity_from(
    now: DateTime<Utc>,
    lifetime: Duration,
    cap: Option<DateTime<Utc>>,
) -> Result<(Validity, DateTime<Utc>, DateTime<Utc>), PkiError> {
    if lifetime <= Duration::zero() {
        return Err(PkiError::InvalidValidity(
            "lifetime must be positive".into(),
        ));
    }
    let not_before = now
        .checked_sub_signed(BACKDATE)
        .ok_or_else(|| PkiError::InvalidValidity("time out of range".into()))?;
    let mut not_after = now
        .checked_add_signed(lifetime)
        .ok_or_else(|| PkiError::InvalidValidity("lifetime overflows".into()))?;
    if let Some(cap) = cap {
        if not_after > cap {
            not_after = cap;
        }
    }
    if not_after <= now {
        return Err(PkiError::InvalidValidity(
            "the CA certificate has expired".into(),
        ));
    }
    let nb = to_x509_time(not_before)?;
    let na = to_x509_time(not_after)?;
    Ok((
        Validity {
            not_before: nb,
            not_after: na,
        },
        time_to_chrono(&nb),
        time_to_chrono(&na),
    ))
}

/// RFC 5280 4.1.2.5 / 5.1.2.4: UTCTime through 2049, GeneralizedTime after.
/// (`Time::try_from(SystemTime)` always picks GeneralizedTime.)
pub(crate) fn to_x509_time(t: DateTime<Utc>) -> Result<Time, PkiError> {
    let secs = u64::try_from(t.timestamp())
        .map_err(|_| PkiError::InvalidValidity("time before 1970".into()))?;
    let since_epoch = StdDuration::from_secs(secs);
    if let Ok(utc) = UtcTime::from_unix_duration(since_epoch) {
        return Ok(Time::UtcTime(utc));
    }
    GeneralizedTime::from_unix_duration(since_epoch)
        .map(Time::GeneralTime)
        .map_err(|e| PkiError::InvalidValidity(format!("time out of range: {e}")))
}

/// Converts an X.509 time to chrono (whole seconds).
pub(crate) fn time_to_chrono(t: &Time) -> DateTime<Utc> {
    let secs = i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{TimeZone, Utc};
    use x509_cert::time::Time;

    use super::to_x509_time;

    #[test]
    fn utc_time_through_2049_then_generalized_time() {
        // Regression: every time was GeneralizedTime, which RFC 5280 forbids
        // for dates before 2050 in certificates and CRLs.
        let last = Utc.with_ymd_and_hms(2049, 12, 31, 23, 59, 59).unwrap();
        assert!(matches!(to_x509_time(last).unwrap(), Time::UtcTime(_)));
        let first = Utc.with_ymd_and_hms(2050, 1, 1, 0, 0, 0).unwrap();
        assert!(matches!(to_x509_time(first).unwrap(), Time::GeneralTime(_)));
        assert!(to_x509_time(Utc.with_ymd_and_hms(1969, 1, 1, 0, 0, 0).unwrap()).is_err());
    }
}

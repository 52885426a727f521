//! Certificate revocation lists (RFC 5280 section 5), signed by the CA key.
//!
//! Relying parties (nginx, openssl, Go) that check client certificates
//! against the enrollment CA need a CRL to learn about revocations; this
//! server itself consults [`crate::RevocationCheck`] instead.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use der::asn1::{OctetString, Uint};
use der::oid::AssociatedOid;
use der::pem::LineEnding;
use der::Encode;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Version;

use crate::issue::to_x509_time;
use crate::{EnrollmentCa, PkiError};

/// RFC 5280 5.3.1 reason codes this CA puts on CRL entries.
///
/// `removeFromCRL` (delta CRLs only) and `aACompromise` (attribute
/// certificates) are left out: this CA produces neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrlReason {
    /// unspecified (0). RFC 5280 says to omit the reasonCode rather than
    /// encode this value, so such entries carry no extension.
    Unspecified,
    /// keyCompromise (1).
    KeyCompromise,
    /// cACompromise (2).
    CaCompromise,
    /// affiliationChanged (3).
    AffiliationChanged,
    /// superseded (4).
    Superseded,
    /// cessationOfOperation (5).
    CessationOfOperation,
    /// certificateHold (6).
    CertificateHold,
    /// privilegeWithdrawn (9).
    PrivilegeWithdrawn,
}

impl CrlReason {
    const ALL: [Self; 8] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::PrivilegeWithdrawn,
    ];

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    fn to_x509(self) -> x509_cert::ext::pkix::CrlReason {
        use x509_cert::ext::pkix::CrlReason as R;
        match self {
            Self::Unspecified => R::Unspecified,
            Self::KeyCompromise => R::KeyCompromise,
            Self::CaCompromise => R::CaCompromise,
            Self::AffiliationChanged => R::AffiliationChanged,
            Self::Superseded => R::Superseded,
            Self::CessationOfOperation => R::CessationOfOperation,
            Self::CertificateHold => R::CertificateHold,
            Self::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        }
    }
}

impl fmt::Display for CrlReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CrlReason {
    type Err = PkiError;

    /// Accepts the RFC name in any case and with `_`/`-` separators, so
    /// `keyCompromise`, `key_compromise` and `KEY-COMPROMISE` all parse.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted: String = s
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| PkiError::Malformed(format!("unknown CRL reason {s:?}")))
    }
}

/// One revoked certificate, as the CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number in hex, as in [`crate::IssuedCert::serial_hex`]
    /// (case and a leading `00` do not matter).
    pub serial_hex: String,
    /// When the certificate was revoked.
    pub revoked_at: DateTime<Utc>,
    /// Why, if known.
    pub reason: Option<CrlReason>,
}

/// The serial numbers (lowercase hex, as issued) a DER CRL lists. Does not
/// check the signature: for inspecting a CRL this server published.
pub fn crl_serials(der: &[u8]) -> Result<Vec<String>, PkiError> {
    use der::Decode;
    let crl =
        CertificateList::from_der(der).map_err(|e| PkiError::Malformed(format!("CRL: {e}")))?;
    Ok(crl
        .tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .iter()
        .map(|r| hex::encode(r.serial_number.as_bytes()))
        .collect())
}

impl EnrollmentCa {
    /// A v2 CRL in DER listing `revoked`, signed with the CA key.
    ///
    /// Carries cRLNumber (`crl_number`; callers must make it increase with
    /// every CRL they publish) and authorityKeyIdentifier, plus a reasonCode
    /// on entries with a reason other than `Unspecified`. Repeated serials
    /// are listed once (the first entry wins) rather than failing the whole
    /// CRL. Times are truncated to whole seconds.
    pub fn crl(
        &self,
        revoked: &[RevokedEntry],
        crl_number: u64,
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
    ) -> Result<Vec<u8>, PkiError> {
        if next_update <= this_update {
            return Err(PkiError::InvalidValidity(
                "CRL nextUpdate must be after thisUpdate".into(),
            ));
        }
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(revoked.len());
        for entry in revoked {
            let serial_number = parse_serial_hex(&entry.serial_hex)?;
            if !seen.insert(serial_number.as_bytes().to_vec()) {
                continue;
            }
            let crl_entry_extensions = match entry.reason {
                None | Some(CrlReason::Unspecified) => None,
                Some(reason) => Some(vec![extension(&reason.to_x509())?]),
            };
            entries.push(RevokedCert {
                serial_number,
                revocation_date: to_x509_time(entry.revoked_at)?,
                crl_entry_extensions,
            });
        }

        let number = Uint::new(&crl_number.to_be_bytes())
            .map_err(|e| PkiError::Crypto(format!("CRL number: {e}")))?;
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(
                OctetString::new(self.key_id.clone())
                    .map_err(|e| PkiError::Crypto(format!("key identifier: {e}")))?,
            ),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        let signature = self.key.signature_algorithm()?;
        let tbs = TbsCertList {
            version: Version::V2,
            signature: signature.clone(),
            issuer: self.subject_name().clone(),
            this_update: to_x509_time(this_update)?,
            next_update: Some(to_x509_time(next_update)?),
            // An empty SEQUENCE OF is not allowed here: omit it instead.
            revoked_certificates: (!entries.is_empty()).then_some(entries),
            crl_extensions: Some(vec![extension(&aki)?, extension(&CrlNumber(number))?]),
        };
        let tbs_der = tbs
            .to_der()
            .map_err(|e| PkiError::Crypto(format!("encode CRL: {e}")))?;
        let crl = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: signature,
            signature: self.key.sign(&tbs_der)?,
        };
        crl.to_der()
            .map_err(|e| PkiError::Crypto(format!("encode CRL: {e}")))
    }

    /// [`EnrollmentCa::crl`] as an `X509 CRL` PEM.
    pub fn crl_pem(
        &self,
        revoked: &[RevokedEntry],
        crl_number: u64,
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
    ) -> Result<String, PkiError> {
        let der = self.crl(revoked, crl_number, this_update, next_update)?;
        der::pem::encode_string("X509 CRL", LineEnding::LF, &der)
            .map_err(|e| PkiError::Crypto(format!("encode CRL: {e}")))
    }
}

/// Hex serial to `SerialNumber`, tolerating an odd digit count and the
/// leading `00` a positive serial with its top bit set is written with.
fn parse_serial_hex(serial_hex: &str) -> Result<SerialNumber, PkiError> {
    let bad = |why: &str| PkiError::Malformed(format!("serial {serial_hex:?}: {why}"));
    let trimmed = serial_hex.trim();
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    let padded = if trimmed.len() % 2 == 1 {
        format!("0{trimmed}")
    } else {
        trimmed.to_owned()
    };
    let bytes = hex::decode(padded).map_err(|_| bad("not hex"))?;
    SerialNumber::new(&bytes).map_err(|_| bad("longer than 20 bytes"))
}

/// A non-critical extension (none of the CRL ones we emit is critical).
fn extension<E: AssociatedOid + Encode>(value: &E) -> Result<Extension, PkiError> {
    let der = value
        .to_der()
        .map_err(|e| PkiError::Crypto(format!("encode extension {}: {e}", E::OID)))?;
    Ok(Extension {
        extn_id: E::OID,
        critical: false,
        extn_value: OctetString::new(der)
            .map_err(|e| PkiError::Crypto(format!("encode extension {}: {e}", E::OID)))?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use attest_domain::clock::{ManualClock, SharedClock};
    use chrono::{Duration, TimeZone, Utc};
    use const_oid::db::rfc5280::{
        ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS,
    };
    use der::{Decode, Encode};
    use x509_cert::crl::CertificateList;
    use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
    use x509_cert::time::Time;
    use x509_cert::Version;

    use super::{CrlReason, RevokedEntry};
    use crate::{CaOptions, EnrollmentCa, KeyAlgorithm, PkiError};

    fn ca() -> (tempfile::TempDir, EnrollmentCa) {
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
        let opts = CaOptions {
            key_passphrase: Some(secrecy::SecretString::from("p".to_owned())),
            ..CaOptions::default()
        };
        let ca = EnrollmentCa::load_or_create(dir.path(), opts, clock).unwrap();
        (dir, ca)
    }

    fn entry(serial_hex: &str, reason: Option<CrlReason>) -> RevokedEntry {
        RevokedEntry {
            serial_hex: serial_hex.to_owned(),
            revoked_at: Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap(),
            reason,
        }
    }

    fn decode(der: &[u8]) -> CertificateList {
        let crl = CertificateList::from_der(der).unwrap();
        // Canonical: re-encoding gives back the same bytes.
        assert_eq!(crl.to_der().unwrap(), der);
        crl
    }

    #[test]
    fn reasons_parse_from_snake_and_camel_case() {
        for (text, reason) in [
            ("key_compromise", CrlReason::KeyCompromise),
            ("keyCompromise", CrlReason::KeyCompromise),
            ("KEY-COMPROMISE", CrlReason::KeyCompromise),
            ("ca_compromise", CrlReason::CaCompromise),
            ("cACompromise", CrlReason::CaCompromise),
            ("cessation_of_operation", CrlReason::CessationOfOperation),
            ("superseded", CrlReason::Superseded),
            ("certificateHold", CrlReason::CertificateHold),
            ("unspecified", CrlReason::Unspecified),
        ] {
            assert_eq!(text.parse::<CrlReason>().unwrap(), reason, "{text}");
        }
        for r in CrlReason::ALL {
            assert_eq!(r.to_string().parse::<CrlReason>().unwrap(), r);
        }
        for bad in ["", "key", "keyCompromised", "remove_from_crl", "1"] {
            assert!(bad.parse::<CrlReason>().is_err(), "{bad}");
        }
    }

    #[test]
    fn crl_structure_and_signature() {
        let (_dir, ca) = ca();
        let (a, _) = ca
            .issue_with_new_key("m-1", "linux", Duration::days(1), KeyAlgorithm::EcP256)
            .unwrap();
        let this = Utc.with_ymd_and_hms(2024, 5, 6, 8, 0, 0).unwrap();
        let next = this + Duration::days(7);
        let der = ca
            .crl(
                &[
                    entry(&a.serial_hex, Some(CrlReason::KeyCompromise)),
                    entry("0badc0de", None),
                    entry("0BADC0DE", Some(CrlReason::Superseded)),
                    entry("abc", Some(CrlReason::Unspecified)),
                ],
                0x1_0000_0001,
                this,
                next,
            )
            .unwrap();
        let crl = decode(&der);
        let tbs = &crl.tbs_cert_list;
        assert_eq!(tbs.version, Version::V2);
        assert_eq!(tbs.signature, crl.signature_algorithm);
        assert_eq!(tbs.issuer, ca.cert.tbs_certificate.subject);
        // RFC 5280: UTCTime until 2049.
        assert!(matches!(tbs.this_update, Time::UtcTime(_)));
        assert_eq!(
            crate::issue::time_to_chrono(&tbs.next_update.unwrap()),
            next
        );

        let revoked = tbs.revoked_certificates.as_ref().unwrap();
        let serials: Vec<String> = revoked
            .iter()
            .map(|r| hex::encode(r.serial_number.as_bytes()))
            .collect();
        // The duplicate is dropped, odd-length hex is accepted.
        assert_eq!(serials, [a.serial_hex.as_str(), "0badc0de", "0abc"]);
        let reason_ext = revoked[0].crl_entry_extensions.as_ref().unwrap();
        assert_eq!(reason_ext.len(), 1);
        assert_eq!(reason_ext[0].extn_id, ID_CE_CRL_REASONS);
        assert!(!reason_ext[0].critical);
        assert_eq!(
            x509_cert::ext::pkix::CrlReason::from_der(reason_ext[0].extn_value.as_bytes()).unwrap(),
            x509_cert::ext::pkix::CrlReason::KeyCompromise
        );
        assert!(revoked[1].crl_entry_extensions.is_none());
        // unspecified is omitted, as RFC 5280 5.3.1 asks.
        assert!(revoked[2].crl_entry_extensions.is_none());

        let exts = tbs.crl_extensions.as_ref().unwrap();
        let aki = exts
            .iter()
            .find(|e| e.extn_id == ID_CE_AUTHORITY_KEY_IDENTIFIER)
            .unwrap();
        let aki = AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes()).unwrap();
        assert_eq!(aki.key_identifier.unwrap().as_bytes(), ca.key_id.as_slice());
        let number = exts.iter().find(|e| e.extn_id == ID_CE_CRL_NUMBER).unwrap();
        let number = CrlNumber::from_der(number.extn_value.as_bytes()).unwrap();
        assert_eq!(number.0.as_bytes(), [1, 0, 0, 0, 1]);

        let tbs_der = tbs.to_der().unwrap();
        let sig = crl.signature.as_bytes().unwrap();
        crate::verify::verify_signature(&ca.key, &crl.signature_algorithm.oid, &tbs_der, sig)
            .unwrap();
        let mut tampered = tbs_der.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(crate::verify::verify_signature(
            &ca.key,
            &crl.signature_algorithm.oid,
            &tampered,
            sig
        )
        .is_err());
    }

    #[test]
    fn empty_crl_omits_revoked_certificates() {
        let (_dir, ca) = ca();
        let now = Utc::now();
        let der = ca.crl(&[], 1, now, now + Duration::hours(1)).unwrap();
        let crl = decode(&der);
        // Absent, not an empty SEQUENCE (which would decode as Some(vec![])).
        assert!(crl.tbs_cert_list.revoked_certificates.is_none());
        assert_eq!(
            crl.tbs_cert_list.crl_extensions.as_ref().unwrap().len(),
            2,
            "AKI and cRLNumber"
        );
    }

    #[test]
    fn crl_rejects_bad_input() {
        let (_dir, ca) = ca();
        let now = Utc::now();
        let next = now + Duration::days(1);
        assert!(matches!(
            ca.crl(&[], 1, now, now),
            Err(PkiError::InvalidValidity(_))
        ));
        for bad in ["", "zz", "0x12", &"7f".repeat(21)] {
            assert!(
                matches!(
                    ca.crl(&[entry(bad, None)], 1, now, next),
                    Err(PkiError::Malformed(_))
                ),
                "{bad}"
            );
        }
        let mut old = entry("01", None);
        old.revoked_at = Utc.with_ymd_and_hms(1960, 1, 1, 0, 0, 0).unwrap();
        assert!(ca.crl(&[old], 1, now, next).is_err());
        // Far-future times switch to GeneralizedTime instead of failing.
        let far = Utc.with_ymd_and_hms(2060, 1, 1, 0, 0, 0).unwrap();
        let crl = decode(&ca.crl(&[], 1, now, far).unwrap());
        assert!(matches!(
            crl.tbs_cert_list.next_update,
            Some(Time::GeneralTime(_))
        ));
    }
}

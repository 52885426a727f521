//! What callers ask for: CA and leaf requests, and what a leaf issuance
//! hands back.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use const_oid::db::rfc5280::{
    ID_KP_CLIENT_AUTH, ID_KP_CODE_SIGNING, ID_KP_EMAIL_PROTECTION, ID_KP_OCSP_SIGNING,
    ID_KP_SERVER_AUTH, ID_KP_TIME_STAMPING,
};
use der::asn1::ObjectIdentifier;

use crate::{KeyAlgorithm, PkiError};

/// RFC 5280 dNSName name constraints (section 4.2.1.10).
///
/// A base `example.com` covers that name and every name below it; a base
/// with a leading dot, `.example.com`, only the names below it (how OpenSSL
/// and Go read it). Empty lists mean "no constraint of that kind".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameConstraints {
    /// permittedSubtrees: when not empty, every DNS name must lie in one.
    pub permitted_dns: Vec<String>,
    /// excludedSubtrees: no DNS name may lie in any of these.
    pub excluded_dns: Vec<String>,
}

impl NameConstraints {
    /// True when neither list constrains anything.
    pub fn is_empty(&self) -> bool {
        self.permitted_dns.is_empty() && self.excluded_dns.is_empty()
    }
}

/// A new CA certificate: a root ([`crate::authority::Authority::generate_root`])
/// or an intermediate ([`crate::authority::Authority::issue_intermediate`]).
#[derive(Debug, Clone)]
pub struct CaRequest {
    /// The subject CN (1..=64 characters).
    pub common_name: String,
    /// The subject O, if any (1..=64 characters).
    pub organization: Option<String>,
    /// The CA's own key, generated for it.
    pub key_algorithm: KeyAlgorithm,
    /// Lifetime from now; an intermediate's is capped at its parent's notAfter.
    pub validity: Duration,
    /// basicConstraints pathLenConstraint: how many CAs may follow this one
    /// in a path. `None` is unlimited for a root; for an intermediate under
    /// a parent with a limit it becomes the parent's limit minus one.
    pub path_len: Option<u8>,
    /// DNS name constraints put into the certificate (critical).
    pub name_constraints: Option<NameConstraints>,
}

/// An end-entity certificate for a key the requester holds.
///
/// `Default` gives empty lists, so a literal can name only what it sets;
/// the zero `validity` it leaves is refused.
#[derive(Debug, Clone, Default)]
pub struct LeafRequest {
    /// The subject CN (1..=64 characters, required).
    pub common_name: String,
    /// dNSName SANs; `*` may be the whole leftmost label.
    pub dns_names: Vec<String>,
    /// iPAddress SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// rfc822Name SANs.
    pub emails: Vec<String>,
    /// uniformResourceIdentifier SANs (e.g. SPIFFE IDs).
    pub uris: Vec<String>,
    /// The subject's SubjectPublicKeyInfo, DER: ECDSA P-256/P-384 or RSA
    /// of at least 2048 bits.
    pub public_key_der: Vec<u8>,
    /// Lifetime from now, capped at the issuer's notAfter.
    pub validity: Duration,
    /// extendedKeyUsage; empty means serverAuth (certctl's default).
    pub extended_key_usages: Vec<Eku>,
    /// cRLDistributionPoints URLs; the extension is omitted when empty.
    pub crl_distribution_points: Vec<String>,
    /// authorityInfoAccess id-ad-ocsp URLs; omitted when empty.
    pub ocsp_urls: Vec<String>,
    /// authorityInfoAccess id-ad-caIssuers URLs; omitted when empty.
    pub ca_issuers_urls: Vec<String>,
}

/// A certificate [`crate::authority::Authority::issue_leaf`] issued.
#[derive(Debug, Clone)]
pub struct IssuedLeaf {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM (LF line endings).
    pub cert_pem: String,
    /// Serial number, lowercase hex (16 bytes, no leading zero byte).
    pub serial_hex: String,
    /// notBefore, backdated a few minutes for clock skew.
    pub not_before: DateTime<Utc>,
    /// notAfter.
    pub not_after: DateTime<Utc>,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: String,
}

/// An extended key usage, by certctl's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Eku {
    /// `serverAuth` (id-kp-serverAuth).
    ServerAuth,
    /// `clientAuth` (id-kp-clientAuth).
    ClientAuth,
    /// `codeSigning` (id-kp-codeSigning).
    CodeSigning,
    /// `emailProtection` (id-kp-emailProtection).
    EmailProtection,
    /// `timeStamping` (id-kp-timeStamping).
    TimeStamping,
    /// `OCSPSigning` (id-kp-OCSPSigning).
    OcspSigning,
}

impl Eku {
    /// Every usage, in the order [`Eku::as_str`] documents them.
    pub const ALL: [Self; 6] = [
        Self::ServerAuth,
        Self::ClientAuth,
        Self::CodeSigning,
        Self::EmailProtection,
        Self::TimeStamping,
        Self::OcspSigning,
    ];

    /// Parses certctl's name (`serverAuth`, `clientAuth`, `codeSigning`,
    /// `emailProtection`, `timeStamping`, `OCSPSigning`), ignoring case.
    pub fn parse(s: &str) -> Result<Self, PkiError> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                PkiError::Malformed(format!(
                    "unknown extended key usage {s:?} (expected one of serverAuth, clientAuth, \
                     codeSigning, emailProtection, timeStamping, OCSPSigning)"
                ))
            })
    }

    /// certctl's name for the usage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerAuth => "serverAuth",
            Self::ClientAuth => "clientAuth",
            Self::CodeSigning => "codeSigning",
            Self::EmailProtection => "emailProtection",
            Self::TimeStamping => "timeStamping",
            Self::OcspSigning => "OCSPSigning",
        }
    }

    /// The RFC 5280 key purpose OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::ServerAuth => ID_KP_SERVER_AUTH,
            Self::ClientAuth => ID_KP_CLIENT_AUTH,
            Self::CodeSigning => ID_KP_CODE_SIGNING,
            Self::EmailProtection => ID_KP_EMAIL_PROTECTION,
            Self::TimeStamping => ID_KP_TIME_STAMPING,
            Self::OcspSigning => ID_KP_OCSP_SIGNING,
        }
    }
}

impl fmt::Display for Eku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Eku {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn eku_names_round_trip_and_unknown_ones_are_refused() {
        for eku in Eku::ALL {
            assert_eq!(Eku::parse(eku.as_str()).unwrap(), eku);
            assert_eq!(eku.to_string().parse::<Eku>().unwrap(), eku);
        }
        assert_eq!(Eku::parse("ocspsigning").unwrap(), Eku::OcspSigning);
        assert_eq!(Eku::parse("ServerAuth").unwrap(), Eku::ServerAuth);
        assert!(Eku::parse("anyExtendedKeyUsage").is_err());
        assert!(Eku::parse("").is_err());
    }
}

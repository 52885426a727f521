//! Host certificates: the identity a host agent serves its mutual-TLS
//! patch API with, issued when an operator approves its enrollment, and
//! the PKCS#10 requests a host may send so its key never leaves it.
//!
//! A host certificate is `CN=<fqdn>, OU=<ou>` with both serverAuth (the
//! agent is a TLS server) and clientAuth, and names the host's FQDN and
//! address as subject alternative names, which is what TLS clients check.

use std::net::IpAddr;

use chrono::Duration;
use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use der::asn1::{Ia5String, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::request::CertReq;
use zeroize::Zeroizing;

use crate::issue::IssuedCert;
use crate::{EnrollmentCa, PkiError};

/// `ecdsa-with-SHA256` (RFC 5758).
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// `ecdsa-with-SHA384` (RFC 5758).
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// `sha256WithRSAEncryption` (RFC 4055).
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// Largest PEM request accepted (a P-384 or RSA-4096 request is far below).
const MAX_CSR_PEM: usize = 16 * 1024;

/// Who a host certificate is for.
#[derive(Debug, Clone, Copy)]
pub struct HostName<'a> {
    /// Fully qualified domain name: the CN and a DNS SAN.
    pub fqdn: &'a str,
    /// The host's address: an IP SAN.
    pub ip: IpAddr,
}

/// A PKCS#10 request whose self-signature verified: the key it certifies.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    /// The requester's public key, proven held by the signature.
    pub spki: SubjectPublicKeyInfoOwned,
}

/// Parses a PEM PKCS#10 request and verifies its self-signature, which
/// proves the requester holds the key. Accepted: ECDSA P-256/P-384 with
/// SHA-256 or SHA-384 and RSA (>= 2048 bits) PKCS#1 v1.5 with SHA-256.
/// The requested subject and extensions are ignored: the CA decides what
/// the certificate names.
///
/// Errors: `Malformed` (not a PEM request), `UnsupportedAlgorithm`,
/// `SignatureMismatch`.
pub fn verify_csr(pem: &str) -> Result<VerifiedCsr, PkiError> {
    if pem.len() > MAX_CSR_PEM {
        return Err(PkiError::Malformed(format!(
            "certificate request larger than {MAX_CSR_PEM} bytes"
        )));
    }
    // Not `CertReq::from_pem`: der 0.7's PEM reader never returns on a
    // truncated body (e.g. `MIIB`), which would let one unauthenticated
    // request spin a thread. Decode the base64 first, then the DER.
    let (label, der_bytes) = der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|e| PkiError::Malformed(format!("certificate request PEM: {e}")))?;
    if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
        return Err(PkiError::Malformed(format!(
            "expected a CERTIFICATE REQUEST PEM block, got {label}"
        )));
    }
    let req = CertReq::from_der(&der_bytes)
        .map_err(|e| PkiError::Malformed(format!("certificate request: {e}")))?;
    let alg = req.algorithm.oid;
    if ![ECDSA_WITH_SHA256, ECDSA_WITH_SHA384, SHA256_WITH_RSA].contains(&alg) {
        return Err(PkiError::UnsupportedAlgorithm(format!(
            "certificate request signature algorithm {alg}"
        )));
    }
    let info = req
        .info
        .to_der()
        .map_err(|e| PkiError::Malformed(format!("certificate request: {e}")))?;
    let spki_der = req
        .info
        .public_key
        .to_der()
        .map_err(|e| PkiError::Malformed(format!("certificate request key: {e}")))?;
    let signature = req
        .signature
        .as_bytes()
        .ok_or_else(|| PkiError::Malformed("certificate request signature bits".into()))?;
    crate::verify_with_spki(&spki_der, &info, signature)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der)
        .map_err(|e| PkiError::Malformed(format!("certificate request key: {e}")))?;
    Ok(VerifiedCsr { spki })
}

impl EnrollmentCa {
    /// Issues a host certificate for `spki`: `CN=<fqdn>, OU=<ou>`,
    /// serverAuth and clientAuth, SANs the FQDN and the address, valid for
    /// `validity` capped at the CA's notAfter.
    pub fn issue_host(
        &self,
        host: HostName<'_>,
        ou: &str,
        spki: SubjectPublicKeyInfoOwned,
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        let dns = Ia5String::new(host.fqdn)
            .map_err(|e| PkiError::InvalidName(format!("fqdn is not a DNS name: {e}")))?;
        let ip = match host.ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let ip = OctetString::new(ip).map_err(|e| PkiError::Crypto(format!("address SAN: {e}")))?;
        let san = SubjectAltName(vec![GeneralName::DnsName(dns), GeneralName::IpAddress(ip)]);
        self.issue_leaf(
            host.fqdn,
            ou,
            spki,
            validity,
            vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH],
            Some(san),
        )
    }

    /// [`Self::issue_host`] for a fresh P-256 key, returned as PKCS#8 PEM
    /// (the seed's `server_key` format); the string is wiped on drop.
    pub fn issue_host_with_new_key(
        &self,
        host: HostName<'_>,
        ou: &str,
        validity: Duration,
    ) -> Result<(IssuedCert, Zeroizing<String>), PkiError> {
        use pkcs8::EncodePrivateKey;
        use spki::EncodePublicKey;
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let key_pem = key
            .to_pkcs8_pem(der::pem::LineEnding::LF)
            .map_err(|e| PkiError::Crypto(format!("encode host key: {e}")))?;
        let spki_der = key
            .public_key()
            .to_public_key_der()
            .map_err(|e| PkiError::Crypto(format!("encode public key: {e}")))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes())
            .map_err(|e| PkiError::Crypto(format!("decode public key: {e}")))?;
        let issued = self.issue_host(host, ou, spki, validity)?;
        Ok((issued, Zeroizing::new(key_pem.to_string())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;

    use attest_domain::clock::ManualClock;
    use der::EncodePem;
    use p256::ecdsa::{DerSignature, SigningKey};
    use x509_cert::builder::{Builder, RequestBuilder};
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    use x509_cert::name::Name;
    use x509_cert::Certificate;

    use super::*;
    use crate::CaOptions;

    fn ca(dir: &std::path::Path) -> EnrollmentCa {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let opts = CaOptions {
            key_passphrase: Some(secrecy::SecretString::from("host-test")),
            ..CaOptions::default()
        };
        EnrollmentCa::load_or_create(dir, opts, clock).unwrap()
    }

    fn csr(key: &SigningKey) -> String {
        let subject = Name::from_str("CN=host-01.example.test").unwrap();
        let builder = RequestBuilder::new(subject, key).unwrap();
        let req = builder.build::<DerSignature>().unwrap();
        req.to_pem(der::pem::LineEnding::LF).unwrap()
    }

    fn extension<T: der::Decode<'static> + const_oid::AssociatedOid>(
        cert: &'static Certificate,
    ) -> T {
        let ext = cert
            .tbs_certificate
            .extensions
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == T::OID)
            .unwrap();
        T::from_der(ext.extn_value.as_bytes()).unwrap()
    }

    #[test]
    fn a_signed_request_verifies_and_a_tampered_one_does_not() {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let pem = csr(&key);
        let verified = verify_csr(&pem).unwrap();
        let want = SubjectPublicKeyInfoOwned::from_der(
            spki::EncodePublicKey::to_public_key_der(key.verifying_key())
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(verified.spki, want);

        // Another key in the request than the one that signed it.
        let mut req = <CertReq as der::DecodePem>::from_pem(pem.as_bytes()).unwrap();
        let other = SigningKey::random(&mut rand_core::OsRng);
        req.info.public_key = SubjectPublicKeyInfoOwned::from_der(
            spki::EncodePublicKey::to_public_key_der(other.verifying_key())
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let tampered = req.to_pem(der::pem::LineEnding::LF).unwrap();
        assert!(matches!(
            verify_csr(&tampered),
            Err(PkiError::SignatureMismatch)
        ));
        assert!(matches!(
            verify_csr(
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
            ),
            Err(PkiError::Malformed(_))
        ));
        assert!(matches!(verify_csr("not pem"), Err(PkiError::Malformed(_))));
        // A truncated body: der's own PEM reader never returns on it.
        assert!(matches!(
            verify_csr(
                "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
            ),
            Err(PkiError::Malformed(_))
        ));
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(matches!(verify_csr(cert), Err(PkiError::Malformed(_))));
    }

    #[test]
    fn host_certificates_name_the_host_and_serve_and_authenticate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let host = HostName {
            fqdn: "host-01.example.test",
            ip: "192.0.2.7".parse().unwrap(),
        };
        let (issued, key_pem) = ca
            .issue_host_with_new_key(host, "host", Duration::days(365))
            .unwrap();
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let cert: &'static Certificate =
            Box::leak(Box::new(Certificate::from_der(&issued.cert_der).unwrap()));
        assert_eq!(
            cert.tbs_certificate.subject.to_string(),
            "OU=host,CN=host-01.example.test"
        );
        let eku: ExtendedKeyUsage = extension(cert);
        assert_eq!(eku.0, vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH]);
        let san: SubjectAltName = extension(cert);
        assert_eq!(
            san.0,
            vec![
                GeneralName::DnsName(Ia5String::new("host-01.example.test").unwrap()),
                GeneralName::IpAddress(OctetString::new(vec![192, 0, 2, 7]).unwrap()),
            ]
        );
        assert!(issued.not_after - issued.not_before <= Duration::days(365) + Duration::minutes(5));

        // From a request: the request's key is certified.
        let key = SigningKey::random(&mut rand_core::OsRng);
        let verified = verify_csr(&csr(&key)).unwrap();
        let issued = ca
            .issue_host(host, "host", verified.spki.clone(), Duration::days(30))
            .unwrap();
        let cert = Certificate::from_der(&issued.cert_der).unwrap();
        assert_eq!(cert.tbs_certificate.subject_public_key_info, verified.spki);

        // A name that is not a DNS name is refused.
        let bad = HostName {
            fqdn: "höst",
            ..host
        };
        assert!(matches!(
            ca.issue_host(bad, "host", verified.spki, Duration::days(1)),
            Err(PkiError::InvalidName(_))
        ));
    }
}

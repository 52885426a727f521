//! [`Authority::issue_leaf`]: end-entity certificates.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use const_oid::db::rfc4519::COMMON_NAME;
use der::asn1::OctetString;
use der::pem::LineEnding;
use der::referenced::OwnedToRef;
use der::Decode;
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::RdnSequence;
use x509_cert::{TbsCertificate, Version};

use super::extensions::{self, extension, ia5};
use super::hierarchy::Authority;
use super::keys::check_subject_key;
use super::names;
use super::request::{Eku, IssuedLeaf, LeafRequest};
use crate::issue::{random_serial, rdn, validity_from};
use crate::PkiError;

/// Most subject alternative names in one certificate.
const MAX_SANS: usize = 1000;
/// Most URLs in each of the CRL distribution point and AIA lists.
const MAX_URLS: usize = 16;

impl Authority {
    /// Issues an end-entity certificate `CN=<common_name>` for the
    /// requester's key.
    ///
    /// Validity from a few minutes before `now` for `req.validity`, capped
    /// at this CA's notAfter; a random 16-byte serial. Extensions:
    /// SKI, AKI, basicConstraints CA:FALSE (critical), keyUsage (critical:
    /// digitalSignature, plus keyEncipherment for RSA keys),
    /// extendedKeyUsage (serverAuth when none is asked for), subjectAltName
    /// when any name is given, cRLDistributionPoints and
    /// authorityInfoAccess when URLs are given.
    ///
    /// Refused: an empty or over-long CN, malformed DNS names, e-mail
    /// addresses, URIs or URLs (`InvalidName`); a DNS name (or a CN that
    /// reads as one) outside this CA's name constraints
    /// (`NameConstraintViolation`); keys other than ECDSA P-256/P-384 or
    /// RSA >= 2048 (`UnsupportedAlgorithm`); `now` outside this CA's
    /// validity or a non-positive validity (`InvalidValidity`).
    pub fn issue_leaf(
        &self,
        req: &LeafRequest,
        now: DateTime<Utc>,
    ) -> Result<IssuedLeaf, PkiError> {
        self.check_current(now)?;
        let subject = RdnSequence(vec![rdn(COMMON_NAME, "CN", &req.common_name)?]);
        let key = check_subject_key(&req.public_key_der)?;
        let spki = SubjectPublicKeyInfoOwned::from_der(&req.public_key_der)
            .map_err(|e| PkiError::Malformed(format!("public key: {e}")))?;
        let san = self.subject_alt_names(req)?;
        if req.crl_distribution_points.len() > MAX_URLS
            || req.ocsp_urls.len() > MAX_URLS
            || req.ca_issuers_urls.len() > MAX_URLS
        {
            return Err(PkiError::InvalidName(format!(
                "more than {MAX_URLS} URLs in one list"
            )));
        }
        let (validity, not_before, not_after) =
            validity_from(now, req.validity, Some(self.not_after))?;
        let serial_number = random_serial()?;
        let serial_hex = hex::encode(serial_number.as_bytes());

        let ski = SubjectKeyIdentifier::try_from(spki.owned_to_ref())
            .map_err(|e| PkiError::Crypto(format!("key identifier: {e}")))?;
        let usage = if key.algorithm == "RSA" {
            KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
        } else {
            KeyUsages::DigitalSignature.into()
        };
        let mut exts = Vec::with_capacity(8);
        exts.push(extension(&ski, false)?);
        exts.push(self.child_aki.clone());
        exts.push(extension(
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            true,
        )?);
        exts.push(extension(&KeyUsage(usage), true)?);
        exts.push(extension(
            &extended_key_usage(&req.extended_key_usages),
            false,
        )?);
        if !san.is_empty() {
            // Critical only when the subject is empty (RFC 5280 4.2.1.6);
            // here it always has a CN.
            exts.push(extension(&SubjectAltName(san), false)?);
        }
        if let Some(ext) = extensions::crl_distribution_points(&req.crl_distribution_points)? {
            exts.push(ext);
        }
        if let Some(ext) = extensions::authority_info_access(&req.ocsp_urls, &req.ca_issuers_urls)?
        {
            exts.push(ext);
        }

        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number,
            signature: self.signature_algorithm.clone(),
            issuer: self.subject.clone(),
            validity,
            subject,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(exts),
        };
        let cert_der = extensions::sign_certificate(&self.key, &tbs)?;
        let cert_pem = der::pem::encode_string("CERTIFICATE", LineEnding::LF, &cert_der)
            .map_err(|e| PkiError::Crypto(format!("encode certificate: {e}")))?;
        let fingerprint_sha256 = hex::encode(Sha256::digest(&cert_der));
        Ok(IssuedLeaf {
            cert_der,
            cert_pem,
            serial_hex,
            not_before,
            not_after,
            fingerprint_sha256,
        })
    }

    /// The SANs in the order DNS, IP, e-mail, URI, each checked, DNS names
    /// (and a CN that reads as a host name) against the name constraints.
    fn subject_alt_names(&self, req: &LeafRequest) -> Result<Vec<GeneralName>, PkiError> {
        let count =
            req.dns_names.len() + req.ip_addresses.len() + req.emails.len() + req.uris.len();
        if count > MAX_SANS {
            return Err(PkiError::InvalidName(format!(
                "{count} subject alternative names; at most {MAX_SANS} are allowed"
            )));
        }
        if let (Some(nc), Some(cn)) = (
            &self.name_constraints,
            names::cn_as_hostname(&req.common_name),
        ) {
            names::check_against(cn, nc)?;
        }
        let mut san = Vec::with_capacity(count);
        for dns in &req.dns_names {
            names::check_dns_name(dns)?;
            if let Some(nc) = &self.name_constraints {
                names::check_against(dns, nc)?;
            }
            san.push(GeneralName::DnsName(ia5(dns, "DNS name")?));
        }
        for ip in &req.ip_addresses {
            let octets = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            san.push(GeneralName::IpAddress(
                OctetString::new(octets).map_err(|e| PkiError::Crypto(format!("IP SAN: {e}")))?,
            ));
        }
        for email in &req.emails {
            names::check_email(email)?;
            san.push(GeneralName::Rfc822Name(ia5(email, "e-mail address")?));
        }
        for uri in &req.uris {
            names::check_uri(uri, "URI")?;
            san.push(GeneralName::UniformResourceIdentifier(ia5(uri, "URI")?));
        }
        Ok(san)
    }
}

/// The usages asked for, each once, in request order; serverAuth alone
/// when none is.
fn extended_key_usage(usages: &[Eku]) -> ExtendedKeyUsage {
    if usages.is_empty() {
        return ExtendedKeyUsage(vec![Eku::ServerAuth.oid()]);
    }
    let mut oids = Vec::with_capacity(usages.len());
    for eku in usages {
        let oid = eku.oid();
        if !oids.contains(&oid) {
            oids.push(oid);
        }
    }
    ExtendedKeyUsage(oids)
}

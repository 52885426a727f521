//! Certificate extensions as [`Extension`] values with the criticality
//! this module decides (not the builder's), and signing a TBS certificate.

use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_AD_OCSP};
use der::asn1::{Ia5String, OctetString};
use der::oid::AssociatedOid;
use der::{Encode, Header, Length, Tag};
use x509_cert::ext::pkix::constraints::name::{GeneralSubtree, GeneralSubtrees};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, CrlDistributionPoints,
    NameConstraints as X509NameConstraints,
};
use x509_cert::ext::Extension;
use x509_cert::{Certificate, TbsCertificate};

use super::names::{check_constraints, check_location_url};
use super::request::NameConstraints;
use crate::signer::CaKey;
use crate::PkiError;

/// `value` as an extension.
pub(crate) fn extension<E: AssociatedOid + Encode>(
    value: &E,
    critical: bool,
) -> Result<Extension, PkiError> {
    let der = value
        .to_der()
        .map_err(|e| PkiError::Crypto(format!("encode extension {}: {e}", E::OID)))?;
    Ok(Extension {
        extn_id: E::OID,
        critical,
        extn_value: OctetString::new(der)
            .map_err(|e| PkiError::Crypto(format!("encode extension {}: {e}", E::OID)))?,
    })
}

/// An IA5String of an already validated (ASCII) name.
pub(crate) fn ia5(value: &str, what: &str) -> Result<Ia5String, PkiError> {
    Ia5String::new(value).map_err(|e| PkiError::InvalidName(format!("{what} {value:?}: {e}")))
}

/// cRLDistributionPoints, one distribution point per URL; `None` when empty.
pub(crate) fn crl_distribution_points(urls: &[String]) -> Result<Option<Extension>, PkiError> {
    if urls.is_empty() {
        return Ok(None);
    }
    let mut points = Vec::with_capacity(urls.len());
    for url in urls {
        check_location_url(url, "CRL distribution point")?;
        points.push(DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![
                GeneralName::UniformResourceIdentifier(ia5(url, "CRL distribution point")?),
            ])),
            reasons: None,
            crl_issuer: None,
        });
    }
    extension(&CrlDistributionPoints(points), false).map(Some)
}

/// authorityInfoAccess with OCSP and caIssuers locations; `None` when both
/// are empty.
pub(crate) fn authority_info_access(
    ocsp_urls: &[String],
    ca_issuers_urls: &[String],
) -> Result<Option<Extension>, PkiError> {
    let mut access = Vec::with_capacity(ocsp_urls.len() + ca_issuers_urls.len());
    for (urls, method, what) in [
        (ocsp_urls, ID_AD_OCSP, "OCSP URL"),
        (ca_issuers_urls, ID_AD_CA_ISSUERS, "CA issuers URL"),
    ] {
        for url in urls {
            check_location_url(url, what)?;
            access.push(AccessDescription {
                access_method: method,
                access_location: GeneralName::UniformResourceIdentifier(ia5(url, what)?),
            });
        }
    }
    if access.is_empty() {
        return Ok(None);
    }
    extension(&AuthorityInfoAccessSyntax(access), false).map(Some)
}

/// nameConstraints (critical, as RFC 5280 requires) with dNSName subtrees.
pub(crate) fn name_constraints(nc: &NameConstraints) -> Result<Extension, PkiError> {
    let subtrees = |bases: &[String]| -> Result<Option<GeneralSubtrees>, PkiError> {
        if bases.is_empty() {
            // GeneralSubtrees is SIZE (1..MAX): omit rather than encode empty.
            return Ok(None);
        }
        bases
            .iter()
            .map(|b| {
                Ok(GeneralSubtree {
                    base: GeneralName::DnsName(ia5(b, "DNS subtree")?),
                    minimum: 0,
                    maximum: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()
            .map(Some)
    };
    extension(
        &X509NameConstraints {
            permitted_subtrees: subtrees(&nc.permitted_dns)?,
            excluded_subtrees: subtrees(&nc.excluded_dns)?,
        },
        true,
    )
}

/// The dNSName constraints of a CA certificate. Constraints on other name
/// forms are refused: leaf issuance could not honour them.
pub(crate) fn read_name_constraints(
    cert: &Certificate,
) -> Result<Option<NameConstraints>, PkiError> {
    let Some(x509) = crate::verify::find_extension::<X509NameConstraints>(cert)? else {
        return Ok(None);
    };
    let dns = |trees: Option<GeneralSubtrees>| -> Result<Vec<String>, PkiError> {
        let mut out = Vec::new();
        for tree in trees.unwrap_or_default() {
            match tree.base {
                GeneralName::DnsName(name) if tree.minimum == 0 && tree.maximum.is_none() => {
                    out.push(name.to_string())
                }
                other => {
                    return Err(PkiError::NameConstraintViolation(format!(
                        "the CA certificate constrains {}; only dNSName subtrees are supported",
                        general_name_kind(&other)
                    )))
                }
            }
        }
        Ok(out)
    };
    let nc = NameConstraints {
        permitted_dns: dns(x509.permitted_subtrees)?,
        excluded_dns: dns(x509.excluded_subtrees)?,
    };
    check_constraints(&nc)?;
    Ok((!nc.is_empty()).then_some(nc))
}

fn general_name_kind(name: &GeneralName) -> &'static str {
    match name {
        GeneralName::OtherName(_) => "otherName",
        GeneralName::Rfc822Name(_) => "rfc822Name",
        GeneralName::DnsName(_) => "dNSName with minimum/maximum",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EdiPartyName(_) => "ediPartyName",
        GeneralName::UniformResourceIdentifier(_) => "uniformResourceIdentifier",
        GeneralName::IpAddress(_) => "iPAddress",
        GeneralName::RegisteredId(_) => "registeredID",
    }
}

/// Signs `tbs` with `key` and returns the certificate DER.
///
/// The TBS is encoded once and the outer SEQUENCE written around those
/// bytes, rather than encoding a `Certificate` (which would encode the TBS
/// a second time).
pub(crate) fn sign_certificate(key: &CaKey, tbs: &TbsCertificate) -> Result<Vec<u8>, PkiError> {
    let encode = |e: der::Error| PkiError::Crypto(format!("encode certificate: {e}"));
    let tbs_der = tbs.to_der().map_err(encode)?;
    let signature = key.sign(&tbs_der)?;
    let alg_der = tbs.signature.to_der().map_err(encode)?;
    let sig_der = signature.to_der().map_err(encode)?;
    let body = tbs_der.len() + alg_der.len() + sig_der.len();
    let header =
        Header::new(Tag::Sequence, Length::try_from(body).map_err(encode)?).map_err(encode)?;
    let mut out = Vec::with_capacity(body + 8);
    header.encode_to_vec(&mut out).map_err(encode)?;
    out.extend_from_slice(&tbs_der);
    out.extend_from_slice(&alg_der);
    out.extend_from_slice(&sig_der);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_location_lists_give_no_extension() {
        assert!(crl_distribution_points(&[]).unwrap().is_none());
        assert!(authority_info_access(&[], &[]).unwrap().is_none());
        let aia = authority_info_access(&["http://ocsp.example.com".into()], &[])
            .unwrap()
            .unwrap();
        assert!(!aia.critical);
        assert!(crl_distribution_points(&["not a url".into()]).is_err());
    }
}

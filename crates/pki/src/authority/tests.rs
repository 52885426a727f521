//! Unit tests of the hierarchy and of leaf issuance, reading the issued
//! certificates back with `x509-cert`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration, Utc};
use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    NameConstraints as X509NameConstraints, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::Certificate;

use super::*;
use crate::verify::find_extension;
use crate::PkiError;

fn ca_req(cn: &str, alg: KeyAlgorithm, path_len: Option<u8>) -> CaRequest {
    CaRequest {
        common_name: cn.into(),
        organization: Some("Example Org".into()),
        key_algorithm: alg,
        validity: Duration::days(365),
        path_len,
        name_constraints: None,
    }
}

fn leaf_req(cn: &str) -> LeafRequest {
    let (spki, _) = generate_key_pair(KeyAlgorithm::EcP256).unwrap();
    LeafRequest {
        common_name: cn.into(),
        dns_names: vec![cn.into()],
        public_key_der: spki,
        validity: Duration::days(30),
        ..LeafRequest::default()
    }
}

fn parse(der: &[u8]) -> Certificate {
    Certificate::from_der(der).unwrap()
}

/// Whether `child`'s signature verifies with `issuer`'s public key.
fn signed_by(child: &[u8], issuer: &[u8]) -> bool {
    let child = parse(child);
    let issuer = parse(issuer);
    crate::verify_with_spki(
        &issuer
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap(),
        &child.tbs_certificate.to_der().unwrap(),
        child.signature.raw_bytes(),
    )
    .is_ok()
}

fn critical(cert: &Certificate, oid: der::asn1::ObjectIdentifier) -> bool {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == oid)
        .unwrap()
        .critical
}

#[test]
fn a_root_is_a_self_signed_ca_with_the_requested_limits() {
    let now = Utc::now();
    let mut req = ca_req("Root", KeyAlgorithm::EcP384, Some(2));
    req.name_constraints = Some(NameConstraints {
        permitted_dns: vec!["example.com".into()],
        excluded_dns: vec![],
    });
    let root = Authority::generate_root(&req, now).unwrap();
    assert!(root.is_self_signed());
    assert_eq!(root.subject(), "CN=Root,O=Example Org");
    assert_eq!(root.path_len(), Some(2));
    assert_eq!(root.key_algorithm(), KeyAlgorithm::EcP384);
    assert!(root.not_before() < now && root.not_before() > now - Duration::minutes(10));
    assert_eq!(
        root.not_after().timestamp(),
        (now + Duration::days(365)).timestamp()
    );
    assert!(signed_by(root.cert_der(), root.cert_der()));

    let cert = parse(root.cert_der());
    let bc = find_extension::<BasicConstraints>(&cert).unwrap().unwrap();
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(2));
    assert!(critical(
        &cert,
        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS
    ));
    let ku = find_extension::<KeyUsage>(&cert).unwrap().unwrap();
    assert_eq!(ku.0, KeyUsages::KeyCertSign | KeyUsages::CRLSign);
    assert!(critical(&cert, const_oid::db::rfc5280::ID_CE_KEY_USAGE));
    let ski = find_extension::<SubjectKeyIdentifier>(&cert)
        .unwrap()
        .unwrap();
    assert_eq!(ski.0.as_bytes(), root.key_id());
    let nc = find_extension::<X509NameConstraints>(&cert)
        .unwrap()
        .unwrap();
    assert!(nc.excluded_subtrees.is_none());
    assert!(critical(
        &cert,
        const_oid::db::rfc5280::ID_CE_NAME_CONSTRAINTS
    ));
    assert_eq!(
        cert.signature_algorithm.oid,
        const_oid::db::rfc5912::ECDSA_WITH_SHA_384
    );
    assert_eq!(
        root.serial_hex(),
        hex::encode(cert.tbs_certificate.serial_number.as_bytes())
    );
    assert!(root.cert_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
    // The key never shows in Debug.
    let debug = format!("{root:?}");
    assert!(
        debug.contains("[redacted]") && debug.contains("CN=Root"),
        "{debug}"
    );
}

#[test]
fn signature_algorithm_follows_the_ca_key() {
    use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, SHA_256_WITH_RSA_ENCRYPTION};
    let now = Utc::now();
    for (alg, sig) in [
        (KeyAlgorithm::EcP256, ECDSA_WITH_SHA_256),
        (KeyAlgorithm::Rsa2048, SHA_256_WITH_RSA_ENCRYPTION),
    ] {
        let root = Authority::generate_root(&ca_req("Root", alg, None), now).unwrap();
        assert_eq!(root.key_algorithm(), alg);
        assert_eq!(parse(root.cert_der()).signature_algorithm.oid, sig);
        let leaf = root.issue_leaf(&leaf_req("a.example.com"), now).unwrap();
        assert_eq!(parse(&leaf.cert_der).signature_algorithm.oid, sig);
        assert!(signed_by(&leaf.cert_der, root.cert_der()));
    }
}

#[test]
fn intermediates_lower_the_path_length_and_cap_validity() {
    let now = Utc::now();
    let root =
        Authority::generate_root(&ca_req("Root", KeyAlgorithm::EcP256, Some(1)), now).unwrap();
    // Too long a pathLen for the parent.
    assert!(matches!(
        root.issue_intermediate(&ca_req("I", KeyAlgorithm::EcP256, Some(1)), now),
        Err(PkiError::PathLength(_))
    ));
    // None under pathLen 1 becomes 0; validity is capped at the root's.
    let mut req = ca_req("Issuing", KeyAlgorithm::EcP384, None);
    req.validity = Duration::days(3650);
    let issuing = root.issue_intermediate(&req, now).unwrap();
    assert_eq!(issuing.path_len(), Some(0));
    assert_eq!(issuing.not_after(), root.not_after());
    assert!(!issuing.is_self_signed());
    assert!(signed_by(issuing.cert_der(), root.cert_der()));
    let cert = parse(issuing.cert_der());
    assert_eq!(
        cert.tbs_certificate.issuer,
        parse(root.cert_der()).tbs_certificate.subject
    );
    let aki = find_extension::<AuthorityKeyIdentifier>(&cert)
        .unwrap()
        .unwrap();
    assert_eq!(aki.key_identifier.unwrap().as_bytes(), root.key_id());
    // P-256 parent signs with SHA-256 whatever the child's key is.
    assert_eq!(
        cert.signature_algorithm.oid,
        const_oid::db::rfc5912::ECDSA_WITH_SHA_256
    );
    // pathLen 0: leaves yes, CAs no.
    assert!(matches!(
        issuing.issue_intermediate(&ca_req("Sub", KeyAlgorithm::EcP256, None), now),
        Err(PkiError::PathLength(m)) if m.contains("pathLen 0")
    ));
    issuing.issue_leaf(&leaf_req("a.example.com"), now).unwrap();

    // Unlimited parents allow anything, and None stays unlimited.
    let open = Authority::generate_root(&ca_req("Open", KeyAlgorithm::EcP256, None), now).unwrap();
    let child = open
        .issue_intermediate(&ca_req("C", KeyAlgorithm::EcP256, None), now)
        .unwrap();
    assert_eq!(child.path_len(), None);
    let grandchild = child
        .issue_intermediate(&ca_req("G", KeyAlgorithm::EcP256, Some(5)), now)
        .unwrap();
    assert_eq!(grandchild.path_len(), Some(5));
}

#[test]
fn children_inherit_and_narrow_name_constraints() {
    let now = Utc::now();
    let mut req = ca_req("Root", KeyAlgorithm::EcP256, None);
    req.name_constraints = Some(NameConstraints {
        permitted_dns: vec!["example.com".into()],
        excluded_dns: vec!["secret.example.com".into()],
    });
    let root = Authority::generate_root(&req, now).unwrap();

    let mut wider = ca_req("Wide", KeyAlgorithm::EcP256, None);
    wider.name_constraints = Some(NameConstraints {
        permitted_dns: vec!["example.org".into()],
        excluded_dns: vec![],
    });
    assert!(matches!(
        root.issue_intermediate(&wider, now),
        Err(PkiError::NameConstraintViolation(_))
    ));

    let plain = root
        .issue_intermediate(&ca_req("Plain", KeyAlgorithm::EcP256, None), now)
        .unwrap();
    assert_eq!(plain.name_constraints(), root.name_constraints());
    // Reloaded alone, the child still enforces what it inherited.
    let reloaded =
        Authority::from_parts(plain.cert_der(), &plain.key_pkcs8_der().unwrap()).unwrap();
    for name in ["www.example.org", "secret.example.com", "*.example.com"] {
        let mut leaf = leaf_req("svc");
        leaf.dns_names = vec![name.into()];
        assert!(
            matches!(
                reloaded.issue_leaf(&leaf, now),
                Err(PkiError::NameConstraintViolation(_))
            ),
            "{name} accepted"
        );
    }
    reloaded
        .issue_leaf(&leaf_req("www.example.com"), now)
        .unwrap();
    // A CN that reads as a host name is held to the constraints too.
    let mut leaf = leaf_req("www.example.net");
    leaf.dns_names.clear();
    assert!(matches!(
        reloaded.issue_leaf(&leaf, now),
        Err(PkiError::NameConstraintViolation(_))
    ));
}

#[test]
fn a_leaf_has_the_profile_extensions() {
    let now = Utc::now();
    let root = Authority::generate_root(&ca_req("Root", KeyAlgorithm::EcP256, None), now).unwrap();
    let mut req = leaf_req("web.example.com");
    req.dns_names.push("*.web.example.com".into());
    req.ip_addresses = vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    req.emails = vec!["ops@example.com".into()];
    req.uris = vec!["spiffe://example.com/web".into()];
    req.extended_key_usages = vec![Eku::ServerAuth, Eku::ClientAuth, Eku::ServerAuth];
    req.crl_distribution_points = vec!["http://crl.example.com/root.crl".into()];
    req.ocsp_urls = vec!["http://ocsp.example.com".into()];
    req.validity = Duration::days(10000);
    let leaf = root.issue_leaf(&req, now).unwrap();
    assert_eq!(leaf.not_after, root.not_after());
    assert_eq!(
        leaf.not_before.timestamp(),
        (now - Duration::minutes(5)).timestamp()
    );
    assert_eq!(leaf.fingerprint_sha256.len(), 64);
    assert_eq!(
        leaf.fingerprint_sha256,
        leaf.fingerprint_sha256.to_lowercase()
    );
    assert_eq!(leaf.serial_hex.len(), 32);

    let cert = parse(&leaf.cert_der);
    let bc = find_extension::<BasicConstraints>(&cert).unwrap().unwrap();
    assert!(!bc.ca);
    assert!(critical(
        &cert,
        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS
    ));
    let ku = find_extension::<KeyUsage>(&cert).unwrap().unwrap();
    assert!(ku.digital_signature() && !ku.key_encipherment() && !ku.key_cert_sign());
    let eku = find_extension::<ExtendedKeyUsage>(&cert).unwrap().unwrap();
    assert_eq!(eku.0, vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH]);
    let san = find_extension::<SubjectAltName>(&cert).unwrap().unwrap();
    assert_eq!(san.0.len(), 6);
    assert!(matches!(&san.0[2], GeneralName::IpAddress(ip) if ip.as_bytes() == [10, 0, 0, 1]));
    assert!(!critical(
        &cert,
        const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME
    ));
    let aki = find_extension::<AuthorityKeyIdentifier>(&cert)
        .unwrap()
        .unwrap();
    assert_eq!(aki.key_identifier.unwrap().as_bytes(), root.key_id());
    assert!(find_extension::<SubjectKeyIdentifier>(&cert)
        .unwrap()
        .is_some());
    assert!(
        find_extension::<x509_cert::ext::pkix::CrlDistributionPoints>(&cert)
            .unwrap()
            .is_some()
    );
    assert!(
        find_extension::<x509_cert::ext::pkix::AuthorityInfoAccessSyntax>(&cert)
            .unwrap()
            .is_some()
    );

    // RSA subjects also get keyEncipherment; no EKU asked means serverAuth.
    let (rsa_spki, _) = generate_key_pair(KeyAlgorithm::Rsa2048).unwrap();
    let rsa_leaf = root
        .issue_leaf(
            &LeafRequest {
                public_key_der: rsa_spki,
                dns_names: vec![],
                uris: vec![],
                ..req.clone()
            },
            now,
        )
        .unwrap();
    let cert = parse(&rsa_leaf.cert_der);
    let ku = find_extension::<KeyUsage>(&cert).unwrap().unwrap();
    assert_eq!(
        ku.0,
        KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
    );
    let minimal = root
        .issue_leaf(
            &LeafRequest {
                dns_names: vec![],
                ..leaf_req("client")
            },
            now,
        )
        .unwrap();
    let cert = parse(&minimal.cert_der);
    assert!(find_extension::<SubjectAltName>(&cert).unwrap().is_none());
    assert!(
        find_extension::<x509_cert::ext::pkix::CrlDistributionPoints>(&cert)
            .unwrap()
            .is_none()
    );
    let eku = find_extension::<ExtendedKeyUsage>(&cert).unwrap().unwrap();
    assert_eq!(eku.0, vec![ID_KP_SERVER_AUTH]);
}

#[test]
fn bad_leaf_requests_are_refused_with_a_reason() {
    let now = Utc::now();
    let root = Authority::generate_root(&ca_req("Root", KeyAlgorithm::EcP256, None), now).unwrap();
    let base = leaf_req("svc.example.com");
    let refused = |req: LeafRequest| root.issue_leaf(&req, now).unwrap_err();

    assert!(matches!(
        refused(LeafRequest {
            common_name: String::new(),
            ..base.clone()
        }),
        PkiError::InvalidName(_)
    ));
    assert!(matches!(
        refused(LeafRequest {
            common_name: "x".repeat(65),
            ..base.clone()
        }),
        PkiError::InvalidName(_)
    ));
    assert!(matches!(
        refused(LeafRequest {
            dns_names: vec!["bad_name.com".into()],
            ..base.clone()
        }),
        PkiError::InvalidName(_)
    ));
    assert!(matches!(
        refused(LeafRequest {
            emails: vec!["nobody".into()],
            ..base.clone()
        }),
        PkiError::InvalidName(_)
    ));
    assert!(matches!(
        refused(LeafRequest {
            uris: vec!["no scheme".into()],
            ..base.clone()
        }),
        PkiError::InvalidName(_)
    ));
    assert!(matches!(
        refused(LeafRequest {
            ocsp_urls: vec!["file:///x".into()],
            ..base.clone()
        }),
        PkiError::InvalidName(_)
    ));
    assert!(matches!(
        refused(LeafRequest {
            validity: Duration::zero(),
            ..base.clone()
        }),
        PkiError::InvalidValidity(_)
    ));
    assert!(matches!(
        refused(LeafRequest {
            public_key_der: vec![1, 2, 3],
            ..base.clone()
        }),
        PkiError::Malformed(_)
    ));
    let weak = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let weak = spki::EncodePublicKey::to_public_key_der(&weak.to_public_key()).unwrap();
    assert!(matches!(
        refused(LeafRequest {
            public_key_der: weak.into_vec(),
            ..base.clone()
        }),
        PkiError::UnsupportedAlgorithm(_)
    ));
    // Outside the CA's validity.
    assert!(matches!(
        root.issue_leaf(&base, now + Duration::days(400)),
        Err(PkiError::InvalidValidity(_))
    ));
    assert!(matches!(
        root.issue_leaf(&base, now - Duration::days(1)),
        Err(PkiError::InvalidValidity(_))
    ));
}

#[test]
fn serials_are_random_positive_and_sixteen_bytes() {
    let now = Utc::now();
    let root = Authority::generate_root(&ca_req("Root", KeyAlgorithm::EcP256, None), now).unwrap();
    let req = leaf_req("a.example.com");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let leaf = root.issue_leaf(&req, now).unwrap();
        let serial = parse(&leaf.cert_der).tbs_certificate.serial_number;
        assert_eq!(serial.as_bytes().len(), 16);
        assert!(serial.as_bytes()[0] & 0x80 == 0 && serial.as_bytes()[0] != 0);
        assert!(seen.insert(leaf.serial_hex));
    }
}

#[test]
fn from_parts_and_import_round_trip_and_check_the_pair() {
    let now = Utc::now();
    let root = Authority::generate_root(&ca_req("Root", KeyAlgorithm::EcP256, None), now).unwrap();
    let key = root.key_pkcs8_der().unwrap();
    let again = Authority::from_parts(root.cert_der(), &key).unwrap();
    assert_eq!(again.cert_der(), root.cert_der());
    assert_eq!(again.key_id(), root.key_id());
    assert_eq!(again.key_pkcs8_der().unwrap(), key);
    assert!(again.is_self_signed());
    let leaf = again.issue_leaf(&leaf_req("a.example.com"), now).unwrap();
    assert!(signed_by(&leaf.cert_der, root.cert_der()));

    let other =
        Authority::generate_root(&ca_req("Other", KeyAlgorithm::EcP256, None), now).unwrap();
    assert!(matches!(
        Authority::from_parts(root.cert_der(), &other.key_pkcs8_der().unwrap()),
        Err(PkiError::KeyMismatch)
    ));
    // A leaf with its own key is no CA.
    let (spki, key_pem) = generate_key_pair(KeyAlgorithm::EcP256).unwrap();
    let leaf = root
        .issue_leaf(
            &LeafRequest {
                public_key_der: spki,
                ..leaf_req("a.example.com")
            },
            now,
        )
        .unwrap();
    assert!(matches!(
        Authority::import(&leaf.cert_pem, &key_pem),
        Err(PkiError::NotACa(_))
    ));
    // PEM import of our own material works too.
    let pem_key = der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &key).unwrap();
    let imported = Authority::import(&root.cert_pem(), &pem_key).unwrap();
    assert_eq!(imported.serial_hex(), root.serial_hex());
    assert!(matches!(
        Authority::import("", &pem_key),
        Err(PkiError::Malformed(_))
    ));
}

#[test]
fn authorities_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authority>();
}

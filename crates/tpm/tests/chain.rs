#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! EK chain validation with ECDSA-signed CAs built here (the swtpm test covers RSA CAs).

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use attest_tpm::ek::{EkMaterial, EkSource};
use attest_tpm::ek_chain::{verify_chain, ChainError, RootStore};
use der::{Encode, EncodePem};
use rand::rngs::OsRng;
use spki::{EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::Certificate;

fn spki_of(der: &[u8]) -> SubjectPublicKeyInfoOwned {
    use der::Decode;
    SubjectPublicKeyInfoOwned::from_der(der).unwrap()
}

struct Pki {
    root_key: p384::ecdsa::SigningKey,
    root: Certificate,
    sub_key: p256::ecdsa::SigningKey,
    sub: Certificate,
}

fn pki() -> Pki {
    let root_key = p384::ecdsa::SigningKey::random(&mut OsRng);
    let root_spki = spki_of(
        root_key
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes(),
    );
    let root = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::from(1u32),
        Validity::from_now(Duration::from_secs(86_400 * 365)).unwrap(),
        Name::from_str("CN=Test TPM Root,O=Test").unwrap(),
        root_spki,
        &root_key,
    )
    .unwrap()
    .build::<p384::ecdsa::DerSignature>()
    .unwrap();
    let sub_key = p256::ecdsa::SigningKey::random(&mut OsRng);
    let sub_spki = spki_of(
        sub_key
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes(),
    );
    let sub = CertificateBuilder::new(
        Profile::SubCA {
            issuer: root.tbs_certificate.subject.clone(),
            path_len_constraint: Some(0),
        },
        SerialNumber::from(2u32),
        Validity::from_now(Duration::from_secs(86_400 * 365)).unwrap(),
        Name::from_str("CN=Test TPM EK CA,O=Test").unwrap(),
        sub_spki,
        &root_key,
    )
    .unwrap()
    .build::<p384::ecdsa::DerSignature>()
    .unwrap();
    Pki {
        root_key,
        root,
        sub_key,
        sub,
    }
}

fn ek_cert(p: &Pki, eku: &str) -> Vec<u8> {
    let ek = p256::SecretKey::random(&mut OsRng).public_key();
    let ek_spki = spki_of(ek.to_public_key_der().unwrap().as_bytes());
    let mut b = CertificateBuilder::new(
        Profile::Leaf {
            issuer: p.sub.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: true,
            include_subject_key_identifier: true,
        },
        SerialNumber::from(3u32),
        Validity::from_now(Duration::from_secs(86_400 * 30)).unwrap(),
        Name::default(), // real EK certificates often have an empty subject
        ek_spki,
        &p.sub_key,
    )
    .unwrap();
    b.add_extension(&ExtendedKeyUsage(vec![
        const_oid::ObjectIdentifier::new_unwrap(eku),
    ]))
    .unwrap();
    b.build::<p256::ecdsa::DerSignature>()
        .unwrap()
        .to_der()
        .unwrap()
}

fn store(certs: &[&Certificate]) -> (tempfile::TempDir, RootStore) {
    let dir = tempfile::tempdir().unwrap();
    for (i, c) in certs.iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("c{i}.pem")),
            c.to_pem(der::pem::LineEnding::LF).unwrap(),
        )
        .unwrap();
    }
    let s = RootStore::from_dir(dir.path()).unwrap();
    (dir, s)
}

#[test]
fn ecdsa_chain_with_intermediate_validates() {
    let p = pki();
    let (_d, s) = store(&[&p.root, &p.sub]);
    let ek = EkMaterial::from_bytes(&ek_cert(&p, "2.23.133.8.1"), EkSource::Cert).unwrap();
    let info = verify_chain(&ek, &s, Some(SystemTime::now())).unwrap();
    assert_eq!(
        info.path,
        vec![
            "CN=Test TPM EK CA,O=Test".to_string(),
            "CN=Test TPM Root,O=Test".to_string()
        ]
    );
    let _ = &p.root_key;
}

#[test]
fn chain_failures_are_distinct() {
    let p = pki();
    let ek = EkMaterial::from_bytes(&ek_cert(&p, "2.23.133.8.1"), EkSource::Cert).unwrap();

    // Intermediate missing.
    let (_d, only_root) = store(&[&p.root]);
    assert!(matches!(
        verify_chain(&ek, &only_root, None),
        Err(ChainError::UnknownIssuer(_))
    ));

    // Outside validity.
    let (_d2, full) = store(&[&p.root, &p.sub]);
    let later = SystemTime::now() + Duration::from_secs(86_400 * 400);
    assert!(matches!(
        verify_chain(&ek, &full, Some(later)),
        Err(ChainError::OutsideValidity(_))
    ));

    // Wrong EKU.
    let bad_eku =
        EkMaterial::from_bytes(&ek_cert(&p, "1.3.6.1.5.5.7.3.1"), EkSource::Cert).unwrap();
    assert_eq!(
        verify_chain(&bad_eku, &full, None).unwrap_err(),
        ChainError::WrongExtendedKeyUsage
    );

    // Same names, different keys: signature fails.
    let other = pki();
    let (_d3, impostor) = store(&[&other.root, &other.sub]);
    assert!(matches!(
        verify_chain(&ek, &impostor, None),
        Err(ChainError::BadSignature(_))
    ));

    // A store with no self-signed root is refused.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sub.pem"),
        p.sub.to_pem(der::pem::LineEnding::LF).unwrap(),
    )
    .unwrap();
    assert_eq!(
        RootStore::from_dir(dir.path()).unwrap_err(),
        ChainError::NoRoots
    );
    std::fs::write(
        dir.path().join("junk.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    assert!(matches!(
        RootStore::from_dir(dir.path()),
        Err(ChainError::BadStoreCertificate { .. })
    ));
}

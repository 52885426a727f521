#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! CRLs as openssl sees them: signature, contents, and `verify -crl_check`.

mod common;

use std::path::Path;

use attest_pki::{CrlReason, EnrollmentCa, KeyAlgorithm, RevokedEntry};
use chrono::{Duration, Utc};
use common::{openssl, openssl_ca, openssl_ok, p, p384_ca};

/// Issues two certificates, revokes one in a CRL and checks everything
/// openssl can check about it. `sig_alg` is how openssl names the CA's
/// signature algorithm.
fn revoke_one_and_check(ca: &EnrollmentCa, dir: &Path, sig_alg: &str) {
    let ca_pem = dir.join("ca-under-test.pem");
    std::fs::write(&ca_pem, ca.ca_cert_pem()).unwrap();
    let (revoked, _) = ca
        .issue_with_new_key(
            "m-revoked",
            "linux",
            Duration::days(1),
            KeyAlgorithm::EcP256,
        )
        .unwrap();
    let (good, _) = ca
        .issue_with_new_key("m-good", "linux", Duration::days(1), KeyAlgorithm::EcP384)
        .unwrap();
    let revoked_pem = dir.join("revoked.pem");
    let good_pem = dir.join("good.pem");
    std::fs::write(&revoked_pem, &revoked.cert_pem).unwrap();
    std::fs::write(&good_pem, &good.cert_pem).unwrap();

    let now = Utc::now();
    let entries = [RevokedEntry {
        serial_hex: revoked.serial_hex.clone(),
        revoked_at: now - Duration::minutes(1),
        reason: Some(CrlReason::KeyCompromise),
    }];
    let this_update = now - Duration::minutes(1);
    let next_update = now + Duration::days(7);
    let der = ca.crl(&entries, 7, this_update, next_update).unwrap();
    let crl_der = dir.join("crl.der");
    std::fs::write(&crl_der, &der).unwrap();

    let text = openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_der),
        "-CAfile",
        p(&ca_pem),
        "-noout",
        "-text",
    ]);
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("Version 2 (0x1)"), "{text}");
    assert!(text.contains(sig_alg), "{text}");
    assert!(
        text.contains("CN = Operator CA") || text.contains("Enrollment CA"),
        "{text}"
    );
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(
        text.contains(&format!(
            "Serial Number: {}",
            revoked.serial_hex.to_uppercase()
        )),
        "{text}"
    );
    assert!(!text.contains(&good.serial_hex.to_uppercase()), "{text}");

    // crl_pem is the same CRL, PEM-armoured.
    let our_pem = dir.join("ours.pem");
    std::fs::write(
        &our_pem,
        ca.crl_pem(&entries, 7, this_update, next_update).unwrap(),
    )
    .unwrap();
    let text = openssl_ok(&["crl", "-in", p(&our_pem), "-CAfile", p(&ca_pem), "-noout"]);
    assert!(text.contains("verify OK"), "{text}");

    let crl_pem = dir.join("crl.pem");
    openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_der),
        "-outform",
        "PEM",
        "-out",
        p(&crl_pem),
    ]);
    let verify = |leaf: &Path| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            p(&ca_pem),
            "-CRLfile",
            p(&crl_pem),
            p(leaf),
        ])
    };
    let (ok, text) = verify(&revoked_pem);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify(&good_pem);
    assert!(ok, "{text}");

    // An empty CRL is valid too and revokes nothing.
    let empty = ca.crl(&[], 8, this_update, next_update).unwrap();
    std::fs::write(&crl_der, &empty).unwrap();
    let text = openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_der),
        "-CAfile",
        p(&ca_pem),
        "-noout",
        "-text",
    ]);
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("No Revoked Certificates"), "{text}");
    openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_der),
        "-outform",
        "PEM",
        "-out",
        p(&crl_pem),
    ]);
    for leaf in [&revoked_pem, &good_pem] {
        let (ok, text) = verify(leaf);
        assert!(ok, "{text}");
    }
}

#[test]
fn p384_ca_crl_verifies_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = p384_ca(dir.path());
    revoke_one_and_check(&ca, dir.path(), "ecdsa-with-SHA384");
}

#[test]
fn rsa_ca_crl_verifies_with_openssl() {
    // An operator-provided RSA-2048 CA: same signing path as the generated
    // RSA-4096 one, without the slow key generation.
    let dir = tempfile::tempdir().unwrap();
    let ca = openssl_ca(dir.path(), "rsa:2048", None);
    revoke_one_and_check(&ca, dir.path(), "sha256WithRSAEncryption");
}

#[test]
fn p256_ca_crl_verifies_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = openssl_ca(dir.path(), "ec", Some("ec_paramgen_curve:P-256"));
    revoke_one_and_check(&ca, dir.path(), "ecdsa-with-SHA256");
}

#[test]
fn crl_does_not_verify_with_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = p384_ca(&dir.path().join("a"));
    let other = p384_ca(&dir.path().join("b"));
    let now = Utc::now();
    let der = ca.crl(&[], 1, now, now + Duration::days(1)).unwrap();
    let crl_der = dir.path().join("crl.der");
    let other_pem = dir.path().join("other.pem");
    std::fs::write(&crl_der, der).unwrap();
    std::fs::write(&other_pem, other.ca_cert_pem()).unwrap();
    let (_, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_der),
        "-CAfile",
        p(&other_pem),
        "-noout",
    ]);
    assert!(text.contains("verify failure"), "{text}");
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Enrollment CA: persistence, issuance (checked with openssl), verification.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use attest_domain::clock::{ManualClock, SharedClock};
use attest_pki::{
    CaAlgorithm, CaOptions, EnrollmentCa, KeyAlgorithm, PassphraseSource, PkiError, RevokedSerials,
};
use chrono::{Duration, Utc};
use common::openssl;
use secrecy::SecretString;

fn clock() -> (ManualClock, SharedClock) {
    let c = ManualClock::new(Utc::now());
    (c.clone(), Arc::new(c))
}

fn opts(pass: &str) -> CaOptions {
    CaOptions {
        key_passphrase: Some(SecretString::from(pass.to_owned())),
        ..CaOptions::default()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn create_then_load_round_trip_with_encrypted_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, clk) = clock();
    let ca = EnrollmentCa::load_or_create(dir.path(), opts("s3cret pass"), clk.clone()).unwrap();
    assert!(ca.created());
    assert_eq!(ca.passphrase_source(), &PassphraseSource::Configured);
    assert!(ca.ca_cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!ca.ca_cert_der().is_empty());
    assert!(ca.subject().contains("ITL Attestation Enrollment CA"));
    assert!(format!("{ca:?}").contains("redacted"));

    let key_path = dir.path().join("ca-key.pem");
    let key_pem = std::fs::read_to_string(&key_path).unwrap();
    assert!(key_pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_eq!(mode(&key_path), 0o600);
    assert!(!dir.path().join("ca-key.passphrase").exists());

    // Standard format: openssl reads it with the passphrase, and only with it.
    let key = key_path.to_str().unwrap();
    let (ok, out) = openssl(&["pkey", "-in", key, "-passin", "pass:s3cret pass", "-noout"]);
    assert!(ok, "openssl pkey failed: {out}");
    let (ok, _) = openssl(&["pkey", "-in", key, "-passin", "pass:wrong", "-noout"]);
    assert!(!ok);

    // CA extensions as openssl sees them.
    let ca_path = dir.path().join("ca.pem");
    let (ok, text) = openssl(&["x509", "-in", ca_path.to_str().unwrap(), "-noout", "-text"]);
    assert!(ok);
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains("Subject Key Identifier"), "{text}");
    assert!(text.contains("Authority Key Identifier"), "{text}");
    assert!(text.contains("ecdsa-with-SHA384"), "{text}");

    let again = EnrollmentCa::load_or_create(dir.path(), opts("s3cret pass"), clk).unwrap();
    assert!(!again.created());
    assert_eq!(again.ca_cert_pem(), ca.ca_cert_pem());
}

#[test]
fn wrong_passphrase_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, clk) = clock();
    EnrollmentCa::load_or_create(dir.path(), opts("right"), clk.clone()).unwrap();
    let err = EnrollmentCa::load_or_create(dir.path(), opts("wrong"), clk).unwrap_err();
    assert!(matches!(err, PkiError::WrongPassphrase), "{err:?}");
    assert!(err.to_string().contains("wrong passphrase"));
}

#[test]
fn missing_passphrase_is_generated_into_a_0600_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, clk) = clock();
    let ca = EnrollmentCa::load_or_create(dir.path(), CaOptions::default(), clk.clone()).unwrap();
    let pass_path = dir.path().join("ca-key.passphrase");
    assert_eq!(
        ca.passphrase_source(),
        &PassphraseSource::File(pass_path.clone())
    );
    assert_eq!(mode(&pass_path), 0o600);
    let pass = std::fs::read_to_string(&pass_path).unwrap();
    assert!(pass.len() >= 40);

    let again = EnrollmentCa::load_or_create(dir.path(), CaOptions::default(), clk).unwrap();
    assert_eq!(again.ca_cert_pem(), ca.ca_cert_pem());
    assert!(matches!(
        again.passphrase_source(),
        PassphraseSource::File(_)
    ));
}

#[test]
fn half_present_ca_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (_, clk) = clock();
    EnrollmentCa::load_or_create(dir.path(), opts("p"), clk.clone()).unwrap();
    std::fs::remove_file(dir.path().join("ca.pem")).unwrap();
    let err = EnrollmentCa::load_or_create(dir.path(), opts("p"), clk).unwrap_err();
    assert!(matches!(err, PkiError::IncompleteCaState(_)), "{err:?}");
    assert!(dir.path().join("ca-key.pem").exists());
}

#[test]
fn issued_certificates_verify_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let (_, clk) = clock();
    let ca = EnrollmentCa::load_or_create(dir.path(), opts("p"), clk).unwrap();
    let machine_id = "550e8400-e29b-41d4-a716-446655440000";
    let (issued, key_pem) = ca
        .issue_with_new_key(
            machine_id,
            "worker-app",
            Duration::days(30),
            KeyAlgorithm::EcP384,
        )
        .unwrap();
    assert!(key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert!(issued.not_after > issued.not_before);

    let leaf = dir.path().join("leaf.pem");
    std::fs::write(&leaf, &issued.cert_pem).unwrap();
    let ca_path = dir.path().join("ca.pem");
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        ca_path.to_str().unwrap(),
        "-purpose",
        "sslclient",
        leaf.to_str().unwrap(),
    ]);
    assert!(ok, "openssl verify: {out}");

    let (ok, subject) = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-subject"]);
    assert!(ok);
    assert!(subject.contains(&format!("CN = {machine_id}")), "{subject}");
    assert!(subject.contains("OU = worker-app"), "{subject}");

    let (ok, text) = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-text"]);
    assert!(ok);
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");

    // The private key belongs to the certificate.
    let key_path = dir.path().join("leaf.key");
    std::fs::write(&key_path, key_pem.as_bytes()).unwrap();
    let (_, cert_pub) = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-pubkey"]);
    let (_, key_pub) = openssl(&["pkey", "-in", key_path.to_str().unwrap(), "-pubout"]);
    assert_eq!(cert_pub, key_pub);
}

#[test]
fn serials_are_random_positive_and_long() {
    let dir = tempfile::tempdir().unwrap();
    let (_, clk) = clock();
    let ca = EnrollmentCa::load_or_create(dir.path(), opts("p"), clk).unwrap();
    let mut seen = HashSet::new();
    for _ in 0..5 {
        let (issued, _) = ca
            .issue_with_new_key("m", "worker", Duration::days(1), KeyAlgorithm::EcP256)
            .unwrap();
        let bytes = hex::decode(&issued.serial_hex).unwrap();
        assert!(bytes.len() * 8 >= 64);
        assert!(bytes[0] & 0x80 == 0, "serial must be positive");
        assert!(bytes[0] != 0, "no leading zero byte");
        assert!(seen.insert(issued.serial_hex));
    }
}

#[test]
fn verify_client_cert_accepts_own_and_rejects_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (manual, clk) = clock();
    let ca = EnrollmentCa::load_or_create(dir.path(), opts("p"), clk.clone()).unwrap();
    let (good, _) = ca
        .issue_with_new_key(
            "alice",
            "operator",
            Duration::days(30),
            KeyAlgorithm::EcP256,
        )
        .unwrap();

    let v = ca.verify_client_cert(&good.cert_pem).unwrap();
    assert_eq!(v.cn, "alice");
    assert_eq!(v.ou.as_deref(), Some("operator"));
    assert_eq!(v.serial_hex, good.serial_hex);
    assert_eq!(v.not_after, good.not_after);

    // Another CA with a different name: not our issuer.
    let other_dir = tempfile::tempdir().unwrap();
    let other = EnrollmentCa::load_or_create(
        other_dir.path(),
        CaOptions {
            subject_cn: "Some Other CA".into(),
            ..opts("p")
        },
        clk.clone(),
    )
    .unwrap();
    let (foreign, _) = other
        .issue_with_new_key(
            "alice",
            "operator",
            Duration::days(30),
            KeyAlgorithm::EcP256,
        )
        .unwrap();
    assert!(matches!(
        ca.verify_client_cert(&foreign.cert_pem),
        Err(PkiError::NotIssuedByCa)
    ));

    // Another CA with the same name: caught by the signature.
    let twin_dir = tempfile::tempdir().unwrap();
    let twin = EnrollmentCa::load_or_create(twin_dir.path(), opts("p"), clk.clone()).unwrap();
    let (impostor, _) = twin
        .issue_with_new_key(
            "alice",
            "operator",
            Duration::days(30),
            KeyAlgorithm::EcP256,
        )
        .unwrap();
    assert!(matches!(
        ca.verify_client_cert(&impostor.cert_pem),
        Err(PkiError::BadSignature)
    ));

    // Tampered signature: flip one bit near the end of the DER (inside the signature).
    let mut der = good.cert_der.clone();
    let n = der.len();
    der[n - 5] ^= 0x01;
    let tampered = der_to_pem(&der);
    assert!(matches!(
        ca.verify_client_cert(&tampered),
        Err(PkiError::BadSignature) | Err(PkiError::Malformed(_))
    ));

    // Tampered body: change a byte of the subject CN ("alice" -> "alicf").
    let pos = good
        .cert_der
        .windows(5)
        .position(|w| w == b"alice")
        .unwrap();
    let mut der = good.cert_der.clone();
    der[pos + 4] = b'f';
    assert!(matches!(
        ca.verify_client_cert(&der_to_pem(&der)),
        Err(PkiError::BadSignature)
    ));

    assert!(matches!(
        ca.verify_client_cert("not a pem"),
        Err(PkiError::Malformed(_))
    ));

    // Time: expired after 30 days, not yet valid before issuance.
    manual.advance(Duration::days(31));
    assert!(matches!(
        ca.verify_client_cert(&good.cert_pem),
        Err(PkiError::Expired { .. })
    ));
    manual.advance(Duration::days(-32));
    assert!(matches!(
        ca.verify_client_cert(&good.cert_pem),
        Err(PkiError::NotYetValid { .. })
    ));
    manual.advance(Duration::days(1));

    // The CA certificate itself is not a client certificate.
    assert!(matches!(
        ca.verify_client_cert(ca.ca_cert_pem()),
        Err(PkiError::WrongUsage(_))
    ));

    // Revocation hook.
    let revoked: HashSet<String> = [good.serial_hex.clone()].into();
    let ca = ca.with_revocation_check(Arc::new(RevokedSerials(revoked)));
    assert!(matches!(
        ca.verify_client_cert(&good.cert_pem),
        Err(PkiError::Revoked { .. })
    ));
}

#[test]
fn names_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let (_, clk) = clock();
    let ca = EnrollmentCa::load_or_create(dir.path(), opts("p"), clk).unwrap();
    for (cn, ou) in [
        ("", "x"),
        ("x", ""),
        ("a\nb", "x"),
        (&"x".repeat(65)[..], "x"),
    ] {
        let err = ca
            .issue_with_new_key(cn, ou, Duration::days(1), KeyAlgorithm::EcP256)
            .unwrap_err();
        assert!(matches!(err, PkiError::InvalidName(_)), "{err:?}");
    }
    // Commas and equals signs are data, not DN syntax.
    let (issued, _) = ca
        .issue_with_new_key(
            "a,OU=operator",
            "worker",
            Duration::days(1),
            KeyAlgorithm::EcP256,
        )
        .unwrap();
    let v = ca.verify_client_cert(&issued.cert_pem).unwrap();
    assert_eq!(v.cn, "a,OU=operator");
    assert_eq!(v.ou.as_deref(), Some("worker"));
}

#[test]
fn rsa_4096_ca_issues_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (_, clk) = clock();
    let ca = EnrollmentCa::load_or_create(
        dir.path(),
        CaOptions {
            algorithm: CaAlgorithm::Rsa4096,
            ..opts("p")
        },
        clk.clone(),
    )
    .unwrap();
    let (issued, _) = ca
        .issue_with_new_key(
            "m-1",
            "controlplane",
            Duration::days(30),
            KeyAlgorithm::EcP256,
        )
        .unwrap();
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(&leaf, &issued.cert_pem).unwrap();
    let ca_path = dir.path().join("ca.pem");
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        ca_path.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
    assert!(ok, "openssl verify: {out}");
    let (_, text) = openssl(&["x509", "-in", ca_path.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    assert!(text.contains("4096 bit"), "{text}");
    assert_eq!(ca.verify_client_cert(&issued.cert_pem).unwrap().cn, "m-1");

    let reloaded = EnrollmentCa::load_or_create(dir.path(), opts("p"), clk).unwrap();
    assert_eq!(
        reloaded.verify_client_cert(&issued.cert_pem).unwrap().cn,
        "m-1"
    );
}

#[test]
fn rsa_leaf_keys_are_pkcs1() {
    let dir = tempfile::tempdir().unwrap();
    let (_, clk) = clock();
    let ca = EnrollmentCa::load_or_create(dir.path(), opts("p"), clk).unwrap();
    let (issued, key_pem) = ca
        .issue_with_new_key("m-2", "linux", Duration::days(1), KeyAlgorithm::Rsa2048)
        .unwrap();
    assert!(key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(&leaf, &issued.cert_pem).unwrap();
    let ca_path = dir.path().join("ca.pem");
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        ca_path.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
    assert!(ok, "openssl verify: {out}");
}

#[test]
fn operator_provided_ca_from_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("op-key.pem");
    let cert = dir.path().join("op-ca.pem");
    let (ok, out) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
        "-days",
        "30",
        "-subj",
        "/CN=Operator CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    assert!(ok, "{out}");
    let (_, clk) = clock();
    let ca = EnrollmentCa::from_files(&cert, &key, None, clk.clone()).unwrap();
    assert_eq!(ca.passphrase_source(), &PassphraseSource::Unencrypted);
    let (issued, _) = ca
        .issue_with_new_key("bob", "operator", Duration::days(1), KeyAlgorithm::EcP384)
        .unwrap();
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(&leaf, &issued.cert_pem).unwrap();
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        cert.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
    assert!(ok, "openssl verify: {out}");
    assert_eq!(ca.verify_client_cert(&issued.cert_pem).unwrap().cn, "bob");

    // The same key in the other formats operators bring: SEC1, and
    // openssl-encrypted PKCS#8 (PBES2 with PBKDF2, not scrypt).
    let sec1 = dir.path().join("op-key-sec1.pem");
    let (ok, out) = openssl(&[
        "ec",
        "-in",
        key.to_str().unwrap(),
        "-out",
        sec1.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(std::fs::read_to_string(&sec1)
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    EnrollmentCa::from_files(&cert, &sec1, None, clk.clone()).unwrap();
    let enc = dir.path().join("op-key-enc.pem");
    let (ok, out) = openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        key.to_str().unwrap(),
        "-out",
        enc.to_str().unwrap(),
        "-v2",
        "aes-256-cbc",
        "-passout",
        "pass:op-secret",
    ]);
    assert!(ok, "{out}");
    let ca2 = EnrollmentCa::from_files(
        &cert,
        &enc,
        Some(SecretString::from("op-secret".to_owned())),
        clk.clone(),
    )
    .unwrap();
    assert_eq!(ca2.passphrase_source(), &PassphraseSource::Configured);
    assert!(matches!(
        EnrollmentCa::from_files(
            &cert,
            &enc,
            Some(SecretString::from("nope".to_owned())),
            clk.clone()
        ),
        Err(PkiError::WrongPassphrase)
    ));

    // A key that does not belong to the certificate is refused.
    let other_key = dir.path().join("other.pem");
    let (ok, _) = openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        other_key.to_str().unwrap(),
    ]);
    assert!(ok);
    assert!(matches!(
        EnrollmentCa::from_files(&cert, &other_key, None, clk),
        Err(PkiError::KeyMismatch)
    ));
}

fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[test]
fn plaintext_key_is_reported_even_with_a_configured_passphrase() {
    // Regression: load_or_create overwrote PassphraseSource::Unencrypted
    // with Configured whenever a passphrase was set, hiding the server's
    // "key is NOT encrypted at rest" warning.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ca-key.pem");
    let cert = dir.path().join("ca.pem");
    let (ok, out) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
        "-days",
        "30",
        "-subj",
        "/CN=Plain CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    assert!(ok, "{out}");
    let (_, clk) = clock();
    let ca = EnrollmentCa::load_or_create(dir.path(), opts("configured"), clk).unwrap();
    assert_eq!(ca.passphrase_source(), &PassphraseSource::Unencrypted);
}

#[test]
fn weak_rsa_ca_key_is_refused() {
    // Regression: an operator-provided 1024-bit RSA CA key was accepted.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("weak-key.pem");
    let cert = dir.path().join("weak-ca.pem");
    let (ok, out) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:1024",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
        "-days",
        "30",
        "-subj",
        "/CN=Weak CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
    ]);
    assert!(ok, "{out}");
    let (_, clk) = clock();
    assert!(matches!(
        EnrollmentCa::from_files(&cert, &key, None, clk),
        Err(PkiError::UnsupportedAlgorithm(_))
    ));
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Signatures made with `openssl dgst -sign` verify with `verify_with_spki`,
//! from a bare key and through a certificate the CA issued for that key.

mod common;

use std::path::Path;

use attest_pki::{verify_with_spki, PkiError, SubjectPublicKeyInfoOwned};
use chrono::Duration;
use common::{openssl_ok, p, p384_ca};

/// Generates a key with `openssl genpkey` and returns (key path, SPKI DER).
fn openssl_key(dir: &Path, name: &str, genpkey: &[&str]) -> (std::path::PathBuf, Vec<u8>) {
    let key = dir.join(format!("{name}.key"));
    let mut args = vec!["genpkey", "-out", p(&key)];
    args.extend(genpkey);
    openssl_ok(&args);
    let spki = dir.join(format!("{name}.spki.der"));
    openssl_ok(&[
        "pkey",
        "-in",
        p(&key),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        p(&spki),
    ]);
    (key.clone(), std::fs::read(spki).unwrap())
}

fn openssl_sign(dir: &Path, key: &Path, digest: &str, message: &[u8]) -> Vec<u8> {
    let msg = dir.join("msg.bin");
    let sig = dir.join("msg.sig");
    std::fs::write(&msg, message).unwrap();
    openssl_ok(&["dgst", digest, "-sign", p(key), "-out", p(&sig), p(&msg)]);
    std::fs::read(sig).unwrap()
}

fn mismatch(r: Result<(), PkiError>) {
    assert!(matches!(r, Err(PkiError::SignatureMismatch)), "{r:?}");
}

#[test]
fn openssl_signatures_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rsa = openssl_key(
        d,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let p256 = openssl_key(
        d,
        "p256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let p384 = openssl_key(
        d,
        "p384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    );
    let cases = [
        (&rsa, "-sha256"),
        (&p256, "-sha256"),
        (&p384, "-sha384"),
        (&p384, "-sha256"),
    ];
    for ((key, spki), digest) in cases {
        // Several messages, so OpenSSL's un-normalised high-S ECDSA
        // signatures are all but certain to be among them.
        for i in 0..8 {
            let message = format!("enroll m-{i} nonce {}", i * 7919).into_bytes();
            let sig = openssl_sign(d, key, digest, &message);
            verify_with_spki(spki, &message, &sig)
                .unwrap_or_else(|e| panic!("{key:?} {digest} #{i}: {e}"));
            mismatch(verify_with_spki(spki, b"another message", &sig));
            mismatch(verify_with_spki(spki, &message, &sig[..sig.len() - 1]));
            mismatch(verify_with_spki(spki, &message, &sig[..sig.len() / 2]));
        }
    }
    // Wrong key: each signature fails with every other key.
    let message = b"who signed this?";
    for (key, _) in [&rsa, &p256, &p384] {
        let sig = openssl_sign(d, key, "-sha256", message);
        for (other_key, other_spki) in [&rsa, &p256, &p384] {
            if other_key != key {
                mismatch(verify_with_spki(other_spki, message, &sig));
            }
        }
    }
    // P-256 with SHA-384 and RSA with SHA-384 are not accepted.
    let sig = openssl_sign(d, &p256.0, "-sha384", message);
    mismatch(verify_with_spki(&p256.1, message, &sig));
    let sig = openssl_sign(d, &rsa.0, "-sha384", message);
    mismatch(verify_with_spki(&rsa.1, message, &sig));
}

#[test]
fn short_openssl_rsa_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, spki) = openssl_key(
        dir.path(),
        "weak",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
    );
    let sig = openssl_sign(dir.path(), &key, "-sha256", b"m");
    assert!(matches!(
        verify_with_spki(&spki, b"m", &sig),
        Err(PkiError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn verified_client_cert_carries_the_subject_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = p384_ca(&d.join("ca"));
    for (name, genpkey, digest) in [
        (
            "ec",
            ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "-sha256",
        ),
        (
            "rsa",
            ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "-sha256",
        ),
    ] {
        let (key, spki) = openssl_key(d, name, &genpkey);
        let issued = ca
            .issue(
                "m-1",
                "linux",
                SubjectPublicKeyInfoOwned::try_from(spki.as_slice()).unwrap(),
                Duration::days(1),
            )
            .unwrap();
        let verified = ca.verify_client_cert(&issued.cert_pem).unwrap();
        assert_eq!(verified.spki_der, spki);
        let sig = openssl_sign(d, &key, digest, b"proof of possession");
        verify_with_spki(&verified.spki_der, b"proof of possession", &sig).unwrap();
        mismatch(verify_with_spki(
            &verified.spki_der,
            b"proof of possessioN",
            &sig,
        ));
    }
}

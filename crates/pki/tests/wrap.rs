#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Wrapped enrollment keys decrypt with `openssl pkeyutl` (RSA-OAEP,
//! SHA-256, MGF1-SHA-256) and with the `rsa` crate, and parse as keys.

mod common;

use std::path::Path;

use attest_pki::{wrap_private_key, KeyAlgorithm, KeyEncoding, PkiError};
use chrono::Duration;
use common::{openssl, openssl_ok, p, p384_ca};
use pkcs8::DecodePrivateKey;

/// An openssl RSA key: (private key path, SPKI PEM, PKCS#1 public PEM).
fn wrapping_key(dir: &Path, bits: usize) -> (std::path::PathBuf, String, String) {
    let key = dir.join(format!("wrap-{bits}.key"));
    let spki = dir.join(format!("wrap-{bits}.pub"));
    let pkcs1 = dir.join(format!("wrap-{bits}.rsapub"));
    let bits_opt = format!("rsa_keygen_bits:{bits}");
    openssl_ok(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        &bits_opt,
        "-out",
        p(&key),
    ]);
    openssl_ok(&["pkey", "-in", p(&key), "-pubout", "-out", p(&spki)]);
    openssl_ok(&[
        "rsa",
        "-in",
        p(&key),
        "-RSAPublicKey_out",
        "-out",
        p(&pkcs1),
    ]);
    let spki = std::fs::read_to_string(spki).unwrap();
    let pkcs1 = std::fs::read_to_string(pkcs1).unwrap();
    assert!(spki.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
    (key, spki, pkcs1)
}

fn pkeyutl_decrypt(dir: &Path, key: &Path, ciphertext: &[u8]) -> Vec<u8> {
    let ct = dir.join("wrapped.bin");
    let out = dir.join("unwrapped.bin");
    std::fs::write(&ct, ciphertext).unwrap();
    openssl_ok(&[
        "pkeyutl",
        "-decrypt",
        "-inkey",
        p(key),
        "-in",
        p(&ct),
        "-out",
        p(&out),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
    ]);
    std::fs::read(out).unwrap()
}

/// Wrapping-key size x enrollment-key type: which encoding is chosen, and
/// both openssl and the `rsa` crate recover a key openssl can parse.
#[test]
fn size_table_and_openssl_unwrap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = p384_ca(&d.join("ca"));
    let p256 = ca
        .issue_with_new_key("m-1", "linux", Duration::days(1), KeyAlgorithm::EcP256)
        .unwrap()
        .1;
    let p384 = ca
        .issue_with_new_key("m-2", "linux", Duration::days(1), KeyAlgorithm::EcP384)
        .unwrap()
        .1;
    // The sizes the encoding choice depends on.
    let der_len = |pem: &str| der::pem::decode_vec(pem.as_bytes()).unwrap().1.len();
    assert_eq!((p256.len(), der_len(&p256)), (227, 121));
    assert_eq!((p384.len(), der_len(&p384)), (288, 167));

    // (wrapping bits, enrollment key, expected encoding)
    let table = [
        (2048, &p256, KeyEncoding::Der),
        (2048, &p384, KeyEncoding::Der),
        (3072, &p256, KeyEncoding::Pem),
        (3072, &p384, KeyEncoding::Pem),
        (4096, &p256, KeyEncoding::Pem),
        (4096, &p384, KeyEncoding::Pem),
    ];
    for bits in [2048, 3072, 4096] {
        let (key_path, spki_pem, pkcs1_pem) = wrapping_key(d, bits);
        let private =
            rsa::RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&key_path).unwrap())
                .unwrap();
        for (_, key_pem, encoding) in table.iter().filter(|row| row.0 == bits) {
            for wrapping_pem in [&spki_pem, &pkcs1_pem] {
                let wrapped = wrap_private_key(wrapping_pem, key_pem).unwrap();
                assert_eq!(wrapped.encoding, *encoding, "RSA-{bits}");
                assert_eq!(wrapped.ciphertext.len(), bits / 8);
                let expected = match encoding {
                    KeyEncoding::Pem => key_pem.as_bytes().to_vec(),
                    KeyEncoding::Der => der::pem::decode_vec(key_pem.as_bytes()).unwrap().1,
                };
                let by_rsa = private
                    .decrypt(rsa::Oaep::new::<sha2::Sha256>(), &wrapped.ciphertext)
                    .unwrap();
                assert_eq!(by_rsa, expected);
                let by_openssl = pkeyutl_decrypt(d, &key_path, &wrapped.ciphertext);
                assert_eq!(by_openssl, expected);
                let form = if *encoding == KeyEncoding::Der {
                    "DER"
                } else {
                    "PEM"
                };
                let out = d.join("unwrapped.bin");
                openssl_ok(&["ec", "-inform", form, "-in", p(&out), "-check", "-noout"]);
            }
        }
    }
}

#[test]
fn ciphertext_does_not_decrypt_with_the_wrong_key_or_padding() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = p384_ca(&d.join("ca"));
    let key_pem = ca
        .issue_with_new_key("m-1", "linux", Duration::days(1), KeyAlgorithm::EcP384)
        .unwrap()
        .1;
    let (_, spki_pem, _) = wrapping_key(d, 2048);
    let (other_key, _, _) = wrapping_key(d, 3072);
    let wrapped = wrap_private_key(&spki_pem, &key_pem).unwrap();
    let ct = d.join("wrapped.bin");
    std::fs::write(&ct, &wrapped.ciphertext).unwrap();
    let (ok, _) = openssl(&[
        "pkeyutl",
        "-decrypt",
        "-inkey",
        p(&other_key),
        "-in",
        p(&ct),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
    ]);
    assert!(!ok);
}

#[test]
fn rsa_enrollment_keys_do_not_fit_even_rsa_4096() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = p384_ca(&d.join("ca"));
    let key_pem = ca
        .issue_with_new_key("m-1", "linux", Duration::days(1), KeyAlgorithm::Rsa2048)
        .unwrap()
        .1;
    let (_, spki_pem, _) = wrapping_key(d, 4096);
    let err = wrap_private_key(&spki_pem, &key_pem).unwrap_err();
    assert!(
        matches!(err, PkiError::WrappingKeyTooSmall { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("wrapping key RSA-4096 can carry 446 bytes with RSA-OAEP-SHA256"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("needs {} (PEM)", key_pem.len())),
        "{msg}"
    );
    assert!(msg.contains("(DER)"), "{msg}");
}

#[test]
fn short_wrapping_key_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = p384_ca(&d.join("ca"));
    let key_pem = ca
        .issue_with_new_key("m-1", "linux", Duration::days(1), KeyAlgorithm::EcP256)
        .unwrap()
        .1;
    let (_, spki_pem, pkcs1_pem) = wrapping_key(d, 1024);
    for pem in [spki_pem, pkcs1_pem] {
        let err = wrap_private_key(&pem, &key_pem).unwrap_err();
        assert!(
            matches!(&err, PkiError::UnsupportedAlgorithm(m) if m.contains("at least 2048")),
            "{err:?}"
        );
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! EK material decoding: every accepted form, every failure distinct.

use attest_tpm::ek::{
    check_fingerprint_format, EkError, EkForm, EkMaterial, EkSource, FingerprintAlg,
};
use attest_tpm::wire::public::ek_template_rsa2048;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::rngs::OsRng;
use rsa::traits::PublicKeyParts;
use spki::EncodePublicKey;

fn rsa_spki() -> (rsa::RsaPublicKey, Vec<u8>) {
    let k = rsa::RsaPrivateKey::new(&mut OsRng, 2048)
        .unwrap()
        .to_public_key();
    let der = k.to_public_key_der().unwrap().as_bytes().to_vec();
    (k, der)
}

#[test]
fn bare_public_keys_in_every_form() {
    let (k, der) = rsa_spki();
    let m = EkMaterial::parse(&B64.encode(&der), EkSource::Pub).unwrap();
    assert_eq!(m.form(), &EkForm::Spki);
    assert_eq!(m.raw(), &der[..]);
    assert_eq!(m.public_key().key.describe(), "RSA-2048");

    let pem = k.to_public_key_pem(spki::der::pem::LineEnding::LF).unwrap();
    let from_pem = EkMaterial::parse(&B64.encode(&pem), EkSource::Pub).unwrap();
    assert_eq!(
        from_pem.fingerprint_sha256(),
        m.fingerprint_sha256(),
        "fingerprint is over DER"
    );
    // Raw PEM text (not base64-wrapped) is tolerated.
    assert_eq!(
        EkMaterial::parse(&pem, EkSource::Pub).unwrap().raw(),
        &der[..]
    );

    let tpm2b = ek_template_rsa2048(k.n().to_bytes_be())
        .encode_tpm2b()
        .unwrap();
    let t = EkMaterial::parse(&B64.encode(&tpm2b), EkSource::Pub).unwrap();
    assert_eq!(t.form(), &EkForm::TpmPublic);
    assert_eq!(t.public_key().key, m.public_key().key);
    assert_eq!(t.public_key().sym_key_bits, 128);

    let p384 = p384::SecretKey::random(&mut OsRng).public_key();
    let der = p384.to_public_key_der().unwrap();
    let e = EkMaterial::parse(&B64.encode(der.as_bytes()), EkSource::OfflineImport).unwrap();
    assert_eq!(e.public_key().key.describe(), "ECC P-384");
    assert_eq!(e.public_key().name_alg, attest_tpm::HashAlg::Sha384);
}

#[test]
fn fingerprints() {
    let (_, der) = rsa_spki();
    let m = EkMaterial::from_bytes(&der, EkSource::Pub).unwrap();
    assert_eq!(
        m.verify_fingerprint(&m.fingerprint_sha256()).unwrap(),
        FingerprintAlg::Sha256
    );
    assert_eq!(
        m.verify_fingerprint(&m.fingerprint_sha384()).unwrap(),
        FingerprintAlg::Sha384
    );
    assert_eq!(
        m.verify_fingerprint("abc").unwrap_err(),
        EkError::FingerprintFormat
    );
    assert_eq!(
        m.verify_fingerprint(&"zz".repeat(32)).unwrap_err(),
        EkError::FingerprintFormat
    );
    assert_eq!(
        m.verify_fingerprint(&"00".repeat(32)).unwrap_err(),
        EkError::FingerprintMismatch("sha256")
    );
    assert_eq!(
        m.verify_fingerprint(&"00".repeat(48)).unwrap_err(),
        EkError::FingerprintMismatch("sha384")
    );
    assert_eq!(
        check_fingerprint_format(&"aB".repeat(48)).unwrap(),
        FingerprintAlg::Sha384
    );
    assert!(check_fingerprint_format(&"g0".repeat(32)).is_err());
}

#[test]
fn each_failure_is_distinct() {
    let (_, der) = rsa_spki();
    assert_eq!(
        EkMaterial::parse("  ", EkSource::Cert).unwrap_err(),
        EkError::Empty
    );
    assert_eq!(
        EkMaterial::parse("!!!not base64", EkSource::Cert).unwrap_err(),
        EkError::Base64
    );
    assert!(matches!(
        EkMaterial::parse(&B64.encode(&der), EkSource::Cert),
        Err(EkError::NotACertificate(_))
    ));
    assert!(matches!(
        EkMaterial::parse(&B64.encode([1u8, 2, 3]), EkSource::Pub),
        Err(EkError::NotAPublicKey(_))
    ));
    assert_eq!(
        EkMaterial::parse(&B64.encode([1u8, 2, 3]), EkSource::OfflineImport).unwrap_err(),
        EkError::Unrecognised
    );
    let pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert!(matches!(
        EkMaterial::parse(&B64.encode(pem), EkSource::Cert),
        Err(EkError::PemLabel { .. })
    ));
    assert!(matches!(
        EkMaterial::parse(
            &B64.encode("-----BEGIN CERTIFICATE-----\n@@@\n"),
            EkSource::Cert
        ),
        Err(EkError::Pem(_))
    ));
    assert!(matches!(
        EkMaterial::from_bytes(&vec![0u8; 20_000], EkSource::Cert),
        Err(EkError::TooLarge(_))
    ));
    let small = rsa::RsaPrivateKey::new(&mut OsRng, 1024)
        .unwrap()
        .to_public_key();
    let d = small.to_public_key_der().unwrap();
    assert!(matches!(
        EkMaterial::from_bytes(d.as_bytes(), EkSource::Pub),
        Err(EkError::Key(_))
    ));
    assert!(matches!(
        "tpm".parse::<EkSource>(),
        Err(EkError::UnknownSource(_))
    ));
    assert_eq!(
        "offline-import".parse::<EkSource>().unwrap(),
        EkSource::OfflineImport
    );
    assert_eq!(
        serde_json::from_str::<EkSource>("\"offline-import\"").unwrap(),
        EkSource::OfflineImport
    );
    // Distinct messages.
    assert_eq!(
        EkError::FingerprintFormat.to_string(),
        "ek_fingerprint must be 64 (SHA-256) or 96 (SHA-384) hexadecimal characters"
    );
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Software round trips: genuine structures from `attest_tpm::soft` through
//! the parsers and the verifier, and every tampering rejected.

use attest_tpm::credential::make_credential;
use attest_tpm::envelope::{
    open_ek_aes256gcm_v1, seal_ek_aes256gcm_v1, seal_ek_credential_v1, EkAes256GcmV1,
};
use attest_tpm::quote::selection;
use attest_tpm::soft::{AkKind, SoftAk, SoftEk};
use attest_tpm::wire::alg::TPM_ST_ATTEST_QUOTE;
use attest_tpm::wire::{Attest, AttestBody, ClockInfo, Signature};
use attest_tpm::*;
use rand::rngs::OsRng;

fn values() -> PcrValues {
    let mut v = PcrValues::new();
    v.insert(HashAlg::Sha256, 0, vec![0x11; 32]).unwrap();
    v.insert(HashAlg::Sha256, 1, vec![0x22; 32]).unwrap();
    v.insert(HashAlg::Sha256, 7, vec![0x77; 32]).unwrap();
    v
}

fn clock() -> ClockInfo {
    ClockInfo {
        clock: 1000,
        reset_count: 5,
        restart_count: 2,
        safe: true,
    }
}

fn check(
    ak: &SoftAk,
    attest: &[u8],
    sig: &[u8],
    v: &PcrValues,
    nonce: &[u8],
    prev: Option<CounterState>,
) -> Result<VerifiedQuote, QuoteError> {
    let sel = selection(&[(HashAlg::Sha256, &[0, 1, 7])]).unwrap();
    verify_quote(
        &QuoteEvidence {
            attest,
            signature: sig,
            pcr_values: v,
        },
        &ak.ak_public().unwrap(),
        &QuotePolicy {
            expected_nonce: nonce,
            expected_selection: &sel,
            previous: prev,
        },
    )
}

#[test]
fn genuine_quotes_verify_for_every_ak_type_and_hash_mix() {
    let cases = [
        (AkKind::EcdsaP256, None),
        (AkKind::EcdsaP256, Some(HashAlg::Sha384)),
        (AkKind::EcdsaP384, None),
        (AkKind::EcdsaP384, Some(HashAlg::Sha256)),
        (AkKind::Rsa2048, None),
        (AkKind::Rsa2048, Some(HashAlg::Sha512)),
    ];
    for (kind, hash) in cases {
        let mut ak = SoftAk::generate(kind, &mut OsRng).unwrap();
        if let Some(h) = hash {
            ak = ak.with_signature_hash(h);
        }
        let v = values();
        let (attest, sig) = ak.quote(&v, b"nonce-123", clock()).unwrap();
        let ok = check(&ak, &attest, &sig, &v, b"nonce-123", None).unwrap();
        assert_eq!(
            ok.counters(),
            CounterState {
                reset_count: 5,
                restart_count: 2
            }
        );
        // Bare TPMS_ATTEST is accepted as well as TPM2B_ATTEST.
        check(&ak, &attest[2..], &sig, &v, b"nonce-123", None).unwrap();
        // A signature with one bit flipped, or over other bytes, is refused.
        let mut bad_sig = sig.clone();
        let last = bad_sig.len() - 1;
        bad_sig[last] ^= 1;
        assert!(
            check(&ak, &attest, &bad_sig, &v, b"nonce-123", None).is_err(),
            "{kind:?} {hash:?}"
        );
        let (other, _) = ak.quote(&v, b"nonce-456", clock()).unwrap();
        assert!(
            check(&ak, &other, &sig, &v, b"nonce-456", None).is_err(),
            "{kind:?} {hash:?}"
        );
        // Parsers round-trip what the signer produced.
        let (parsed, _) = Attest::parse_tpm2b(&attest).unwrap();
        assert_eq!(parsed.encode_tpm2b().unwrap(), attest);
        assert_eq!(Signature::parse(&sig).unwrap().encode().unwrap(), sig);
    }
}

#[test]
fn every_tampering_is_rejected_with_its_own_error() {
    let ak = SoftAk::generate(AkKind::EcdsaP256, &mut OsRng).unwrap();
    let v = values();
    let (attest, sig) = ak.quote(&v, b"n1", clock()).unwrap();

    assert_eq!(
        check(&ak, &attest, &sig, &v, b"n2", None).unwrap_err(),
        QuoteError::NonceMismatch
    );

    let mut flipped = PcrValues::new();
    for (b, i, val) in v.iter() {
        let mut val = val.to_vec();
        if i == 7 {
            val[0] ^= 1;
        }
        flipped.insert(b, i, val).unwrap();
    }
    assert_eq!(
        check(&ak, &attest, &sig, &flipped, b"n1", None).unwrap_err(),
        QuoteError::PcrDigestMismatch
    );

    let mut extra = v.clone();
    extra.insert(HashAlg::Sha256, 9, vec![0; 32]).unwrap();
    assert!(matches!(
        check(&ak, &attest, &sig, &extra, b"n1", None),
        Err(QuoteError::UnquotedPcrValue(_))
    ));

    let mut missing = PcrValues::new();
    missing.insert(HashAlg::Sha256, 0, vec![0x11; 32]).unwrap();
    assert!(matches!(
        check(&ak, &attest, &sig, &missing, b"n1", None),
        Err(QuoteError::MissingPcrValue(_))
    ));

    let other = selection(&[(HashAlg::Sha256, &[0, 1])]).unwrap();
    let e = verify_quote(
        &QuoteEvidence {
            attest: &attest,
            signature: &sig,
            pcr_values: &v,
        },
        &ak.ak_public().unwrap(),
        &QuotePolicy {
            expected_nonce: b"n1",
            expected_selection: &other,
            previous: None,
        },
    )
    .unwrap_err();
    assert!(matches!(e, QuoteError::SelectionMismatch { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "quoted PCR selection sha256:0,1,7 differs from the expected selection sha256:0,1"
    );

    let another = SoftAk::generate(AkKind::EcdsaP256, &mut OsRng).unwrap();
    let e = verify_quote(
        &QuoteEvidence {
            attest: &attest,
            signature: &sig,
            pcr_values: &v,
        },
        &another.ak_public().unwrap(),
        &QuotePolicy {
            expected_nonce: b"n1",
            expected_selection: &selection(&[(HashAlg::Sha256, &[0, 1, 7])]).unwrap(),
            previous: None,
        },
    )
    .unwrap_err();
    assert!(matches!(e, QuoteError::BadSignature(_)), "{e}");

    // Correctly signed but wrong magic / wrong type.
    let mut a = ak.quote_attest(&v, b"n1", clock()).unwrap();
    a.magic = 0xff54_4348;
    let (bad, bad_sig) = ak.sign_attest(&a).unwrap();
    assert_eq!(
        check(&ak, &bad, &bad_sig, &v, b"n1", None).unwrap_err(),
        QuoteError::BadMagic(0xff54_4348)
    );
    let mut a = ak.quote_attest(&v, b"n1", clock()).unwrap();
    a.attest_type = 0x8017;
    a.body = AttestBody::Other {
        tag: 0x8017,
        raw: vec![],
    };
    let (bad, bad_sig) = ak.sign_attest(&a).unwrap();
    assert_eq!(
        check(&ak, &bad, &bad_sig, &v, b"n1", None).unwrap_err(),
        QuoteError::NotAQuote(0x8017)
    );
    assert_ne!(a.attest_type, TPM_ST_ATTEST_QUOTE);

    // Tampered bytes break the signature.
    let mut t = attest.clone();
    let last = t.len() - 1;
    t[last] ^= 1;
    assert!(matches!(
        check(&ak, &t, &sig, &v, b"n1", None),
        Err(QuoteError::BadSignature(_))
    ));

    // Counters.
    let prev = CounterState {
        reset_count: 6,
        restart_count: 0,
    };
    assert_eq!(
        check(&ak, &attest, &sig, &v, b"n1", Some(prev)).unwrap_err(),
        QuoteError::ResetCountWentBack {
            previous: 6,
            got: 5
        }
    );
    let prev = CounterState {
        reset_count: 5,
        restart_count: 3,
    };
    assert_eq!(
        check(&ak, &attest, &sig, &v, b"n1", Some(prev)).unwrap_err(),
        QuoteError::RestartCountWentBack {
            previous: 3,
            got: 2
        }
    );
    let prev = CounterState {
        reset_count: 4,
        restart_count: 9,
    };
    check(&ak, &attest, &sig, &v, b"n1", Some(prev)).unwrap();

    // Garbage.
    assert!(matches!(
        check(&ak, &[1, 2, 3], &sig, &v, b"n1", None),
        Err(QuoteError::MalformedAttest(_))
    ));
    assert!(matches!(
        check(&ak, &attest, &[0, 0x18], &v, b"n1", None),
        Err(QuoteError::MalformedSignature(_))
    ));
}

#[test]
fn ak_policy_and_spki() {
    let p256 = SoftAk::generate(AkKind::EcdsaP256, &mut OsRng).unwrap();
    let p384 = SoftAk::generate(AkKind::EcdsaP384, &mut OsRng).unwrap();
    let rsa = SoftAk::generate(AkKind::Rsa2048, &mut OsRng).unwrap();
    let k = AkPublicKey::from_spki_pem(&p256.spki_pem().unwrap()).unwrap();
    k.check_policy(AkPolicy::Standard).unwrap();
    assert!(matches!(
        k.check_policy(AkPolicy::Strong),
        Err(AkError::PolicyRejected { .. })
    ));
    AkPublicKey::from_spki_pem(&p384.spki_pem().unwrap())
        .unwrap()
        .check_policy(AkPolicy::Strong)
        .unwrap();
    let r = AkPublicKey::from_spki_pem(&rsa.spki_pem().unwrap()).unwrap();
    r.check_policy(AkPolicy::Standard).unwrap();
    assert!(r.check_policy(AkPolicy::Strong).is_err());
    // SPKI-built key verifies the same quote as the TPM2B_PUBLIC-built one.
    let v = values();
    let (attest, sig) = p384.quote(&v, b"x", clock()).unwrap();
    let sel = selection(&[(HashAlg::Sha256, &[0, 1, 7])]).unwrap();
    verify_quote(
        &QuoteEvidence {
            attest: &attest,
            signature: &sig,
            pcr_values: &v,
        },
        &AkPublicKey::from_spki_pem(&p384.spki_pem().unwrap()).unwrap(),
        &QuotePolicy {
            expected_nonce: b"x",
            expected_selection: &sel,
            previous: None,
        },
    )
    .unwrap();
}

#[test]
fn pcr_values_from_api_map() {
    let mut m = std::collections::BTreeMap::new();
    m.insert("sha256:0".to_string(), "00".repeat(32));
    m.insert("sha256:7".to_string(), "ab".repeat(32));
    let v = PcrValues::from_map(&m).unwrap();
    assert_eq!(v.to_map(), m);
    m.insert("sha256:8".to_string(), "00".repeat(31));
    assert!(matches!(
        PcrValues::from_map(&m),
        Err(QuoteError::BadPcrValue { .. })
    ));
    let mut m = std::collections::BTreeMap::new();
    m.insert("md5:0".to_string(), "00".repeat(16));
    assert!(PcrValues::from_map(&m).is_err());
}

#[test]
fn make_credential_round_trips_in_software() {
    let ak = SoftAk::generate(AkKind::EcdsaP256, &mut OsRng).unwrap();
    let name = ak.name().unwrap();
    let eks = [
        SoftEk::generate_rsa(2048, &mut OsRng).unwrap(),
        SoftEk::P256(p256::SecretKey::random(&mut OsRng)),
        SoftEk::P384(p384::SecretKey::random(&mut OsRng)),
    ];
    for ek in &eks {
        let blob = make_credential(
            &ek.public().unwrap(),
            &name,
            b"0123456789abcdef0123456789abcdef",
            &mut OsRng,
        )
        .unwrap();
        let file = blob.to_tpm2_tools_file();
        let back = attest_tpm::credential::CredentialBlob::from_tpm2_tools_file(&file).unwrap();
        assert_eq!(
            &ek.activate_credential(&name, &back).unwrap()[..],
            b"0123456789abcdef0123456789abcdef"
        );
        let mut wrong = name.clone();
        wrong[5] ^= 1;
        assert!(ek.activate_credential(&wrong, &back).is_err());
    }
}

#[test]
fn envelopes_round_trip() {
    let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
    let env = seal_ek_aes256gcm_v1(
        &PublicKey::Rsa(key.to_public_key()),
        "m-1",
        b"machine: config",
        &mut OsRng,
    )
    .unwrap();
    let json = serde_json::to_value(&env).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["ciphertext", "format", "iv", "machine_id", "wrapped_key"]
    );
    assert_eq!(json["format"], "ek-aes256gcm-v1");
    let back: EkAes256GcmV1 = serde_json::from_value(json).unwrap();
    assert_eq!(
        &open_ek_aes256gcm_v1(&back, &key).unwrap()[..],
        b"machine: config"
    );
    let mut t = back.clone();
    t.ciphertext = {
        use base64::Engine;
        let mut c = base64::engine::general_purpose::STANDARD
            .decode(&t.ciphertext)
            .unwrap();
        c[0] ^= 1;
        base64::engine::general_purpose::STANDARD.encode(c)
    };
    assert!(open_ek_aes256gcm_v1(&t, &key).is_err());

    let ek = SoftEk::P384(p384::SecretKey::random(&mut OsRng));
    let ak = SoftAk::generate(AkKind::EcdsaP256, &mut OsRng).unwrap();
    let env = seal_ek_credential_v1(
        &ek.public().unwrap(),
        &ak.name().unwrap(),
        "m-2",
        b"cfg",
        &mut OsRng,
    )
    .unwrap();
    let aes = ek
        .activate_credential(&ak.name().unwrap(), &env.credential().unwrap())
        .unwrap();
    assert_eq!(&env.open_with_key(&aes).unwrap()[..], b"cfg");
}

#[test]
fn nonce_signatures_raw_and_tpmt() {
    let ak = SoftAk::generate(AkKind::EcdsaP256, &mut OsRng).unwrap();
    let key = ak.ak_public().unwrap();
    let tpmt = ak.sign(b"nonce").unwrap().encode().unwrap();
    key.verify_nonce_signature(b"nonce", &tpmt).unwrap();
    assert!(key.verify_nonce_signature(b"other", &tpmt).is_err());

    use signature::Signer;
    let rsa = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
    let spki = {
        use spki::EncodePublicKey;
        rsa.to_public_key().to_public_key_der().unwrap()
    };
    let key = AkPublicKey::from_spki_der(spki.as_bytes()).unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa);
    let sig: rsa::pkcs1v15::Signature = signer.sign(b"nonce");
    use signature::SignatureEncoding;
    key.verify_nonce_signature(b"nonce", &sig.to_vec()).unwrap();
    assert!(key
        .verify_nonce_signature(b"nonce2", &sig.to_vec())
        .is_err());
}

#[test]
fn empty_expected_nonce_is_refused() {
    let ak = SoftAk::generate(AkKind::EcdsaP256, &mut OsRng).unwrap();
    let v = values();
    let (attest, sig) = ak.quote(&v, b"", clock()).unwrap();
    assert_eq!(
        check(&ak, &attest, &sig, &v, b"", None).unwrap_err(),
        QuoteError::NoExpectedNonce
    );
}

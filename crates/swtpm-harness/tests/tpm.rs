#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Against a real software TPM: EK certificates, quotes, MakeCredential /
//! ActivateCredential and both envelopes. Each test starts its own swtpm.
//! Reported as ignored without swtpm/tpm2-tools (see `build.rs`), fails instead when CI=true.

use std::time::SystemTime;

use attest_swtpm::{tools_available_or_skip, EkType, Swtpm};
use attest_tpm::credential::{make_credential, CredentialBlob};
use attest_tpm::ek::{EkMaterial, EkSource, FingerprintAlg};
use attest_tpm::ek_chain::{verify_chain, ChainError, RootStore};
use attest_tpm::envelope::{open_payload, seal_ek_aes256gcm_v1, seal_ek_credential_v1};
use attest_tpm::quote::selection;
use attest_tpm::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::rngs::OsRng;

macro_rules! tpm_or_skip {
    ($name:expr) => {{
        if !tools_available_or_skip($name) {
            return;
        }
        Swtpm::start().expect("start swtpm")
    }};
}

fn ek_material(tpm: &Swtpm, ek: EkType) -> EkMaterial {
    let der = tpm.nv_read(ek.cert_nv_index()).unwrap();
    EkMaterial::parse(&B64.encode(&der), EkSource::Cert).unwrap()
}

#[cfg_attr(swtpm_missing, ignore = "swtpm or tpm2-tools not installed")]
#[test]
fn ek_certificates_parse_fingerprint_and_chain() {
    let tpm = tpm_or_skip!("ek_certificates_parse_fingerprint_and_chain");
    let store = RootStore::from_dir(tpm.ca_certs_dir()).unwrap();
    assert_eq!(store.root_count(), 1);
    for (ek, desc) in [
        (EkType::Rsa2048, "RSA-2048"),
        (EkType::EccP384, "ECC P-384"),
    ] {
        let der = tpm.nv_read(ek.cert_nv_index()).unwrap();
        let m = EkMaterial::parse(&B64.encode(&der), EkSource::Cert).unwrap();
        assert_eq!(m.public_key().key.describe(), desc);
        // PEM inside base64 gives the same fingerprint (fingerprint is over DER).
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            B64.encode(m.raw())
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let from_pem = EkMaterial::parse(&B64.encode(pem), EkSource::Cert).unwrap();
        assert_eq!(from_pem.fingerprint_sha256(), m.fingerprint_sha256());
        let sha256 = hex::encode(HashAlg::Sha256.digest(&[m.raw()]));
        assert_eq!(
            m.verify_fingerprint(&sha256).unwrap(),
            FingerprintAlg::Sha256
        );
        assert_eq!(
            m.verify_fingerprint(&m.fingerprint_sha384().to_uppercase())
                .unwrap(),
            FingerprintAlg::Sha384
        );
        assert!(m.verify_fingerprint(&"00".repeat(32)).is_err());

        // The key in the certificate is the key in the TPM.
        let tpm_pub = tpm.ek_public(ek).unwrap();
        let from_tpm = EkMaterial::parse(&B64.encode(&tpm_pub), EkSource::Pub).unwrap();
        assert_eq!(from_tpm.public_key().key, m.public_key().key);
        assert_eq!(from_tpm.public_key().name_alg, m.public_key().name_alg);
        assert_eq!(
            from_tpm.public_key().sym_key_bits,
            m.public_key().sym_key_bits
        );

        let info = verify_chain(&m, &store, Some(SystemTime::now())).unwrap();
        assert_eq!(
            info.path,
            vec![
                "CN=swtpm-localca".to_string(),
                "CN=swtpm-localca-rootca".to_string()
            ]
        );

        // A flipped byte inside the signed part breaks the chain.
        let mut bad = m.raw().to_vec();
        let n = bad.len();
        bad[n / 2] ^= 0x01;
        if let Ok(t) = EkMaterial::from_bytes(&bad, EkSource::Cert) {
            assert!(verify_chain(&t, &store, None).is_err());
        }
    }
    // Bare public keys cannot be chain-validated.
    let tpm_pub = tpm.ek_public(EkType::Rsa2048).unwrap();
    let bare = EkMaterial::parse(&B64.encode(&tpm_pub), EkSource::Pub).unwrap();
    assert_eq!(
        verify_chain(&bare, &store, None).unwrap_err(),
        ChainError::NoCertificate
    );
}

fn values_of(q: &attest_swtpm::Quote) -> PcrValues {
    let mut v = PcrValues::new();
    for (i, val) in &q.pcr_values {
        v.insert(HashAlg::Sha256, *i, val.clone()).unwrap();
    }
    v
}

fn run_quote_case(tpm: &Swtpm, ek: EkType, alg: &str, hash: &str, scheme: &str) {
    let ak = tpm.create_ak(ek, alg, hash, scheme).unwrap();
    let key = AkPublicKey::from_tpm2b_public(&ak.public).unwrap();
    assert_eq!(
        key.name().unwrap(),
        &ak.name[..],
        "our Name computation matches the TPM's"
    );
    tpm.pcr_extend(7, "sha256", &[0xab; 32]).unwrap();
    let nonce = b"server-nonce-0123456789abcdef";
    let q = tpm.quote(&ak, "sha256", &[0, 1, 7], nonce, hash).unwrap();
    let values = values_of(&q);
    let sel = selection(&[(HashAlg::Sha256, &[0, 1, 7])]).unwrap();
    let policy = QuotePolicy {
        expected_nonce: nonce,
        expected_selection: &sel,
        previous: None,
    };
    let ev = QuoteEvidence {
        attest: &q.attest,
        signature: &q.signature,
        pcr_values: &values,
    };
    let ok = verify_quote(&ev, &key, &policy).unwrap_or_else(|e| panic!("{alg}/{hash}: {e}"));

    // Also as TPM2B_ATTEST.
    let mut wrapped = (q.attest.len() as u16).to_be_bytes().to_vec();
    wrapped.extend_from_slice(&q.attest);
    verify_quote(
        &QuoteEvidence {
            attest: &wrapped,
            ..ev
        },
        &key,
        &policy,
    )
    .unwrap();

    // Wrong nonce.
    let p = QuotePolicy {
        expected_nonce: b"another-nonce",
        ..policy
    };
    assert_eq!(
        verify_quote(&ev, &key, &p).unwrap_err(),
        QuoteError::NonceMismatch
    );
    // One flipped PCR value.
    let mut flipped = PcrValues::new();
    for (b, i, v) in values.iter() {
        let mut v = v.to_vec();
        if i == 7 {
            v[31] ^= 0x80;
        }
        flipped.insert(b, i, v).unwrap();
    }
    let e = verify_quote(
        &QuoteEvidence {
            pcr_values: &flipped,
            ..ev
        },
        &key,
        &policy,
    )
    .unwrap_err();
    assert_eq!(e, QuoteError::PcrDigestMismatch);
    // Different selection.
    let other = selection(&[(HashAlg::Sha256, &[0, 7])]).unwrap();
    let e = verify_quote(
        &ev,
        &key,
        &QuotePolicy {
            expected_selection: &other,
            ..policy
        },
    )
    .unwrap_err();
    assert!(matches!(e, QuoteError::SelectionMismatch { .. }), "{e}");
    // Bad magic.
    let mut bad = q.attest.clone();
    bad[3] ^= 0x01;
    let e = verify_quote(&QuoteEvidence { attest: &bad, ..ev }, &key, &policy).unwrap_err();
    assert_eq!(e, QuoteError::BadMagic(0xff54_4346));
    // Reset count going back.
    let prev = CounterState {
        reset_count: ok.clock_info.reset_count + 1,
        restart_count: 0,
    };
    let e = verify_quote(
        &ev,
        &key,
        &QuotePolicy {
            previous: Some(prev),
            ..policy
        },
    )
    .unwrap_err();
    assert!(matches!(e, QuoteError::ResetCountWentBack { .. }), "{e}");
    let prev = ok.counters();
    verify_quote(
        &ev,
        &key,
        &QuotePolicy {
            previous: Some(prev),
            ..policy
        },
    )
    .unwrap();
    // Quote from another AK.
    let ak2 = tpm.create_ak(ek, alg, hash, scheme).unwrap();
    let q2 = tpm.quote(&ak2, "sha256", &[0, 1, 7], nonce, hash).unwrap();
    let e = verify_quote(
        &QuoteEvidence {
            attest: &q2.attest,
            signature: &q2.signature,
            pcr_values: &values_of(&q2),
        },
        &key,
        &policy,
    )
    .unwrap_err();
    assert!(matches!(e, QuoteError::BadSignature(_)), "{e}");
}

#[cfg_attr(swtpm_missing, ignore = "swtpm or tpm2-tools not installed")]
#[test]
fn quotes_ecdsa_p384_sha384_over_sha256_bank() {
    let tpm = tpm_or_skip!("quotes_ecdsa_p384_sha384_over_sha256_bank");
    run_quote_case(&tpm, EkType::EccP384, "ecc384", "sha384", "ecdsa");
}

#[cfg_attr(swtpm_missing, ignore = "swtpm or tpm2-tools not installed")]
#[test]
fn quotes_ecdsa_p256_and_rsa() {
    let tpm = tpm_or_skip!("quotes_ecdsa_p256_and_rsa");
    run_quote_case(&tpm, EkType::Rsa2048, "ecc256", "sha256", "ecdsa");
    run_quote_case(&tpm, EkType::Rsa2048, "rsa2048", "sha256", "rsassa");
    run_quote_case(&tpm, EkType::Rsa2048, "rsa2048", "sha256", "rsapss");
}

#[cfg_attr(swtpm_missing, ignore = "swtpm or tpm2-tools not installed")]
#[test]
fn make_credential_activates_on_tpm_for_rsa_and_ecc_eks() {
    let tpm = tpm_or_skip!("make_credential_activates_on_tpm_for_rsa_and_ecc_eks");
    for ek in [EkType::Rsa2048, EkType::EccP384] {
        let ak = tpm.create_ak(ek, "ecc256", "sha256", "ecdsa").unwrap();
        // EK from its certificate (template parameters assumed) and from TPM2B_PUBLIC (exact).
        let from_cert = ek_material(&tpm, ek);
        let from_pub =
            EkMaterial::parse(&B64.encode(tpm.ek_public(ek).unwrap()), EkSource::Pub).unwrap();
        for m in [&from_cert, &from_pub] {
            let secret: Vec<u8> = (0..32u8).collect();
            let blob = make_credential(m.public_key(), &ak.name, &secret, &mut OsRng).unwrap();
            let file = blob.to_tpm2_tools_file();
            assert_eq!(CredentialBlob::from_tpm2_tools_file(&file).unwrap(), blob);
            assert_eq!(
                tpm.activate_credential(&ak, &file).unwrap(),
                secret,
                "{ek:?}"
            );
        }
        // Bound to the AK name: another AK cannot activate it.
        let other = tpm.create_ak(ek, "ecc256", "sha256", "ecdsa").unwrap();
        let blob =
            make_credential(from_cert.public_key(), &ak.name, b"secret", &mut OsRng).unwrap();
        assert!(tpm
            .activate_credential(&other, &blob.to_tpm2_tools_file())
            .is_err());
    }
}

#[cfg_attr(swtpm_missing, ignore = "swtpm or tpm2-tools not installed")]
#[test]
fn ek_aes256gcm_v1_opens_with_non_restricted_key_but_not_with_ek() {
    let tpm = tpm_or_skip!("ek_aes256gcm_v1_opens_with_non_restricted_key_but_not_with_ek");
    let dk = tpm.create_rsa_decrypt_key().unwrap();
    let key = PublicKey::from_spki_pem(&dk.public_pem).unwrap();
    let env = seal_ek_aes256gcm_v1(&key, "machine-1", b"cluster: config", &mut OsRng).unwrap();
    let wrapped = B64.decode(&env.wrapped_key).unwrap();
    let aes = tpm
        .rsa_decrypt(&dk.ctx.display().to_string(), &wrapped)
        .unwrap();
    assert_eq!(aes.len(), 32);
    assert_eq!(
        &open_payload(&aes, &env.iv, &env.ciphertext).unwrap()[..],
        b"cluster: config"
    );

    // The restricted EK refuses TPM2_RSA_Decrypt even with its policy satisfied.
    let ek = ek_material(&tpm, EkType::Rsa2048);
    let env = seal_ek_aes256gcm_v1(&ek.public_key().key, "machine-1", b"x", &mut OsRng).unwrap();
    let wrapped = B64.decode(&env.wrapped_key).unwrap();
    let err = tpm.rsa_decrypt_with_ek(&wrapped).unwrap_err().to_string();
    assert!(err.contains("tpm2_rsadecrypt"), "{err}");
}

#[cfg_attr(swtpm_missing, ignore = "swtpm or tpm2-tools not installed")]
#[test]
fn ek_credential_envelope_opens_end_to_end_with_tpm() {
    let tpm = tpm_or_skip!("ek_credential_envelope_opens_end_to_end_with_tpm");
    for ek in [EkType::Rsa2048, EkType::EccP384] {
        let ak = tpm.create_ak(ek, "ecc256", "sha256", "ecdsa").unwrap();
        let m = ek_material(&tpm, ek);
        let env = seal_ek_credential_v1(
            m.public_key(),
            &ak.name,
            "machine-7",
            b"apiVersion: v1alpha1\n",
            &mut OsRng,
        )
        .unwrap();
        let json = serde_json::to_string(&env).unwrap();
        let back: attest_tpm::envelope::EkCredentialAes256GcmV1 =
            serde_json::from_str(&json).unwrap();
        let file = B64.decode(&back.credential_blob).unwrap();
        let aes = tpm.activate_credential(&ak, &file).unwrap();
        assert_eq!(
            &back.open_with_key(&aes).unwrap()[..],
            b"apiVersion: v1alpha1\n"
        );
    }
}

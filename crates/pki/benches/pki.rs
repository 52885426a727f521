#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! What request-cert, offline-bundle, enroll and the CRL endpoint cost in
//! the enrollment CA, and audit checkpoints in their signing key, one core:
//! `taskset -c 1 cargo bench -p attest-pki --bench pki -- --warm-up-time 1 --measurement-time 4`.

use std::sync::Arc;

use attest_domain::clock::SystemClock;
use attest_pki::{
    verify_with_spki, wrap_private_key, CaOptions, CrlReason, EnrollmentCa, KeyAlgorithm,
    RevokedEntry,
};
use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion};

fn ca(dir: &std::path::Path) -> EnrollmentCa {
    let options = CaOptions {
        key_passphrase: Some("bench".to_string().into()),
        ..CaOptions::default()
    };
    EnrollmentCa::load_or_create(dir, options, Arc::new(SystemClock)).unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let validity = Duration::days(30);

    c.bench_function("issue_with_new_key P-384 (request-cert)", |b| {
        b.iter(|| ca.issue_with_new_key("m", "worker-app", validity, KeyAlgorithm::EcP384))
    });

    let (issued, key_pem) = ca
        .issue_with_new_key("m", "worker-app", validity, KeyAlgorithm::EcP384)
        .unwrap();
    c.bench_function("verify_client_cert (enroll)", |b| {
        b.iter(|| ca.verify_client_cert(&issued.cert_pem).unwrap())
    });

    let key = p384::SecretKey::from_sec1_pem(&key_pem).unwrap();
    let signing = p384::ecdsa::SigningKey::from(key);
    let sig: p384::ecdsa::Signature =
        p384::ecdsa::signature::Signer::sign(&signing, b"nonce-value");
    let spki = ca.verify_client_cert(&issued.cert_pem).unwrap().spki_der;
    c.bench_function("verify_with_spki P-384 (enroll)", |b| {
        b.iter(|| verify_with_spki(&spki, b"nonce-value", sig.to_der().as_bytes()).unwrap())
    });

    let wrap = {
        use rsa::pkcs8::EncodePublicKey;
        let k = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        k.to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
    };
    c.bench_function("wrap_private_key RSA-2048", |b| {
        b.iter(|| wrap_private_key(&wrap, &key_pem).unwrap())
    });

    let signer = attest_pki::CheckpointSigner::load_or_create(
        &dir.path().join("checkpoint"),
        Some("bench".to_string().into()),
    )
    .unwrap();
    let statement = [7u8; 149];
    c.bench_function("checkpoint_sign (audit checkpoint)", |b| {
        b.iter(|| signer.sign(&statement).unwrap())
    });
    let signature = signer.sign(&statement).unwrap();
    c.bench_function(
        "checkpoint_verify (per stored checkpoint in audit verify)",
        |b| b.iter(|| signer.verify(&statement, &signature).unwrap()),
    );

    let now = Utc::now();
    for n in [0usize, 1_000, 10_000] {
        let revoked: Vec<RevokedEntry> = (0..n)
            .map(|i| RevokedEntry {
                serial_hex: format!("{:032x}", i + 1),
                revoked_at: now,
                reason: Some(CrlReason::CessationOfOperation),
            })
            .collect();
        c.bench_function(&format!("crl with {n} revoked"), |b| {
            b.iter(|| ca.crl(&revoked, 1, now, now + Duration::hours(24)).unwrap())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Throughput of the server-side operations, one core:
//! `CARGO_TARGET_DIR=/work/target-tpm cargo bench -p attest-tpm --bench tpm`.

use attest_tpm::credential::make_credential;
use attest_tpm::envelope::{seal_ek_aes256gcm_v1, seal_ek_credential_v1};
use attest_tpm::quote::selection;
use attest_tpm::soft::{AkKind, SoftAk, SoftEk};
use attest_tpm::wire::ClockInfo;
use attest_tpm::*;
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::OsRng;

/// CPU time of the benchmarking thread (CLOCK_THREAD_CPUTIME_ID), so the
/// figures are per core even when other jobs share the machine.
struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    u64::try_from(cpu_time::ThreadTime::now().as_duration().as_nanos()).unwrap_or(u64::MAX)
}

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e3, "µs")
        } else {
            (1e6, "ms")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }
    fn scale_throughputs(&self, typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
        };
        let _ = typical;
        values.iter_mut().for_each(|v| *v = n * 1e9 / *v);
        "ops/s (CPU)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

fn quotes(c: &mut Criterion<ThreadCpu>) {
    let mut g = c.benchmark_group("verify_quote");
    g.throughput(Throughput::Elements(1));
    let mut values = PcrValues::new();
    for i in [0u8, 1, 2, 3, 4, 5, 6, 7] {
        values.insert(HashAlg::Sha256, i, vec![i; 32]).unwrap();
    }
    let sel = selection(&[(HashAlg::Sha256, &[0, 1, 2, 3, 4, 5, 6, 7])]).unwrap();
    for (label, kind) in [
        ("ecdsa_p256_sha256", AkKind::EcdsaP256),
        ("ecdsa_p384_sha384", AkKind::EcdsaP384),
        ("rsa2048_rsassa_sha256", AkKind::Rsa2048),
    ] {
        let ak = SoftAk::generate(kind, &mut OsRng).unwrap();
        let key = ak.ak_public().unwrap();
        let (attest, sig) = ak
            .quote(&values, b"nonce-nonce-nonce", ClockInfo::default())
            .unwrap();
        let policy = QuotePolicy {
            expected_nonce: b"nonce-nonce-nonce",
            expected_selection: &sel,
            previous: None,
        };
        let ev = QuoteEvidence {
            attest: &attest,
            signature: &sig,
            pcr_values: &values,
        };
        verify_quote(&ev, &key, &policy).unwrap();
        g.bench_function(label, |b| {
            b.iter(|| verify_quote(&ev, &key, &policy).unwrap())
        });
    }
    g.finish();
}

fn credentials(c: &mut Criterion<ThreadCpu>) {
    let mut g = c.benchmark_group("make_credential");
    g.throughput(Throughput::Elements(1));
    let ak = SoftAk::generate(AkKind::EcdsaP256, &mut OsRng).unwrap();
    let name = ak.name().unwrap();
    let eks = [
        (
            "ek_rsa2048",
            SoftEk::generate_rsa(2048, &mut OsRng).unwrap(),
        ),
        ("ek_p256", SoftEk::P256(p256::SecretKey::random(&mut OsRng))),
        ("ek_p384", SoftEk::P384(p384::SecretKey::random(&mut OsRng))),
    ];
    for (label, ek) in &eks {
        let public = ek.public().unwrap();
        g.bench_function(*label, |b| {
            b.iter(|| make_credential(&public, &name, &[7u8; 32], &mut OsRng).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("envelope_seal_4KiB");
    g.throughput(Throughput::Elements(1));
    let config = vec![b'x'; 4096];
    let rsa_pub = eks[0].1.public().unwrap();
    g.bench_function("ek_aes256gcm_v1_rsa2048", |b| {
        b.iter(|| seal_ek_aes256gcm_v1(&rsa_pub.key, "m", &config, &mut OsRng).unwrap())
    });
    for (label, ek) in [
        ("ek_credential_v1_rsa2048", &eks[0].1),
        ("ek_credential_v1_p384", &eks[2].1),
    ] {
        let public = ek.public().unwrap();
        g.bench_function(label, |b| {
            b.iter(|| seal_ek_credential_v1(&public, &name, "m", &config, &mut OsRng).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = quotes, credentials
}
criterion_main!(benches);

//! The crypto floor: what one flow's server-side cryptography costs when
//! run in-process on one core, without HTTP, JSON or the database. The
//! service can never be faster than this; the report says how close it is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_domain::clock::SystemClock;
use attest_pki::{CaOptions, EnrollmentCa, KeyAlgorithm};
use attest_tpm::credential::make_credential;
use attest_tpm::envelope::seal_ek_credential_v1;
use attest_tpm::quote::{selection, verify_quote, QuoteEvidence, QuotePolicy};
use attest_tpm::soft::{AkKind, SoftAk, SoftEk};
use attest_tpm::HashAlg;

use crate::machine::{clock, pcrs};
use crate::report::CryptoFloor;
use crate::SimError;

/// Mean time of `f` over `rounds` runs.
fn time<T>(rounds: u32, mut f: impl FnMut() -> Result<T, SimError>) -> Result<Duration, SimError> {
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(f()?);
    }
    Ok(started.elapsed() / rounds.max(1))
}

fn setup<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> SimError {
    move |e| SimError::Setup(format!("crypto floor, {what}: {e}"))
}

/// Measures each operation a flow makes the server do, `rounds` times,
/// with an AK of `ak_kind`.
pub fn measure(rounds: u32, ak_kind: AkKind) -> Result<CryptoFloor, SimError> {
    let mut rng = rand::rngs::OsRng;
    let ek = SoftEk::P256(p256::SecretKey::random(&mut rng))
        .public()
        .map_err(setup("EK"))?;
    let ak = SoftAk::generate(ak_kind, &mut rng).map_err(setup("AK"))?;
    let ak_public = ak.ak_public().map_err(setup("AK"))?;
    let name = ak.name().map_err(setup("AK name"))?;
    let values = pcrs();
    let nonce = [7u8; 32];
    let (quote, sig) = ak.quote(&values, &nonce, clock()).map_err(setup("quote"))?;
    let sel =
        selection(&[(HashAlg::Sha256, &[0, 1, 2, 3, 4, 5, 6, 7])]).map_err(setup("selection"))?;
    let dir = tempfile::tempdir().map_err(setup("temp dir"))?;
    let ca = EnrollmentCa::load_or_create(
        dir.path(),
        CaOptions {
            key_passphrase: Some("floor".to_string().into()),
            ..CaOptions::default()
        },
        Arc::new(SystemClock),
    )
    .map_err(setup("CA"))?;
    let config = vec![b'x'; 4096];

    let verify = || {
        verify_quote(
            &QuoteEvidence {
                attest: &quote,
                signature: &sig,
                pcr_values: &values,
            },
            &ak_public,
            &QuotePolicy {
                expected_nonce: &nonce,
                expected_selection: &sel,
                previous: None,
            },
        )
        .map_err(setup("verify_quote"))
    };
    let mut per_flow = BTreeMap::new();
    // Two verified quotes per flow: ak-activate and attest.
    let quote_ms = time(rounds, verify)?.as_secs_f64() * 1000.0;
    per_flow.insert(
        "verify_quote P-384 ×2 (ak-activate, attest)".to_owned(),
        2.0 * quote_ms,
    );
    let mc = time(rounds, || {
        make_credential(&ek, &name, &[1u8; 32], &mut rand::rngs::OsRng)
            .map_err(setup("MakeCredential"))
    })?;
    per_flow.insert(
        "MakeCredential P-256 EK (ak-credential)".to_owned(),
        mc.as_secs_f64() * 1000.0,
    );
    let seal = time(rounds, || {
        seal_ek_credential_v1(&ek, &name, "m", &config, &mut rand::rngs::OsRng)
            .map_err(setup("seal"))
    })?;
    per_flow.insert(
        "seal 4 KiB credential envelope (config)".to_owned(),
        seal.as_secs_f64() * 1000.0,
    );
    let issue = time(rounds, || {
        ca.issue_with_new_key(
            "m",
            "worker-app",
            chrono::Duration::days(30),
            KeyAlgorithm::EcP384,
        )
        .map_err(setup("issue"))
    })?;
    per_flow.insert(
        "issue P-384 certificate + key (request-cert)".to_owned(),
        issue.as_secs_f64() * 1000.0,
    );

    let total_ms: f64 = per_flow.values().sum();
    Ok(CryptoFloor {
        per_flow_ms: per_flow,
        total_ms,
        flows_per_second_one_core: if total_ms > 0.0 {
            1000.0 / total_ms
        } else {
            0.0
        },
    })
}

#![no_main]
//! `POST /machines/enroll`: the nonce signature is attacker-controlled, and
//! so (through a certificate) is the key it is checked with. Verification
//! never panics, and a signature over a message by a key the fuzzer does
//! not hold is never accepted.
use std::sync::OnceLock;

use attest_pki::verify_with_spki;
use libfuzzer_sys::fuzz_target;

/// SPKI DER of a fixed P-384 key (the fuzzer never sees its private half).
fn fixed_spki() -> &'static [u8] {
    static SPKI: OnceLock<Vec<u8>> = OnceLock::new();
    SPKI.get_or_init(|| {
        use p384::pkcs8::EncodePublicKey;
        let key = p384::SecretKey::random(&mut rand_core::OsRng);
        key.public_key()
            .to_public_key_der()
            .expect("encode SPKI")
            .into_vec()
    })
}

fuzz_target!(|data: &[u8]| {
    // A signature against the fixed key: never valid.
    assert!(
        verify_with_spki(fixed_spki(), b"nonce", data).is_err(),
        "forged signature accepted"
    );
    // An arbitrary key and signature: must not panic.
    if data.len() > 2 {
        let split = usize::from(data[0]) * 4 % data.len();
        let (spki, sig) = data[1..].split_at(split.min(data.len() - 1));
        let _ = verify_with_spki(spki, b"nonce", sig);
    }
});

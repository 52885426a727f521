#![no_main]
//! The Pulumi checkpoint paths that take untrusted bytes: a gzip body is
//! decompressed within its limit, a delta is applied to a base text and
//! checked against its hash, and the `v1:` ciphertext parser refuses what
//! it cannot open. None of them may panic; a delta that is accepted must
//! reproduce the hash it claimed.
use attest_ext_pulumi_state::{body, crypto, delta};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = body::decode(data, true, 1 << 20);
    // Split the input into a base text and a delta document.
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (base, rest) = data.split_at(split);
    let (Ok(base), Ok(edits)) = (
        std::str::from_utf8(base),
        std::str::from_utf8(rest.get(1..).unwrap_or_default()),
    ) else {
        return;
    };
    // Any hash fails except the right one; try the base's own hash too so
    // empty edit lists are accepted and compared.
    for hash in ["00", &delta::hash(base)] {
        if let Ok(out) = delta::apply(base, edits, hash) {
            assert_eq!(delta::hash(&out), hash, "accepted delta with the wrong hash");
        }
    }
    let key = attest_ext_secret_vault::SecretKey::from_bytes(&[7u8; 32]).unwrap_or_else(|_| {
        attest_ext_secret_vault::SecretKey::random()
    });
    let _ = crypto::decrypt(&key, data);
});

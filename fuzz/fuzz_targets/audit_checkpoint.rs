#![no_main]
//! `POST /api/v1/audit/checkpoints/verify` (and `verify --checkpoint`): a
//! checkpoint from outside is attacker-controlled bytes. Checking it never
//! panics, and a signature the fuzzer did not get from the key is never
//! accepted, whatever the statement says.
use std::sync::OnceLock;

use attest_domain::audit::checkpoint::CheckpointStatement;
use attest_pki::CheckpointSigner;
use libfuzzer_sys::fuzz_target;

/// The server's checkpoint key (the fuzzer never sees its private half).
fn signer() -> &'static CheckpointSigner {
    static SIGNER: OnceLock<CheckpointSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("attest-fuzz-checkpoint-{}", std::process::id()));
        CheckpointSigner::load_or_create(&dir, Some("fuzz".to_string().into()))
            .expect("checkpoint key")
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let entries = i64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
    let rest = &data[10..];
    let a = usize::from(data[8]) % (rest.len() + 1);
    let b = usize::from(data[9]) % (rest.len() - a + 1);
    let (root_hash, rest) = rest.split_at(a);
    let (timestamp, signature) = rest.split_at(b);
    let root_hash = String::from_utf8_lossy(root_hash);
    let timestamp = String::from_utf8_lossy(timestamp);
    let statement = CheckpointStatement {
        entries,
        root_hash: &root_hash,
        timestamp: &timestamp,
    };
    let _ = statement.validate();
    let bytes = statement.signed_bytes();
    assert!(
        signer().verify(&bytes, signature).is_err(),
        "forged checkpoint signature accepted"
    );
    // The same bytes as base64 text, as the API carries them.
    if let Ok(text) = std::str::from_utf8(signature) {
        use base64::Engine;
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(text) {
            assert!(signer().verify(&bytes, &decoded).is_err());
        }
    }
});

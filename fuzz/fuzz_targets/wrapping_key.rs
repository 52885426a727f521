#![no_main]
//! `request-cert`'s `wrapping_key_pem` is client input: parsing it and
//! wrapping a real enrollment key to it never panics, whatever the text.
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn key_pem() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = p384::SecretKey::random(&mut rand_core::OsRng);
        key.to_sec1_pem(Default::default())
            .expect("encode key")
            .to_string()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = attest_pki::wrap_private_key(text, key_pem());
    }
});

#![no_main]
//! Client certificates (the `X-Client-Cert` header, later enrollment
//! certificates): verification never panics on any input, and nothing that
//! is not a certificate issued by the CA is accepted.
use std::sync::{Arc, OnceLock};

use attest_domain::clock::SystemClock;
use attest_pki::{CaOptions, EnrollmentCa};
use libfuzzer_sys::fuzz_target;

fn ca() -> &'static EnrollmentCa {
    static CA: OnceLock<EnrollmentCa> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("attest-fuzz-ca-{}", std::process::id()));
        let options = CaOptions {
            key_passphrase: Some("fuzz".to_string().into()),
            ..CaOptions::default()
        };
        EnrollmentCa::load_or_create(&dir, options, Arc::new(SystemClock)).expect("fuzz CA")
    })
}

fuzz_target!(|data: &[u8]| {
    let ca = ca();
    // As PEM text (the header's form) ...
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(ca.verify_client_cert(text).is_err(), "forged certificate accepted");
    }
    // ... and raw DER wrapped as PEM, so the DER parser sees arbitrary bytes.
    let pem = der_to_pem(data);
    assert!(ca.verify_client_cert(&pem).is_err(), "forged certificate accepted");
});

fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

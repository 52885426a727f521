#![no_main]
//! Host enrollment CSRs (`POST /api/v1/enroll`'s `csr`, unauthenticated):
//! parsing and self-signature verification never panic or hang on any
//! input (der's own PEM reader looped on a truncated body such as `MIIB`).
use base64::Engine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As PEM text (the request's form) ...
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = attest_pki::verify_csr(text);
    }
    // ... and raw DER wrapped as PEM, so the DER parser sees arbitrary bytes.
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut pem = String::from("-----BEGIN CERTIFICATE REQUEST-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE REQUEST-----\n");
    let _ = attest_pki::verify_csr(&pem);
});

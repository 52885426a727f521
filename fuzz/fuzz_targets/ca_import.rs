#![no_main]
//! CA material an operator hands the certificate-lifecycle API (a GenericCA
//! issuer's `ca_cert_pem`/`ca_key_pem`, an intermediate's
//! `root_cert_pem`/`root_key_pem`) and key descriptions of SPKI DER: every
//! parser answers an error for any input, never panics or hangs, and never
//! accepts a key that does not match its certificate.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = attest_pki::authority::key_algorithm_of(data);
    // Split the input into a certificate part and a key part.
    let cut = data.first().map_or(0, |b| usize::from(*b) % (data.len().max(1)));
    let (cert, key) = data.split_at(cut.min(data.len()));
    let _ = attest_pki::authority::Authority::from_parts(cert, key);
    if let (Ok(cert), Ok(key)) = (std::str::from_utf8(cert), std::str::from_utf8(key)) {
        let _ = attest_pki::authority::Authority::import(cert, key);
    }
});

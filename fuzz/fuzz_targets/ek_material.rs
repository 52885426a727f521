#![no_main]
//! EK material decoding (certificate, SPKI, TPM2B_PUBLIC, PEM) never panics.
use attest_tpm::ek::{EkMaterial, EkSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for source in [EkSource::Cert, EkSource::Pub, EkSource::OfflineImport] {
        if let Ok(m) = EkMaterial::from_bytes(data, source) {
            let fp = m.fingerprint_sha256();
            assert!(m.verify_fingerprint(&fp).is_ok());
        }
    }
});

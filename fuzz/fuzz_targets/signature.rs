#![no_main]
//! TPMT_SIGNATURE: never panic; whatever parses re-encodes to the same bytes.
use attest_tpm::wire::Signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Signature::parse(data) {
        assert_eq!(s.encode().expect("encode"), data);
    }
});

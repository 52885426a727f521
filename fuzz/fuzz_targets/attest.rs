#![no_main]
//! TPMS_ATTEST / TPM2B_ATTEST: never panic; whatever parses re-encodes to the same bytes.
use attest_tpm::wire::Attest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Attest::parse(data) {
        assert_eq!(a.encode().expect("encode"), data);
    }
    if let Ok((a, inner)) = Attest::parse_either(data) {
        assert_eq!(a.encode().expect("encode"), inner);
    }
});

#![no_main]
//! TPM2B_PUBLIC: never panic; round trip; key extraction and AK/EK constructors never panic.
use attest_tpm::wire::PublicArea;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((area, inner)) = PublicArea::parse_tpm2b(data) {
        assert_eq!(area.encode().expect("encode"), inner);
        let _ = attest_tpm::PublicKey::from_public_area(&area);
        let _ = area.name();
    }
    let _ = attest_tpm::AkPublicKey::from_tpm2b_public(data);
});

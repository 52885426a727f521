#![no_main]
//! TPML_PCR_SELECTION: never panic; round trip; ordering helpers total.
use attest_tpm::wire::PcrSelection;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sel) = PcrSelection::parse(data) {
        assert_eq!(sel.encode().expect("encode"), data);
        let ordered = sel.ordered_pcrs();
        assert!(ordered.len() <= 16 * 64);
        let _ = attest_tpm::quote::describe_selection(&sel);
    }
});

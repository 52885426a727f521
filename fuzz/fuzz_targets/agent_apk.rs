#![no_main]
//! apk output: `apk list` and `apk add --simulate` parsers never panic and
//! split names from versions consistently.
use attest_host_agent::packages::apk::{
    classify_apk_error, parse_list, parse_simulation, split_name_version,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for l in parse_list(&text) {
        assert!(!l.name.is_empty());
    }
    let _ = parse_simulation(&text);
    if let Some((name, version)) = split_name_version(&text) {
        assert_eq!(format!("{name}-{version}"), text);
    }
    let _ = classify_apk_error(&text);
});

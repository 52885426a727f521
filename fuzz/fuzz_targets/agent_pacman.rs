#![no_main]
//! pacman output: `-Q`, `-Qu`, `-Qi` and size parsers never panic.
use attest_host_agent::packages::pacman::{parse_info, parse_query, parse_size, parse_upgrades};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_query(&text);
    for u in parse_upgrades(&text) {
        assert!(!u.name.is_empty());
    }
    for block in parse_info(&text) {
        if let Some(size) = block.get("Installed Size") {
            let _ = parse_size(size);
        }
    }
    let _ = parse_size(&text);
});

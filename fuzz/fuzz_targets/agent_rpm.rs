#![no_main]
//! rpm and dnf output: the rpm query, repoquery and updateinfo parsers and
//! the advisory join never panic.
use attest_host_agent::packages::dnf::{
    advisories_from, classify_dnf_error, nevra_name, parse_repoquery, parse_rpm_query,
    parse_updateinfo,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let installed = parse_rpm_query(&text);
    let ups = parse_repoquery(&text, &installed);
    let info = parse_updateinfo(&text);
    for (_, _, nevra) in &info {
        let _ = nevra_name(nevra);
    }
    for a in advisories_from(&info, &info, &ups) {
        assert!(!a.packages.is_empty());
    }
    let _ = classify_dnf_error(&text);
});

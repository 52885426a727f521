#![no_main]
//! apt and dpkg output (package metadata comes from repositories): the
//! dpkg-query, relationship, simulation, status-fd and error parsers never
//! panic, and what they return is consistent with their input.
use attest_host_agent::packages::dpkg_parse::{
    classify_apt_error, parse_depends, parse_dpkg_query, parse_simulation, plan_of, split_origin,
    status_percent, upgrades_of,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for p in parse_dpkg_query(&text) {
        assert!(!p.name.is_empty() && !p.version.is_empty());
    }
    for d in parse_depends(&text) {
        assert!(!d.name.is_empty());
    }
    let lines = parse_simulation(&text);
    let plan = plan_of(&lines);
    assert!(plan.install.len() + plan.remove.len() <= lines.len());
    for u in upgrades_of(&lines, |o| {
        o.iter().any(|o| split_origin(o).0 == "Debian-Security")
    }) {
        assert!(!u.name.is_empty() && !u.candidate.is_empty());
    }
    let _ = classify_apt_error(&text);
    for line in text.lines() {
        if let Some((_, pct)) = status_percent(line) {
            assert!((0.0..=100.0).contains(&pct));
        }
    }
});

#![no_main]
//! Debian changelogs from downloaded packages and version strings: parsing
//! never panics, version ordering is antisymmetric, and the CVE ids found
//! have the CVE form.
use attest_host_agent::packages::{cve_ids, deb_version};
use attest_host_agent::security::changelog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let entries = changelog::parse(&text);
    let mut versions = entries.iter().map(|e| e.version.as_str());
    let a = versions.next().unwrap_or("1.0");
    let b = versions.next().unwrap_or(&text);
    assert_eq!(
        deb_version::compare(a, b),
        deb_version::compare(b, a).reverse()
    );
    assert_eq!(deb_version::compare(a, a), std::cmp::Ordering::Equal);
    let between = changelog::between(&entries, b, a);
    for id in &between.cve_ids {
        assert!(id.starts_with("CVE-") && id.len() >= 13);
    }
    let mut ids = Vec::new();
    cve_ids(&text, &mut ids);
    for id in &ids {
        assert!(id[4..8].bytes().all(|c| c.is_ascii_digit()));
    }
});

#![no_main]
//! The allow-list YAML (edited by hand, reloaded live), the agent's
//! configuration and os-release: parsing never panics, and a list that
//! parses never allows an address outside its entries by default.
use attest_host_agent::allowlist::Allowlist;
use attest_host_agent::config::AgentConfig;
use attest_host_agent::packages::os_release::OsRelease;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(list) = Allowlist::parse(&text) {
        if list.is_empty() {
            assert!(!list.allows("127.0.0.1".parse().unwrap()));
            assert!(!list.allows("::1".parse().unwrap()));
        }
    }
    let _ = AgentConfig::parse(std::path::Path::new("fuzz.yaml"), &text);
    let os = OsRelease::parse(&text);
    let _ = os.family();
});

#![no_main]
//! Bytes from outside the host: the Debian security tracker's JSON, and
//! the manager's enrollment answers with their PEM bundle. Parsing and the
//! bundle checks never panic, and no bundle is accepted without a key.
use std::sync::Arc;

use attest_domain::clock::{SharedClock, SystemClock};
use attest_host_agent::enroll::check_bundle;
use attest_host_agent::security::debian_tracker::Tracker;
use attest_proto::host_enroll::{EnrollAccepted, EnrollStatus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tracker) = Tracker::parse(data) {
        let _ = tracker.severity("openssl", &["CVE-2024-0727".to_owned()], "bookworm");
    }
    let _ = serde_json::from_slice::<EnrollAccepted>(data);
    if let Ok(EnrollStatus::Approved(bundle)) = serde_json::from_slice::<EnrollStatus>(data) {
        let clock: SharedClock = Arc::new(SystemClock);
        if check_bundle(&bundle, None, &clock).is_ok() {
            assert!(bundle.server_key.is_some());
        }
    }
});

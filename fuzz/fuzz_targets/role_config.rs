#![no_main]
//! Role base configs (`ITL_CONFIG_CACHE_DIR/<role>.yaml`): parsing,
//! rendering with a machine's values and building the pending config never
//! panic, and whatever the base, the pending config is a single v1alpha1
//! document marked pending.
use attest_talos_config::{pending_config, BaseConfig, MachinePatch, PENDING_LABEL};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(base) = BaseConfig::parse(text) else {
        return;
    };
    let patch = MachinePatch {
        machine_id: "m".into(),
        hostname: Some("node-1".into()),
        assigned_ip: Some("10.0.0.1/24".into()),
        hw_mac: Some("aa:bb:cc:dd:ee:ff".into()),
    };
    if let Ok(rendered) = base.render(&patch) {
        assert!(BaseConfig::parse(&rendered).is_ok(), "render produced an unparseable config");
    }
    let pending = pending_config(None, Some(&base), Some(&patch));
    assert!(pending.contains(PENDING_LABEL));
    assert!(BaseConfig::parse(&pending).is_ok(), "pending config does not parse");
});

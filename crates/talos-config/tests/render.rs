#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use attest_talos_config::{BaseConfig, ConfigProblem, MachinePatch, TalosConfigError};
use common::{at, docs, yaml, CONTROLPLANE, WORKER};
use serde_norway::{Mapping, Value};

fn patch(hostname: Option<&str>, ip: Option<&str>, mac: Option<&str>) -> MachinePatch {
    MachinePatch {
        machine_id: "m-0123".to_owned(),
        hostname: hostname.map(str::to_owned),
        assigned_ip: ip.map(str::to_owned),
        hw_mac: mac.map(str::to_owned),
    }
}

fn render(base: &str, p: &MachinePatch) -> Vec<Value> {
    docs(&BaseConfig::parse(base).unwrap().render(p).unwrap())
}

/// Removes `machine.network.<key>` so the rest can be compared whole.
fn without_network_key(mut doc: Value, key: &str) -> Value {
    if let Some(network) = doc
        .get_mut("machine")
        .and_then(|m| m.get_mut("network"))
        .and_then(Value::as_mapping_mut)
    {
        network.remove(key);
    }
    doc
}

#[test]
fn sets_hostname_and_creates_interface_selected_by_mac() {
    let p = patch(
        Some("app-13"),
        Some("10.0.1.13/24"),
        Some("aa:bb:cc:dd:ee:ff"),
    );
    let out = render(WORKER, &p);
    let network = at(&out[0], "machine.network");
    assert_eq!(network["hostname"], Value::from("app-13"));
    assert_eq!(
        network["interfaces"],
        yaml(
            "- deviceSelector: {hardwareAddr: 'aa:bb:cc:dd:ee:ff'}\n  addresses: [10.0.1.13/24]\n  dhcp: false\n"
        )
    );
    // The base's own network settings stay.
    assert_eq!(network["nameservers"], yaml("[10.0.0.53, 10.0.0.54]"));
}

#[test]
fn new_interface_without_mac_is_eth0() {
    let out = render(WORKER, &patch(None, Some("10.0.1.13/24"), None));
    assert_eq!(
        at(&out[0], "machine.network.interfaces"),
        &yaml("- interface: eth0\n  addresses: [10.0.1.13/24]\n  dhcp: false\n")
    );
    assert!(at(&out[0], "machine.network").get("hostname").is_none());
}

#[test]
fn existing_interface_keeps_its_selector_and_other_fields() {
    let out = render(
        CONTROLPLANE,
        &patch(
            Some("cp-1"),
            Some("10.0.1.11/24"),
            Some("aa:bb:cc:dd:ee:01"),
        ),
    );
    let interfaces = at(&out[0], "machine.network.interfaces");
    assert_eq!(
        interfaces,
        &yaml(
            r#"
- deviceSelector: {busPath: "0000:03:00.0"}
  mtu: 9000
  vip: {ip: 10.0.1.10}
  routes: [{network: 0.0.0.0/0, gateway: 10.0.1.1}]
  addresses: [10.0.1.11/24]
  dhcp: false
"#
        )
    );
}

#[test]
fn replaces_addresses_and_dhcp_of_first_interface_only() {
    let base = "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    interfaces:\n      - interface: eno1\n        dhcp: true\n        addresses: [192.168.0.5/24]\n      - interface: eno2\n        dhcp: true\n";
    let out = render(
        base,
        &patch(None, Some("10.0.1.13/24"), Some("aa:bb:cc:dd:ee:ff")),
    );
    assert_eq!(
        at(&out[0], "machine.network.interfaces"),
        &yaml("- {interface: eno1, dhcp: false, addresses: [10.0.1.13/24]}\n- {interface: eno2, dhcp: true}\n")
    );
}

#[test]
fn keeps_unrelated_fields_and_other_documents_identical() {
    for base in [WORKER, CONTROLPLANE] {
        let before = docs(base);
        let after = render(
            base,
            &patch(Some("n-1"), Some("10.0.1.13/24"), Some("aa:bb:cc:dd:ee:ff")),
        );
        assert_eq!(before.len(), after.len());
        let strip = |d: &Value| {
            without_network_key(without_network_key(d.clone(), "hostname"), "interfaces")
        };
        assert_eq!(strip(&before[0]), strip(&after[0]));
        assert_eq!(before[1..], after[1..]);
    }
}

#[test]
fn output_is_multi_document_only_when_input_was() {
    let p = patch(Some("n-1"), None, None);
    let multi = BaseConfig::parse(WORKER).unwrap().render(&p).unwrap();
    assert_eq!(multi.matches("\n---\n").count(), 2);
    let single = BaseConfig::parse(CONTROLPLANE).unwrap().render(&p).unwrap();
    assert!(!single.contains("---"));
}

#[test]
fn empty_patch_changes_nothing() {
    for base in [WORKER, CONTROLPLANE] {
        assert_eq!(render(base, &patch(None, None, None)), docs(base));
    }
}

#[test]
fn creates_missing_or_null_network() {
    for base in [
        "version: v1alpha1\nmachine:\n  type: worker\n",
        "version: v1alpha1\nmachine:\n  type: worker\n  network:\n",
        "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    interfaces: []\n",
    ] {
        let out = render(base, &patch(Some("n-1"), Some("10.0.1.13/24"), None));
        assert_eq!(
            at(&out[0], "machine.network"),
            &yaml("hostname: n-1\ninterfaces: [{interface: eth0, addresses: [10.0.1.13/24], dhcp: false}]\n")
        );
    }
}

#[test]
fn values_cannot_inject_yaml() {
    let hostname = "x\nmachine:\n  token: injected";
    let out = render(WORKER, &patch(Some(hostname), None, None));
    assert_eq!(
        at(&out[0], "machine.network.hostname"),
        &Value::from(hostname)
    );
    assert_eq!(
        at(&out[0], "machine.token"),
        at(&docs(WORKER)[0], "machine.token")
    );
}

#[test]
fn malformed_network_is_an_error_not_a_panic() {
    let cases = [
        (
            "network: 3",
            ConfigProblem::NotMapping {
                field: "machine.network",
            },
        ),
        (
            "network: [a]",
            ConfigProblem::NotMapping {
                field: "machine.network",
            },
        ),
        (
            "network: {interfaces: 3}",
            ConfigProblem::NotList {
                field: "machine.network.interfaces",
            },
        ),
        (
            "network: {interfaces: [eth0]}",
            ConfigProblem::NotMapping {
                field: "machine.network.interfaces[0]",
            },
        ),
    ];
    for (network, expected) in cases {
        let base = format!("version: v1alpha1\nmachine:\n  type: worker\n  {network}\n");
        let base = BaseConfig::parse(&base).unwrap();
        let err = base
            .render(&patch(Some("n-1"), Some("10.0.1.13/24"), None))
            .unwrap_err();
        match &err {
            TalosConfigError::Render {
                machine_id,
                problem,
            } => {
                assert_eq!(machine_id, "m-0123");
                assert_eq!(problem, &expected, "{network}");
            }
            other => panic!("{network}: unexpected {other:?}"),
        }
        assert!(err.to_string().starts_with("machine m-0123: cannot render"));
    }
}

#[test]
fn hostname_alone_does_not_touch_interfaces() {
    let base = "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    interfaces: 3\n";
    let out = render(base, &patch(Some("n-1"), None, Some("aa:bb:cc:dd:ee:ff")));
    let mut expected = Mapping::new();
    expected.insert("interfaces".into(), 3.into());
    expected.insert("hostname".into(), "n-1".into());
    assert_eq!(at(&out[0], "machine.network"), &Value::Mapping(expected));
}

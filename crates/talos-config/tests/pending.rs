#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use attest_proto::machine::Role;
use attest_talos_config::{
    pending_config, BaseConfig, MachinePatch, MachineType, PENDING_LABEL, PENDING_LABEL_VALUE,
};
use common::{at, docs, yaml, CONTROLPLANE, WORKER};
use serde_norway::Value;

/// Values of 16+ characters in the fixtures that the pending config may
/// carry because they are not secret. Everything else of that length counts
/// as a secret. The check can fail: were `machine.token` added to the
/// pending allowlist (e.g. copied into a field in `pending.rs`),
/// `no_fixture_secret_reaches_the_pending_config` would report the token
/// (tried by hand; `the_leak_check_can_fail` keeps the checker honest).
const NOT_SECRET: &[&str] = &[
    "factory.talos.dev/installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.9.5",
    "ghcr.io/siderolabs/installer:v1.9.5",
    "https://k8s-api.prod.internal.example.com:6443",
    // The API server's certSAN, part of the endpoint.
    "k8s-api.prod.internal.example.com",
    "prod-fleet-cluster",
    "ntp1.internal.example.com",
    "ntp2.internal.example.com",
    "time.cloudflare.com",
];

/// Every string scalar in all documents of `text`.
fn strings(text: &str) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Sequence(seq) => seq.iter().for_each(|v| walk(v, out)),
            Value::Mapping(map) => map.iter().for_each(|(k, v)| {
                walk(k, out);
                walk(v, out);
            }),
            Value::Tagged(t) => walk(&t.value, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    docs(text).iter().for_each(|d| walk(d, &mut out));
    out
}

/// The fixture's long, non-allowlisted strings that appear in `output`,
/// either verbatim in the text or as (part of) a parsed value.
fn leaked(fixture: &str, output: &str) -> BTreeSet<String> {
    let output_values = strings(output);
    strings(fixture)
        .into_iter()
        .filter(|s| s.len() >= 16 && !NOT_SECRET.contains(&s.as_str()))
        .filter(|s| {
            output.contains(s.as_str()) || output_values.iter().any(|v| v.contains(s.as_str()))
        })
        .collect()
}

fn patch() -> MachinePatch {
    MachinePatch {
        machine_id: "m-0123".to_owned(),
        hostname: Some("app-13".to_owned()),
        assigned_ip: Some("10.0.1.13/24".to_owned()),
        hw_mac: Some("aa:bb:cc:dd:ee:ff".to_owned()),
    }
}

/// Dotted paths of every mapping key (sequence items add no segment).
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Mapping(map) => {
            for (k, v) in map {
                let path = format!("{prefix}{}", k.as_str().unwrap());
                out.insert(path.clone());
                key_paths(v, &format!("{path}."), out);
            }
        }
        Value::Sequence(seq) => seq.iter().for_each(|v| key_paths(v, prefix, out)),
        _ => {}
    }
}

#[test]
fn no_fixture_secret_reaches_the_pending_config() {
    for (fixture, role) in [
        (WORKER, Role::WorkerApp),
        (CONTROLPLANE, Role::Controlplane),
    ] {
        let base = BaseConfig::parse(fixture).unwrap();
        // The check must have something to find: the fixtures' secrets are
        // among the candidates.
        let candidates = strings(fixture);
        let token = at(&docs(fixture)[0], "machine.token")
            .as_str()
            .unwrap()
            .to_owned();
        assert!(candidates.contains(&token) && token.len() >= 16);
        for p in [None, Some(&patch())] {
            let out = pending_config(Some(role), Some(&base), p);
            assert_eq!(leaked(fixture, &out), BTreeSet::new(), "{out}");
            for secret in [
                "token", "secret", "key:", "crt", "LS0t", "password", "content",
            ] {
                assert!(!out.contains(secret), "{secret} in {out}");
            }
        }
    }
}

#[test]
fn the_leak_check_can_fail() {
    // A rendered (approved) config carries every secret; the check sees them.
    let rendered = BaseConfig::parse(CONTROLPLANE)
        .unwrap()
        .render(&patch())
        .unwrap();
    let found = leaked(CONTROLPLANE, &rendered);
    let token = at(&docs(CONTROLPLANE)[0], "machine.token")
        .as_str()
        .unwrap()
        .to_owned();
    let sa_key = at(&docs(CONTROLPLANE)[0], "cluster.serviceAccount.key")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(found.contains(&token) && found.contains(&sa_key));
    // And a single secret copied into otherwise harmless output is found too.
    let out = pending_config(None, None, None) + &format!("# {token}\n");
    assert_eq!(leaked(CONTROLPLANE, &out), BTreeSet::from([token]));
}

#[test]
fn only_allowlisted_keys_appear() {
    let allowed: BTreeSet<String> = [
        "version",
        "machine",
        "machine.type",
        "machine.install",
        "machine.install.disk",
        "machine.install.image",
        "machine.network",
        "machine.network.hostname",
        "machine.network.nameservers",
        "machine.time",
        "machine.time.servers",
        "machine.nodeLabels",
        "machine.nodeLabels.itl.io/attestation",
        "cluster",
        "cluster.controlPlane",
        "cluster.controlPlane.endpoint",
        "cluster.clusterName",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for fixture in [WORKER, CONTROLPLANE] {
        let base = BaseConfig::parse(fixture).unwrap();
        let out = pending_config(None, Some(&base), Some(&patch()));
        let out_docs = docs(&out);
        assert_eq!(out_docs.len(), 1, "other documents are not carried over");
        let mut keys = BTreeSet::new();
        key_paths(&out_docs[0], "", &mut keys);
        assert!(keys.is_subset(&allowed), "{:?}", keys.difference(&allowed));
    }
}

#[test]
fn copies_the_allowlisted_values() {
    let base = BaseConfig::parse(WORKER).unwrap();
    let out = docs(&pending_config(
        Some(Role::WorkerApp),
        Some(&base),
        Some(&patch()),
    ));
    let expected = yaml(&format!(
        r#"
version: v1alpha1
machine:
  type: worker
  install:
    disk: /dev/nvme0n1
    image: {}
  network:
    hostname: app-13
    nameservers: [10.0.0.53, 10.0.0.54]
  time:
    servers: [ntp1.internal.example.com, ntp2.internal.example.com]
  nodeLabels:
    {PENDING_LABEL}: {PENDING_LABEL_VALUE}
cluster:
  controlPlane:
    endpoint: https://k8s-api.prod.internal.example.com:6443
  clusterName: prod-fleet-cluster
"#,
        NOT_SECRET[0]
    ));
    assert_eq!(out, [expected]);
}

#[test]
fn without_a_base_the_role_picks_the_machine_type() {
    for (role, ty) in [
        (Some(Role::Controlplane), "controlplane"),
        (Some(Role::WorkerApp), "worker"),
        (Some(Role::Generic), "worker"),
        (None, "worker"),
    ] {
        let out = pending_config(role, None, None);
        assert_eq!(
            docs(&out),
            [yaml(&format!(
                "version: v1alpha1\nmachine:\n  type: {ty}\n  nodeLabels:\n    {PENDING_LABEL}: {PENDING_LABEL_VALUE}\n"
            ))]
        );
        // It is itself a well-formed base.
        let parsed = BaseConfig::parse(&out).unwrap();
        assert_eq!(parsed.machine_type().as_str(), ty);
    }
    let out = docs(&pending_config(None, None, Some(&patch())));
    assert_eq!(at(&out[0], "machine.network"), &yaml("hostname: app-13"));
}

#[test]
fn pending_from_a_fixture_is_a_valid_base_of_the_same_type() {
    for (fixture, ty) in [
        (WORKER, MachineType::Worker),
        (CONTROLPLANE, MachineType::Controlplane),
    ] {
        let base = BaseConfig::parse(fixture).unwrap();
        let pending = BaseConfig::parse(&pending_config(None, Some(&base), None)).unwrap();
        assert_eq!(pending.machine_type(), ty);
    }
}

#[test]
fn fields_of_the_wrong_type_are_not_copied() {
    let base = BaseConfig::parse(
        r#"
version: v1alpha1
machine:
  type: worker
  install:
    image: {registry: r.example.com, password: hunter2-hunter2-hunter2}
    disk: [/dev/sda, leaked-secret-value-1]
    wipe: "yes"
  network:
    nameservers: [10.0.0.53, {token: leaked-secret-value-2}]
  time: {servers: leaked-secret-value-3}
cluster:
  controlPlane: {endpoint: {token: leaked-secret-value-4}}
  clusterName: 12345
"#,
    )
    .unwrap();
    let out = pending_config(None, Some(&base), None);
    assert!(!out.contains("hunter2") && !out.contains("leaked"), "{out}");
    assert_eq!(
        docs(&out),
        [yaml(&format!(
            "version: v1alpha1\nmachine:\n  type: worker\n  nodeLabels:\n    {PENDING_LABEL}: {PENDING_LABEL_VALUE}\n"
        ))]
    );
}

//! The config for machines that are not approved (yet), and for unknown
//! MACs: enough to boot and install, nothing that lets a machine join the
//! cluster.
//!
//! Built from an allowlist: the output is a fixed struct, so a field can only
//! appear here if someone adds it to the struct below. Deleting secrets from
//! the base instead would leak every secret field Talos adds in a later
//! release, and every credential an operator puts in (registry passwords,
//! file contents, ...).

use std::collections::BTreeMap;

use attest_proto::machine::Role;
use serde::Serialize;
use serde_norway::{Mapping, Value};

use crate::base::BaseConfig;
use crate::error::MachineType;
use crate::render::MachinePatch;

/// Node label marking a pending config. A YAML comment would be lost in
/// value serialization, and a label is visible where it matters: on the
/// node, should one ever register with it (`machine.nodeLabels`, Talos 1.3+).
pub const PENDING_LABEL: &str = "itl.io/attestation";
/// Value of [`PENDING_LABEL`].
pub const PENDING_LABEL_VALUE: &str = "pending";

#[derive(Serialize)]
struct Doc {
    version: &'static str,
    machine: Machine,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<Cluster>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Machine {
    #[serde(rename = "type")]
    machine_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    install: Option<Install>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<Network>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<Time>,
    node_labels: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct Install {
    #[serde(skip_serializing_if = "Option::is_none")]
    disk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
}

#[derive(Serialize)]
struct Network {
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nameservers: Option<Vec<String>>,
}

#[derive(Serialize)]
struct Time {
    servers: Vec<String>,
}

/// The endpoint and name are not secrets: every kubeconfig and DNS record
/// carries them, and without them the config would not be a valid Talos
/// config.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cluster {
    #[serde(skip_serializing_if = "Option::is_none")]
    control_plane: Option<ControlPlane>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_name: Option<String>,
}

#[derive(Serialize)]
struct ControlPlane {
    endpoint: String,
}

/// The pending config: `version`, `machine.type`, install disk and image
/// (never `wipe`: an unapproved machine must not be told to erase a disk),
/// hostname (from `patch`), nameservers, time servers, the cluster endpoint
/// and name, and the [`PENDING_LABEL`] marker. Fields are copied from `base`
/// only when they have the expected scalar type, so a mapping where a string
/// belongs cannot smuggle anything through. Without a base, `machine.type`
/// comes from the role (`worker` unless `controlplane`).
pub fn pending_config(
    role: Option<Role>,
    base: Option<&BaseConfig>,
    patch: Option<&MachinePatch>,
) -> String {
    let machine_type = match (base, role) {
        (Some(base), _) => base.machine_type(),
        (None, Some(Role::Controlplane)) => MachineType::Controlplane,
        (None, _) => MachineType::Worker,
    };
    let main = base.and_then(BaseConfig::main_doc);
    let machine = main.and_then(|m| mapping_at(m, "machine"));
    let cluster = main.and_then(|m| mapping_at(m, "cluster"));

    let install = machine
        .and_then(|m| mapping_at(m, "install"))
        .map(|i| Install {
            disk: string_at(i, "disk"),
            image: string_at(i, "image"),
        });
    let hostname = patch.and_then(|p| p.hostname.clone());
    let nameservers = machine
        .and_then(|m| mapping_at(m, "network"))
        .and_then(|n| strings_at(n, "nameservers"));
    let time_servers = machine
        .and_then(|m| mapping_at(m, "time"))
        .and_then(|t| strings_at(t, "servers"));
    let endpoint = cluster
        .and_then(|c| mapping_at(c, "controlPlane"))
        .and_then(|c| string_at(c, "endpoint"));
    let cluster_name = cluster.and_then(|c| string_at(c, "clusterName"));

    let doc = Doc {
        version: "v1alpha1",
        machine: Machine {
            machine_type: machine_type.as_str(),
            install: install.filter(|i| i.disk.is_some() || i.image.is_some()),
            network: (hostname.is_some() || nameservers.is_some()).then_some(Network {
                hostname,
                nameservers,
            }),
            time: time_servers.map(|servers| Time { servers }),
            node_labels: BTreeMap::from([(PENDING_LABEL, PENDING_LABEL_VALUE)]),
        },
        cluster: (endpoint.is_some() || cluster_name.is_some()).then(|| Cluster {
            control_plane: endpoint.map(|endpoint| ControlPlane { endpoint }),
            cluster_name,
        }),
    };
    // Serializing plain strings, bools and lists cannot fail; should it ever,
    // the minimal form is still a correct pending config.
    serde_norway::to_string(&doc).unwrap_or_else(|_| {
        format!(
            "version: v1alpha1\nmachine:\n  type: {}\n  nodeLabels:\n    {PENDING_LABEL}: {PENDING_LABEL_VALUE}\n",
            machine_type.as_str()
        )
    })
}

fn mapping_at<'a>(map: &'a Mapping, key: &str) -> Option<&'a Mapping> {
    map.get(key).and_then(Value::as_mapping)
}

fn string_at(map: &Mapping, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A list of strings, or nothing if any element is not a string.
fn strings_at(map: &Mapping, key: &str) -> Option<Vec<String>> {
    map.get(key)?
        .as_sequence()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

//! The per-machine patch on top of a role's base config.

use serde_norway::{Mapping, Sequence, Value};

use crate::base::BaseConfig;
use crate::error::{ConfigProblem, TalosConfigError};
use crate::yaml;

/// What differs between machines of one role. Values are taken as given:
/// the caller has validated them (they are serialized as YAML strings, so
/// they cannot inject structure either way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachinePatch {
    /// Only used to name the machine in errors.
    pub machine_id: String,
    /// Becomes `machine.network.hostname`.
    pub hostname: Option<String>,
    /// Static address in CIDR form (`10.0.1.13/24`) for the first interface.
    pub assigned_ip: Option<String>,
    /// Normalised `aa:bb:cc:dd:ee:ff`; selects the interface when one has to
    /// be created, since kernel interface names are not stable.
    pub hw_mac: Option<String>,
}

impl BaseConfig {
    /// The base with `patch` applied to its v1alpha1 document; the other
    /// documents come out as they went in.
    pub fn render(&self, patch: &MachinePatch) -> Result<String, TalosConfigError> {
        let fail = |problem| TalosConfigError::Render {
            machine_id: patch.machine_id.clone(),
            problem,
        };
        let mut docs = self.documents().to_vec();
        let main = docs
            .get_mut(self.main_index())
            .ok_or(ConfigProblem::NoV1alpha1)
            .map_err(fail)?;
        apply(main, patch).map_err(fail)?;
        yaml::to_documents(&docs).map_err(fail)
    }
}

fn apply(doc: &mut Value, patch: &MachinePatch) -> Result<(), ConfigProblem> {
    if patch.hostname.is_none() && patch.assigned_ip.is_none() {
        return Ok(());
    }
    let machine = doc
        .get_mut("machine")
        .and_then(Value::as_mapping_mut)
        .ok_or(ConfigProblem::NotMapping { field: "machine" })?;
    let network = child_mapping(machine, "network", "machine.network")?;
    if let Some(hostname) = &patch.hostname {
        network.insert("hostname".into(), hostname.as_str().into());
    }
    if let Some(cidr) = &patch.assigned_ip {
        let interfaces = child_list(network, "interfaces", "machine.network.interfaces")?;
        if interfaces.is_empty() {
            interfaces.push(new_interface(patch.hw_mac.as_deref()));
        }
        let first = interfaces
            .first_mut()
            .and_then(Value::as_mapping_mut)
            .ok_or(ConfigProblem::NotMapping {
                field: "machine.network.interfaces[0]",
            })?;
        first.insert(
            "addresses".into(),
            Value::Sequence(vec![cidr.as_str().into()]),
        );
        first.insert("dhcp".into(), false.into());
    }
    Ok(())
}

/// An interface selected by MAC when known; `eth0` is only a guess that
/// holds on single-NIC machines without predictable interface names.
fn new_interface(hw_mac: Option<&str>) -> Value {
    let mut iface = Mapping::new();
    match hw_mac {
        Some(mac) => {
            let mut selector = Mapping::new();
            selector.insert("hardwareAddr".into(), mac.into());
            iface.insert("deviceSelector".into(), Value::Mapping(selector));
        }
        None => {
            iface.insert("interface".into(), "eth0".into());
        }
    }
    Value::Mapping(iface)
}

/// `parent[key]` as a mapping, created when absent or null (`network:`
/// with nothing after it).
fn child_mapping<'a>(
    parent: &'a mut Mapping,
    key: &str,
    field: &'static str,
) -> Result<&'a mut Mapping, ConfigProblem> {
    let slot = parent.entry(key.into()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Mapping(Mapping::new());
    }
    slot.as_mapping_mut()
        .ok_or(ConfigProblem::NotMapping { field })
}

fn child_list<'a>(
    parent: &'a mut Mapping,
    key: &str,
    field: &'static str,
) -> Result<&'a mut Sequence, ConfigProblem> {
    let slot = parent.entry(key.into()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Sequence(Sequence::new());
    }
    slot.as_sequence_mut()
        .ok_or(ConfigProblem::NotList { field })
}

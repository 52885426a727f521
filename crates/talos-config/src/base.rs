//! A parsed role base config.

use attest_proto::machine::Role;
use serde_norway::{Mapping, Value};

use crate::error::{ConfigProblem, MachineType, TalosConfigError};
use crate::yaml;

/// A Talos config as the operator wrote it: one `version: v1alpha1`
/// document plus any newer-style (`kind: ...`) documents, which are kept
/// untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseConfig {
    docs: Vec<Value>,
    /// Index in `docs` of the v1alpha1 document.
    main: usize,
    machine_type: MachineType,
}

impl BaseConfig {
    /// Checks the shape Talos and [`BaseConfig::render`] rely on: exactly one
    /// v1alpha1 document, with a `machine` mapping and a known
    /// `machine.type`. Does not check the role (see [`BaseConfig::check_role`]).
    pub fn parse(text: &str) -> Result<Self, ConfigProblem> {
        let parsed = yaml::parse_documents(text)?;
        let mut main = None;
        let mut v1alpha1 = 0;
        for (index, (position, doc)) in parsed.iter().enumerate() {
            let map = doc.as_mapping().ok_or(ConfigProblem::DocumentNotMapping {
                document: *position,
            })?;
            match map.get("version") {
                None => {}
                Some(v) if v.as_str() == Some("v1alpha1") => {
                    v1alpha1 += 1;
                    main.get_or_insert(index);
                }
                Some(_) => {
                    return Err(ConfigProblem::UnsupportedVersion {
                        document: *position,
                    })
                }
            }
        }
        if v1alpha1 > 1 {
            return Err(ConfigProblem::SeveralV1alpha1 { count: v1alpha1 });
        }
        let main = main.ok_or(ConfigProblem::NoV1alpha1)?;
        let docs: Vec<Value> = parsed.into_iter().map(|(_, doc)| doc).collect();
        let machine_type = docs
            .get(main)
            .map(machine_type_of)
            .unwrap_or(Err(ConfigProblem::NoV1alpha1))?;
        Ok(Self {
            docs,
            main,
            machine_type,
        })
    }

    /// The base's `machine.type`.
    pub fn machine_type(&self) -> MachineType {
        self.machine_type
    }

    /// Whether this base may be given to machines of `role`: a worker config
    /// on a control plane role (or the reverse) would silently build the
    /// wrong cluster topology.
    pub fn check_role(&self, role: Role) -> Result<(), TalosConfigError> {
        let needs = role_needs(role)?;
        let fits = match role {
            Role::Controlplane => matches!(
                self.machine_type,
                MachineType::Controlplane | MachineType::Init
            ),
            Role::WorkerInfra | Role::WorkerApp => self.machine_type == MachineType::Worker,
            _ => true,
        };
        if fits {
            Ok(())
        } else {
            Err(ConfigProblem::RoleMismatch {
                found: self.machine_type,
                role,
                needs,
            }
            .into())
        }
    }

    pub(crate) fn documents(&self) -> &[Value] {
        &self.docs
    }

    pub(crate) fn main_index(&self) -> usize {
        self.main
    }

    /// The v1alpha1 document (a mapping, checked by `parse`).
    pub(crate) fn main_doc(&self) -> Option<&Mapping> {
        self.docs.get(self.main).and_then(Value::as_mapping)
    }
}

/// What `machine.type` a role requires, in words; errors for the roles that
/// are not Talos nodes at all.
fn role_needs(role: Role) -> Result<&'static str, TalosConfigError> {
    match role {
        Role::Controlplane => Ok("controlplane (or init)"),
        Role::WorkerInfra | Role::WorkerApp => Ok("worker"),
        Role::Generic => Ok("any machine.type"),
        Role::Windows | Role::Linux => Err(TalosConfigError::NotTalosRole(role)),
    }
}

/// Rejects roles with no Talos config before any file is touched.
pub(crate) fn require_talos_role(role: Role) -> Result<(), TalosConfigError> {
    role_needs(role).map(|_| ())
}

fn machine_type_of(doc: &Value) -> Result<MachineType, ConfigProblem> {
    let machine = doc
        .get("machine")
        .ok_or(ConfigProblem::Missing { field: "machine" })?
        .as_mapping()
        .ok_or(ConfigProblem::NotMapping { field: "machine" })?;
    let ty = machine.get("type").ok_or(ConfigProblem::Missing {
        field: "machine.type",
    })?;
    ty.as_str()
        .and_then(MachineType::parse)
        .ok_or(ConfigProblem::UnknownMachineType)
}

//! Errors. None of them carries text from a config file: a base config holds
//! cluster secrets, and error messages end up in logs and API answers. They
//! name paths, field names, line numbers and the few known `machine.type`
//! spellings, nothing else.

use std::fmt;
use std::io;
use std::path::PathBuf;

use attest_proto::machine::Role;

/// The `machine.type` values Talos knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineType {
    /// Deprecated bootstrap control plane node; still accepted by Talos.
    Init,
    Controlplane,
    Worker,
}

impl MachineType {
    /// The spelling in `machine.type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MachineType::Init => "init",
            MachineType::Controlplane => "controlplane",
            MachineType::Worker => "worker",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Self::Init, Self::Controlplane, Self::Worker]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

impl fmt::Display for MachineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with a config's content, independent of where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("not UTF-8 text")]
    NotUtf8,
    /// Only the position: parser messages may quote the offending text.
    #[error("not valid YAML{}", position(*.line, *.column))]
    NotYaml {
        line: Option<usize>,
        column: Option<usize>,
    },
    #[error("document {document} is not a mapping")]
    DocumentNotMapping { document: usize },
    #[error("document {document} has a `version` other than v1alpha1")]
    UnsupportedVersion { document: usize },
    #[error("no document has `version: v1alpha1`")]
    NoV1alpha1,
    #[error("{count} documents have `version: v1alpha1`, expected exactly one")]
    SeveralV1alpha1 { count: usize },
    #[error("{field} is missing")]
    Missing { field: &'static str },
    #[error("{field} is not a mapping")]
    NotMapping { field: &'static str },
    #[error("{field} is not a list")]
    NotList { field: &'static str },
    #[error("machine.type is not one of init, controlplane, worker")]
    UnknownMachineType,
    #[error("machine.type is {found} but role {role} needs {needs}")]
    RoleMismatch {
        found: MachineType,
        role: Role,
        needs: &'static str,
    },
    #[error("could not serialize the YAML")]
    Serialize,
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// Failure to load, validate or render a role's Talos config.
#[derive(Debug, thiserror::Error)]
pub enum TalosConfigError {
    /// `windows` and `linux` machines are not Talos nodes; the caller decides
    /// whether that is an error.
    #[error("role {0} takes no Talos config")]
    NotTalosRole(Role),
    #[error("role config {}: file does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("role config {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("role config {}: larger than {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("role config {}: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        problem: ConfigProblem,
    },
    /// Content from elsewhere than a role file (e.g. [`crate::BaseConfig::parse`]).
    #[error("Talos config: {0}")]
    Config(#[from] ConfigProblem),
    #[error("machine {machine_id}: cannot render Talos config: {problem}")]
    Render {
        machine_id: String,
        problem: ConfigProblem,
    },
}

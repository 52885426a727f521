//! Node roles as spelled on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The role a machine is approved for; drives which base config it gets and
/// whether approval needs dual control.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum Role {
    #[serde(rename = "controlplane")]
    Controlplane,
    #[serde(rename = "worker-infra")]
    WorkerInfra,
    /// Default for `POST /machines/import` (seed) and the least privileged
    /// Talos role.
    #[default]
    #[serde(rename = "worker-app")]
    WorkerApp,
    #[serde(rename = "generic")]
    Generic,
    #[serde(rename = "windows")]
    Windows,
    #[serde(rename = "linux")]
    Linux,
}

impl Role {
    /// Every role, in the seed's order.
    pub const ALL: [Role; 6] = [
        Role::Controlplane,
        Role::WorkerInfra,
        Role::WorkerApp,
        Role::Generic,
        Role::Windows,
        Role::Linux,
    ];

    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Controlplane => "controlplane",
            Role::WorkerInfra => "worker-infra",
            Role::WorkerApp => "worker-app",
            Role::Generic => "generic",
            Role::Windows => "windows",
            Role::Linux => "linux",
        }
    }

    /// Talos cluster roles (get a Talos MachineConfig); the others are
    /// non-Talos nodes.
    pub const fn is_talos(self) -> bool {
        matches!(
            self,
            Role::Controlplane | Role::WorkerInfra | Role::WorkerApp
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the six roles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected one of: controlplane, worker-infra, worker-app, generic, windows, linux)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// Exact match (same as serde): `ITL_DUAL_CONTROL_ROLES` and request
    /// bodies must not disagree about what a role is called.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_classifies() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), r);
        }
        let talos: Vec<Role> = Role::ALL.into_iter().filter(|r| r.is_talos()).collect();
        assert_eq!(
            talos,
            [Role::Controlplane, Role::WorkerInfra, Role::WorkerApp]
        );
        assert_eq!(Role::default(), Role::WorkerApp);
    }

    #[test]
    fn rejects_other_spellings() {
        for bad in [
            "worker_app",
            "WorkerApp",
            "Controlplane",
            "control-plane",
            "",
        ] {
            let err = bad.parse::<Role>().unwrap_err();
            assert!(err.to_string().contains("expected one of"));
            assert!(serde_json::from_str::<Role>(&format!("\"{bad}\"")).is_err());
        }
    }
}

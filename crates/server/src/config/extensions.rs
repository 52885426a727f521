//! Settings of the extension registry and of machine authentication for
//! extension routes (secret retrieval).

use std::str::FromStr;

use attest_ext::ExtensionEnv;

use super::{ConfigError, Env};

/// How machines authenticate to extension routes (`ITL_MACHINE_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MachineAuthMode {
    /// The seed's `X-EK-Fingerprint` header. Compatible, but a fingerprint
    /// is public: anyone who knows it can act as the machine.
    #[default]
    EkFingerprint,
    /// The machine's enrollment certificate, passed by the TLS proxy in
    /// `X-Client-Cert` (needs `ITL_CLIENT_CERT_HEADER`). Recommended.
    EnrollmentCert,
}

impl FromStr for MachineAuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ek-fingerprint" => Ok(Self::EkFingerprint),
            "enrollment-cert" => Ok(Self::EnrollmentCert),
            other => Err(format!(
                "expected ek-fingerprint or enrollment-cert, got `{other}`"
            )),
        }
    }
}

/// The resolved group.
#[derive(Debug, Clone, Default)]
pub struct ExtensionSettings {
    /// Names of extensions not to load.
    pub disabled: Vec<String>,
    /// How machines authenticate to extension routes.
    pub machine_auth: MachineAuthMode,
    /// The `ITL_*` environment, from which extensions read their own
    /// settings (their names are listed in `docs/configuration.md`).
    pub env: ExtensionEnv,
}

/// The TOML keys of this group.
#[derive(Debug, Default)]
pub(super) struct ExtensionFile {
    pub extensions_disabled: Option<Vec<String>>,
    pub machine_auth: Option<String>,
}

impl ExtensionSettings {
    /// Environment over file over defaults.
    pub(super) fn resolve(env: &dyn Env, file: ExtensionFile) -> Result<Self, ConfigError> {
        let disabled = match env.var("ITL_EXTENSIONS_DISABLED") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => file.extensions_disabled.unwrap_or_default(),
        };
        let machine_auth = match env.var("ITL_MACHINE_AUTH").or(file.machine_auth) {
            None => MachineAuthMode::default(),
            Some(raw) => raw.parse().map_err(|message| ConfigError::Invalid {
                key: "machine_auth",
                message,
            })?,
        };
        let env = env
            .names()
            .into_iter()
            .filter(|name| name.starts_with("ITL_"))
            .filter_map(|name| env.var(&name).map(|value| (name, value)))
            .collect();
        Ok(Self {
            disabled,
            machine_auth,
            env,
        })
    }
}

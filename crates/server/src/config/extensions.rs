//! Settings of the extension registry and of machine authentication for
//! extension routes (secret retrieval).

use std::str::FromStr;

use attest_ext::ExtensionEnv;

use attest_settings::{Setting, Sources};

use super::ConfigError;

attest_settings::declare! {
    pub EXTENSIONS_DISABLED: Vec<String> = Setting::new("extensions_disabled", "ITL_EXTENSIONS_DISABLED",
        "Comma-separated names of built-in (or compiled-in) extensions not to load, e.g. `webhooks,metrics`. See [extensions](extensions.md).")
        .derived("none");
    pub MACHINE_AUTH: MachineAuthMode = Setting::new("machine_auth", "ITL_MACHINE_AUTH",
        "How machines authenticate to extension routes (secret retrieval): `ek-fingerprint` (the seed's `X-EK-Fingerprint` header; compatible, but a fingerprint is public) or `enrollment-cert` (**recommended**: the machine's enrollment certificate, verified in the TLS handshake (`tls_client_ca_file`) or forwarded by the TLS proxy in `X-Client-Cert` (`client_cert_header`); needs one of them).")
        .default("ek-fingerprint");
}

/// How machines authenticate to extension routes (`ITL_MACHINE_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MachineAuthMode {
    /// The seed's `X-EK-Fingerprint` header. Compatible, but a fingerprint
    /// is public: anyone who knows it can act as the machine.
    #[default]
    EkFingerprint,
    /// The machine's enrollment certificate, verified by the listener's
    /// TLS handshake or passed by the TLS proxy in `X-Client-Cert` (needs
    /// TLS client authentication or `ITL_CLIENT_CERT_HEADER`). Recommended.
    EnrollmentCert,
}

attest_settings::text_value!(MachineAuthMode);

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

impl ExtensionSettings {
    /// Environment over file over defaults.
    pub(super) fn resolve(src: &Sources<'_>) -> Result<Self, ConfigError> {
        let env = src.env();
        let env = env
            .names()
            .into_iter()
            .filter(|name| name.starts_with("ITL_"))
            .filter_map(|name| env.var(&name).map(|value| (name, value)))
            .collect();
        Ok(Self {
            disabled: src.get(&EXTENSIONS_DISABLED)?.unwrap_or_default(),
            machine_auth: src.value(&MACHINE_AUTH)?,
            env,
        })
    }
}

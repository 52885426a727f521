//! Settings of the certificate-lifecycle application (certctl's API on
//! its own listener; `docs/certificates.md`). certctl's own variable names
//! are kept where the seed has them (`CERTCTL_AUTH_TYPE`,
//! `CERTCTL_BOOTSTRAP_TOKEN`).

use std::net::SocketAddr;
use std::str::FromStr;

use attest_settings::{Setting, Sources};
use secrecy::{ExposeSecret, SecretString};

use super::ConfigError;

attest_settings::declare! {
    pub CERTS_ENABLED: bool = Setting::new("certs_enabled", "ITL_CERTS_ENABLED",
        "Serve the certificate-lifecycle API (certctl's) on its own listener, next to the attestation API.")
        .flag("--certs-enabled").value_name("BOOL")
        .default("true");
    pub CERTS_LISTEN: SocketAddr = Setting::new("certs_listen", "ITL_CERTS_LISTEN",
        "Address and port of the certificate-lifecycle API (certctl's port).")
        .flag("--certs-listen").value_name("ADDR")
        .default("127.0.0.1:8443");
    pub CERTS_AUTH_TYPE: CertsAuthType = Setting::new("certs_auth_type", "CERTCTL_AUTH_TYPE",
        "`api-key` (Bearer API keys, operators' OIDC tokens and the break-glass token) or `none` (every request is an administrator: development only, warned about at every start).")
        .flag("--certs-auth-type").value_name("TYPE")
        .default("api-key");
    pub CERTS_BOOTSTRAP_TOKEN: SecretString = Setting::new("certs_bootstrap_token", "CERTCTL_BOOTSTRAP_TOKEN",
        "One-shot day-0 token for `POST /api/v1/auth/bootstrap`, which mints the first administrator API key (at least 16 characters). The endpoint answers 410 once used or once an administrator exists.")
        .secret();
    pub CERTS_OPERATOR_ROLE: String = Setting::new("certs_operator_role", "ITL_CERTS_OPERATOR_ROLE",
        "Role that operators authenticated by OIDC or an operator certificate hold on the certificate-lifecycle API (roles granted to them by name come on top). Empty: none.")
        .flag("--certs-operator-role").value_name("ROLE")
        .default("r-operator");
}

/// `CERTCTL_AUTH_TYPE`, as the setting reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertsAuthType(pub attest_certs_api::AuthType);

impl FromStr for CertsAuthType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

attest_settings::text_value!(CertsAuthType);

/// The resolved group.
#[derive(Debug, Clone)]
pub struct CertsSettings {
    /// Whether the listener runs.
    pub enabled: bool,
    /// Where it listens.
    pub listen: SocketAddr,
    /// How callers authenticate.
    pub auth_type: attest_certs_api::AuthType,
    /// The bootstrap token, if set.
    pub bootstrap_token: Option<SecretString>,
    /// The role of OIDC and certificate operators.
    pub operator_role: Option<String>,
}

impl CertsSettings {
    /// Environment over file over defaults.
    pub(super) fn resolve(src: &Sources<'_>) -> Result<Self, ConfigError> {
        let bootstrap_token = src.get(&CERTS_BOOTSTRAP_TOKEN)?;
        if bootstrap_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().len() < 16)
        {
            return Err(ConfigError::invalid(
                CERTS_BOOTSTRAP_TOKEN.spec.key,
                "the bootstrap token must be at least 16 characters",
            ));
        }
        let operator_role = src.value(&CERTS_OPERATOR_ROLE)?.trim().to_owned();
        Ok(Self {
            enabled: src.value(&CERTS_ENABLED)?,
            listen: src.value(&CERTS_LISTEN)?,
            auth_type: src.value(&CERTS_AUTH_TYPE)?.0,
            bootstrap_token,
            operator_role: (!operator_role.is_empty()).then_some(operator_role),
        })
    }
}

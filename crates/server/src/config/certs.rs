//! Settings of the certificate-lifecycle application (certctl's API on
//! its own listener; `docs/certificates.md`). certctl's own variable names
//! are kept where the seed has them (`CERTCTL_AUTH_TYPE`,
//! `CERTCTL_BOOTSTRAP_TOKEN`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    pub CERTS_TLS: CertsTls = Setting::new("certs_tls", "ITL_CERTS_TLS",
        "`on`: the certificate-lifecycle listener serves HTTPS (with `certs_tls_cert_file`, or else a server certificate its own CA issues at start for `certs_tls_names`; the CA is `<data_dir>/certs-tls/ca.pem`, for clients to trust). `off`: plain HTTP, for a TLS proxy in front or development.")
        .flag("--certs-tls").value_name("on|off")
        .default("on");
    pub CERTS_TLS_NAMES: String = Setting::new("certs_tls_names", "ITL_CERTS_TLS_NAMES",
        "Comma-separated DNS names and IP addresses the self-issued server certificate covers (re-issued at start when they change or it has under 30 days left).")
        .flag("--certs-tls-names").value_name("NAMES")
        .default("localhost,127.0.0.1");
    pub CERTS_TLS_CERT_FILE: PathBuf = Setting::new("certs_tls_cert_file", "ITL_CERTS_TLS_CERT_FILE",
        "PEM certificate chain to serve instead of the self-issued one; with `certs_tls_key_file`. Reloaded on SIGHUP and when the file changes.")
        .flag("--certs-tls-cert-file").value_name("FILE");
    pub CERTS_TLS_KEY_FILE: PathBuf = Setting::new("certs_tls_key_file", "ITL_CERTS_TLS_KEY_FILE",
        "PEM private key of `certs_tls_cert_file`; both or neither.")
        .flag("--certs-tls-key-file").value_name("FILE");
    pub CERTS_TLS_CLIENT_CA_FILE: PathBuf = Setting::new("certs_tls_client_ca_file", "ITL_CERTS_TLS_CLIENT_CA_FILE",
        "PEM bundle of the CAs client certificates must chain to on the certificate-lifecycle listener (operator certificates: the enrollment CA, `<ca_dir>/ca.pem`).")
        .flag("--certs-tls-client-ca-file").value_name("FILE");
    pub CERTS_TLS_CLIENT_AUTH: super::tls::TlsClientAuth = Setting::new("certs_tls_client_auth", "ITL_CERTS_TLS_CLIENT_AUTH",
        "`off`, `optional` or `required`, as `tls_client_auth` for the attestation listener; `optional` and `required` need `certs_tls_client_ca_file`.")
        .flag("--certs-tls-client-auth").value_name("MODE")
        .derived("`optional` with `certs_tls_client_ca_file`, else `off`");
}

/// `ITL_CERTS_TLS`: whether the listener serves HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertsTls {
    /// HTTPS (the default).
    On,
    /// Plain HTTP, only when asked for.
    Off,
}

impl FromStr for CertsTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" | "true" => Ok(Self::On),
            "off" | "false" => Ok(Self::Off),
            other => Err(format!("expected on or off, got `{other}`")),
        }
    }
}

attest_settings::text_value!(CertsTls);

/// Where the listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertsCertificate {
    /// Issued at start by the listener's own CA under `dir`, for `names`.
    SelfIssued {
        /// `<data_dir>/certs-tls`.
        dir: PathBuf,
        /// DNS names and IP addresses.
        names: Vec<String>,
    },
    /// Operator-provided files.
    Files {
        /// Certificate chain.
        cert_file: PathBuf,
        /// Key.
        key_file: PathBuf,
    },
}

/// The listener's TLS, when on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertsTlsSettings {
    /// The served certificate.
    pub certificate: CertsCertificate,
    /// CAs of client certificates.
    pub client_ca_file: Option<PathBuf>,
    /// Whether client certificates are asked for.
    pub client_auth: super::tls::TlsClientAuth,
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
    /// HTTPS, unless turned off.
    pub tls: Option<CertsTlsSettings>,
}

impl CertsSettings {
    /// Environment over file over defaults.
    pub(super) fn resolve(src: &Sources<'_>, data_dir: &Path) -> Result<Self, ConfigError> {
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
        let tls = match src.value(&CERTS_TLS)? {
            CertsTls::Off => None,
            CertsTls::On => Some(resolve_tls(src, data_dir)?),
        };
        Ok(Self {
            tls,
            enabled: src.value(&CERTS_ENABLED)?,
            listen: src.value(&CERTS_LISTEN)?,
            auth_type: src.value(&CERTS_AUTH_TYPE)?.0,
            bootstrap_token,
            operator_role: (!operator_role.is_empty()).then_some(operator_role),
        })
    }
}

fn resolve_tls(src: &Sources<'_>, data_dir: &Path) -> Result<CertsTlsSettings, ConfigError> {
    use super::tls::TlsClientAuth;
    let certificate = match (
        src.get(&CERTS_TLS_CERT_FILE)?,
        src.get(&CERTS_TLS_KEY_FILE)?,
    ) {
        (Some(cert_file), Some(key_file)) => CertsCertificate::Files {
            cert_file,
            key_file,
        },
        (None, None) => {
            let names: Vec<String> = src
                .value(&CERTS_TLS_NAMES)?
                .split(',')
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect();
            if names.is_empty() {
                return Err(ConfigError::invalid(
                    CERTS_TLS_NAMES.spec.key,
                    "name at least one DNS name or IP address",
                ));
            }
            CertsCertificate::SelfIssued {
                dir: data_dir.join("certs-tls"),
                names,
            }
        }
        _ => {
            return Err(ConfigError::invalid(
                CERTS_TLS_CERT_FILE.spec.key,
                "set both certs_tls_cert_file and certs_tls_key_file, or neither",
            ))
        }
    };
    let client_ca_file = src.get(&CERTS_TLS_CLIENT_CA_FILE)?;
    let client_auth = src
        .get(&CERTS_TLS_CLIENT_AUTH)?
        .unwrap_or(if client_ca_file.is_some() {
            TlsClientAuth::Optional
        } else {
            TlsClientAuth::Off
        });
    if client_auth != TlsClientAuth::Off && client_ca_file.is_none() {
        return Err(ConfigError::invalid(
            CERTS_TLS_CLIENT_AUTH.spec.key,
            "optional and required need certs_tls_client_ca_file",
        ));
    }
    Ok(CertsTlsSettings {
        certificate,
        client_ca_file,
        client_auth,
    })
}

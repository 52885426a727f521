//! Settings of native TLS on the attestation listener (see `docs/tls.md`).

use std::path::PathBuf;
use std::str::FromStr;

use attest_settings::{Setting, Sources};

use super::ConfigError;

attest_settings::declare! {
    pub TLS_CERT_FILE: PathBuf = Setting::new("tls_cert_file", "ITL_TLS_CERT_FILE",
        "PEM certificate chain (leaf first) the listener serves over HTTPS; with `tls_key_file`. Unset: plain HTTP (behind a TLS proxy). Reloaded on SIGHUP and when the file changes. See [tls](tls.md).")
        .flag("--tls-cert-file").value_name("FILE");
    pub TLS_KEY_FILE: PathBuf = Setting::new("tls_key_file", "ITL_TLS_KEY_FILE",
        "PEM private key (PKCS#8, SEC1 or PKCS#1) of `tls_cert_file`; both or neither. Keep it owner-only; it is never logged.")
        .flag("--tls-key-file").value_name("FILE");
    pub TLS_CLIENT_CA_FILE: PathBuf = Setting::new("tls_client_ca_file", "ITL_TLS_CLIENT_CA_FILE",
        "PEM bundle of the CAs a client certificate must chain to in the TLS handshake (for operators and machines: the enrollment CA, `<ca_dir>/ca.pem`). A verified certificate then authenticates operators and, with `machine_auth = enrollment-cert`, machines, without `X-Client-Cert`.")
        .flag("--tls-client-ca-file").value_name("FILE");
    pub TLS_CLIENT_AUTH: TlsClientAuth = Setting::new("tls_client_auth", "ITL_TLS_CLIENT_AUTH",
        "`off` (no client certificates), `optional` (asked for; one presented must verify, none is accepted) or `required` (the handshake fails without a certificate that verifies). `optional` and `required` need `tls_client_ca_file`.")
        .flag("--tls-client-auth").value_name("MODE")
        .derived("`optional` with `tls_client_ca_file`, else `off`");
}

/// Whether the listener asks clients for certificates
/// (`ITL_TLS_CLIENT_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsClientAuth {
    /// Not asked.
    #[default]
    Off,
    /// Asked; verified when presented.
    Optional,
    /// Needed to connect.
    Required,
}

attest_settings::text_value!(TlsClientAuth);

impl FromStr for TlsClientAuth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Self::Off),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            other => Err(format!("expected off, optional or required, got `{other}`")),
        }
    }
}

/// The resolved group: present when the listener serves HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The served certificate chain.
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
    /// CAs of client certificates.
    pub client_ca_file: Option<PathBuf>,
    /// Whether clients are asked for certificates.
    pub client_auth: TlsClientAuth,
}

impl TlsSettings {
    /// Whether a verified client certificate may reach authentication.
    pub fn verifies_clients(&self) -> bool {
        self.client_auth != TlsClientAuth::Off
    }

    /// Environment over file over defaults. `None`: plain HTTP. Files are
    /// read at start (the CA file may be the enrollment CA created then).
    pub(super) fn resolve(src: &Sources<'_>) -> Result<Option<Self>, ConfigError> {
        let cert_file = src.get(&TLS_CERT_FILE)?;
        let key_file = src.get(&TLS_KEY_FILE)?;
        let client_ca_file = src.get(&TLS_CLIENT_CA_FILE)?;
        let client_auth = src.get(&TLS_CLIENT_AUTH)?;
        let (cert_file, key_file) = match (cert_file, key_file) {
            (Some(cert), Some(key)) => (cert, key),
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    TLS_KEY_FILE.spec.key,
                    "tls_cert_file is set but tls_key_file is not: set both to serve HTTPS",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    TLS_CERT_FILE.spec.key,
                    "tls_key_file is set but tls_cert_file is not: set both to serve HTTPS",
                ))
            }
            (None, None) => {
                if client_ca_file.is_some() || client_auth.is_some_and(|m| m != TlsClientAuth::Off)
                {
                    return Err(ConfigError::invalid(
                        TLS_CERT_FILE.spec.key,
                        "client certificate settings (tls_client_ca_file, tls_client_auth) need \
                         TLS: set tls_cert_file and tls_key_file",
                    ));
                }
                return Ok(None);
            }
        };
        let client_auth = client_auth.unwrap_or(if client_ca_file.is_some() {
            TlsClientAuth::Optional
        } else {
            TlsClientAuth::Off
        });
        if client_auth != TlsClientAuth::Off && client_ca_file.is_none() {
            return Err(ConfigError::invalid(
                TLS_CLIENT_AUTH.spec.key,
                "optional and required client authentication need tls_client_ca_file",
            ));
        }
        Ok(Some(Self {
            cert_file,
            key_file,
            client_ca_file,
            client_auth,
        }))
    }
}

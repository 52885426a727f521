//! What the application is started with (the server resolves it from its
//! settings, declared once in `attest-server`'s `config/certs.rs`).

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

/// How callers authenticate (`CERTCTL_AUTH_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthType {
    /// `Authorization: Bearer <api key>` (or an operator's OIDC token or
    /// the break-glass token).
    #[default]
    ApiKey,
    /// No authentication: every request acts as an administrator. For
    /// development only; the server warns loudly at every start.
    None,
}

impl AuthType {
    /// The seed's spelling (`GET /api/v1/auth/info`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api-key",
            Self::None => "none",
        }
    }
}

impl FromStr for AuthType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api-key" => Ok(Self::ApiKey),
            "none" => Ok(Self::None),
            "oidc" => Err(
                "`oidc` is not a separate mode here: with `api-key`, operators' OIDC \
                           tokens from ITL_OIDC_ISSUER are accepted too"
                    .into(),
            ),
            other => Err(format!("expected `api-key` or `none`, got `{other}`")),
        }
    }
}

/// The resolved configuration of the application.
#[derive(Debug, Clone)]
pub struct CertsConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// How callers authenticate.
    pub auth_type: AuthType,
    /// `CERTCTL_BOOTSTRAP_TOKEN`: enables the one-shot day-0 bootstrap.
    pub bootstrap_token: Option<SecretString>,
    /// The role operators authenticated by OIDC or an operator
    /// certificate hold here (besides roles granted to them by name).
    pub operator_role: Option<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Time limit for a request to produce its response head.
    pub request_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
}

impl CertsConfig {
    /// Defaults for `listen`, as tests start it.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            auth_type: AuthType::ApiKey,
            bootstrap_token: None,
            operator_role: Some("r-operator".into()),
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

//! Errors: what the client may see, and what can go wrong at start-up.

use http::StatusCode;

/// Why a request was not authenticated. Messages are safe to return to the
/// client: they never contain the token, the certificate or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials that are invalid, expired or could not
    /// be verified. HTTP 401.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Valid credentials without the operator role (JWT) or with an OU other
    /// than `operator` (client certificate). HTTP 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

impl AuthError {
    /// The HTTP status this error maps to.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// The client-safe reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::Unauthenticated(r) | Self::Forbidden(r) => r,
        }
    }
}

/// Configuration problems found by [`crate::OperatorAuthenticator::new`].
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// Client certificates (header or TLS) enabled without a verifier to
    /// check them.
    #[error(
        "client certificate authentication is enabled but no certificate verifier was supplied"
    )]
    MissingClientCertVerifier,
    /// The break-glass token is empty.
    #[error("the admin token must not be empty")]
    EmptyAdminToken,
    /// The OIDC issuer is not an `https` URL (or `http` to a loopback host).
    #[error("invalid OIDC issuer URL (must be https, or http to a loopback host): {0}")]
    InvalidIssuer(String),
    /// The OIDC operator role is empty.
    #[error("the OIDC operator role must not be empty")]
    EmptyOperatorRole,
    /// OIDC is enabled without naming who the tokens must be for.
    #[error(
        "OIDC is enabled but neither ITL_OIDC_AUDIENCE nor ITL_OIDC_CLIENT_ID is set: tokens \
         must name this service in `aud` (set ITL_OIDC_AUDIENCE, or ITL_OIDC_CLIENT_ID to use \
         the client id as the audience)"
    )]
    OidcAudienceMissing,
    /// The HTTP client for discovery/JWKS could not be built.
    #[error("cannot build the OIDC HTTP client: {0}")]
    HttpClient(String),
}

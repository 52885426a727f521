//! Operator authentication for the admin API.
//!
//! Three methods, tried in the seed's order of precedence:
//!
//! 1. `Authorization: Bearer <JWT>` validated against the OIDC issuer's JWKS
//!    ([`oidc`]); the token must carry the operator role.
//! 2. A client certificate, verified against the enrollment CA, OU must be
//!    `operator`, on record and not revoked ([`client_cert`]): the leaf the
//!    server's own TLS handshake verified (passed in as DER) or, without
//!    one, `X-Client-Cert: <url-encoded PEM>` forwarded by a TLS proxy.
//! 3. `Authorization: Bearer <ITL_ADMIN_TOKEN>`, the break-glass token,
//!    compared in constant time ([`break_glass`]).
//!
//! A method that fails lets the next one try (break-glass is used "when
//! neither OIDC nor mTLS succeeds"); if none succeeds, the failure of the
//! highest-precedence method that was attempted is returned. The crate knows
//! nothing about axum or TLS: it takes an [`http::HeaderMap`] and the DER
//! bytes of a verified peer certificate.

pub mod break_glass;
pub mod client_cert;
mod error;
pub mod identity;
pub mod oidc;

use std::fmt;
use std::sync::Arc;

use attest_domain::clock::SharedClock;
use http::header::AUTHORIZATION;
use http::HeaderMap;
use secrecy::SecretString;

pub use break_glass::BreakGlassToken;
pub use client_cert::{
    forwarded_cert_pem, ClientCertIdentity, ClientCertVerifier, OperatorCertRecord,
    OperatorCertRegistry, CLIENT_CERT_HEADER, OPERATOR_OU,
};
pub use error::{AuthError, AuthSetupError};
pub use identity::{
    is_reserved, machine_actor, normalize_identity, oidc_principal, BREAK_GLASS_IDENTITY,
};
pub use oidc::{OidcConfig, OidcValidator};

/// Which method authenticated the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// OIDC bearer token.
    Oidc,
    /// Client certificate (verified by the server's TLS handshake, or
    /// forwarded by the TLS proxy).
    ClientCert,
    /// The shared break-glass token.
    BreakGlass,
}

impl AuthMethod {
    /// Stable lowercase name, for audit records and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::ClientCert => "client_cert",
            Self::BreakGlass => "break_glass",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Name for the audit log: `preferred_username`/`sub`, certificate CN, or `SYSTEM`.
    pub identity: String,
    /// How they authenticated.
    pub method: AuthMethod,
    /// Who they are as proven by the original authentication source
    /// (`oidc:<sub>`); what dual control counts. `None` for the break-glass
    /// token and for certificates minted before principals were recorded:
    /// such operators act but never vote.
    pub principal: Option<String>,
}

impl Operator {
    /// The break-glass operator.
    pub fn break_glass() -> Self {
        Self {
            identity: BREAK_GLASS_IDENTITY.to_owned(),
            method: AuthMethod::BreakGlass,
            principal: None,
        }
    }
}

/// Authentication settings (the server maps `ITL_*` variables onto this).
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// OIDC settings; `None` disables bearer-JWT authentication.
    pub oidc: Option<OidcConfig>,
    /// Break-glass token (`ITL_ADMIN_TOKEN`); `None` disables it.
    pub admin_token: Option<SecretString>,
    /// Trust `X-Client-Cert` (`ITL_CLIENT_CERT_HEADER`). Only safe when the
    /// TLS proxy strips the header from client requests.
    pub client_cert_header_enabled: bool,
    /// Accept the client certificate the server's own TLS listener
    /// verified (client authentication on, `ITL_TLS_CLIENT_AUTH`).
    pub tls_client_cert_enabled: bool,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("oidc", &self.oidc)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "client_cert_header_enabled",
                &self.client_cert_header_enabled,
            )
            .field("tls_client_cert_enabled", &self.tls_client_cert_enabled)
            .finish()
    }
}

/// Authenticates operators from request headers and the TLS peer
/// certificate.
pub struct OperatorAuthenticator {
    oidc: Option<OidcValidator>,
    client_cert: Option<ClientCertAuth>,
    break_glass: Option<BreakGlassToken>,
}

/// What checks an operator certificate: the CA's signature and validity,
/// then the issuance record (revocation, principal); and where
/// certificates are taken from.
struct ClientCertAuth {
    verifier: Arc<dyn ClientCertVerifier>,
    registry: Arc<dyn OperatorCertRegistry>,
    header: bool,
    tls: bool,
}

impl ClientCertAuth {
    /// The certificate to check: the TLS-verified one first, the header
    /// only when trusted; `Ok(None)` when there is neither.
    fn presented<'a>(
        &self,
        headers: &HeaderMap,
        tls_peer_cert: Option<&'a [u8]>,
        forwarded: &'a mut Option<String>,
    ) -> Result<Option<client_cert::Presented<'a>>, AuthError> {
        if let (true, Some(der)) = (self.tls, tls_peer_cert) {
            return Ok(Some(client_cert::Presented::Tls(der)));
        }
        if !self.header {
            return Ok(None);
        }
        *forwarded = forwarded_cert_pem(headers)?;
        let forwarded: &'a Option<String> = forwarded;
        Ok(forwarded.as_deref().map(client_cert::Presented::Forwarded))
    }
}

impl fmt::Debug for OperatorAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorAuthenticator")
            .field("oidc", &self.oidc.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("break_glass", &self.break_glass.is_some())
            .finish()
    }
}

impl OperatorAuthenticator {
    /// Builds the authenticator.
    ///
    /// Fails if client certificates (header or TLS) are enabled without a
    /// verifier and a registry of issued operator certificates, if the admin token is
    /// empty, if OIDC names no audience or client, or if the OIDC HTTP
    /// client cannot be built. No network I/O happens here: discovery runs
    /// on first use.
    pub fn new(
        config: AuthConfig,
        client_cert: Option<(Arc<dyn ClientCertVerifier>, Arc<dyn OperatorCertRegistry>)>,
        clock: SharedClock,
    ) -> Result<Self, AuthSetupError> {
        let oidc = config
            .oidc
            .map(|c| OidcValidator::new(c, clock.clone()))
            .transpose()?;
        let (header, tls) = (
            config.client_cert_header_enabled,
            config.tls_client_cert_enabled,
        );
        let client_cert = if header || tls {
            let (verifier, registry) =
                client_cert.ok_or(AuthSetupError::MissingClientCertVerifier)?;
            Some(ClientCertAuth {
                verifier,
                registry,
                header,
                tls,
            })
        } else {
            None
        };
        let break_glass = config
            .admin_token
            .as_ref()
            .map(BreakGlassToken::new)
            .transpose()?;
        Ok(Self {
            oidc,
            client_cert,
            break_glass,
        })
    }

    /// True if at least one method is configured (otherwise every admin
    /// request is refused, which the server may want to warn about).
    pub fn any_method_enabled(&self) -> bool {
        self.oidc.is_some() || self.client_cert.is_some() || self.break_glass.is_some()
    }

    /// Authenticates the request described by `headers` (no TLS peer
    /// certificate: see [`OperatorAuthenticator::authenticate_with_peer_cert`]).
    ///
    /// `Err(Unauthenticated)` maps to 401, `Err(Forbidden)` to 403
    /// ([`AuthError::status_code`]).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Operator, AuthError> {
        self.authenticate_with_peer_cert(headers, None).await
    }

    /// Authenticates the request described by `headers`, arriving on a
    /// connection whose client certificate the server's TLS listener
    /// verified (`tls_peer_cert`, the leaf's DER). That certificate takes
    /// the place of `X-Client-Cert` and goes through the same checks; it
    /// counts only when [`AuthConfig::tls_client_cert_enabled`] is set.
    pub async fn authenticate_with_peer_cert(
        &self,
        headers: &HeaderMap,
        tls_peer_cert: Option<&[u8]>,
    ) -> Result<Operator, AuthError> {
        let bearer = bearer_token(headers)?;
        // The first failure in precedence order is what the client sees.
        let mut failure: Option<AuthError> = None;

        if let (Some(oidc), Some(token)) = (&self.oidc, bearer) {
            if oidc::looks_like_jwt(token) {
                match oidc.authenticate(token).await {
                    Ok(operator) => return Ok(operator),
                    Err(e) => {
                        tracing::debug!(reason = %e, "OIDC authentication failed");
                        failure.get_or_insert(e);
                    }
                }
            }
        }

        if let Some(cert) = &self.client_cert {
            let mut forwarded = None;
            let checked = match cert.presented(headers, tls_peer_cert, &mut forwarded) {
                Ok(Some(presented)) => Some(
                    client_cert::authenticate(
                        presented,
                        cert.verifier.as_ref(),
                        cert.registry.as_ref(),
                    )
                    .await,
                ),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            };
            match checked {
                Some(Ok(operator)) => return Ok(operator),
                Some(Err(e)) => {
                    tracing::debug!(reason = %e, "client certificate authentication failed");
                    failure.get_or_insert(e);
                }
                None => {}
            }
        }

        if let (Some(break_glass), Some(token)) = (&self.break_glass, bearer) {
            if break_glass.matches(token) {
                tracing::warn!("operator authenticated with the break-glass token");
                return Ok(Operator::break_glass());
            }
        }

        Err(failure.unwrap_or_else(|| {
            if bearer.is_some() {
                AuthError::Unauthenticated("invalid bearer token".into())
            } else {
                AuthError::Unauthenticated("no credentials".into())
            }
        }))
    }
}

/// The bearer token from `Authorization`, if any.
///
/// Several `Authorization` headers, a non-UTF-8 value or an empty token are
/// errors rather than "no credentials", so ambiguity never downgrades to a
/// weaker method silently.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::Unauthenticated(
            "more than one Authorization header".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::Unauthenticated("malformed Authorization header".into()))?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Some other scheme (Basic, …): not ours.
        return Ok(None);
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(AuthError::Unauthenticated("empty bearer token".into()));
    }
    Ok(Some(token))
}

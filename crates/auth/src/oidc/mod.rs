//! OIDC bearer tokens: discovery, JWKS cache, token validation.

mod discovery;
mod jwks;
mod token;

use std::fmt;
use std::time::Duration as StdDuration;

use attest_domain::clock::SharedClock;
use chrono::Duration;

use crate::{AuthError, AuthSetupError};

pub use token::{Claims, ALLOWED_ALGORITHMS, LEEWAY_SECONDS};

/// Largest bearer JWT we parse. Keycloak access tokens with many roles are
/// a few KiB; anything bigger is refused before any decoding or key lookup.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Default operator role (`ITL_OIDC_OPERATOR_ROLE`).
pub const DEFAULT_OPERATOR_ROLE: &str = "attestation-operator";

/// OIDC settings.
#[derive(Clone)]
pub struct OidcConfig {
    /// Issuer URL (`ITL_OIDC_ISSUER`), e.g.
    /// `https://sts.itlusions.com/realms/itl`. Must equal the tokens' `iss`.
    pub issuer: String,
    /// Audience `aud` must contain (`ITL_OIDC_AUDIENCE`); when `None`, the
    /// client id. One of the two is required.
    pub audience: Option<String>,
    /// Role that makes a token holder an operator (`ITL_OIDC_OPERATOR_ROLE`).
    pub operator_role: String,
    /// Client whose `resource_access.<client>.roles` count
    /// (`ITL_OIDC_CLIENT_ID`); with `None` only realm roles count.
    pub client_id: Option<String>,
    /// Minimum time between two JWKS fetches, so tokens with random `kid`s
    /// cannot make us hammer the identity provider.
    pub jwks_refresh_min_interval: Duration,
    /// Age after which the cached JWKS is fetched again even if every `kid`
    /// is known, so keys withdrawn by the IdP stop being accepted. If that
    /// fetch fails, the cached keys stay in use.
    pub jwks_max_age: Duration,
    /// Timeout for each discovery/JWKS request.
    pub http_timeout: StdDuration,
}

impl OidcConfig {
    /// Settings for `issuer` with the defaults: role `attestation-operator`,
    /// JWKS refresh at most every 30 s and at least every 15 minutes, 10 s
    /// HTTP timeout. An audience or client id must still be set.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: None,
            operator_role: DEFAULT_OPERATOR_ROLE.to_owned(),
            client_id: None,
            jwks_refresh_min_interval: Duration::seconds(30),
            jwks_max_age: Duration::minutes(15),
            http_timeout: StdDuration::from_secs(10),
        }
    }
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("operator_role", &self.operator_role)
            .field("client_id", &self.client_id)
            .field("jwks_refresh_min_interval", &self.jwks_refresh_min_interval)
            .field("jwks_max_age", &self.jwks_max_age)
            .field("http_timeout", &self.http_timeout)
            .finish()
    }
}

/// Validates bearer JWTs for one issuer.
pub struct OidcValidator {
    config: OidcConfig,
    jwks: jwks::JwksCache,
    clock: SharedClock,
}

impl fmt::Debug for OidcValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcValidator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OidcValidator {
    /// Builds the validator; no network I/O until the first token.
    pub fn new(mut config: OidcConfig, clock: SharedClock) -> Result<Self, AuthSetupError> {
        // `iss` is compared with the issuer as configured; URLs are built
        // from it without a trailing slash.
        config.issuer = config.issuer.trim().to_owned();
        let base_url = config.issuer.trim_end_matches('/').to_owned();
        // https, or http to a loopback IdP only: the JWKS fetched from here
        // decides who is an operator.
        if !reqwest::Url::parse(&base_url).is_ok_and(|u| discovery::url_allowed(&u)) {
            return Err(AuthSetupError::InvalidIssuer(config.issuer.clone()));
        }
        if config.operator_role.trim().is_empty() {
            return Err(AuthSetupError::EmptyOperatorRole);
        }
        // Without an audience any token the issuer minted for any client
        // would do, and the role could come from any client's roles.
        let named = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if !named(&config.audience) && !named(&config.client_id) {
            return Err(AuthSetupError::OidcAudienceMissing);
        }
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .redirect(discovery::redirect_policy())
            .build()
            .map_err(|e| AuthSetupError::HttpClient(e.to_string()))?;
        let jwks = jwks::JwksCache::new(
            http,
            base_url,
            config.jwks_refresh_min_interval,
            config.jwks_max_age,
            clock.clone(),
        );
        Ok(Self {
            config,
            jwks,
            clock,
        })
    }

    /// Validates `token` and returns the operator: identity
    /// (`preferred_username`, else `sub`) and principal (`oidc:<sub>`).
    ///
    /// `Unauthenticated` if the token is not valid for this issuer;
    /// `Forbidden` if it is valid but lacks the operator role.
    pub async fn authenticate(&self, token: &str) -> Result<crate::Operator, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Unauthenticated(
                "invalid bearer token: token too large".into(),
            ));
        }
        let header = token::header(token).map_err(token_error)?;
        let key = self
            .jwks
            .key_for(header.kid.as_deref())
            .await
            .map_err(|e| AuthError::Unauthenticated(format!("invalid bearer token: {e}")))?;
        let claims = token::validate(token, &header, &key, &self.config, self.clock.now())
            .map_err(token_error)?;
        if !claims.has_role(&self.config.operator_role, self.config.client_id.as_deref()) {
            return Err(AuthError::Forbidden(format!(
                "token lacks the '{}' role",
                self.config.operator_role
            )));
        }
        let identity = claims.identity().ok_or_else(|| {
            AuthError::Unauthenticated(
                "invalid bearer token: neither preferred_username nor sub".into(),
            )
        })?;
        let identity = crate::normalize_identity(&identity)?;
        let principal = claims
            .sub
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(crate::oidc_principal);
        Ok(crate::Operator {
            identity,
            method: crate::AuthMethod::Oidc,
            principal,
        })
    }
}

fn token_error(e: token::TokenError) -> AuthError {
    AuthError::Unauthenticated(format!("invalid bearer token: {e}"))
}

/// True if `token` has the shape of a compact JWS (three base64url parts),
/// so opaque break-glass tokens never reach the JWT parser or the IdP.
pub fn looks_like_jwt(token: &str) -> bool {
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    // At most 4 pieces are split off, however many dots the input has.
    let mut parts = token.splitn(4, '.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !header.is_empty()
        && !payload.is_empty()
        && b64url(header)
        && b64url(payload)
        && b64url(signature)
}

#[cfg(test)]
mod tests {
    use super::looks_like_jwt;

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
        assert!(!looks_like_jwt("break-glass-token"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt(".b.c"));
        assert!(!looks_like_jwt("a+/.b.c"));
    }
}

//! Validating one token against one key.
//!
//! jsonwebtoken checks the signature, `iss` and `aud`; `exp`/`nbf` are
//! checked here against the injected clock (jsonwebtoken reads the system
//! time, which tests cannot move).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::Deserialize;

use super::jwks::{KeyKind, VerificationKey};
use super::OidcConfig;

/// Signature algorithms accepted. No `none`, no HS* (with a public key as
/// the HMAC secret, HS* would let anyone forge tokens).
pub const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 30;

/// Why a token was rejected. Messages are client-safe.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("signature algorithm not accepted")]
    AlgorithmNotAllowed,
    #[error("signing key does not match the token's algorithm")]
    KeyAlgorithmMismatch,
    #[error("signature invalid")]
    BadSignature,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("missing required claim")]
    MissingClaim,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("not an access token")]
    NotAccessToken,
    #[error("token rejected")]
    Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RoleList {
    #[serde(default)]
    roles: Vec<String>,
}

/// The claims we read. Everything but `exp` is optional at this level;
/// `iss` is required through jsonwebtoken's `required_spec_claims`.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// Subject.
    #[serde(default)]
    pub sub: Option<String>,
    /// Keycloak's user name.
    #[serde(default)]
    pub preferred_username: Option<String>,
    exp: f64,
    #[serde(default)]
    nbf: Option<f64>,
    /// Must be a single string (jsonwebtoken would also accept an array
    /// that merely contains the issuer).
    #[serde(rename = "iss")]
    _iss: String,
    /// Keycloak's token type: `Bearer` for access tokens, `ID` for ID
    /// tokens. Only access tokens are accepted.
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    realm_access: Option<RoleList>,
    #[serde(default)]
    resource_access: Option<HashMap<String, RoleList>>,
}

impl Claims {
    /// True if `role` is in `realm_access.roles`, or in
    /// `resource_access.<client_id>.roles`. Roles of other clients never
    /// count: any client of the realm could otherwise grant the operator
    /// role to its own users.
    pub fn has_role(&self, role: &str, client_id: Option<&str>) -> bool {
        let in_list = |l: &RoleList| l.roles.iter().any(|r| r == role);
        if self.realm_access.as_ref().is_some_and(in_list) {
            return true;
        }
        match (client_id, &self.resource_access) {
            (Some(client), Some(resources)) => resources.get(client).is_some_and(in_list),
            _ => false,
        }
    }

    /// `preferred_username`, else `sub` (non-empty).
    pub fn identity(&self) -> Option<String> {
        [&self.preferred_username, &self.sub]
            .into_iter()
            .flatten()
            .find(|s| !s.trim().is_empty())
            .cloned()
    }
}

/// Parses the header, refusing algorithms we never accept before any key
/// lookup (so `alg: none` or HS256 tokens cannot trigger a JWKS fetch).
pub(crate) fn header(token: &str) -> Result<Header, TokenError> {
    // jsonwebtoken has no `none` algorithm: such headers fail to parse.
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::AlgorithmNotAllowed)?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    Ok(header)
}

/// Verifies signature, issuer, audience, `exp` and `nbf` (against `now`).
pub(crate) fn validate(
    token: &str,
    header: &Header,
    key: &VerificationKey,
    config: &OidcConfig,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    let alg = header.alg;
    let compatible = match key.kind {
        KeyKind::Rsa => matches!(alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::PS256),
        KeyKind::EcP256 => alg == Algorithm::ES256,
        KeyKind::EcP384 => alg == Algorithm::ES384,
    };
    if !compatible || key.alg.is_some_and(|pinned| pinned != alg) {
        return Err(TokenError::KeyAlgorithmMismatch);
    }

    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.set_issuer(&[config.issuer.as_str()]);
    // `aud` must name this service: the configured audience, or else the
    // client id (the validator refuses a configuration with neither).
    let audiences: Vec<&str> = config
        .audience
        .iter()
        .chain(config.client_id.iter())
        .map(String::as_str)
        .filter(|a| !a.trim().is_empty())
        .take(1)
        .collect();
    if audiences.is_empty() {
        return Err(TokenError::WrongAudience);
    }
    validation.set_audience(&audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);

    let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(map_error)?;
    let claims = data.claims;

    if claims
        .typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("Bearer"))
    {
        return Err(TokenError::NotAccessToken);
    }

    let now = now.timestamp() as f64;
    let leeway = LEEWAY_SECONDS as f64;
    if !claims.exp.is_finite() || now > claims.exp + leeway {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = claims.nbf {
        if !nbf.is_finite() || nbf > now + leeway {
            return Err(TokenError::NotYetValid);
        }
    }
    Ok(claims)
}

fn map_error(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => TokenError::MissingClaim,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            TokenError::AlgorithmNotAllowed
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => TokenError::Malformed,
        _ => TokenError::Other,
    }
}

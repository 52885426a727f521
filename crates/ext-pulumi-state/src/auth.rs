//! Who may call: the CLI's two `Authorization` schemes.
//!
//! * `token <T>`: an access token, for everything but the in-flight
//!   update calls. `T` is `ITL_PULUMI_TOKEN` (compared in constant time) or
//!   an operator's OIDC JWT validated by the server's operator
//!   authentication (only the OIDC method counts: the break-glass admin
//!   token is not a Pulumi token).
//! * `update-token <U>`: the lease token handed out when an update starts,
//!   for checkpoints, events, lease renewal and completion of that one
//!   update ([`crate::lease`] checks it against the update).
//!
//! Anything else (no header, several headers, `Bearer`, an unknown token)
//! is 401 in Pulumi's error shape.

use std::sync::Arc;

use attest_ext::axum::extract::FromRequestParts;
use attest_ext::axum::http::header::AUTHORIZATION;
use attest_ext::axum::http::request::Parts;
use attest_ext::axum::http::{HeaderMap, HeaderValue};

use crate::error::PulumiError;
use crate::state::PulumiState;

/// Identity recorded for the shared token.
pub const SHARED_TOKEN_IDENTITY: &str = "pulumi-token";

/// A caller holding an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The shared `ITL_PULUMI_TOKEN`.
    SharedToken,
    /// An operator, by OIDC token.
    Operator(String),
}

impl Caller {
    /// The name recorded in `created_by` columns and the audit log.
    pub fn identity(&self) -> &str {
        match self {
            Self::SharedToken => SHARED_TOKEN_IDENTITY,
            Self::Operator(name) => name,
        }
    }
}

/// `(scheme, credential)` of the single `Authorization` header.
fn credential(headers: &HeaderMap) -> Result<(String, &str), PulumiError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values
        .next()
        .ok_or_else(|| PulumiError::Unauthorized("Unauthorized: no credentials provided".into()))?;
    if values.next().is_some() {
        return Err(PulumiError::Unauthorized(
            "Unauthorized: more than one Authorization header".into(),
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| PulumiError::Unauthorized("Unauthorized: malformed Authorization".into()))?;
    let (scheme, rest) = text
        .split_once(' ')
        .ok_or_else(|| PulumiError::Unauthorized("Unauthorized: malformed Authorization".into()))?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(PulumiError::Unauthorized(
            "Unauthorized: empty token".into(),
        ));
    }
    Ok((scheme.to_ascii_lowercase(), rest))
}

fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.len() > 20
}

/// The access-token caller of a request.
pub async fn access(state: &PulumiState, headers: &HeaderMap) -> Result<Caller, PulumiError> {
    let (scheme, token) = credential(headers)?;
    match scheme.as_str() {
        "token" => {}
        "update-token" => {
            return Err(PulumiError::Unauthorized(
                "Unauthorized: an update token is only valid for its update's operations".into(),
            ))
        }
        _ => {
            return Err(PulumiError::Unauthorized(
                "Unauthorized: use 'Authorization: token <access token>'".into(),
            ))
        }
    }
    if let Some(shared) = &state.settings.token {
        if shared.matches(token) {
            return Ok(Caller::SharedToken);
        }
    }
    if looks_like_jwt(token) {
        let mut bearer = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| PulumiError::Unauthorized("Unauthorized: malformed token".into()))?;
        bearer.insert(AUTHORIZATION, value);
        if let Ok(operator) = state.ctx.authenticate_operator(&bearer).await {
            // Only the OIDC method: a JWT-shaped break-glass token must
            // not become a Pulumi credential.
            if operator.method.as_str() == "oidc" {
                return Ok(Caller::Operator(operator.identity));
            }
        }
    }
    Err(PulumiError::Unauthorized(
        "Unauthorized: invalid access token".into(),
    ))
}

/// The lease token of an in-flight update call.
pub fn update_token(headers: &HeaderMap) -> Result<String, PulumiError> {
    let (scheme, token) = credential(headers)?;
    if scheme != "update-token" {
        return Err(PulumiError::Unauthorized(
            "Unauthorized: this operation needs 'Authorization: update-token <lease token>'".into(),
        ));
    }
    Ok(token.to_owned())
}

/// Extractor: the request carries a valid access token.
#[derive(Debug, Clone)]
pub struct AccessToken(pub Caller);

impl FromRequestParts<Arc<PulumiState>> for AccessToken {
    type Rejection = PulumiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<PulumiState>,
    ) -> Result<Self, PulumiError> {
        access(state, &parts.headers).await.map(AccessToken)
    }
}

/// Extractor: the request carries the lease token of the update in its
/// path (`…/{org}/{project}/{stack}/{kind}/{update_id}/…`), checked before
/// the body is read. Handlers check it again inside their transaction.
#[derive(Debug, Clone)]
pub struct UpdateToken(pub String);

impl FromRequestParts<Arc<PulumiState>> for UpdateToken {
    type Rejection = PulumiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<PulumiState>,
    ) -> Result<Self, PulumiError> {
        use attest_ext::axum::extract::Path;
        let token = update_token(&parts.headers)?;
        let Path((org, project, stack, update_id)) =
            Path::<(String, String, String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| PulumiError::NotFound("Not Found".into()))?;
        let pool = state.ctx.store.pool();
        let row = crate::repo::stack_get(pool, &org, &project, &stack)
            .await?
            .ok_or_else(|| PulumiError::no_stack(&org, &project, &stack))?;
        let update = crate::repo::update_get(pool, &row.stack_id, &update_id)
            .await?
            .ok_or_else(|| {
                PulumiError::Unauthorized("Unauthorized: invalid update token".into())
            })?;
        crate::lease::check(&update, &token, state.now_ms())?;
        Ok(UpdateToken(token))
    }
}

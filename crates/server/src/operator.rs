//! The authenticated-operator extractor guarding every admin route.
//!
//! Putting `AuthenticatedOperator` in a handler's arguments is what makes the
//! route admin-only: the request is refused (401 without or with bad
//! credentials, 403 with valid credentials lacking the role) before the
//! handler runs.

use attest_auth::Operator;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// An operator whose credentials were verified for this request.
#[derive(Debug, Clone)]
pub struct AuthenticatedOperator(pub Operator);

impl AuthenticatedOperator {
    /// The identity recorded in the audit log.
    pub fn identity(&self) -> &str {
        &self.0.identity
    }

    /// Who votes under dual control: the identity and its principal.
    pub fn voter(&self) -> attest_domain::machine::Voter {
        attest_domain::machine::Voter {
            identity: self.0.identity.clone(),
            principal: self.0.principal.clone(),
        }
    }
}

impl FromRequestParts<AppState> for AuthenticatedOperator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let operator = state.auth.authenticate(&parts.headers).await?;
        attest_ext::http::refuse_forgeable(parts)?;
        tracing::debug!(identity = %operator.identity, method = %operator.method, "operator authenticated");
        Ok(Self(operator))
    }
}

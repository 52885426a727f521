//! Authentication extractors for extension handlers.
//!
//! Naming one in a handler's arguments is what guards the route: the
//! request is refused (401 without or with bad credentials, 403 with valid
//! credentials lacking the right) before the handler runs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::host::{HasContext, MachineIdentity};
use crate::http::error::ApiError;

/// An operator whose credentials were verified for this request: the
/// same extractor the core's operator routes use
/// (`attest_http::AuthenticatedOperator`), under the name extensions know.
pub use attest_http::auth::AuthenticatedOperator as Operator;
pub use attest_http::auth::{refuse_forgeable, OperatorAuth};

/// A machine that proved its identity for this request (see
/// `ITL_MACHINE_AUTH`).
#[derive(Debug, Clone)]
pub struct AuthenticatedMachine(pub MachineIdentity);

impl<S: HasContext + Send + Sync> FromRequestParts<S> for AuthenticatedMachine {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let machine = state
            .context()
            .authenticate_machine_with_peer_cert(
                &parts.headers,
                attest_http::auth::tls_peer_certificate(parts),
            )
            .await?;
        tracing::debug!(machine_id = %machine.machine_id, credential = ?machine.credential, "machine authenticated");
        Ok(Self(machine))
    }
}

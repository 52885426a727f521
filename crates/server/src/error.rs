//! How the server's own service errors become [`ApiError`]s.
//!
//! [`ApiError`] itself, its status decisions and its conversions from
//! store and authentication errors live in `attest-http`, shared with the
//! extensions and any other application; the mapping of the machine
//! services' errors is here.

use attest_proto::error::LocItem;

pub use attest_http::error::{method_not_allowed, not_found, ApiError};

/// The answer for an enrollment-CA failure.
pub fn pki_error(err: attest_pki::PkiError) -> ApiError {
    match err {
        attest_pki::PkiError::InvalidName(reason) => ApiError::Unprocessable(reason),
        other => ApiError::Internal(format!("enrollment CA: {other}")),
    }
}

impl From<crate::machines::MachineError> for ApiError {
    fn from(err: crate::machines::MachineError) -> Self {
        use crate::machines::MachineError as M;
        match err {
            M::InvalidField {
                field,
                kind,
                message,
            } => ApiError::invalid(
                kind,
                vec![LocItem::from("body"), LocItem::from(field)],
                message,
            ),
            M::InvalidQuery { field, message } => ApiError::invalid(
                "value_error",
                vec![LocItem::from("query"), LocItem::from(field)],
                message,
            ),
            M::EvidenceRejected(m) => Self::Unprocessable(m),
            M::UnknownMachine => Self::NotFound("Machine not found".to_string()),
            M::UnknownToken => Self::NotFound(err.to_string()),
            M::EkMismatch
            | M::StatusForbids(_)
            | M::MachineRejected
            | M::ProofRefused(_)
            | M::IneligibleVoter(_) => Self::Forbidden(err.to_string()),
            M::StateConflict(_) | M::NonceReplayed => Self::Conflict(err.to_string()),
            M::NonceExpired | M::ChallengeExpired(_) => Self::Gone(err.to_string()),
            M::FormatRefused(m) => Self::NotAcceptable(m),
            M::RoleConfigUnavailable(m) | M::FactoryUnavailable(m) => Self::Unavailable(m),
            M::LimitReached {
                message,
                retry_after_secs,
            } => Self::RateLimited {
                message,
                retry_after_secs,
            },
            M::NonceCapacity => Self::TooManyRequests(err.to_string()),
            M::Pki(e) => pki_error(e),
            M::Internal(m) => Self::Internal(m),
            M::Store(attest_store::StoreError::Conflict(cause)) => {
                tracing::debug!(%cause, "write lost a race");
                Self::Conflict("a concurrent request changed this machine first; retry".into())
            }
            M::Store(e) => e.into(),
        }
    }
}

impl From<crate::operators::OperatorError> for ApiError {
    fn from(err: crate::operators::OperatorError) -> Self {
        use crate::operators::OperatorError as O;
        match err {
            O::NotPermitted(m) => Self::Forbidden(m),
            O::InvalidField { field, message } => ApiError::invalid(
                "value_error",
                vec![LocItem::from("body"), LocItem::from(field)],
                message,
            ),
            O::UnknownCertificate(_) => Self::NotFound(err.to_string()),
            O::AlreadyRevoked(_) => Self::Conflict(err.to_string()),
            O::Pki(e) => pki_error(e),
            O::Store(e) => e.into(),
        }
    }
}

//! How the server's own service errors become [`ApiError`]s.
//!
//! [`ApiError`] itself, and its conversions from store and authentication
//! errors, live in the extension SDK so core routes and extensions answer
//! alike; the mapping of the machine services' errors is here.

use attest_proto::error::LocItem;

pub use attest_ext::http::error::{method_not_allowed, not_found, ApiError};

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
            M::Field {
                field,
                kind,
                message,
            } => ApiError::invalid(
                kind,
                vec![LocItem::from("body"), LocItem::from(field)],
                message,
            ),
            M::Unprocessable(m) => Self::Unprocessable(m),
            M::NotFound => Self::NotFound("Machine not found".to_string()),
            M::NotFoundReason(m) => Self::NotFound(m),
            M::Query { field, message } => ApiError::invalid(
                "value_error",
                vec![LocItem::from("query"), LocItem::from(field)],
                message,
            ),
            M::NotAcceptable(m) => Self::NotAcceptable(m),
            M::ConfigUnavailable(m) => Self::Unavailable(m),
            M::Pki(e) => pki_error(e),
            M::Internal(m) => Self::Internal(m),
            M::Rejected | M::Forbidden(_) => Self::Forbidden(err.to_string()),
            M::Conflict(_) | M::NonceReplayed => Self::Conflict(err.to_string()),
            M::NonceExpired => Self::Gone(err.to_string()),
            M::Gone(m) => Self::Gone(m),
            M::NonceCapacity => Self::TooManyRequests(err.to_string()),
            M::TooMany {
                message,
                retry_after_secs,
            } => Self::RateLimited {
                message,
                retry_after_secs,
            },
            M::FactoryUnavailable(m) => Self::Unavailable(m),
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

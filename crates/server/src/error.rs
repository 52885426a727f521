//! How the server's own service errors become [`ApiError`]s.
//!
//! [`ApiError`] itself, its status decisions and its conversions from
//! store and authentication errors live in `attest-http`, shared with the
//! extensions and any other application; the mapping of the machine,
//! operator and host-enrollment services' errors is here, and
//! [`EnrollApiError`], the seed-shaped answers of the public host
//! enrollment endpoints.

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

impl From<crate::host_enrollment::HostEnrollError> for ApiError {
    fn from(err: crate::host_enrollment::HostEnrollError) -> Self {
        use crate::host_enrollment::HostEnrollError as H;
        match err {
            H::InvalidField { field, message } => ApiError::invalid(
                "value_error",
                vec![LocItem::from("body"), LocItem::from(field)],
                message,
            ),
            H::Duplicate(_) | H::StatusForbids(_) => Self::Conflict(err.to_string()),
            H::UnknownEnrollment => Self::NotFound(err.to_string()),
            H::Pki(e) => pki_error(e),
            H::Internal(m) => Self::Internal(m),
            H::Store(e) => e.into(),
        }
    }
}

/// The seed's 429 body for `POST /api/v1/enroll`.
pub const ENROLL_RATE_LIMITED: &str = "Rate limit exceeded. Try again in a minute.";

/// The seed's 500 body for a database failure on the enrollment endpoints.
pub const ENROLL_DATABASE_ERROR: &str = "Database error";

/// An error of the public enrollment endpoints (`/api/v1/enroll…`): the
/// seed's `{"error": "…"}` bodies for 409, 429 and 5xx, so a seed host
/// agent understands them; a malformed request (422, 413, 415) is answered
/// FastAPI-style like the rest of this API.
#[derive(Debug)]
pub enum EnrollApiError {
    /// Answered as [`ApiError`] answers.
    Api(ApiError),
    /// The seed's shape.
    Seed {
        status: axum::http::StatusCode,
        error: String,
        retry_after_secs: Option<u64>,
    },
}

impl From<ApiError> for EnrollApiError {
    fn from(err: ApiError) -> Self {
        use axum::http::StatusCode;
        let seed = |status, error: String, retry_after_secs| Self::Seed {
            status,
            error,
            retry_after_secs,
        };
        match err {
            ApiError::RateLimited {
                retry_after_secs, ..
            } => seed(
                StatusCode::TOO_MANY_REQUESTS,
                ENROLL_RATE_LIMITED.into(),
                Some(retry_after_secs.max(1)),
            ),
            ApiError::TooManyRequests(_) => seed(
                StatusCode::TOO_MANY_REQUESTS,
                ENROLL_RATE_LIMITED.into(),
                None,
            ),
            ApiError::Conflict(m) => seed(StatusCode::CONFLICT, m, None),
            ApiError::Unavailable(reason) => {
                tracing::warn!(%reason, "dependency unavailable");
                seed(StatusCode::SERVICE_UNAVAILABLE, reason, None)
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                seed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error".into(),
                    None,
                )
            }
            other => Self::Api(other),
        }
    }
}

impl From<crate::host_enrollment::HostEnrollError> for EnrollApiError {
    fn from(err: crate::host_enrollment::HostEnrollError) -> Self {
        use crate::host_enrollment::HostEnrollError as H;
        match err {
            H::Store(e) => match ApiError::from(e) {
                ApiError::Internal(cause) => {
                    tracing::error!(%cause, "database error");
                    Self::Seed {
                        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        error: ENROLL_DATABASE_ERROR.into(),
                        retry_after_secs: None,
                    }
                }
                other => other.into(),
            },
            other => ApiError::from(other).into(),
        }
    }
}

impl axum::response::IntoResponse for EnrollApiError {
    fn into_response(self) -> axum::response::Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::Seed {
                status,
                error,
                retry_after_secs,
            } => {
                let mut response = (
                    status,
                    axum::Json(attest_proto::host_enroll::EnrollError { error }),
                )
                    .into_response();
                if let Some(secs) = retry_after_secs {
                    response.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from(secs),
                    );
                }
                response
            }
        }
    }
}

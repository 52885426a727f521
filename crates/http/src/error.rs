//! The error every handler (core, extension, any application) answers with.
//!
//! Handlers return [`ApiError`]; lower layers' errors convert into it with
//! `From` impls (here for the store and authentication, in the server for
//! its services), so the status code for each failure is decided once, in
//! [`ApiError::status`], whatever the body looks like. The body is the
//! application's choice ([`crate::format::ErrorFormat`]); without one it is
//! FastAPI-style `{"detail": …}`. Internal failures are logged with their
//! cause and answered with a generic message, never the cause.

use attest_proto::error::{ErrorDetail, LocItem, ValidationIssue};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::format::{ErrorFormat, ErrorReport};

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed in a way validation does not cover.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credentials, or credentials that do not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: valid credentials without the right, or a refused machine.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 406: the requested representation is not allowed.
    #[error("{0}")]
    NotAcceptable(String),
    /// 415: the body's media type is not accepted.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 410: the thing referred to has expired.
    #[error("{0}")]
    Gone(String),
    /// 413: the body exceeds the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422 with a message.
    #[error("{0}")]
    Unprocessable(String),
    /// 422 with FastAPI-style per-field issues.
    #[error("request validation failed")]
    Validation(Vec<ValidationIssue>),
    /// 429.
    #[error("{0}")]
    TooManyRequests(String),
    /// 429 with `Retry-After`: a rate limit that lifts at a known time.
    #[error("{message}")]
    RateLimited {
        /// What was limited, for the client.
        message: String,
        /// Seconds until a retry may succeed (at least 1).
        retry_after_secs: u64,
    },
    /// 408 with `Retry-After` and `Connection: close`: the request did not
    /// complete within the configured request timeout.
    #[error("{0}")]
    RequestTimeout(String),
    /// 503 with `Retry-After`: a dependency (database, image factory) is
    /// unavailable, or the database pool had no free connection in time.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Gone(_) => StatusCode::GONE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable(_) | Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(_) | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// One validation issue at `loc`.
    pub fn invalid(kind: &str, loc: Vec<LocItem>, msg: impl Into<String>) -> Self {
        Self::Validation(vec![ValidationIssue {
            kind: kind.to_string(),
            loc,
            msg: msg.into(),
        }])
    }
}

impl IntoResponse for ApiError {
    /// Renders the default ([`ErrorFormat::FastApi`]) body and attaches the
    /// [`ErrorReport`] so a format layer further out can render it again in
    /// its application's shape. Status and headers are decided here, once,
    /// for every format.
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            Self::RateLimited {
                retry_after_secs, ..
            } => Some((*retry_after_secs).max(1)),
            Self::RequestTimeout(_) | Self::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        };
        let close = matches!(self, Self::RequestTimeout(_));
        let detail = match self {
            Self::Validation(issues) => ErrorDetail::Validation(issues),
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ErrorDetail::Message("Internal Server Error".to_string())
            }
            Self::Unavailable(reason) => {
                tracing::warn!(%reason, "dependency unavailable");
                ErrorDetail::Message(reason)
            }
            other => ErrorDetail::Message(other.to_string()),
        };
        let report = ErrorReport { status, detail };
        let mut response = ErrorFormat::default().render(&report, None);
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response.extensions_mut().insert(report);
        response
    }
}

/// `Retry-After` of a 503 or 408: long enough for a pool to free a
/// connection or a restarting database to come back, short enough that a
/// well-behaved client does not give up.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

impl From<attest_store::StoreError> for ApiError {
    fn from(err: attest_store::StoreError) -> Self {
        match err.outage() {
            Some(attest_store::Outage::Unreachable) => {
                tracing::warn!(error = %err, "database unavailable");
                Self::Unavailable("database unavailable".to_string())
            }
            Some(attest_store::Outage::StorageFull) => {
                tracing::error!(
                    error = %err,
                    "database storage full or failing: writes are refused until space returns"
                );
                Self::Unavailable("database storage full".to_string())
            }
            None => Self::Internal(err.to_string()),
        }
    }
}

impl From<attest_auth::AuthError> for ApiError {
    fn from(err: attest_auth::AuthError) -> Self {
        match err {
            attest_auth::AuthError::Forbidden(reason) => Self::Forbidden(reason),
            attest_auth::AuthError::Unauthenticated(reason) => Self::Unauthorized(reason),
        }
    }
}

/// 404 `Not Found` for unknown paths (`{"detail":"Not Found"}` in the
/// FastAPI format, as FastAPI answers).
pub async fn not_found() -> ApiError {
    ApiError::NotFound("Not Found".to_string())
}

/// 405 `Method Not Allowed` (`{"detail":"Method Not Allowed"}` in the
/// FastAPI format, as FastAPI answers).
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("Method Not Allowed".to_string())
}

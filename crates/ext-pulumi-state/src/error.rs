//! The one error type of the Pulumi routes and its single exit to HTTP.
//!
//! The Pulumi CLI decodes every 4xx/5xx body as its `apitype.ErrorResponse`
//! (`{"code": <status>, "message": …}`) and branches on `code` (404 means
//! "no such stack", 409 "another update is in progress"); a FastAPI-style
//! `{"detail"}` body would decode to code 0 and break those checks, so these
//! routes answer Pulumi's shape. Internal causes are logged, never sent.

use attest_ext::axum::http::{header, HeaderValue, StatusCode};
use attest_ext::axum::response::{IntoResponse, Response};
use attest_ext::axum::Json;
use attest_ext::store::StoreError;
use serde::{Deserialize, Serialize};

/// Pulumi's `apitype.ErrorResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: u16,
    pub message: String,
}

/// An error answered to the Pulumi CLI.
#[derive(Debug, thiserror::Error)]
pub enum PulumiError {
    /// 400: malformed input.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no usable credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: credentials that do not cover this request.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: conflicts with the current state (an update in progress, a
    /// stack that already exists).
    #[error("{0}")]
    Conflict(String),
    /// 413: a body (or its decompressed form) over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 503: a dependency (database, the deploy command, the master key) is
    /// unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug; the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PulumiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stack in the path does not exist.
    pub fn no_stack(org: &str, project: &str, stack: &str) -> Self {
        Self::NotFound(format!(
            "Not Found: stack '{org}/{project}/{stack}' not found"
        ))
    }
}

impl IntoResponse for PulumiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "pulumi_state: internal error");
                "Internal Server Error".to_owned()
            }
            Self::Unavailable(reason) => {
                tracing::warn!(%reason, "pulumi_state: unavailable");
                reason
            }
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(ErrorBody {
                code: status.as_u16(),
                message,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("token"));
        }
        response
    }
}

impl From<StoreError> for PulumiError {
    fn from(err: StoreError) -> Self {
        use attest_ext::store::sqlx::Error as Sqlx;
        match &err {
            StoreError::Connect { .. }
            | StoreError::Query(
                Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::Io(_) | Sqlx::WorkerCrashed,
            ) => Self::Unavailable("database unavailable".to_owned()),
            _ => Self::Internal(err.to_string()),
        }
    }
}

impl From<attest_ext::store::sqlx::Error> for PulumiError {
    fn from(err: attest_ext::store::sqlx::Error) -> Self {
        Self::from(StoreError::from(err))
    }
}

/// Handler results.
pub type Result<T, E = PulumiError> = std::result::Result<T, E>;

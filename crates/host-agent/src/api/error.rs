//! One error type for the API and the one place it becomes HTTP: the
//! seed's code decides the status and `retryable`; causes are logged, and
//! only messages fit for the client are sent.

use attest_proto::patch::{ApiErrorBody, ErrorCode};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::jobs::JobError;
use crate::packages::BackendError;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// `INVALID_REQUEST` (400).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// The wire body.
    pub fn body(&self) -> ApiErrorBody {
        ApiErrorBody {
            code: self.code,
            message: self.message.clone(),
            details: self.details.clone(),
            retryable: self.code.retryable(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        super::envelope::error_response(status, self.body())
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        let code = e.code();
        if code == ErrorCode::PkgManagerError {
            tracing::error!(error = %e, "package manager failed");
        }
        let details = match &e {
            BackendError::NotFound { name } => json!({ "package": name }),
            BackendError::VersionConflict { name, version } => {
                json!({ "package": name, "version": version })
            }
            _ => json!({}),
        };
        ApiError::new(code, e.client_message()).with_details(details)
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NotFound(id) => ApiError::new(ErrorCode::JobNotFound, "job not found")
                .with_details(json!({ "job_id": id })),
            JobError::Refused(message) => ApiError::invalid(message),
            JobError::Store(cause) => {
                tracing::error!(error = %cause, "job store failed");
                ApiError::new(ErrorCode::ServiceUnhealthy, "job store unavailable")
            }
        }
    }
}

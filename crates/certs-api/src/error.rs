//! The application's one error type and its one mapping to HTTP.
//!
//! Services return [`CertsError`]; handlers return it as is. It converts
//! into `attest-http`'s [`ApiError`], which decides status and headers;
//! the router's certctl format layer renders the body as
//! `{"error": "...", "request_id": "..."}`.

use attest_http::ApiError;
use axum::response::{IntoResponse, Response};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// The request is malformed or breaks a rule (400).
    #[error("{0}")]
    Invalid(String),
    /// No or bad credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller lacks the permission (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource's state forbids the change (409).
    #[error("{0}")]
    Conflict(String),
    /// The resource or endpoint is gone for good (410).
    #[error("{0}")]
    Gone(String),
    /// A feature this deployment does not have yet (501 would suggest a
    /// bug; certctl answers 400 with the reason, so do we).
    #[error("{0}")]
    NotAvailable(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] attest_store::StoreError),
    /// A bug or an impossible state (500; the cause is logged, not sent).
    #[error("{0}")]
    Internal(String),
}

impl CertsError {
    /// A 404 naming the kind of thing missing.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// A unique-constraint conflict as a 409 with `message`, other store
    /// errors unchanged.
    pub fn conflict_on(
        message: impl Into<String>,
    ) -> impl FnOnce(attest_store::StoreError) -> Self {
        let message = message.into();
        move |e| match e {
            attest_store::StoreError::Conflict(_) => Self::Conflict(message),
            other => Self::Store(other),
        }
    }
}

impl From<CertsError> for ApiError {
    fn from(err: CertsError) -> Self {
        match err {
            CertsError::Invalid(m) | CertsError::NotAvailable(m) => ApiError::BadRequest(m),
            CertsError::Unauthenticated(m) => ApiError::Unauthorized(m),
            CertsError::Forbidden(m) => ApiError::Forbidden(m),
            CertsError::NotFound(m) => ApiError::NotFound(m),
            CertsError::Conflict(m) => ApiError::Conflict(m),
            CertsError::Gone(m) => ApiError::Gone(m),
            CertsError::Store(e) => ApiError::from(e),
            CertsError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<ApiError> for CertsError {
    /// An extractor's refusal (bad JSON, bad query), as the 400 certctl
    /// answers for it.
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::Unauthorized(m) => Self::Unauthenticated(m),
            ApiError::Forbidden(m) => Self::Forbidden(m),
            ApiError::Internal(m) => Self::Internal(m),
            other => Self::Invalid(other.to_string()),
        }
    }
}

impl IntoResponse for CertsError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// The result of a handler or service.
pub type CertsResult<T> = Result<T, CertsError>;

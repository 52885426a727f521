//! HTTP building blocks for extension handlers: the error type, the
//! validating extractors and the operator extractor, defined in
//! `attest-http` (shared with the core and any other application) and
//! re-exported here so extensions build against the SDK alone; and the
//! machine authentication extractor, which needs the host context.

pub mod auth;

/// The error every handler answers with (see `attest_http::error`).
pub mod error {
    pub use attest_http::error::*;
}

/// The validating request extractors (see `attest_http::extract`).
pub mod extract {
    pub use attest_http::extract::*;
}

pub use auth::{refuse_forgeable, AuthenticatedMachine, Operator};
pub use error::ApiError;
pub use extract::{ApiJson, ApiQuery};

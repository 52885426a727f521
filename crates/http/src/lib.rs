//! HTTP plumbing shared by every application in the workspace and by the
//! extensions: the error type and its status decisions ([`ApiError`]),
//! the application's choice of error body ([`ErrorFormat`]), the request
//! extractors whose rejections name the offending field ([`ApiJson`],
//! [`ApiQuery`], [`OptionalJson`]), the cross-site request check
//! ([`refuse_forgeable`]) and the one operator extractor
//! ([`AuthenticatedOperator`]) that core routes and extension routes share.
//!
//! It sits below both the extension SDK and the server so a second
//! application (the certificate-lifecycle API, with certctl's error body)
//! reuses the same status decisions and extractors without depending on
//! either.

pub mod auth;
pub mod error;
pub mod extract;
pub mod format;

pub use auth::{refuse_forgeable, AuthenticatedOperator, OperatorAuth};
pub use error::{method_not_allowed, not_found, ApiError};
pub use extract::{ApiJson, ApiQuery, ClientIp, OptionalJson};
pub use format::{ErrorFormat, ErrorReport, REQUEST_ID_HEADER};

//! What the operator services fail with; `crate::error` maps it to HTTP.

use attest_store::StoreError;

/// A refused or failed operator-certificate operation.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// 403: the caller may not do this (break-glass minting, another
    /// operator's name).
    #[error("{0}")]
    NotPermitted(String),
    /// 422 naming a body field.
    #[error("{field}: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    /// 404: no operator certificate with that serial.
    #[error("operator certificate {0} not found")]
    UnknownCertificate(String),
    /// 409: it is revoked already.
    #[error("operator certificate {0} is already revoked")]
    AlreadyRevoked(String),
    /// The enrollment CA failed.
    #[error(transparent)]
    Pki(#[from] attest_pki::PkiError),
    /// Database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

//! The FastAPI-style error body used by every attestation endpoint.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"detail": "..."}`: the body of every error response.
///
/// `detail` is a string for ordinary errors and a list of
/// [`ValidationIssue`]s for request validation errors (HTTP 422), exactly as
/// FastAPI produces them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Human-readable reason, or the list of validation issues.
    pub detail: ErrorDetail,
}

/// Either a message or a list of validation issues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ErrorDetail {
    /// A single human-readable reason.
    Message(String),
    /// One entry per invalid field.
    Validation(Vec<ValidationIssue>),
}

/// One invalid input, located by `loc` (e.g. `["body", "ek_fingerprint"]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidationIssue {
    /// Machine-readable kind, e.g. `missing`, `json_invalid`, `int_parsing`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the problem is: `body`, `query` or `path`, then the field path
    /// (names, and indexes into arrays).
    pub loc: Vec<LocItem>,
    /// What is wrong, for humans.
    pub msg: String,
}

impl ErrorBody {
    /// An error body carrying one message.
    pub fn message(detail: impl Into<String>) -> Self {
        Self {
            detail: ErrorDetail::Message(detail.into()),
        }
    }
}

/// One step of a [`ValidationIssue`] location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LocItem {
    /// A field name, or `body` / `query` / `path`.
    Field(String),
    /// An index into an array.
    Index(u64),
}

impl From<&str> for LocItem {
    fn from(name: &str) -> Self {
        Self::Field(name.to_string())
    }
}

impl From<String> for LocItem {
    fn from(name: String) -> Self {
        Self::Field(name)
    }
}

impl From<usize> for LocItem {
    fn from(index: usize) -> Self {
        Self::Index(u64::try_from(index).unwrap_or(u64::MAX))
    }
}

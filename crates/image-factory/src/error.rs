//! Errors of the factory client. Their `Display` texts are written to be
//! shown as-is in an HTTP 503 `detail`, so they name the factory and say what
//! went wrong without internal jargon.

/// Why talking to the Image Factory (or building a schematic) failed.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    /// The configured factory base URL is unusable (not http/https, has a
    /// query, credentials…). A configuration error, not a transient one.
    #[error("invalid Talos Image Factory URL: {0}")]
    InvalidUrl(String),
    /// No connection could be made (DNS failure, refused, reset…).
    #[error("Talos Image Factory unreachable: {0}")]
    Unreachable(String),
    /// The whole request (connect + answer) took longer than the client's
    /// timeout. The timeout itself is in the client's configuration and in
    /// the warn log line written when this happens.
    #[error("Talos Image Factory timed out (no answer within the configured timeout)")]
    Timeout,
    /// The factory answered with a status other than 200/201.
    #[error("Talos Image Factory answered {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The first 200 characters of the answer's body, for diagnosis.
        body: String,
    },
    /// The factory answered 200/201 but not with `{"id": "<alphanumeric>"}`.
    #[error("Talos Image Factory sent an invalid response: {0}")]
    InvalidResponse(String),
    /// A schematic document could not be written or parsed.
    #[error("invalid Talos Image Factory schematic: {0}")]
    Yaml(String),
}

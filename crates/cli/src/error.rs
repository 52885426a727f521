//! Errors of the command-line client and their exit codes.
//!
//! | code | meaning                                             |
//! |------|-----------------------------------------------------|
//! | 1    | local failure (file, plugin, login flow)            |
//! | 2    | usage (clap's default)                              |
//! | 3    | authentication or authorisation (HTTP 401 / 403)    |
//! | 4    | other client errors (HTTP 4xx)                      |
//! | 5    | server errors (HTTP 5xx) or no connection           |

use std::fmt;
use std::process::ExitCode;

use attest_client::{CertsClientError, ClientError};

/// Exit code for local failures.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for usage errors (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for 401 / 403 answers.
pub const EXIT_AUTH: u8 = 3;
/// Exit code for the other 4xx answers.
pub const EXIT_CLIENT: u8 = 4;
/// Exit code for 5xx answers and connection failures.
pub const EXIT_SERVER: u8 = 5;

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// The server answered with an error status.
    Http {
        /// The HTTP status code.
        status: u16,
        /// The server's `detail`, rendered for humans.
        detail: String,
    },
    /// The server could not be reached, or its answer was unreadable.
    Connection(String),
    /// Bad arguments detected after parsing.
    Usage(String),
    /// Anything local: files, the login flow, plugins.
    Failure(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Http { status, .. } => match status {
                401 | 403 => EXIT_AUTH,
                400..=499 => EXIT_CLIENT,
                _ => EXIT_SERVER,
            },
            CliError::Connection(_) => EXIT_SERVER,
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Failure(_) => EXIT_FAILURE,
        }
    }

    /// An error from a response status and body (the OIDC provider's
    /// answers, rendered as the API's are).
    pub fn from_response(status: u16, body: &str) -> Self {
        ClientError::from_status(status, body.to_owned()).into()
    }

    /// Prints the error to stderr and returns the exit code.
    pub fn report(&self) -> ExitCode {
        eprintln!("attestation: {self}");
        ExitCode::from(self.exit_code())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Http { status, detail } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "HTTP {status} {reason}: {detail}")
            }
            CliError::Connection(msg) => write!(f, "cannot reach the server: {msg}"),
            CliError::Usage(msg) | CliError::Failure(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for CliError {}

/// The server's status and `detail` stay as they are (exit 3, 4 or 5); an
/// unreachable server or an unreadable answer is a connection failure (5).
impl From<ClientError> for CliError {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::Status { status, detail, .. } => CliError::Http { status, detail },
            ClientError::Transport(msg) => CliError::Connection(msg),
            err @ ClientError::Decode(_) => CliError::Connection(err.to_string()),
        }
    }
}

/// The certificate-lifecycle API's answers map alike; the detail is
/// certctl's `error` with its `request_id`, for the server's logs.
impl From<CertsClientError> for CliError {
    fn from(err: CertsClientError) -> Self {
        match err {
            CertsClientError::Status { status, .. } => CliError::Http {
                status,
                detail: err.message(),
            },
            CertsClientError::Transport(msg) => CliError::Connection(msg),
            err @ CertsClientError::Decode(_) => CliError::Connection(err.to_string()),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        CliError::Failure(err.to_string())
    }
}

/// Result of a command.
pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exit_codes_are_distinct() {
        let http = |status| CliError::Http {
            status,
            detail: String::new(),
        };
        assert_eq!(http(401).exit_code(), EXIT_AUTH);
        assert_eq!(http(403).exit_code(), EXIT_AUTH);
        assert_eq!(http(404).exit_code(), EXIT_CLIENT);
        assert_eq!(http(422).exit_code(), EXIT_CLIENT);
        assert_eq!(http(500).exit_code(), EXIT_SERVER);
        assert_eq!(CliError::Connection(String::new()).exit_code(), EXIT_SERVER);
        assert_eq!(CliError::Usage(String::new()).exit_code(), EXIT_USAGE);
    }
}

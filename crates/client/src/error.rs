//! The one error of every call: the server said no (status and its
//! `{"detail"}`), the server could not be reached, or its answer is not
//! what `attest-proto` says it is.

use attest_proto::error::{ErrorBody, ErrorDetail, LocItem};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-2xx status.
    #[error("HTTP {status}: {detail}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The server's `detail`, rendered for humans (see [`render_detail`]).
        detail: String,
        /// The body as received, for callers that log it.
        body: String,
    },
    /// No answer: connection refused, TLS, DNS, timeout, or the body could
    /// not be read. Every cause in the chain is spelled out.
    #[error("{0}")]
    Transport(String),
    /// A 2xx answer whose body is not the expected JSON.
    #[error("the answer is not JSON: {0}")]
    Decode(String),
}

impl ClientError {
    /// An error from a non-2xx status and its body.
    pub fn from_status(status: u16, body: String) -> Self {
        ClientError::Status {
            status,
            detail: render_detail(&body),
            body,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(err: reqwest::Error) -> Self {
        ClientError::Transport(error_chain(&err))
    }
}

/// `err` and every cause under it, `: `-separated: reqwest's own message
/// ("error sending request") hides whether TLS, DNS or the connection
/// failed.
pub(crate) fn error_chain(err: &reqwest::Error) -> String {
    let mut msg = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        msg.push_str(": ");
        msg.push_str(&cause.to_string());
        source = cause.source();
    }
    msg
}

/// The server's `detail` ([`ErrorBody`]): a message, or the validation
/// issues one per line as `loc: msg`. A body that is not an `ErrorBody`
/// (a proxy's page, an empty 502) is shown as it came, cut at 500
/// characters.
pub fn render_detail(body: &str) -> String {
    if let Ok(error) = serde_json::from_str::<ErrorBody>(body) {
        return match error.detail {
            ErrorDetail::Message(message) => message,
            ErrorDetail::Validation(issues) => {
                let lines: String = issues
                    .iter()
                    .map(|issue| {
                        let loc: Vec<String> = issue
                            .loc
                            .iter()
                            .map(|item| match item {
                                LocItem::Field(name) => name.clone(),
                                LocItem::Index(index) => index.to_string(),
                            })
                            .collect();
                        format!("\n  {}: {}", loc.join("."), issue.msg)
                    })
                    .collect();
                format!("validation failed:{lines}")
            }
        };
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        // JSON, but not the FastAPI shape: its `detail` if it has one,
        // else the whole body, printed compactly.
        Ok(value) => match value.get("detail") {
            Some(detail) => detail.to_string(),
            None => value.to_string(),
        },
        Err(_) => {
            let trimmed = body.trim();
            if trimmed.is_empty() {
                "(no detail)".to_owned()
            } else {
                trimmed.chars().take(500).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_rendered_for_humans() {
        assert_eq!(
            render_detail(r#"{"detail":"Machine not found"}"#),
            "Machine not found"
        );
        let issues = r#"{"detail":[{"type":"missing","loc":["body","role"],"msg":"field required"},
            {"type":"x","loc":["query","ids",2],"msg":"bad"}]}"#;
        assert_eq!(
            render_detail(issues),
            "validation failed:\n  body.role: field required\n  query.ids.2: bad"
        );
        assert_eq!(render_detail(""), "(no detail)");
        assert_eq!(render_detail("Bad Gateway"), "Bad Gateway");
        assert_eq!(render_detail(r#"{"detail": 7}"#), "7");
        assert_eq!(render_detail(r#"{"error": "x"}"#), r#"{"error":"x"}"#);
    }

    #[test]
    fn a_status_error_keeps_the_body_and_its_status() {
        let err = ClientError::from_status(404, r#"{"detail":"gone"}"#.into());
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.to_string(), "HTTP 404: gone");
        assert_eq!(ClientError::Transport("refused".into()).status(), None);
    }
}

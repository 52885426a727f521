//! What the machine services fail with; `crate::error` maps it to HTTP.

use attest_domain::machine::TransitionError;
use attest_store::StoreError;

/// A refused or failed machine operation.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// 422 naming a body field (`loc = ["body", field]`).
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        kind: &'static str,
        message: String,
    },
    /// 422 with a reason (evidence that does not verify).
    #[error("{0}")]
    Unprocessable(String),
    /// 404: no such machine.
    #[error("machine not found")]
    NotFound,
    /// 404 with a reason (e.g. "Token not found").
    #[error("{0}")]
    NotFoundReason(String),
    /// 422 naming a query parameter.
    #[error("{field}: {message}")]
    Query {
        field: &'static str,
        message: String,
    },
    /// 406: the requested representation cannot or may not be produced.
    #[error("{0}")]
    NotAcceptable(String),
    /// 503: a role base config is missing or unusable.
    #[error("{0}")]
    ConfigUnavailable(String),
    /// The enrollment CA failed.
    #[error(transparent)]
    Pki(#[from] attest_pki::PkiError),
    /// 500: an unexpected failure; the text is logged, not sent.
    #[error("{0}")]
    Internal(String),
    /// 403: the seed's "machine is in rejected state".
    #[error("Machine is in rejected state")]
    Rejected,
    /// 403 with a reason.
    #[error("{0}")]
    Forbidden(String),
    /// 409 with a reason naming the current status.
    #[error("{0}")]
    Conflict(String),
    /// 409: the nonce was redeemed before.
    #[error("Nonce already consumed — replay detected")]
    NonceReplayed,
    /// 410: the nonce expired.
    #[error("Nonce has expired — request a new challenge")]
    NonceExpired,
    /// 410 with a reason.
    #[error("{0}")]
    Gone(String),
    /// 429 with `Retry-After`: a per-machine or per-source limit.
    #[error("{message}")]
    TooMany {
        message: String,
        retry_after_secs: u64,
    },
    /// 429: too many outstanding challenges.
    #[error("Nonce store capacity exceeded (too many outstanding challenges)")]
    NonceCapacity,
    /// 503: the Talos Image Factory failed.
    #[error("{0}")]
    FactoryUnavailable(String),
    /// Database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MachineError {
    /// A 422 on `field` of the request body.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::Field {
            field,
            kind: "value_error",
            message: message.into(),
        }
    }

    /// A 422 for a required-by-configuration field that is absent.
    pub fn missing(field: &'static str, message: impl Into<String>) -> Self {
        Self::Field {
            field,
            kind: "missing",
            message: message.into(),
        }
    }

    /// True when the machine's evidence itself was refused (a quote, PCR
    /// value or AK signature that does not verify): what counts towards
    /// the automatic lock, unlike malformed requests or spent nonces.
    pub(crate) fn is_evidence_refusal(&self) -> bool {
        match self {
            Self::Unprocessable(_) => true,
            Self::Field { field, .. } => matches!(
                *field,
                "nonce_signature" | "pcr_quote" | "pcr_signature" | "pcr_values"
            ),
            _ => false,
        }
    }

    /// True when a retry may succeed (a concurrent insert won a race).
    pub(crate) fn is_write_conflict(&self) -> bool {
        matches!(self, Self::Store(StoreError::Conflict(_)))
    }
}

impl From<TransitionError> for MachineError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::NotFound { .. } => Self::NotFound,
            TransitionError::Rejected { .. } => Self::Rejected,
            TransitionError::Forbidden { .. } => Self::Forbidden(e.to_string()),
            TransitionError::Conflict { .. } => Self::Conflict(e.to_string()),
        }
    }
}

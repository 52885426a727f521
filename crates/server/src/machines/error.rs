//! What the machine services fail with; `crate::error` maps it to HTTP.

use attest_domain::machine::TransitionError;
use attest_store::StoreError;

/// A refused or failed machine operation, named for what went wrong;
/// `crate::error` decides the HTTP status of each.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// A request body field is missing or invalid.
    #[error("{field}: {message}")]
    InvalidField {
        field: &'static str,
        kind: &'static str,
        message: String,
    },
    /// A query parameter is invalid.
    #[error("{field}: {message}")]
    InvalidQuery {
        field: &'static str,
        message: String,
    },
    /// The machine's evidence (quote, PCR values, AK) does not verify.
    #[error("{0}")]
    EvidenceRejected(String),
    /// No machine with that id.
    #[error("machine not found")]
    UnknownMachine,
    /// No machine holds that config token.
    #[error("Token not found")]
    UnknownToken,
    /// The EK material presented is not the one registered.
    #[error("ek_cert_pem does not match the stored EK fingerprint")]
    EkMismatch,
    /// The machine's status does not allow this.
    #[error("{0}")]
    StatusForbids(String),
    /// The seed's "machine is in rejected state".
    #[error("Machine is in rejected state")]
    MachineRejected,
    /// A proof of possession (certificate, signature) was refused.
    #[error("{0}")]
    ProofRefused(String),
    /// The caller may not vote on this approval (dual control).
    #[error("{0}")]
    IneligibleVoter(String),
    /// The request conflicts with the machine's current state.
    #[error("{0}")]
    StateConflict(String),
    /// The nonce was redeemed before.
    #[error("Nonce already consumed — replay detected")]
    NonceReplayed,
    /// The nonce expired.
    #[error("Nonce has expired — request a new challenge")]
    NonceExpired,
    /// A credential-activation challenge expired or was used.
    #[error("{0}")]
    ChallengeExpired(String),
    /// The representation asked for cannot or may not be produced.
    #[error("{0}")]
    FormatRefused(String),
    /// A role's base config is missing or unusable.
    #[error("{0}")]
    RoleConfigUnavailable(String),
    /// A per-machine or per-source limit was reached; retry later.
    #[error("{message}")]
    LimitReached {
        message: String,
        retry_after_secs: u64,
    },
    /// Too many outstanding challenges.
    #[error("Nonce store capacity exceeded (too many outstanding challenges)")]
    NonceCapacity,
    /// The Talos Image Factory failed.
    #[error("{0}")]
    FactoryUnavailable(String),
    /// The enrollment CA failed.
    #[error(transparent)]
    Pki(#[from] attest_pki::PkiError),
    /// An unexpected failure (a bug); the text is logged, not sent.
    #[error("{0}")]
    Internal(String),
    /// Database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MachineError {
    /// A 422 on `field` of the request body.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            kind: "value_error",
            message: message.into(),
        }
    }

    /// A 422 for a required-by-configuration field that is absent.
    pub fn missing(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidField {
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
            Self::EvidenceRejected(_) => true,
            Self::InvalidField { field, .. } => matches!(
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
            TransitionError::NotFound { .. } => Self::UnknownMachine,
            TransitionError::Rejected { .. } => Self::MachineRejected,
            TransitionError::Forbidden { .. } => Self::StatusForbids(e.to_string()),
            TransitionError::Conflict { .. } => Self::StateConflict(e.to_string()),
        }
    }
}

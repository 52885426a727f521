//! Audit log entries and the chain verification report.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One entry of the append-only, hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Position in the chain, starting at 1.
    pub id: i64,
    /// When the action happened (RFC 3339, UTC).
    #[schema(example = "2026-05-14T17:05:00.000000+00:00")]
    pub timestamp: String,
    /// Who did it; `SYSTEM` for the break-glass token.
    pub operator_cn: String,
    /// What was done, e.g. `approve`, `approve_vote`, `revoke`.
    pub action: String,
    /// The machine acted on, if any.
    pub machine_id: Option<String>,
    /// Machine status before the action.
    pub prev_state: Option<String>,
    /// Machine status after the action.
    pub new_state: Option<String>,
    /// Free-form note.
    pub detail: Option<String>,
    /// `entry_hash` of the previous entry (64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over this entry's canonical encoding (see docs/audit.md).
    pub entry_hash: String,
}

/// Result of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditVerifyResponse {
    /// True iff every entry hash is correct and the chain is unbroken.
    pub valid: bool,
    /// Number of entries inspected.
    pub entries: i64,
    /// `entry_hash` of the last entry; null when invalid or empty.
    pub root_hash: Option<String>,
    /// Id of the first bad entry; null when valid.
    pub first_invalid_id: Option<i64>,
    /// What is wrong; null when valid.
    pub error: Option<String>,
}

/// Query parameters of `GET /api/v1/audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditPageQuery {
    /// Page number, 1-based.
    #[param(minimum = 1, default = 1)]
    pub page: Option<i64>,
    /// Entries per page, at most 200.
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub per_page: Option<i64>,
}

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

/// A signed statement that the audit chain had `entries` entries ending in
/// `root_hash` at `timestamp`. Kept outside the database (webhook receiver,
/// WORM storage), it lets `verify` notice newest entries cut off later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditCheckpoint {
    /// Server-assigned number; absent in a checkpoint built by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Entries the chain held: the checkpoint covers ids 1..=entries.
    #[schema(minimum = 1, example = 1842)]
    pub entries: i64,
    /// `entry_hash` of entry number `entries` (the chain's `root_hash` then).
    #[schema(example = "e7d4c9f1a0b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5")]
    pub root_hash: String,
    /// When it was signed (RFC 3339, UTC, as the audit log writes times).
    #[schema(example = "2026-05-14T18:00:00.000000+00:00")]
    pub timestamp: String,
    /// Lowercase hex SHA-256 of the signing key's SubjectPublicKeyInfo (DER).
    pub key_id: String,
    /// `ecdsa-p384-sha384`.
    #[schema(example = "ecdsa-p384-sha384")]
    pub algorithm: String,
    /// Base64 of the DER ECDSA signature over the checkpoint's signed bytes
    /// (see docs/audit.md).
    pub signature: String,
}

/// The public key checkpoints are signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditCheckpointKey {
    /// `ecdsa-p384-sha384`.
    #[schema(example = "ecdsa-p384-sha384")]
    pub algorithm: String,
    /// Lowercase hex SHA-256 of the SubjectPublicKeyInfo DER.
    pub key_id: String,
    /// The SubjectPublicKeyInfo as a `PUBLIC KEY` PEM (for `openssl dgst -verify`).
    pub public_key_pem: String,
}

/// Answer of `GET /api/v1/audit/checkpoints`: a page of checkpoints, newest
/// first, with the key that signed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditCheckpointList {
    /// The server's checkpoint signing key.
    pub public_key: AuditCheckpointKey,
    /// Checkpoints, newest first.
    pub checkpoints: Vec<AuditCheckpoint>,
}

/// Body of `POST /api/v1/audit/checkpoints/verify`: checkpoints kept
/// outside the database, checked against the live chain together with the
/// stored ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditCheckpointVerifyRequest {
    /// At least one signed checkpoint.
    #[schema(min_items = 1)]
    pub checkpoints: Vec<AuditCheckpoint>,
}

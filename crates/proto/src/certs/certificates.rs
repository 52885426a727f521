//! Managed certificates: `/api/v1/certificates…`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::openapi::Object;
use utoipa::{IntoParams, ToSchema};

use super::common::string_enum;

/// The seed's `CertificateStatus` values.
pub const CERTIFICATE_STATUSES: &[&str] = &[
    "Pending",
    "Active",
    "Expiring",
    "Expired",
    "RenewalInProgress",
    "Failed",
    "Revoked",
    "Archived",
];

/// The seed's `RevocationReason` values, in RFC 5280 code order (code 7
/// is unused; `certificateHold` is 6, `privilegeWithdrawn` 9).
pub const REVOCATION_REASONS: &[&str] = &[
    "unspecified",
    "keyCompromise",
    "caCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "privilegeWithdrawn",
];

fn status_schema() -> Object {
    string_enum(CERTIFICATE_STATUSES, &[], false)
}

/// An empty reason reads as `unspecified`, as the seed's clients send it.
fn reason_schema() -> Object {
    string_enum(REVOCATION_REASONS, &[""], false)
}

fn optional_reason_schema() -> Object {
    string_enum(REVOCATION_REASONS, &[""], true)
}

/// `ManagedCertificate`: the management envelope (per-issuance facts are
/// on [`CertificateVersion`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ManagedCertificate {
    pub id: String,
    pub name: String,
    pub common_name: String,
    pub sans: Vec<String>,
    pub environment: String,
    pub owner_id: String,
    pub team_id: String,
    pub issuer_id: String,
    pub target_ids: Vec<String>,
    pub renewal_policy_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_profile_id: Option<String>,
    /// One of [`CERTIFICATE_STATUSES`].
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_renewal_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deployment_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Create (`name`, `common_name`, `renewal_policy_id`, `issuer_id`,
/// `owner_id`, `team_id` required) or update (omitted fields unchanged)
/// a managed certificate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CertificateInput {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub common_name: Option<String>,
    #[serde(default)]
    pub sans: Option<Vec<String>>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub issuer_id: Option<String>,
    #[serde(default)]
    pub target_ids: Option<Vec<String>>,
    #[serde(default)]
    pub renewal_policy_id: Option<String>,
    #[serde(default)]
    pub certificate_profile_id: Option<String>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// Filters of `GET /api/v1/certificates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CertificateQuery {
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
    /// One of the `CertificateStatus` values.
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    pub environment: Option<String>,
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub issuer_id: Option<String>,
}

/// `CertificateVersion`: one issuance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CertificateVersion {
    pub id: String,
    pub certificate_id: String,
    /// Lowercase hex.
    pub serial_number: String,
    pub not_before: String,
    pub not_after: String,
    pub fingerprint_sha256: String,
    /// The certificate and its chain, PEM, leaf first.
    pub pem_chain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr_pem: Option<String>,
    /// `ECDSA` or `RSA`.
    pub key_algorithm: String,
    pub key_size: i64,
    pub created_at: String,
}

/// `POST /api/v1/certificates/{id}/renew` answer: `StatusResponse` plus
/// the new version, and the private key the server generated for it,
/// returned this once and never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RenewResponse {
    /// `renewed`.
    pub status: String,
    pub certificate_id: String,
    pub version_id: String,
    pub serial_number: String,
    pub not_after: String,
    /// PKCS#8 PEM. Shown once: the server keeps no copy.
    pub private_key_pem: String,
}

/// `POST /api/v1/certificates/{id}/revoke`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// A `RevocationReason` (default `unspecified`).
    #[serde(default)]
    #[schema(schema_with = optional_reason_schema)]
    pub reason: Option<String>,
}

/// Selection of bulk operations (at least one criterion).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkCriteria {
    #[serde(default)]
    pub profile_id: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Certificates deployed via an agent (agents come later: matches none).
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub issuer_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub certificate_ids: Option<Vec<String>>,
}

/// `BulkRevokeRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkRevokeRequest {
    /// A `RevocationReason` (empty: `unspecified`).
    #[schema(schema_with = reason_schema)]
    pub reason: String,
    #[serde(flatten)]
    pub criteria: BulkCriteria,
}

/// One certificate a bulk operation could not handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkError {
    pub certificate_id: String,
    pub error: String,
}

/// `BulkRevokeResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkRevokeResult {
    pub total_matched: i64,
    pub total_revoked: i64,
    pub total_skipped: i64,
    pub total_failed: i64,
    pub errors: Vec<BulkError>,
}

/// `BulkEnqueuedJob`. Renewal here is synchronous: `job_id` names the
/// version the renewal issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkEnqueuedJob {
    pub certificate_id: String,
    pub job_id: String,
}

/// `BulkRenewResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkRenewResult {
    pub total_matched: i64,
    pub total_enqueued: i64,
    pub total_skipped: i64,
    pub total_failed: i64,
    pub enqueued_jobs: Vec<BulkEnqueuedJob>,
    pub errors: Vec<BulkError>,
}

/// `BulkReassignRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkReassignRequest {
    #[schema(min_items = 1, max_items = 10000)]
    pub certificate_ids: Vec<String>,
    pub owner_id: String,
    #[serde(default)]
    pub team_id: Option<String>,
}

/// `BulkReassignResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkReassignResult {
    pub total_matched: i64,
    pub total_reassigned: i64,
    pub total_skipped: i64,
    pub total_failed: i64,
    pub errors: Vec<BulkError>,
}

/// `GET /api/v1/certificates/{id}/export/pem` (JSON form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PemExport {
    /// The leaf.
    pub cert_pem: String,
    /// The CAs above it.
    pub chain_pem: String,
    /// Leaf and chain.
    pub full_pem: String,
}

/// `?download=true` of the PEM export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// `true` for a file download.
    pub download: Option<String>,
}

/// `POST /api/v1/certificates/{id}/export/pkcs12`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pkcs12Request {
    #[serde(default)]
    pub password: Option<String>,
}

/// `GET /api/v1/certificates/{id}/deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentList {
    /// Deployment targets (none until targets exist).
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
    pub total: i64,
}

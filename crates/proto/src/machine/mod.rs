//! Machines: registration, attestation and the admin lifecycle
//! (`attestation-api.txt`, sections Registration, Extension
//! Self-Registration, Attestation and Machine Lifecycle).
//!
//! Request bodies ignore unknown fields, as the seed's pydantic models do,
//! so that an agent sending extra hardware facts keeps working.

mod enrollment;
mod role;
mod status;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use enrollment::*;
pub use role::{Role, UnknownRole};
pub use status::{MachineStatus, ReportedStatus, UnknownStatus, PENDING_SECOND_APPROVAL};

/// What `ek_cert_pem` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
pub enum EkSource {
    /// An X.509 EK certificate (PEM or DER).
    #[default]
    #[serde(rename = "cert")]
    Cert,
    /// A bare public key (SubjectPublicKeyInfo or TPM2B_PUBLIC).
    #[serde(rename = "pub")]
    Pub,
    /// Written by the offline USB agent; any of the above.
    #[serde(rename = "offline-import")]
    OfflineImport,
}

impl EkSource {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            EkSource::Cert => "cert",
            EkSource::Pub => "pub",
            EkSource::OfflineImport => "offline-import",
        }
    }
}

impl fmt::Display for EkSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the Talos extension is told to do by `POST /api/v1/attest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AttestAction {
    None,
    ApplyConfig,
    Wipe,
    Lock,
}

impl AttestAction {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AttestAction::None => "none",
            AttestAction::ApplyConfig => "apply-config",
            AttestAction::Wipe => "wipe",
            AttestAction::Lock => "lock",
        }
    }
}

impl fmt::Display for AttestAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST /api/v1/register` and `POST /api/v1/self-register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// SHA-256 (64 hex) or SHA-384 (96 hex) of the raw EK material.
    #[schema(
        example = "a3f1b8c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f",
        pattern = "^([0-9a-fA-F]{64}|[0-9a-fA-F]{96})$"
    )]
    pub ek_fingerprint: String,
    /// Base64 of the EK certificate or public key (PEM or DER).
    #[schema(min_length = 1, max_length = 32768)]
    pub ek_cert_pem: String,
    /// Whether `ek_cert_pem` is a certificate or a bare public key.
    #[serde(default)]
    pub ek_source: Option<EkSource>,
    /// SMBIOS system UUID.
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub hw_uuid: Option<String>,
    /// Primary NIC MAC address (any common notation).
    #[schema(max_length = 64)]
    #[serde(default)]
    pub hw_mac: Option<String>,
    /// SMBIOS serial number.
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub hw_serial: Option<String>,
    /// SMBIOS product name.
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub hw_product: Option<String>,
    /// Requested role (the operator may override it at approval).
    #[serde(default)]
    pub desired_role: Option<Role>,
}

/// Answer of `POST /api/v1/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    pub machine_id: String,
    pub role: Role,
    /// `pending_approval` unless auto-approval is configured (then `registered`).
    pub status: MachineStatus,
    /// The boot ISO built by the Talos Image Factory.
    pub iso_url: String,
    /// Fresh config token (a bearer credential: keep it secret).
    pub config_token: String,
    /// Where the machine fetches its MachineConfig with the token.
    pub config_url: String,
    pub message: String,
}

/// Answer of `POST /api/v1/self-register`: no ISO, and no token until an
/// operator approved the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SelfRegisterResponse {
    pub machine_id: String,
    pub role: Role,
    pub status: MachineStatus,
    pub config_token: Option<String>,
    pub config_url: Option<String>,
    pub message: String,
}

/// Answer of `GET /api/v1/attest/challenge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChallengeResponse {
    /// Pass back as `nonce_id` in `POST /api/v1/attest`.
    pub nonce_id: String,
    /// Base64 of 32 random bytes: the quote's qualifying data and what
    /// `nonce_signature` signs.
    pub nonce: String,
    /// End of validity (RFC 3339, 60 s after issue).
    pub expires_at: String,
}

/// Body of `POST /api/v1/attest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttestRequest {
    /// SHA-256 (64 hex) or SHA-384 (96 hex) of the EK material.
    #[schema(pattern = "^([0-9a-fA-F]{64}|[0-9a-fA-F]{96})$")]
    pub ek_fingerprint: String,
    /// Base64 of the EK material.
    #[schema(min_length = 1, max_length = 32768)]
    pub ek_cert_pem: String,
    #[serde(default)]
    pub ek_source: Option<EkSource>,
    /// From `GET /api/v1/attest/challenge` (required when `ITL_REQUIRE_NONCE`
    /// or `ITL_REQUIRE_QUOTE` is on).
    #[serde(default)]
    pub nonce_id: Option<String>,
    /// Base64 signature over the nonce bytes by the activated AK
    /// (TPMT_SIGNATURE, raw RSA PKCS#1 v1.5 SHA-256, or DER ECDSA).
    #[serde(default)]
    pub nonce_signature: Option<String>,
    /// Base64 TPM2B_ATTEST of a TPM2_Quote over the challenge nonce.
    #[serde(default)]
    pub pcr_quote: Option<String>,
    /// Base64 TPMT_SIGNATURE of the quote.
    #[serde(default)]
    pub pcr_signature: Option<String>,
    /// PCR values the quote covers (`{"sha256:0": "<hex>"}`); optional when
    /// the role's golden values cover the whole selection. Not in the seed.
    #[serde(default)]
    pub pcr_values: Option<BTreeMap<String, String>>,
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub hw_uuid: Option<String>,
    #[schema(max_length = 64)]
    #[serde(default)]
    pub hw_mac: Option<String>,
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub hw_serial: Option<String>,
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub hw_product: Option<String>,
}

/// Answer of `POST /api/v1/attest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttestResponse {
    pub machine_id: String,
    pub status: MachineStatus,
    pub hostname: Option<String>,
    pub role: Role,
    pub message: String,
    /// What the Talos extension must do next.
    pub action: AttestAction,
    /// Set with `apply-config`, or while an attested machine has an
    /// outstanding config token.
    pub config_url: Option<String>,
    pub config_token: Option<String>,
}

/// A machine as operators see it (`GET /api/v1/machines/{id}` and the
/// answer of every lifecycle action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MachineDetail {
    pub machine_id: String,
    pub ek_fingerprint: String,
    pub hw_uuid: Option<String>,
    /// Normalised `aa:bb:cc:dd:ee:ff`.
    pub hw_mac: Option<String>,
    pub hw_serial: Option<String>,
    pub hw_product: Option<String>,
    pub role: Role,
    pub status: MachineStatus,
    pub hostname: Option<String>,
    /// CIDR, e.g. `10.0.1.11/24`.
    pub assigned_ip: Option<String>,
    pub registered_at: String,
    pub attested_at: Option<String>,
    pub locked_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The next attestation answers `wipe`.
    pub wipe_pending: bool,
    /// How the EK material was supplied.
    pub ek_source: EkSource,
    /// Boot ISO from the last `POST /register`, if any.
    pub iso_url: Option<String>,
    /// When an attestation key was activated (null: none yet).
    pub ak_activated_at: Option<String>,
    /// How the AK is tied to the EK: `credential` (TPM2_ActivateCredential
    /// proved it lives in the EK's TPM) or `ek-cert` (only the EK
    /// certificate was presented); null without an AK.
    pub ak_binding: Option<String>,
    /// Last `POST /attest` that was answered.
    pub last_attest_at: Option<String>,
    /// A config token is issued and not yet fetched.
    pub config_token_outstanding: bool,
    pub updated_at: String,
}

/// Query of `GET /api/v1/machines`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MachineListQuery {
    /// Only machines in this status.
    pub status: Option<MachineStatus>,
    /// Only machines with this role.
    pub role: Option<Role>,
    /// Page number (1-based, default 1). Without `page` and `per_page`
    /// every machine is listed.
    #[param(minimum = 1)]
    pub page: Option<i64>,
    /// Machines per page (default 50, max 200).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

/// Body of `POST /api/v1/machines/{machine_id}/approve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApproveRequest {
    pub role: Role,
    /// Kubernetes node hostname (RFC 1123).
    #[schema(
        max_length = 253,
        pattern = "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
    )]
    #[serde(default)]
    pub hostname: Option<String>,
    /// Static address for `machine.network.interfaces[0]`, CIDR.
    #[serde(default)]
    pub assigned_ip: Option<String>,
}

/// 202 answer of approve: a first dual-control vote was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PendingApprovalResponse {
    pub machine_id: String,
    /// Always `pending_second_approval`.
    #[schema(example = "pending_second_approval")]
    pub status: String,
    pub message: String,
    pub approvals_received: u32,
    pub approvals_required: u32,
    pub expires_at: String,
}

/// Body of `POST /api/v1/machines/{machine_id}/revoke`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// Next attestation answers `wipe` (`talosctl reset`).
    #[serde(default)]
    pub wipe: bool,
    /// Audit note.
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub reason: Option<String>,
}

/// Body of `POST /api/v1/machines/{machine_id}/lock` (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LockRequest {
    /// Audit note.
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub reason: Option<String>,
}

/// One dual-control vote (`GET /api/v1/machines/{machine_id}/approvals`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalRecord {
    pub id: i64,
    pub machine_id: String,
    pub operator_cn: String,
    pub role: Role,
    pub hostname: Option<String>,
    pub assigned_ip: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    /// Counted towards an approval that took effect.
    pub consumed: bool,
}

/// Body of `POST /api/v1/machines/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportRequest {
    /// SHA-256 (64 hex) or SHA-384 (96 hex) fingerprint from the receipt.
    #[schema(pattern = "^([0-9a-fA-F]{64}|[0-9a-fA-F]{96})$")]
    pub ek_fingerprint: String,
    /// Default `worker-app`.
    #[serde(default)]
    pub role: Option<Role>,
    /// Use this UUID for a new machine; assigned when absent.
    #[serde(default)]
    pub machine_id: Option<String>,
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub hw_uuid: Option<String>,
    #[schema(max_length = 64)]
    #[serde(default)]
    pub hw_mac: Option<String>,
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub hw_serial: Option<String>,
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    #[serde(default)]
    pub hw_product: Option<String>,
    #[serde(default)]
    pub ek_source: Option<EkSource>,
    /// EK material from the receipt, if it has it (then checked against
    /// the fingerprint). Not in the seed.
    #[serde(default)]
    pub ek_cert_pem: Option<String>,
}

/// Answer of `POST /api/v1/machines/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportResponse {
    pub machine_id: String,
    pub role: Role,
    pub status: MachineStatus,
    /// Null while the machine awaits approval (dual-controlled role).
    pub config_url: Option<String>,
    pub message: String,
}

/// Body of `POST /api/v1/machines/{machine_id}/ak-activate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AkActivateRequest {
    /// EK material; must match the stored fingerprint.
    pub ek_cert_pem: String,
    /// SubjectPublicKeyInfo PEM of the AK (ECDSA P-384 or RSA-3072+).
    pub ak_pub: String,
    /// Base64 TPM2B_ATTEST.
    pub quote: String,
    /// Base64 TPMT_SIGNATURE over the quote.
    pub quote_sig: String,
    /// `{"sha256:0": "<hex>", …}`.
    pub pcr_values: BTreeMap<String, String>,
    /// From `GET /attest/challenge`; strongly recommended.
    #[serde(default)]
    pub nonce_id: Option<String>,
    #[serde(default)]
    pub ek_source: Option<EkSource>,
    /// From `POST /machines/{id}/ak-credential`: proves the AK lives in the
    /// EK's TPM (required when `ITL_REQUIRE_AK_CREDENTIAL=true`).
    #[schema(max_length = 128)]
    #[serde(default)]
    pub activation_id: Option<String>,
    /// Base64 of the secret `tpm2_activatecredential` released.
    #[schema(max_length = 256)]
    #[serde(default)]
    pub activation_secret: Option<String>,
}

/// Answer of ak-activate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AkActivateResponse {
    pub machine_id: String,
    pub ak_accepted: bool,
    pub message: String,
}

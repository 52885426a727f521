//! Issuers and the CA hierarchy: `/api/v1/issuers`,
//! `/api/v1/issuers/{id}/intermediates`, `/api/v1/intermediates/{id}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The seed's `IssuerType` enum. Only `GenericCA` (a local CA) has a
/// connector in this deployment; the others are accepted and answer
/// "connector not available" when used.
pub const ISSUER_TYPES: &[&str] = &[
    "ACME",
    "GenericCA",
    "StepCA",
    "VaultPKI",
    "DigiCert",
    "Sectigo",
    "GoogleCAS",
    "AWSACMPCA",
    "Entrust",
    "GlobalSign",
    "EJBCA",
];

/// `Issuer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Issuer {
    pub id: String,
    pub name: String,
    /// One of the seed's `IssuerType` values.
    #[serde(rename = "type")]
    pub issuer_type: String,
    /// Issuer-specific configuration. For `GenericCA` it also reports the
    /// CA the issuer signs with (`root_ca_id`, `issuing_ca_id`,
    /// `ca_cert_pem`, `subject`, `not_after`, `key_algorithm`); private
    /// keys are never part of it.
    #[schema(value_type = Object)]
    pub config: Value,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// Create or update an issuer.
///
/// `GenericCA` config on create: `common_name`, `organization`,
/// `key_algorithm` (`ECDSA-P256` default, `ECDSA-P384`, `RSA-2048`,
/// `RSA-3072`, `RSA-4096`), `validity_days` (default 3650), `path_len`,
/// `permitted_dns`/`excluded_dns` (name constraints); or `ca_cert_pem`
/// with `ca_key_pem` to import an existing CA (the key is encrypted at
/// rest and never returned). On update: `issuing_ca_id` picks which CA of
/// the hierarchy signs certificates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IssuerInput {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub issuer_type: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A CA of an issuer's hierarchy (root or intermediate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IntermediateCa {
    /// `ica-` id.
    pub id: String,
    pub issuer_id: String,
    /// The signing CA; absent for the root.
    pub parent_ca_id: Option<String>,
    pub name: String,
    /// `active`, `retiring` (issues nothing new) or `retired`.
    pub state: String,
    pub subject: String,
    pub serial_number: String,
    pub not_before: String,
    pub not_after: String,
    pub path_len_constraint: Option<i64>,
    /// `[{"permitted": [...], "excluded": [...]}]` (DNS subtrees).
    #[schema(value_type = Vec<Object>)]
    pub name_constraints: Value,
    pub key_algorithm: String,
    pub cert_pem: String,
    pub ocsp_responder_url: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /api/v1/issuers/{id}/intermediates`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateIntermediate {
    pub name: String,
    /// The signing CA; empty to register an operator-supplied root.
    #[serde(default)]
    pub parent_ca_id: Option<String>,
    /// Root registration: the root certificate PEM.
    #[serde(default)]
    pub root_cert_pem: Option<String>,
    /// Root registration: a signer driver reference. No external signer
    /// drivers exist here; give `root_key_pem` instead.
    #[serde(default)]
    pub key_driver_id: Option<String>,
    /// Root registration: the root's private key PEM (encrypted at rest,
    /// never returned).
    #[serde(default)]
    pub root_key_pem: Option<String>,
    /// Child CA subject: `{"common_name", "organization"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub subject: Option<Value>,
    /// `ECDSA-P256` (default), `ECDSA-P384`, `RSA-2048`, `RSA-3072`, `RSA-4096`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// 1–36500 (default 1825).
    #[serde(default, deserialize_with = "crate::lenient::option_i64")]
    #[schema(minimum = 1, maximum = 36500)]
    pub ttl_days: Option<i64>,
    /// 0–255.
    #[serde(default, deserialize_with = "crate::lenient::option_i64")]
    #[schema(minimum = 0, maximum = 255)]
    pub path_len_constraint: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub name_constraints: Option<Value>,
    #[serde(default)]
    pub ocsp_responder_url: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `POST /api/v1/intermediates/{id}/retire`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetireRequest {
    #[serde(default)]
    pub note: Option<String>,
    /// `false`: active → retiring; `true`: retiring → retired.
    #[serde(default)]
    pub confirm: Option<bool>,
}

/// A list of CAs (`{"data": [...]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IntermediateList {
    pub data: Vec<IntermediateCa>,
}

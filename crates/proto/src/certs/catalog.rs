//! The catalogue around certificates: teams, owners, certificate
//! profiles and renewal policies (`/api/v1/{teams,owners,profiles,
//! renewal-policies}`).
//!
//! Each resource has its wire shape and an input shape for create and
//! update (every field optional: create requires what the resource
//! needs, update changes only the fields given).

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    Array, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::ToSchema;

/// `Team`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
}

/// Create a team.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TeamCreate {
    /// Client-chosen id (`t-platform`); generated from the name when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub id: Option<String>,
    /// 1–255 characters, not blank.
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// Update a team (omitted fields unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TeamInput {
    /// Ignored: an id does not change.
    #[serde(default)]
    pub id: Option<String>,
    /// 1–255 characters, not blank.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `Owner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Owner {
    pub id: String,
    pub name: String,
    pub email: String,
    /// The team the owner belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Create or update an owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OwnerInput {
    /// Client-chosen id on create (1–128 letters, digits, `-`, `_`, `.`;
    /// generated from the name when absent); ignored on update, so the
    /// schema, shared by both, does not constrain it.
    #[serde(default)]
    pub id: Option<String>,
    /// 1–255 characters, not blank.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(format = Email)]
    pub email: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
}

/// `KeyAlgorithmRule`: an algorithm a profile allows, at a minimum size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyAlgorithmRule {
    /// `RSA`, `ECDSA` or `Ed25519`.
    pub algorithm: String,
    /// Minimum key size in bits (RSA modulus, EC curve size).
    #[serde(default, deserialize_with = "crate::lenient::i64")]
    pub min_size: i64,
}

/// `CertificateProfile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CertificateProfile {
    pub id: String,
    pub name: String,
    pub description: String,
    pub allowed_key_algorithms: Vec<KeyAlgorithmRule>,
    /// Longest validity a certificate under this profile may have.
    pub max_ttl_seconds: i64,
    /// Extended key usages issued certificates carry (`serverAuth`,
    /// `clientAuth`, `codeSigning`, `emailProtection`, `timeStamping`).
    pub allowed_ekus: Vec<String>,
    /// Regular expressions every subject alternative name must match
    /// (anchored; none: any name).
    pub required_san_patterns: Vec<String>,
    /// Regular expression URI SANs must match, if set.
    pub spiffe_uri_pattern: String,
    /// Whether validity under an hour is allowed.
    pub allow_short_lived: bool,
    /// A disabled profile issues nothing.
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// Create or update a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProfileInput {
    /// Client-chosen id on create (1–128 letters, digits, `-`, `_`, `.`;
    /// generated from the name when absent); ignored on update, so the
    /// schema, shared by both, does not constrain it.
    #[serde(default)]
    pub id: Option<String>,
    /// 1–255 characters, not blank.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_key_algorithms: Option<Vec<KeyAlgorithmRule>>,
    #[serde(default, deserialize_with = "crate::lenient::option_i64")]
    #[schema(minimum = 1)]
    pub max_ttl_seconds: Option<i64>,
    #[serde(default)]
    pub allowed_ekus: Option<Vec<String>>,
    #[serde(default)]
    pub required_san_patterns: Option<Vec<String>>,
    #[serde(default)]
    pub spiffe_uri_pattern: Option<String>,
    #[serde(default)]
    pub allow_short_lived: Option<bool>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `RenewalPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RenewalPolicy {
    /// `rp-` id.
    pub id: String,
    pub name: String,
    /// Days before expiry to renew (1–365).
    pub renewal_window_days: i64,
    /// Whether the scheduler renews automatically.
    pub auto_renew: bool,
    /// Renewal retries on failure (0–10).
    pub max_retries: i64,
    /// Seconds between retries (60–86400).
    pub retry_interval_seconds: i64,
    /// Days before expiry at which to alert.
    pub alert_thresholds_days: Vec<i64>,
    /// Optional profile binding (read-only here).
    pub certificate_profile_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Alert thresholds: days before expiry, each 0–365.
fn thresholds_schema() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(0))
                .maximum(Some(365)),
        )
        .build()
}

/// `RenewalPolicyCreateRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RenewalPolicyCreateRequest {
    /// Client-chosen id; generated from the name when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub id: Option<String>,
    /// 1–255 characters, not blank.
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    pub name: String,
    /// Default 30.
    #[serde(default, deserialize_with = "crate::lenient::option_i64")]
    #[schema(minimum = 1, maximum = 365)]
    pub renewal_window_days: Option<i64>,
    #[serde(default)]
    pub auto_renew: Option<bool>,
    /// Required: 0 is a valid choice, so it is not defaulted.
    #[serde(deserialize_with = "crate::lenient::i64")]
    #[schema(minimum = 0, maximum = 10)]
    pub max_retries: i64,
    /// Default 3600.
    #[serde(default, deserialize_with = "crate::lenient::option_i64")]
    #[schema(minimum = 60, maximum = 86400)]
    pub retry_interval_seconds: Option<i64>,
    /// Default `[30, 14, 7, 0]`.
    #[serde(default, deserialize_with = "crate::lenient::option_vec_i64")]
    #[schema(schema_with = thresholds_schema)]
    pub alert_thresholds_days: Option<Vec<i64>>,
}

/// `RenewalPolicyUpdateRequest`: omitted fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RenewalPolicyUpdateRequest {
    /// 1–255 characters, not blank.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::option_i64")]
    #[schema(minimum = 1, maximum = 365)]
    pub renewal_window_days: Option<i64>,
    #[serde(default)]
    pub auto_renew: Option<bool>,
    #[serde(default, deserialize_with = "crate::lenient::option_i64")]
    #[schema(minimum = 0, maximum = 10)]
    pub max_retries: Option<i64>,
    #[serde(default, deserialize_with = "crate::lenient::option_i64")]
    #[schema(minimum = 60, maximum = 86400)]
    pub retry_interval_seconds: Option<i64>,
    #[serde(default, deserialize_with = "crate::lenient::option_vec_i64")]
    #[schema(schema_with = thresholds_schema)]
    pub alert_thresholds_days: Option<Vec<i64>>,
}

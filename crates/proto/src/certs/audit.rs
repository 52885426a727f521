//! `GET /api/v1/audit`: the one hash-chained log in certctl's shape.

use serde::{Deserialize, Serialize};
use utoipa::openapi::Object;
use utoipa::{IntoParams, ToSchema};

use super::common::string_enum;

/// The seed's event categories.
pub const AUDIT_CATEGORIES: &[&str] = &["cert_lifecycle", "auth", "config"];

fn category_schema() -> Object {
    string_enum(AUDIT_CATEGORIES, &[], false)
}

/// `AuditEvent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    /// The entry's position in the chain.
    pub id: String,
    /// Who acted.
    pub actor: String,
    /// `User`, `System`, `Agent` (the seed's `ActorType`; API keys and
    /// operators are `User`).
    pub actor_type: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    /// What the entry recorded besides the above.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub timestamp: String,
    /// `cert_lifecycle`, `auth` or `config`.
    pub event_category: String,
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
    /// `cert_lifecycle`, `auth` or `config`.
    #[param(schema_with = category_schema)]
    pub category: Option<String>,
}

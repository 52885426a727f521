//! Authentication and RBAC: `/api/v1/auth/*`.

use serde::{Deserialize, Serialize};
use utoipa::openapi::Object;
use utoipa::{IntoParams, ToSchema};

use super::common::string_enum;

/// Grant scopes; empty or absent means `global`.
pub const SCOPE_TYPES: &[&str] = &["global", "profile", "issuer"];

fn scope_type_body() -> Object {
    string_enum(SCOPE_TYPES, &[""], true)
}

fn scope_type_query() -> Object {
    string_enum(SCOPE_TYPES, &[""], false)
}

/// `GET /api/v1/auth/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthInfo {
    /// `api-key`, `none` or `oidc`.
    #[schema(example = "api-key")]
    pub auth_type: String,
    /// Whether requests need credentials.
    pub required: bool,
}

/// A permission an actor holds at a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EffectivePermission {
    /// Catalogue id (`cert.bulk_revoke`).
    pub permission: String,
    /// `global`, `profile` or `issuer`.
    pub scope_type: String,
    /// The profile or issuer id of a scoped grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<String>,
}

/// `GET /api/v1/auth/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthCheck {
    /// `authenticated`.
    pub status: String,
    /// The caller's name.
    pub user: String,
    /// Legacy admin flag.
    pub admin: bool,
    pub actor_id: String,
    /// `User`, `System`, `Agent`, `APIKey` or `Anonymous`.
    pub actor_type: String,
    pub tenant_id: String,
    /// Whether the caller holds `r-admin`.
    pub admin_via_role: bool,
    pub roles: Vec<String>,
    pub effective_permissions: Vec<EffectivePermission>,
}

/// `GET /api/v1/auth/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthMe {
    pub actor_id: String,
    pub actor_type: String,
    pub tenant_id: String,
    pub admin: bool,
    pub roles: Vec<String>,
    pub effective_permissions: Vec<EffectivePermission>,
}

/// `GET /api/v1/auth/bootstrap`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BootstrapAvailability {
    /// Whether `POST` would mint the first admin key.
    pub available: bool,
}

/// `POST /api/v1/auth/bootstrap` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BootstrapRequest {
    /// The `CERTCTL_BOOTSTRAP_TOKEN` value.
    pub token: String,
    /// 3–64 characters: lowercase letters, digits, `-`, `_`.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{2,63}$")]
    pub actor_name: String,
}

/// A freshly minted API key: its value is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MintedKey {
    pub actor_id: String,
    pub api_key_id: String,
    /// The plaintext key; only its SHA-256 is stored.
    pub key_value: String,
    pub created_at: String,
    pub message: String,
}

/// A catalogue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PermissionInfo {
    pub id: String,
    pub name: String,
    pub namespace: String,
}

/// `GET /api/v1/auth/permissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PermissionList {
    pub permissions: Vec<PermissionInfo>,
}

/// `AuthRole`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthRole {
    /// `r-` id.
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `AuthRolePermission`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthRolePermission {
    pub role_id: String,
    pub permission_id: String,
    pub scope_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<String>,
}

/// `GET /api/v1/auth/roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<AuthRole>,
}

/// `GET /api/v1/auth/roles/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleDetail {
    pub role: AuthRole,
    pub permissions: Vec<AuthRolePermission>,
}

/// `POST /api/v1/auth/roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateRole {
    /// 3–64 characters: lowercase letters, digits, `-`, `_`.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{2,63}$")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `PUT /api/v1/auth/roles/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateRole {
    /// 3–64 characters: lowercase letters, digits, `-`, `_`.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{2,63}$")]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `POST /api/v1/auth/roles/{id}/permissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GrantPermission {
    /// A catalogue id (`GET /api/v1/auth/permissions`).
    pub permission: String,
    /// `global` (default), `profile` or `issuer`.
    #[serde(default)]
    #[schema(schema_with = scope_type_body)]
    pub scope_type: Option<String>,
    #[serde(default)]
    pub scope_id: Option<String>,
}

/// The scope of `DELETE /api/v1/auth/roles/{id}/permissions/{perm}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScopeQuery {
    /// `global` (default), `profile` or `issuer`.
    #[param(schema_with = scope_type_query)]
    pub scope_type: Option<String>,
    pub scope_id: Option<String>,
}

/// An actor holding roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActorKey {
    pub actor_id: String,
    pub actor_type: String,
    pub tenant_id: String,
    pub role_ids: Vec<String>,
}

/// `GET /api/v1/auth/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActorKeyList {
    pub keys: Vec<ActorKey>,
}

/// `POST /api/v1/auth/keys/{id}/roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssignRole {
    pub role_id: String,
}

/// `POST /api/v1/auth/keys` (not in the seed, which reads named keys from
/// its environment): mint an API key for a new actor, optionally with
/// roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateKey {
    /// The new actor's name (same rule as the bootstrap's `actor_name`).
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{2,63}$")]
    pub actor_name: String,
    /// Roles to grant at once (each needs `auth.role.assign`).
    #[serde(default)]
    pub role_ids: Vec<String>,
}

//! `/api/v1/auth/*`: the day-0 bootstrap, the permission catalogue,
//! roles and their grants, API keys and the roles they hold.

use attest_certs_domain::permissions::CATALOGUE;
use attest_proto::certs::auth::{
    ActorKeyList, AssignRole, AuthRole, BootstrapAvailability, BootstrapRequest, CreateKey,
    CreateRole, GrantPermission, MintedKey, PermissionInfo, PermissionList, RoleDetail, RoleList,
    ScopeQuery, UpdateRole,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::CertsError;
use crate::extract::{Json, Path, Query};
use crate::rbac;
use crate::state::CertsState;

/// Routes of this module.
pub fn router() -> OpenApiRouter<CertsState> {
    OpenApiRouter::new()
        .routes(routes!(bootstrap_probe, bootstrap))
        .routes(routes!(list_permissions))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, update_role, delete_role))
        .routes(routes!(grant_permission))
        .routes(routes!(revoke_permission))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(assign_role))
        .routes(routes!(unassign_role))
}

type Result<T> = std::result::Result<T, CertsError>;

/// Whether the day-0 bootstrap is callable: a `CERTCTL_BOOTSTRAP_TOKEN`
/// is set, it was never used, and no administrator exists.
#[utoipa::path(get, path = "/api/v1/auth/bootstrap", tag = "Auth", operation_id = "getAuthBootstrap",
    security(()), responses((status = 200, description = "Bootstrap availability", body = BootstrapAvailability)))]
pub async fn bootstrap_probe(
    State(state): State<CertsState>,
) -> Result<JsonBody<BootstrapAvailability>> {
    Ok(JsonBody(BootstrapAvailability {
        available: rbac::bootstrap_available(&state).await?,
    }))
}

/// Mints the first administrator's API key from the one-shot bootstrap
/// token; the value is returned once and only its SHA-256 is stored.
/// 410 once used, once an administrator exists, or when no token is set.
#[utoipa::path(post, path = "/api/v1/auth/bootstrap", tag = "Auth", operation_id = "postAuthBootstrap",
    security(()), request_body = BootstrapRequest,
    responses((status = 201, description = "Admin key minted", body = MintedKey),
              (status = 400, description = "Invalid actor_name or malformed body"),
              (status = 401, description = "Bootstrap token mismatch"),
              (status = 410, description = "Endpoint disabled or already used")))]
pub async fn bootstrap(
    State(state): State<CertsState>,
    Json(body): Json<BootstrapRequest>,
) -> Result<(StatusCode, JsonBody<MintedKey>)> {
    let key = rbac::bootstrap(&state, &body.token, &body.actor_name).await?;
    Ok((StatusCode::CREATED, JsonBody(key)))
}

/// The canonical permission catalogue. Permission `auth.role.list`.
#[utoipa::path(get, path = "/api/v1/auth/permissions", tag = "Auth", operation_id = "listAuthPermissions",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Permission catalogue", body = PermissionList),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden")))]
pub async fn list_permissions(caller: Caller) -> Result<JsonBody<PermissionList>> {
    caller.require(&attest_certs_domain::permissions::AUTH_ROLE_LIST)?;
    Ok(JsonBody(PermissionList {
        permissions: CATALOGUE
            .iter()
            .map(|p| PermissionInfo {
                id: p.id.into(),
                name: p.description.into(),
                namespace: p.namespace().into(),
            })
            .collect(),
    }))
}

/// Every role. Permission `auth.role.list`.
#[utoipa::path(get, path = "/api/v1/auth/roles", tag = "Auth", operation_id = "listAuthRoles",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Role list", body = RoleList),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden")))]
pub async fn list_roles(
    State(state): State<CertsState>,
    caller: Caller,
) -> Result<JsonBody<RoleList>> {
    Ok(JsonBody(RoleList {
        roles: rbac::list_roles(&state, &caller).await?,
    }))
}

/// Creates a custom role (its id is `r-<name>`). Permission
/// `auth.role.create`.
#[utoipa::path(post, path = "/api/v1/auth/roles", tag = "Auth", operation_id = "createAuthRole",
    security(("bearerAuth" = [])), request_body = CreateRole,
    responses((status = 201, description = "Role created", body = AuthRole),
              (status = 400, description = "Validation error"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 409, description = "Role with that name already exists")))]
pub async fn create_role(
    State(state): State<CertsState>,
    caller: Caller,
    Json(body): Json<CreateRole>,
) -> Result<(StatusCode, JsonBody<AuthRole>)> {
    let role = rbac::create_role(&state, &caller, &body).await?;
    Ok((StatusCode::CREATED, JsonBody(role)))
}

/// A role and its permissions. Permission `auth.role.list`.
#[utoipa::path(get, path = "/api/v1/auth/roles/{id}", tag = "Auth", operation_id = "getAuthRole",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Role id")),
    responses((status = 200, description = "Role and permissions", body = RoleDetail),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Role not found")))]
pub async fn get_role(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonBody<RoleDetail>> {
    let (role, permissions) = rbac::get_role(&state, &caller, &id).await?;
    Ok(JsonBody(RoleDetail { role, permissions }))
}

/// Renames or redescribes a custom role. Permission `auth.role.edit`.
#[utoipa::path(put, path = "/api/v1/auth/roles/{id}", tag = "Auth", operation_id = "updateAuthRole",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Role id")),
    request_body = UpdateRole,
    responses((status = 200, description = "Updated", body = AuthRole),
              (status = 400, description = "Validation error"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Role not found"),
              (status = 409, description = "Default role cannot be renamed / name collision")))]
pub async fn update_role(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<UpdateRole>,
) -> Result<JsonBody<AuthRole>> {
    Ok(JsonBody(
        rbac::update_role(&state, &caller, &id, &body).await?,
    ))
}

/// Deletes a custom role nobody holds. Permission `auth.role.delete`.
#[utoipa::path(delete, path = "/api/v1/auth/roles/{id}", tag = "Auth", operation_id = "deleteAuthRole",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Role id")),
    responses((status = 204, description = "Deleted"),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Role not found"),
              (status = 409, description = "Default role, or still has active actor assignments")))]
pub async fn delete_role(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    rbac::delete_role(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Grants a permission to a custom role at a scope (`global` by
/// default; `profile` and `issuer` need `scope_id`). Permission
/// `auth.role.edit`.
#[utoipa::path(post, path = "/api/v1/auth/roles/{id}/permissions", tag = "Auth",
    operation_id = "grantAuthRolePermission", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Role id")), request_body = GrantPermission,
    responses((status = 204, description = "Granted"),
              (status = 400, description = "Permission not in the catalogue / scope_id missing"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Role not found"),
              (status = 409, description = "Default roles cannot be changed")))]
pub async fn grant_permission(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<GrantPermission>,
) -> Result<StatusCode> {
    rbac::grant(&state, &caller, &id, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a permission from a custom role. Permission `auth.role.edit`.
#[utoipa::path(delete, path = "/api/v1/auth/roles/{id}/permissions/{perm}", tag = "Auth",
    operation_id = "revokeAuthRolePermission", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Role id"),
           ("perm" = String, Path, description = "Permission id"), ScopeQuery),
    responses((status = 204, description = "Revoked"),
              (status = 400, description = "Permission not in the catalogue, or bad scope"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Role or permission grant not found"),
              (status = 409, description = "Default roles cannot be changed")))]
pub async fn revoke_permission(
    State(state): State<CertsState>,
    caller: Caller,
    Path((id, perm)): Path<(String, String)>,
    Query(scope): Query<ScopeQuery>,
) -> Result<StatusCode> {
    rbac::revoke_grant(
        &state,
        &caller,
        &id,
        &perm,
        scope.scope_type.as_deref(),
        scope.scope_id.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every actor holding at least one role. Permission `auth.role.list`.
#[utoipa::path(get, path = "/api/v1/auth/keys", tag = "Auth", operation_id = "listAuthKeys",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Actor list with role assignments", body = ActorKeyList),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden")))]
pub async fn list_keys(
    State(state): State<CertsState>,
    caller: Caller,
) -> Result<JsonBody<ActorKeyList>> {
    Ok(JsonBody(ActorKeyList {
        keys: rbac::list_actors(&state, &caller).await?,
    }))
}

/// Mints an API key for a new actor (not in the seed, which reads named
/// keys from its environment); the value is returned once. Permission
/// `auth.key.create` (and `auth.role.assign` to grant roles with it).
#[utoipa::path(post, path = "/api/v1/auth/keys", tag = "Auth", operation_id = "createAuthKey",
    security(("bearerAuth" = [])), request_body = CreateKey,
    responses((status = 201, description = "Key minted", body = MintedKey),
              (status = 400, description = "Invalid actor_name"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Role not found"),
              (status = 409, description = "An actor with that name exists")))]
pub async fn create_key(
    State(state): State<CertsState>,
    caller: Caller,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, JsonBody<MintedKey>)> {
    let key = rbac::create_key(&state, &caller, &body.actor_name, &body.role_ids).await?;
    Ok((StatusCode::CREATED, JsonBody(key)))
}

/// Revokes an API key by its id (`ak-…`); it stops authenticating at
/// once. Permission `auth.key.revoke`.
#[utoipa::path(delete, path = "/api/v1/auth/keys/{id}", tag = "Auth", operation_id = "revokeAuthKey",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "API key id")),
    responses((status = 204, description = "Revoked"),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "No such live key")))]
pub async fn revoke_key(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    rbac::revoke_key(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Assigns a role to an API key's actor. Permission `auth.role.assign`.
#[utoipa::path(post, path = "/api/v1/auth/keys/{id}/roles", tag = "Auth", operation_id = "assignAuthKeyRole",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Actor id of the key")),
    request_body = AssignRole,
    responses((status = 204, description = "Assigned"),
              (status = 400, description = "Validation error"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Role not found"),
              (status = 409, description = "Reserved system actor cannot be modified")))]
pub async fn assign_role(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<AssignRole>,
) -> Result<StatusCode> {
    rbac::assign_role(&state, &caller, &id, &body.role_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a role from an API key's actor. Permission `auth.role.assign`.
#[utoipa::path(delete, path = "/api/v1/auth/keys/{id}/roles/{role_id}", tag = "Auth",
    operation_id = "revokeAuthKeyRole", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Actor id of the key"),
           ("role_id" = String, Path, description = "Role id")),
    responses((status = 204, description = "Revoked"),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Role not assigned to actor"),
              (status = 409, description = "Reserved system actor cannot be modified")))]
pub async fn unassign_role(
    State(state): State<CertsState>,
    caller: Caller,
    Path((id, role_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    rbac::unassign_role(&state, &caller, &id, &role_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

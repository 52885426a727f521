//! Services of `/api/v1/auth/*`: the day-0 bootstrap, API keys, roles and
//! their grants. Each change is one write transaction with its audit
//! entry.

use attest_certs_domain::names::is_actor_name;
use attest_certs_domain::permissions::{self, ADMIN_ROLE};
use attest_certs_domain::rbac::{self as rbac_rules, Grant, ScopeType, Target};
use attest_certs_domain::TENANT;
use attest_certs_store::keys::{self as key_repo, ApiKeyRecord};
use attest_certs_store::rbac::{self as repo, RoleRecord, ACTOR_API_KEY};
use attest_proto::certs::auth::{
    ActorKey, AuthRole, AuthRolePermission, CreateRole, GrantPermission, MintedKey, UpdateRole,
};
use secrecy::ExposeSecret;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::audit::{record, Change};
use crate::auth::{keys, Caller};
use crate::error::{CertsError, CertsResult};
use crate::state::CertsState;

/// The actor the bootstrap acts as in the audit log.
const BOOTSTRAP_ACTOR: &str = "bootstrap";

/// Whether `POST /api/v1/auth/bootstrap` would mint a key: a token is
/// configured, it was never used, and no administrator exists.
pub async fn bootstrap_available(state: &CertsState) -> CertsResult<bool> {
    if state.config.bootstrap_token.is_none() {
        return Ok(false);
    }
    Ok(!key_repo::bootstrap_consumed(&state.store).await?
        && !repo::role_held(&state.store, ADMIN_ROLE).await?)
}

/// Mints the first administrator's key from the bootstrap token.
pub async fn bootstrap(
    state: &CertsState,
    token: &str,
    actor_name: &str,
) -> CertsResult<MintedKey> {
    let Some(expected) = &state.config.bootstrap_token else {
        return Err(CertsError::Gone("bootstrap is disabled".into()));
    };
    if !bootstrap_available(state).await? {
        return Err(CertsError::Gone("bootstrap was already used".into()));
    }
    let matches: bool = expected
        .expose_secret()
        .as_bytes()
        .ct_eq(token.as_bytes())
        .into();
    if !matches {
        tracing::warn!("bootstrap attempted with a wrong token");
        return Err(CertsError::Unauthenticated(
            "bootstrap token mismatch".into(),
        ));
    }
    check_actor_name(actor_name)?;
    let value = keys::mint();
    let id = new_id("ak");
    let now = state.clock.now();
    let system = Caller {
        actor_id: BOOTSTRAP_ACTOR.into(),
        actor_type: "System",
        roles: Vec::new(),
        grants: Vec::new(),
    };
    let hash = keys::key_hash(&value);
    let actor = actor_name.to_owned();
    let record_id = id.clone();
    let key = state
        .store
        .write_with(async |tx| {
            // The first statement claims the one-shot: a racing second
            // bootstrap waits here and then finds it consumed.
            if !key_repo::consume_bootstrap(tx, &actor, now).await? {
                return Err(CertsError::Gone("bootstrap was already used".into()));
            }
            let key = key_repo::insert(tx, &record_id, &actor, &hash, BOOTSTRAP_ACTOR, now)
                .await
                .map_err(CertsError::conflict_on("an actor with that name exists"))?;
            repo::assign(tx, &actor, ACTOR_API_KEY, ADMIN_ROLE, BOOTSTRAP_ACTOR, now).await?;
            record(
                tx,
                &system,
                Change {
                    action: "auth.bootstrap",
                    resource_type: "api_key",
                    resource_id: &record_id,
                    details: json!({"actor_id": actor, "role_id": ADMIN_ROLE}),
                },
                now,
            )
            .await?;
            Ok::<_, CertsError>(key)
        })
        .await?;
    tracing::info!(actor = %key.actor_id, "bootstrap minted the first administrator key");
    Ok(minted(
        key,
        value,
        "store this key now: it is shown only once",
    ))
}

/// Mints an API key for a new actor, with roles the caller may assign.
pub async fn create_key(
    state: &CertsState,
    caller: &Caller,
    actor_name: &str,
    role_ids: &[String],
) -> CertsResult<MintedKey> {
    caller.require(&permissions::AUTH_KEY_CREATE)?;
    if !role_ids.is_empty() {
        caller.require(&permissions::AUTH_ROLE_ASSIGN)?;
    }
    check_actor_name(actor_name)?;
    for role in role_ids {
        check_can_hand_out(state, caller, role).await?;
    }
    let value = keys::mint();
    let id = new_id("ak");
    let hash = keys::key_hash(&value);
    let now = state.clock.now();
    let roles = role_ids.to_vec();
    let key = state
        .store
        .write_with(async |tx| {
            let key = key_repo::insert(tx, &id, actor_name, &hash, &caller.actor_id, now)
                .await
                .map_err(CertsError::conflict_on("an actor with that name exists"))?;
            for role in &roles {
                repo::assign(tx, actor_name, ACTOR_API_KEY, role, &caller.actor_id, now).await?;
            }
            record(
                tx,
                caller,
                Change {
                    action: "auth.key.create",
                    resource_type: "api_key",
                    resource_id: &id,
                    details: json!({"actor_id": actor_name, "role_ids": roles}),
                },
                now,
            )
            .await?;
            Ok::<_, CertsError>(key)
        })
        .await?;
    Ok(minted(
        key,
        value,
        "store this key now: it is shown only once",
    ))
}

/// Revokes the API key `id`.
pub async fn revoke_key(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<()> {
    caller.require(&permissions::AUTH_KEY_REVOKE)?;
    let now = state.clock.now();
    state
        .store
        .write_with(async |tx| {
            if !key_repo::revoke(tx, id, &caller.actor_id, now).await? {
                return Err(CertsError::not_found("API key"));
            }
            record(
                tx,
                caller,
                Change {
                    action: "auth.key.revoke",
                    resource_type: "api_key",
                    resource_id: id,
                    details: json!({}),
                },
                now,
            )
            .await
        })
        .await
}

/// Every actor holding roles.
pub async fn list_actors(state: &CertsState, caller: &Caller) -> CertsResult<Vec<ActorKey>> {
    caller.require(&permissions::AUTH_ROLE_LIST)?;
    Ok(repo::actors(&state.store)
        .await?
        .into_iter()
        .map(|a| ActorKey {
            actor_id: a.actor_id,
            actor_type: a.actor_type,
            tenant_id: TENANT.into(),
            role_ids: a.role_ids,
        })
        .collect())
}

/// Every API key (values are never stored, so never shown).
pub async fn list_keys(state: &CertsState, caller: &Caller) -> CertsResult<Vec<ApiKeyRecord>> {
    caller.require(&permissions::AUTH_ROLE_LIST)?;
    Ok(key_repo::list(&state.store).await?)
}

/// Grants `role_id` to the API key actor `actor_id`.
pub async fn assign_role(
    state: &CertsState,
    caller: &Caller,
    actor_id: &str,
    role_id: &str,
) -> CertsResult<()> {
    caller.require(&permissions::AUTH_ROLE_ASSIGN)?;
    refuse_reserved(actor_id)?;
    check_can_hand_out(state, caller, role_id).await?;
    let now = state.clock.now();
    state
        .store
        .write_with(async |tx| {
            repo::assign(tx, actor_id, ACTOR_API_KEY, role_id, &caller.actor_id, now).await?;
            record(
                tx,
                caller,
                Change {
                    action: "auth.role.assign",
                    resource_type: "actor",
                    resource_id: actor_id,
                    details: json!({"role_id": role_id, "actor_type": ACTOR_API_KEY}),
                },
                now,
            )
            .await
        })
        .await
}

/// Takes `role_id` from the API key actor `actor_id`.
pub async fn unassign_role(
    state: &CertsState,
    caller: &Caller,
    actor_id: &str,
    role_id: &str,
) -> CertsResult<()> {
    caller.require(&permissions::AUTH_ROLE_ASSIGN)?;
    refuse_reserved(actor_id)?;
    let now = state.clock.now();
    state
        .store
        .write_with(async |tx| {
            if !repo::unassign(tx, actor_id, ACTOR_API_KEY, role_id).await? {
                return Err(CertsError::NotFound("role not assigned to actor".into()));
            }
            record(
                tx,
                caller,
                Change {
                    action: "auth.role.unassign",
                    resource_type: "actor",
                    resource_id: actor_id,
                    details: json!({"role_id": role_id, "actor_type": ACTOR_API_KEY}),
                },
                now,
            )
            .await
        })
        .await
}

/// Every role.
pub async fn list_roles(state: &CertsState, caller: &Caller) -> CertsResult<Vec<AuthRole>> {
    caller.require(&permissions::AUTH_ROLE_LIST)?;
    Ok(repo::list_roles(&state.store)
        .await?
        .into_iter()
        .map(wire_role)
        .collect())
}

/// A role and its grants.
pub async fn get_role(
    state: &CertsState,
    caller: &Caller,
    id: &str,
) -> CertsResult<(AuthRole, Vec<AuthRolePermission>)> {
    caller.require(&permissions::AUTH_ROLE_LIST)?;
    let role = repo::get_role(&state.store, id)
        .await?
        .ok_or_else(|| CertsError::not_found("role"))?;
    let grants = repo::role_grants(&state.store, id).await?;
    Ok((
        wire_role(role),
        grants.into_iter().map(|g| wire_grant(id, g)).collect(),
    ))
}

/// Creates a custom role.
pub async fn create_role(
    state: &CertsState,
    caller: &Caller,
    body: &CreateRole,
) -> CertsResult<AuthRole> {
    caller.require(&permissions::AUTH_ROLE_CREATE)?;
    let name = check_role_name(&body.name)?;
    let description = body.description.clone().unwrap_or_default();
    let id = format!("r-{name}");
    let now = state.clock.now();
    let role = state
        .store
        .write_with(async |tx| {
            let role = repo::create_role(tx, &id, &name, &description, now)
                .await
                .map_err(CertsError::conflict_on(
                    "a role with that name already exists",
                ))?;
            record(
                tx,
                caller,
                Change {
                    action: "auth.role.create",
                    resource_type: "role",
                    resource_id: &id,
                    details: json!({"name": name}),
                },
                now,
            )
            .await?;
            Ok::<_, CertsError>(role)
        })
        .await?;
    Ok(wire_role(role))
}

/// Renames or redescribes a custom role.
pub async fn update_role(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    body: &UpdateRole,
) -> CertsResult<AuthRole> {
    caller.require(&permissions::AUTH_ROLE_EDIT)?;
    let existing = repo::get_role(&state.store, id)
        .await?
        .ok_or_else(|| CertsError::not_found("role"))?;
    if existing.is_default {
        return Err(CertsError::Conflict(
            "default roles cannot be changed".into(),
        ));
    }
    let name = body.name.as_deref().map(check_role_name).transpose()?;
    let now = state.clock.now();
    let role = state
        .store
        .write_with(async |tx| {
            let role = repo::update_role(tx, id, name.as_deref(), body.description.as_deref(), now)
                .await
                .map_err(CertsError::conflict_on(
                    "a role with that name already exists",
                ))?
                .ok_or_else(|| CertsError::not_found("role"))?;
            record(
                tx,
                caller,
                Change {
                    action: "auth.role.update",
                    resource_type: "role",
                    resource_id: id,
                    details: json!({"name": role.name, "description": role.description}),
                },
                now,
            )
            .await?;
            Ok::<_, CertsError>(role)
        })
        .await?;
    Ok(wire_role(role))
}

/// Deletes a custom role nobody holds.
pub async fn delete_role(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<()> {
    caller.require(&permissions::AUTH_ROLE_DELETE)?;
    let existing = repo::get_role(&state.store, id)
        .await?
        .ok_or_else(|| CertsError::not_found("role"))?;
    if existing.is_default {
        return Err(CertsError::Conflict(
            "default roles cannot be deleted".into(),
        ));
    }
    let now = state.clock.now();
    state
        .store
        .write_with(async |tx| {
            if repo::holders(tx, id).await? > 0 {
                return Err(CertsError::Conflict(
                    "role still has active actor assignments".into(),
                ));
            }
            if !repo::delete_role(tx, id).await? {
                return Err(CertsError::not_found("role"));
            }
            record(
                tx,
                caller,
                Change {
                    action: "auth.role.delete",
                    resource_type: "role",
                    resource_id: id,
                    details: json!({}),
                },
                now,
            )
            .await
        })
        .await
}

/// Grants a permission to a custom role at a scope.
pub async fn grant(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    body: &GrantPermission,
) -> CertsResult<()> {
    caller.require(&permissions::AUTH_ROLE_EDIT)?;
    let g = parse_grant(
        &body.permission,
        body.scope_type.as_deref(),
        body.scope_id.as_deref(),
    )?;
    change_grant(state, caller, id, g, true).await
}

/// Revokes a permission from a custom role.
pub async fn revoke_grant(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    permission: &str,
    scope_type: Option<&str>,
    scope_id: Option<&str>,
) -> CertsResult<()> {
    caller.require(&permissions::AUTH_ROLE_EDIT)?;
    let g = parse_grant(permission, scope_type, scope_id)?;
    change_grant(state, caller, id, g, false).await
}

async fn change_grant(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    g: Grant,
    add: bool,
) -> CertsResult<()> {
    let role = repo::get_role(&state.store, id)
        .await?
        .ok_or_else(|| CertsError::not_found("role"))?;
    if role.is_default {
        return Err(CertsError::Conflict(
            "default roles cannot be changed".into(),
        ));
    }
    let now = state.clock.now();
    state
        .store
        .write_with(async |tx| {
            if add {
                repo::add_grant(tx, id, &g).await?;
            } else if !repo::remove_grant(tx, id, &g).await? {
                return Err(CertsError::NotFound("permission grant not found".into()));
            }
            record(
                tx,
                caller,
                Change {
                    action: if add {
                        "auth.role.grant"
                    } else {
                        "auth.role.revoke"
                    },
                    resource_type: "role",
                    resource_id: id,
                    details: json!({
                        "permission": g.permission,
                        "scope_type": g.scope_type.as_str(),
                        "scope_id": g.scope_id,
                    }),
                },
                now,
            )
            .await
        })
        .await
}

/// A permission at a scope, checked against the catalogue.
fn parse_grant(
    permission: &str,
    scope_type: Option<&str>,
    scope_id: Option<&str>,
) -> CertsResult<Grant> {
    if permissions::find(permission).is_none() {
        return Err(CertsError::Invalid(format!(
            "permission {permission:?} is not in the catalogue"
        )));
    }
    let scope_type = match scope_type {
        None | Some("") => ScopeType::Global,
        Some(s) => ScopeType::parse(s).ok_or_else(|| {
            CertsError::Invalid("scope_type must be global, profile or issuer".into())
        })?,
    };
    let scope_id = scope_id.filter(|s| !s.is_empty()).map(str::to_owned);
    match (scope_type, &scope_id) {
        (ScopeType::Global, Some(_)) => Err(CertsError::Invalid(
            "scope_id must be absent for global scope".into(),
        )),
        (ScopeType::Profile | ScopeType::Issuer, None) => Err(CertsError::Invalid(
            "scope_id is required for profile and issuer scopes".into(),
        )),
        _ => Ok(Grant {
            permission: permission.to_owned(),
            scope_type,
            scope_id,
        }),
    }
}

/// A caller may hand out a role only if they hold every permission it
/// carries (no privilege escalation through role grants).
async fn check_can_hand_out(state: &CertsState, caller: &Caller, role_id: &str) -> CertsResult<()> {
    if repo::get_role(&state.store, role_id).await?.is_none() {
        return Err(CertsError::not_found("role"));
    }
    let grants = repo::role_grants(&state.store, role_id).await?;
    let held = |g: &Grant| {
        let target = match g.scope_type {
            ScopeType::Global => Target::default(),
            ScopeType::Profile => Target {
                profile_id: g.scope_id.as_deref(),
                issuer_id: None,
            },
            ScopeType::Issuer => Target {
                profile_id: None,
                issuer_id: g.scope_id.as_deref(),
            },
        };
        rbac_rules::allows(&caller.grants, &g.permission, target)
    };
    if let Some(missing) = grants.iter().find(|g| !held(g)) {
        return Err(CertsError::Forbidden(format!(
            "cannot grant role {role_id}: it carries {} which you do not hold",
            missing.permission
        )));
    }
    Ok(())
}

fn refuse_reserved(actor_id: &str) -> CertsResult<()> {
    if actor_id == crate::auth::ANONYMOUS_ACTOR {
        return Err(CertsError::Conflict(
            "reserved system actor cannot be modified".into(),
        ));
    }
    Ok(())
}

fn check_actor_name(name: &str) -> CertsResult<()> {
    if is_actor_name(name) {
        Ok(())
    } else {
        Err(CertsError::Invalid(
            "actor_name must be 3-64 characters: lowercase letters, digits, '-' and '_', \
             starting with a letter or digit"
                .into(),
        ))
    }
}

fn check_role_name(name: &str) -> CertsResult<String> {
    let name = name.trim();
    if is_actor_name(name) {
        Ok(name.to_owned())
    } else {
        Err(CertsError::Invalid(
            "name must be 3-64 characters: lowercase letters, digits, '-' and '_'".into(),
        ))
    }
}

/// A new `<prefix>-<uuid>` id.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn minted(key: ApiKeyRecord, value: String, message: &str) -> MintedKey {
    MintedKey {
        actor_id: key.actor_id,
        api_key_id: key.id,
        key_value: value,
        created_at: key.created_at,
        message: message.to_owned(),
    }
}

fn wire_role(r: RoleRecord) -> AuthRole {
    AuthRole {
        id: r.id,
        tenant_id: TENANT.into(),
        name: r.name,
        description: r.description,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn wire_grant(role_id: &str, g: Grant) -> AuthRolePermission {
    AuthRolePermission {
        role_id: role_id.to_owned(),
        permission_id: g.permission,
        scope_type: g.scope_type.as_str().to_owned(),
        scope_id: g.scope_id,
    }
}

//! Roles, the permissions granted to them, and the actors holding them.

use attest_certs_domain::permissions::{DefaultRole, CATALOGUE};
use attest_certs_domain::rbac::{Grant, ScopeType};
use attest_store::{Result, Store, StoreError, WriteTx};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{conflict_or, timestamp};

/// Actor type of API keys (the seed's `ActorType` spelling).
pub const ACTOR_API_KEY: &str = "APIKey";
/// Actor type of OIDC-federated operators.
pub const ACTOR_USER: &str = "User";

/// A stored role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub created_at: String,
    pub updated_at: String,
}

const ROLE_COLUMNS: &str = "id, name, description, is_default, created_at, updated_at";

fn role(row: &AnyRow) -> Result<RoleRecord> {
    Ok(RoleRecord {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        is_default: row.try_get::<i64, _>(3)? != 0,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
    })
}

fn grant(row: &AnyRow, offset: usize) -> Result<Grant> {
    let scope: String = row.try_get(offset + 1)?;
    let scope_id: String = row.try_get(offset + 2)?;
    Ok(Grant {
        permission: row.try_get(offset)?,
        scope_type: ScopeType::parse(&scope)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown scope type {scope:?}")))?,
        scope_id: (!scope_id.is_empty()).then_some(scope_id),
    })
}

/// Creates the default roles that do not exist and sets their grants to
/// what the catalogue says (a newer binary may add permissions). Runs at
/// every start; idempotent, safe for several replicas at once.
pub async fn seed_default_roles(
    tx: &mut WriteTx,
    roles: &[DefaultRole],
    now: DateTime<Utc>,
) -> Result<()> {
    let at = timestamp(now);
    for r in roles {
        sqlx::query(
            "INSERT INTO certs_roles (id, name, description, is_default, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, $4, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(r.id)
        .bind(r.name)
        .bind(r.description)
        .bind(&at)
        .execute(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM certs_role_permissions WHERE role_id = $1")
            .bind(r.id)
            .execute(&mut **tx)
            .await?;
        for p in CATALOGUE.iter().filter(|p| (r.grants)(p)) {
            sqlx::query(
                "INSERT INTO certs_role_permissions (role_id, permission, scope_type, scope_id) \
                 VALUES ($1, $2, 'global', '')",
            )
            .bind(r.id)
            .bind(p.id)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Every role, defaults first, then by name.
pub async fn list_roles(store: &Store) -> Result<Vec<RoleRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {ROLE_COLUMNS} FROM certs_roles ORDER BY is_default DESC, name"
    ))
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(role).collect()
}

/// The role `id`.
pub async fn get_role(store: &Store, id: &str) -> Result<Option<RoleRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {ROLE_COLUMNS} FROM certs_roles WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(role).transpose()
}

/// Creates a custom role; a taken name is a conflict.
pub async fn create_role(
    tx: &mut WriteTx,
    id: &str,
    name: &str,
    description: &str,
    now: DateTime<Utc>,
) -> Result<RoleRecord> {
    let at = timestamp(now);
    sqlx::query(
        "INSERT INTO certs_roles (id, name, description, is_default, created_at, updated_at) \
         VALUES ($1, $2, $3, 0, $4, $4)",
    )
    .bind(id)
    .bind(name)
    .bind(description)
    .bind(&at)
    .execute(&mut **tx)
    .await
    .map_err(conflict_or)?;
    Ok(RoleRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        description: description.to_owned(),
        is_default: false,
        created_at: at.clone(),
        updated_at: at,
    })
}

/// Renames or redescribes a custom role; `None` when there is no custom
/// role `id`. A taken name is a conflict.
pub async fn update_role(
    tx: &mut WriteTx,
    id: &str,
    name: Option<&str>,
    description: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<RoleRecord>> {
    let row = sqlx::query(&format!(
        "UPDATE certs_roles SET name = COALESCE($1, name), \
         description = COALESCE($2, description), updated_at = $3 \
         WHERE id = $4 AND is_default = 0 RETURNING {ROLE_COLUMNS}"
    ))
    .bind(name)
    .bind(description)
    .bind(timestamp(now))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(conflict_or)?;
    row.as_ref().map(role).transpose()
}

/// How many actors hold role `id`.
pub async fn holders(tx: &mut WriteTx, id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) FROM certs_actor_roles WHERE role_id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get(0)?)
}

/// Deletes the custom role `id` (its grants go with it); `false` when
/// there is none. The caller checks [`holders`] first.
pub async fn delete_role(tx: &mut WriteTx, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM certs_roles WHERE id = $1 AND is_default = 0")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(conflict_or)?;
    Ok(done.rows_affected() == 1)
}

/// The grants of role `id`.
pub async fn role_grants(store: &Store, id: &str) -> Result<Vec<Grant>> {
    let rows = sqlx::query(
        "SELECT permission, scope_type, scope_id FROM certs_role_permissions \
         WHERE role_id = $1 ORDER BY permission, scope_type, scope_id",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(|r| grant(r, 0)).collect()
}

/// Grants `g` to role `id` (granting twice is not an error).
pub async fn add_grant(tx: &mut WriteTx, id: &str, g: &Grant) -> Result<()> {
    sqlx::query(
        "INSERT INTO certs_role_permissions (role_id, permission, scope_type, scope_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&g.permission)
    .bind(g.scope_type.as_str())
    .bind(g.scope_id.as_deref().unwrap_or(""))
    .execute(&mut **tx)
    .await
    .map_err(conflict_or)?;
    Ok(())
}

/// Removes grant `g` from role `id`; `false` when it was not held.
pub async fn remove_grant(tx: &mut WriteTx, id: &str, g: &Grant) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM certs_role_permissions \
         WHERE role_id = $1 AND permission = $2 AND scope_type = $3 AND scope_id = $4",
    )
    .bind(id)
    .bind(&g.permission)
    .bind(g.scope_type.as_str())
    .bind(g.scope_id.as_deref().unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives `role_id` to an actor (idempotent); an unknown role is a
/// conflict (foreign key).
pub async fn assign(
    tx: &mut WriteTx,
    actor_id: &str,
    actor_type: &str,
    role_id: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO certs_actor_roles (actor_id, actor_type, role_id, granted_at, granted_by) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(actor_id)
    .bind(actor_type)
    .bind(role_id)
    .bind(timestamp(now))
    .bind(by)
    .execute(&mut **tx)
    .await
    .map_err(conflict_or)?;
    Ok(())
}

/// Takes `role_id` from an actor; `false` when it was not held.
pub async fn unassign(
    tx: &mut WriteTx,
    actor_id: &str,
    actor_type: &str,
    role_id: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM certs_actor_roles WHERE actor_id = $1 AND actor_type = $2 AND role_id = $3",
    )
    .bind(actor_id)
    .bind(actor_type)
    .bind(role_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An actor's roles and the grants they resolve to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// Role ids, sorted.
    pub roles: Vec<String>,
    /// Distinct grants, sorted.
    pub grants: Vec<Grant>,
}

/// What `actor_id` of `actor_type` holds, in one query.
pub async fn standing(store: &Store, actor_id: &str, actor_type: &str) -> Result<Standing> {
    let rows = sqlx::query(
        "SELECT ar.role_id, rp.permission, rp.scope_type, rp.scope_id \
         FROM certs_actor_roles ar \
         LEFT JOIN certs_role_permissions rp ON rp.role_id = ar.role_id \
         WHERE ar.actor_id = $1 AND ar.actor_type = $2",
    )
    .bind(actor_id)
    .bind(actor_type)
    .fetch_all(store.pool())
    .await?;
    let mut standing = Standing::default();
    for row in &rows {
        standing.roles.push(row.try_get(0)?);
        if row.try_get::<Option<String>, _>(1)?.is_some() {
            standing.grants.push(grant(row, 1)?);
        }
    }
    standing.roles.sort_unstable();
    standing.roles.dedup();
    standing.grants.sort_unstable();
    standing.grants.dedup();
    Ok(standing)
}

/// The live API key whose value hashes to `key_sha256`: its actor and
/// standing, in one query (every authenticated request runs it).
pub async fn key_standing(store: &Store, key_sha256: &str) -> Result<Option<(String, Standing)>> {
    let rows = sqlx::query(
        "SELECT k.actor_id, ar.role_id, rp.permission, rp.scope_type, rp.scope_id \
         FROM certs_api_keys k \
         LEFT JOIN certs_actor_roles ar ON ar.actor_id = k.actor_id AND ar.actor_type = 'APIKey' \
         LEFT JOIN certs_role_permissions rp ON rp.role_id = ar.role_id \
         WHERE k.key_sha256 = $1 AND k.revoked_at IS NULL",
    )
    .bind(key_sha256)
    .fetch_all(store.pool())
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let actor: String = first.try_get(0)?;
    let mut standing = Standing::default();
    for row in &rows {
        if let Some(role) = row.try_get::<Option<String>, _>(1)? {
            standing.roles.push(role);
        }
        if row.try_get::<Option<String>, _>(2)?.is_some() {
            standing.grants.push(grant(row, 2)?);
        }
    }
    standing.roles.sort_unstable();
    standing.roles.dedup();
    standing.grants.sort_unstable();
    standing.grants.dedup();
    Ok(Some((actor, standing)))
}

/// One actor holding roles (the seed's `GET /api/v1/auth/keys` item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorRoles {
    pub actor_id: String,
    pub actor_type: String,
    pub role_ids: Vec<String>,
}

/// Every actor holding at least one role, by actor.
pub async fn actors(store: &Store) -> Result<Vec<ActorRoles>> {
    let rows = sqlx::query(
        "SELECT actor_id, actor_type, role_id FROM certs_actor_roles \
         ORDER BY actor_id, actor_type, role_id",
    )
    .fetch_all(store.pool())
    .await?;
    let mut out: Vec<ActorRoles> = Vec::new();
    for row in &rows {
        let (id, kind, role): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        match out.last_mut() {
            Some(last) if last.actor_id == id && last.actor_type == kind => {
                last.role_ids.push(role)
            }
            _ => out.push(ActorRoles {
                actor_id: id,
                actor_type: kind,
                role_ids: vec![role],
            }),
        }
    }
    Ok(out)
}

/// Whether some actor holds `role_id` (the bootstrap closes once an
/// administrator exists).
pub async fn role_held(store: &Store, role_id: &str) -> Result<bool> {
    let row = sqlx::query("SELECT COUNT(*) FROM certs_actor_roles WHERE role_id = $1")
        .bind(role_id)
        .fetch_one(store.pool())
        .await?;
    Ok(row.try_get::<i64, _>(0)? > 0)
}

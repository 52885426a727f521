//! Shared secrets under `/api/v1/shared-secrets`: one value, encrypted
//! under the master key, released in plaintext to the machines on its
//! access list. `{id}` accepts the id or the name (the seed's CLI passes
//! names).

use attest_ext::activity::{self, kinds, ActivityEvent};
use attest_ext::axum::extract::{Path, State as AxumState};
use attest_ext::axum::http::StatusCode;
use attest_ext::axum::Json;
use attest_ext::http::{ApiError, ApiJson, AuthenticatedMachine, Operator};
use attest_ext::store::{AuditRepo, NewAuditEntry, WriteTx};
use attest_ext::utoipa;
use attest_proto::error::LocItem;
use subtle::ConstantTimeEq;

pub use attest_proto::secret_vault::{
    AccessInfo, AccessRequest, SharedSecretCreate, SharedSecretInfo, SharedSecretUpdate,
    SharedSecretValue, MAX_MACHINES_PER_CHANGE,
};

use crate::common::{self, counted, db, State};
use crate::repo::{self, AccessRow, SharedSecretRow};

impl From<AccessRow> for AccessInfo {
    fn from(a: AccessRow) -> Self {
        Self {
            machine_id: a.machine_id,
            granted_at: a.granted_at,
            granted_by: a.granted_by,
            last_accessed_at: a.last_accessed_at,
            access_count: a.access_count,
        }
    }
}

fn info(s: &SharedSecretRow, authorized_machines: i64) -> SharedSecretInfo {
    SharedSecretInfo {
        shared_secret_id: s.shared_secret_id.clone(),
        name: s.name.clone(),
        description: s.description.clone(),
        encryption_key_id: s.encryption_key_id.clone(),
        created_at: s.created_at.clone(),
        created_by: s.created_by.clone(),
        last_rotated_at: s.last_rotated_at.clone(),
        authorized_machines,
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("Shared secret not found".into())
}

async fn resolve(tx: &mut WriteTx, id_or_name: &str) -> Result<SharedSecretRow, ApiError> {
    repo::resolve_shared_secret(tx, id_or_name)
        .await?
        .ok_or_else(not_found)
}

async fn access_count(
    conn: &mut attest_ext::store::sqlx::AnyConnection,
    id: &str,
) -> Result<i64, ApiError> {
    Ok(repo::list_access(conn, id).await?.len() as i64)
}

fn audit(operator: &Operator, action: &str, s: &SharedSecretRow, what: &str) -> NewAuditEntry {
    let mut entry = NewAuditEntry::new(operator.identity(), action);
    entry.detail = Some(format!(
        "shared secret {} name={}{what}",
        s.shared_secret_id, s.name
    ));
    entry
}

/// Creates a shared secret, encrypted under the master key.
#[utoipa::path(post, path = "/", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    request_body = SharedSecretCreate,
    responses((status = 201, body = SharedSecretInfo), (status = 401),
        (status = 409, description = "The name is taken"), (status = 422)))]
pub async fn create(
    AxumState(state): AxumState<State>,
    operator: Operator,
    ApiJson(body): ApiJson<SharedSecretCreate>,
) -> Result<(StatusCode, Json<SharedSecretInfo>), ApiError> {
    let result = async {
        common::validate_name(&body.name)?;
        common::validate_value(&body.value)?;
        if let Some(d) = &body.description {
            common::validate_description(d)?;
        }
        let sealed = state
            .master
            .key
            .encrypt_str(body.value.expose())
            .map_err(|e| ApiError::Internal(format!("encrypt: {e}")))?;
        let row = SharedSecretRow {
            shared_secret_id: common::new_id(),
            name: body.name.clone(),
            sealed,
            encryption_key_id: state.master.key_id.to_owned(),
            created_at: common::now(&state.ctx),
            created_by: operator.identity().to_owned(),
            last_rotated_at: None,
            description: body.description.clone().filter(|d| !d.is_empty()),
        };
        let conflict =
            || ApiError::Conflict(format!("Shared secret '{}' already exists", row.name));
        let mut tx = state.ctx.store.begin_write().await?;
        if repo::shared_secret_by_name(&mut tx, &row.name)
            .await?
            .is_some()
        {
            return Err(conflict());
        }
        if let Err(e) = repo::insert_shared_secret(&mut tx, &row).await {
            return Err(if repo::is_unique_violation(&e) {
                conflict()
            } else {
                db(e)
            });
        }
        let entry = audit(&operator, "shared_secret.create", &row, "");
        AuditRepo::append(&mut tx, &entry, state.ctx.clock.now()).await?;
        let event = ActivityEvent::new(kinds::SECRET_CREATED, state.ctx.clock.now(), None)
            .with("secret_id", Some(&row.shared_secret_id))
            .with("name", Some(&row.name))
            .with("kind", Some("shared"));
        activity::record(&mut tx, &event).await?;
        tx.commit().await?;
        state.ctx.activity.emit(event);
        Ok(info(&row, 0))
    }
    .await;
    counted(&state.ctx, "shared_create", result).map(|i| (StatusCode::CREATED, Json(i)))
}

/// Every shared secret, without values.
#[utoipa::path(get, path = "/", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    responses((status = 200, body = Vec<SharedSecretInfo>), (status = 401)))]
pub async fn list(
    AxumState(state): AxumState<State>,
    _operator: Operator,
) -> Result<Json<Vec<SharedSecretInfo>>, ApiError> {
    let result = async {
        let mut conn = state.ctx.store.acquire().await?;
        let rows = repo::list_shared_secrets(&mut conn).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let n = access_count(&mut conn, &row.shared_secret_id).await?;
            out.push(info(row, n));
        }
        Ok(out)
    }
    .await;
    counted(&state.ctx, "shared_list", result).map(Json)
}

/// One shared secret's details, without its value.
#[utoipa::path(get, path = "/{id}", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    params(("id" = String, Path, description = "Id or name")),
    responses((status = 200, body = SharedSecretInfo), (status = 401), (status = 404)))]
pub async fn details(
    AxumState(state): AxumState<State>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<SharedSecretInfo>, ApiError> {
    let result = read(&state, &id).await;
    counted(&state.ctx, "shared_get", result).map(Json)
}

/// The details of the secret named or identified by `id`.
async fn read(state: &State, id: &str) -> Result<SharedSecretInfo, ApiError> {
    let mut conn = state.ctx.store.acquire().await?;
    let row = repo::resolve_shared_secret(&mut conn, id)
        .await?
        .ok_or_else(not_found)?;
    let n = access_count(&mut conn, &row.shared_secret_id).await?;
    Ok(info(&row, n))
}

/// Rotates the value and/or changes the description.
#[utoipa::path(put, path = "/{id}", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    params(("id" = String, Path, description = "Id or name")),
    request_body = SharedSecretUpdate,
    responses((status = 200, body = SharedSecretInfo), (status = 401), (status = 404),
        (status = 422)))]
pub async fn update(
    AxumState(state): AxumState<State>,
    operator: Operator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SharedSecretUpdate>,
) -> Result<Json<SharedSecretInfo>, ApiError> {
    let result = async {
        if body.value.is_none() && body.description.is_none() {
            return read(&state, &id).await;
        }
        if let Some(v) = &body.value {
            common::validate_value(v)?;
        }
        if let Some(d) = &body.description {
            common::validate_description(d)?;
        }
        let mut tx = state.ctx.store.begin_write().await?;
        let mut row = resolve(&mut tx, &id).await?;
        let mut changes = Vec::new();
        if let Some(value) = &body.value {
            // Re-encrypting an unchanged value is not a rotation. A value
            // sealed under an older master key counts as changed.
            let same = state
                .master
                .key
                .decrypt_str(&row.sealed)
                .map(|old| bool::from(old.as_bytes().ct_eq(value.expose().as_bytes())))
                .unwrap_or(false);
            row.sealed = state
                .master
                .key
                .encrypt_str(value.expose())
                .map_err(|e| ApiError::Internal(format!("encrypt: {e}")))?;
            row.encryption_key_id = state.master.key_id.to_owned();
            if !same {
                row.last_rotated_at = Some(common::now(&state.ctx));
                changes.push("value rotated");
            } else {
                changes.push("value re-encrypted (unchanged)");
            }
        }
        if let Some(d) = &body.description {
            row.description = Some(d.clone()).filter(|d| !d.is_empty());
            changes.push("description updated");
        }
        repo::update_shared_secret(&mut tx, &row).await?;
        let what = format!(": {}", changes.join(", "));
        let entry = audit(&operator, "shared_secret.update", &row, &what);
        AuditRepo::append(&mut tx, &entry, state.ctx.clock.now()).await?;
        let n = access_count(&mut tx, &row.shared_secret_id).await?;
        tx.commit().await?;
        Ok(info(&row, n))
    }
    .await;
    counted(&state.ctx, "shared_update", result).map(Json)
}

/// Deletes a shared secret and its access list.
#[utoipa::path(delete, path = "/{id}", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    params(("id" = String, Path, description = "Id or name")),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn delete(
    AxumState(state): AxumState<State>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let result = async {
        let mut tx = state.ctx.store.begin_write().await?;
        let row = resolve(&mut tx, &id).await?;
        repo::delete_shared_secret(&mut tx, &row.shared_secret_id).await?;
        let entry = audit(&operator, "shared_secret.delete", &row, "");
        AuditRepo::append(&mut tx, &entry, state.ctx.clock.now()).await?;
        tx.commit().await?;
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    counted(&state.ctx, "shared_delete", result)
}

// Most machines one grant or revoke names (each is one audit entry):
// MAX_MACHINES_PER_CHANGE, declared with the wire types.
fn validate_machine_ids(body: &AccessRequest) -> Result<Vec<String>, ApiError> {
    if body.machine_ids.is_empty() || body.machine_ids.len() > MAX_MACHINES_PER_CHANGE {
        return Err(ApiError::invalid(
            "value_error",
            vec![LocItem::from("body"), LocItem::from("machine_ids")],
            format!("give 1 to {MAX_MACHINES_PER_CHANGE} machine ids"),
        ));
    }
    if body.machine_ids.iter().any(|id| id.len() > 64) {
        return Err(ApiError::invalid(
            "value_error",
            vec![LocItem::from("body"), LocItem::from("machine_ids")],
            "a machine id is at most 64 characters",
        ));
    }
    let mut ids: Vec<String> = body
        .machine_ids
        .iter()
        .map(|s| s.trim().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Grants machines access (idempotent); answers the resulting list.
#[utoipa::path(post, path = "/{id}/access", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    params(("id" = String, Path, description = "Id or name")),
    request_body = AccessRequest,
    responses((status = 200, body = Vec<AccessInfo>), (status = 401),
        (status = 404, description = "Unknown secret or machine"), (status = 422)))]
pub async fn grant(
    AxumState(state): AxumState<State>,
    operator: Operator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AccessRequest>,
) -> Result<Json<Vec<AccessInfo>>, ApiError> {
    let result = change_access(&state, &operator, &id, &body, true).await;
    counted(&state.ctx, "shared_grant", result).map(Json)
}

/// Revokes machines' access (idempotent); answers the resulting list.
#[utoipa::path(delete, path = "/{id}/access", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    params(("id" = String, Path, description = "Id or name")),
    request_body = AccessRequest,
    responses((status = 200, body = Vec<AccessInfo>), (status = 401), (status = 404),
        (status = 422)))]
pub async fn revoke(
    AxumState(state): AxumState<State>,
    operator: Operator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AccessRequest>,
) -> Result<Json<Vec<AccessInfo>>, ApiError> {
    let result = change_access(&state, &operator, &id, &body, false).await;
    counted(&state.ctx, "shared_revoke", result).map(Json)
}

async fn change_access(
    state: &State,
    operator: &Operator,
    id: &str,
    body: &AccessRequest,
    granting: bool,
) -> Result<Vec<AccessInfo>, ApiError> {
    let machine_ids = validate_machine_ids(body)?;
    if granting {
        for machine_id in &machine_ids {
            if state.ctx.store.machines().get(machine_id).await?.is_none() {
                return Err(ApiError::NotFound(format!(
                    "Machine not found: {machine_id}"
                )));
            }
        }
    }
    let now = common::now(&state.ctx);
    let mut tx = state.ctx.store.begin_write().await?;
    let row = resolve(&mut tx, id).await?;
    let sid = row.shared_secret_id.clone();
    for machine_id in &machine_ids {
        let (action, what) = if granting {
            let new = repo::grant(&mut tx, &sid, machine_id, &now, operator.identity()).await?;
            (
                "shared_secret.grant",
                if new { "granted" } else { "already granted" },
            )
        } else {
            let gone = repo::revoke(&mut tx, &sid, machine_id).await?;
            (
                "shared_secret.revoke",
                if gone { "revoked" } else { "was not granted" },
            )
        };
        let mut entry = audit(operator, action, &row, &format!(": {what}"));
        entry.machine_id = Some(machine_id.clone());
        AuditRepo::append(&mut tx, &entry, state.ctx.clock.now()).await?;
    }
    let list = repo::list_access(&mut tx, &sid).await?;
    tx.commit().await?;
    Ok(list.into_iter().map(AccessInfo::from).collect())
}

/// The machines allowed to read the secret, with their access counts.
#[utoipa::path(get, path = "/{id}/access", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    params(("id" = String, Path, description = "Id or name")),
    responses((status = 200, body = Vec<AccessInfo>), (status = 401), (status = 404)))]
pub async fn list_access(
    AxumState(state): AxumState<State>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Vec<AccessInfo>>, ApiError> {
    let result = async {
        let mut conn = state.ctx.store.acquire().await?;
        let row = repo::resolve_shared_secret(&mut conn, &id)
            .await?
            .ok_or_else(not_found)?;
        let list = repo::list_access(&mut conn, &row.shared_secret_id).await?;
        Ok(list.into_iter().map(AccessInfo::from).collect())
    }
    .await;
    counted(&state.ctx, "shared_access_list", result).map(Json)
}

/// The plaintext value, for a machine on the access list.
#[utoipa::path(get, path = "/by-name/{name}/value", tag = "secret-vault",
    security(("machine" = [])),
    responses((status = 200, body = SharedSecretValue),
        (status = 401, description = "No machine credential"),
        (status = 403, description = "Not on the access list, or revoked"),
        (status = 404)))]
pub async fn value(
    AxumState(state): AxumState<State>,
    AuthenticatedMachine(machine): AuthenticatedMachine,
    Path(name): Path<String>,
) -> Result<Json<SharedSecretValue>, ApiError> {
    let result = async {
        let now = common::now(&state.ctx);
        let mut tx = state.ctx.store.begin_write().await?;
        // One answer for "no such secret" and "not yours", so a machine
        // cannot probe which names exist.
        let refused =
            || ApiError::Forbidden("machine is not authorized for this shared secret".into());
        let row = repo::shared_secret_by_name(&mut tx, &name)
            .await?
            .ok_or_else(refused)?;
        if !repo::touch_access(&mut tx, &row.shared_secret_id, &machine.machine_id, &now).await? {
            return Err(refused());
        }
        let plaintext = state.master.key.decrypt_str(&row.sealed).map_err(|e| {
            ApiError::Internal(format!(
                "shared secret {} (key {}): {e}; was the master key changed?",
                row.shared_secret_id, row.encryption_key_id
            ))
        })?;
        let event = ActivityEvent::new(
            kinds::SECRET_ACCESSED,
            state.ctx.clock.now(),
            Some(&machine.machine_id),
        )
        .with("secret_id", Some(&row.shared_secret_id))
        .with("name", Some(&row.name))
        .with("kind", Some("shared"));
        activity::record(&mut tx, &event).await?;
        tx.commit().await?;
        state.ctx.activity.emit(event);
        Ok(SharedSecretValue {
            shared_secret_id: row.shared_secret_id,
            name: row.name,
            value: plaintext.to_string(),
        })
    }
    .await;
    counted(&state.ctx, "shared_value", result).map(Json)
}

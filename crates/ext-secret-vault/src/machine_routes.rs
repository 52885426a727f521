//! Machine secrets under `/api/v1/secrets`: operators create, list and
//! delete; the machine itself fetches the sealed blob and decrypts it with
//! the key it derives from its own EK fingerprint.

use attest_ext::activity::{self, kinds, ActivityEvent};
use attest_ext::axum::extract::{Path, State as AxumState};
use attest_ext::axum::http::StatusCode;
use attest_ext::axum::Json;
use attest_ext::http::{ApiError, ApiJson, AuthenticatedMachine, Operator};
use attest_ext::store::{AuditRepo, NewAuditEntry};
use attest_ext::utoipa;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub use attest_proto::secret_vault::{MachineSecretBlob, MachineSecretCreate, MachineSecretInfo};

use crate::common::{self, counted, db, State};
use crate::crypto;
use crate::repo::{self, MachineSecretRow};

impl From<&MachineSecretRow> for MachineSecretInfo {
    fn from(s: &MachineSecretRow) -> Self {
        Self {
            secret_id: s.secret_id.clone(),
            machine_id: s.machine_id.clone(),
            name: s.name.clone(),
            created_at: s.created_at.clone(),
            created_by: s.created_by.clone(),
            last_accessed_at: s.last_accessed_at.clone(),
            access_count: s.access_count,
        }
    }
}

async fn require_machine(state: &State, machine_id: &str) -> Result<String, ApiError> {
    state
        .ctx
        .store
        .machines()
        .get(machine_id)
        .await?
        .map(|m| m.ek_fingerprint)
        .ok_or_else(|| ApiError::NotFound("Machine not found".into()))
}

/// Stores a secret for one machine, encrypted under its EK-derived key.
#[utoipa::path(post, path = "/machines/{machine_id}/secrets", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    request_body = MachineSecretCreate,
    responses((status = 201, body = MachineSecretInfo), (status = 401), (status = 404),
        (status = 409, description = "The machine already has a secret of that name"),
        (status = 422)))]
pub async fn create_secret(
    AxumState(state): AxumState<State>,
    operator: Operator,
    Path(machine_id): Path<String>,
    ApiJson(body): ApiJson<MachineSecretCreate>,
) -> Result<(StatusCode, Json<MachineSecretInfo>), ApiError> {
    let result = create_inner(&state, &operator, &machine_id, body).await;
    counted(&state.ctx, "create", result).map(|info| (StatusCode::CREATED, Json(info)))
}

async fn create_inner(
    state: &State,
    operator: &Operator,
    machine_id: &str,
    body: MachineSecretCreate,
) -> Result<MachineSecretInfo, ApiError> {
    common::validate_name(&body.name)?;
    common::validate_value(&body.value)?;
    let fingerprint = require_machine(state, machine_id).await?;
    let key = crypto::machine_key(&fingerprint)
        .map_err(|e| ApiError::Internal(format!("machine key: {e}")))?;
    let sealed = key
        .encrypt_str(body.value.expose())
        .map_err(|e| ApiError::Internal(format!("encrypt: {e}")))?;
    let conflict = || ApiError::Conflict(format!("Secret '{}' already exists", body.name));
    let row = MachineSecretRow {
        secret_id: common::new_id(),
        machine_id: machine_id.to_owned(),
        name: body.name.clone(),
        sealed,
        created_at: common::now(&state.ctx),
        created_by: operator.identity().to_owned(),
        last_accessed_at: None,
        access_count: 0,
    };
    let mut tx = state.ctx.store.begin_write().await?;
    if repo::machine_secret_by_name(&mut tx, machine_id, &body.name)
        .await?
        .is_some()
    {
        return Err(conflict());
    }
    // A concurrent twin can still win the race: its UNIQUE violation is a 409.
    if let Err(e) = repo::insert_machine_secret(&mut tx, &row).await {
        return Err(if repo::is_unique_violation(&e) {
            conflict()
        } else {
            db(e)
        });
    }
    let mut entry = NewAuditEntry::new(operator.identity(), "secret.create");
    entry.machine_id = Some(machine_id.to_owned());
    entry.detail = Some(format!("secret {} name={}", row.secret_id, row.name));
    AuditRepo::append(&mut tx, &entry, state.ctx.clock.now()).await?;
    let event = ActivityEvent::new(
        kinds::SECRET_CREATED,
        state.ctx.clock.now(),
        Some(machine_id),
    )
    .with("secret_id", Some(&row.secret_id))
    .with("name", Some(&row.name))
    .with("kind", Some("machine"));
    activity::record(&mut tx, &event).await?;
    tx.commit().await?;
    state.ctx.activity.emit(event);
    Ok(MachineSecretInfo::from(&row))
}

/// A machine's secrets, without values.
#[utoipa::path(get, path = "/machines/{machine_id}/secrets", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    responses((status = 200, body = Vec<MachineSecretInfo>), (status = 401), (status = 404)))]
pub async fn list_secrets(
    AxumState(state): AxumState<State>,
    _operator: Operator,
    Path(machine_id): Path<String>,
) -> Result<Json<Vec<MachineSecretInfo>>, ApiError> {
    let result = async {
        require_machine(&state, &machine_id).await?;
        let mut conn = state.ctx.store.acquire().await?;
        let rows = repo::list_machine_secrets(&mut conn, &machine_id).await?;
        Ok(rows.iter().map(MachineSecretInfo::from).collect())
    }
    .await;
    counted(&state.ctx, "list", result).map(Json)
}

/// The sealed secret, for the machine it belongs to only.
#[utoipa::path(get, path = "/machines/{machine_id}/secrets/{name}", tag = "secret-vault",
    security(("machine" = [])),
    responses((status = 200, body = MachineSecretBlob),
        (status = 401, description = "No machine credential"),
        (status = 403, description = "Another machine, or a revoked one"),
        (status = 404)))]
pub async fn get_secret(
    AxumState(state): AxumState<State>,
    AuthenticatedMachine(machine): AuthenticatedMachine,
    Path((machine_id, name)): Path<(String, String)>,
) -> Result<Json<MachineSecretBlob>, ApiError> {
    let result = async {
        if machine.machine_id != machine_id {
            return Err(ApiError::Forbidden(
                "a machine may only read its own secrets".into(),
            ));
        }
        let now = common::now(&state.ctx);
        let mut tx = state.ctx.store.begin_write().await?;
        let mut row = repo::machine_secret_by_name(&mut tx, &machine_id, &name)
            .await?
            .ok_or_else(|| ApiError::NotFound("Secret not found".into()))?;
        repo::touch_machine_secret(&mut tx, &row.secret_id, &now).await?;
        let event = ActivityEvent::new(
            kinds::SECRET_ACCESSED,
            state.ctx.clock.now(),
            Some(&machine_id),
        )
        .with("secret_id", Some(&row.secret_id))
        .with("name", Some(&row.name))
        .with("kind", Some("machine"));
        activity::record(&mut tx, &event).await?;
        tx.commit().await?;
        row.access_count += 1;
        row.last_accessed_at = Some(now);
        state.ctx.activity.emit(event);
        Ok(MachineSecretBlob {
            secret_id: row.secret_id,
            machine_id: row.machine_id,
            name: row.name,
            encrypted_value: STANDARD.encode(&row.sealed.ciphertext),
            nonce: STANDARD.encode(&row.sealed.nonce),
            tag: STANDARD.encode(&row.sealed.tag),
            algorithm: crypto::ALGORITHM.into(),
            kdf: crypto::KDF.into(),
            kdf_salt: crypto::HKDF_SALT.into(),
            kdf_info: crypto::HKDF_INFO.into(),
            key_id: crypto::machine_key_id(&machine.ek_fingerprint),
            created_at: row.created_at,
            access_count: row.access_count,
            last_accessed_at: row.last_accessed_at,
        })
    }
    .await;
    counted(&state.ctx, "get", result).map(Json)
}

/// Deletes a machine secret by its id.
#[utoipa::path(delete, path = "/{secret_id}", tag = "secret-vault",
    security(("bearer" = []), ("client_cert" = [])),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn delete_secret(
    AxumState(state): AxumState<State>,
    operator: Operator,
    Path(secret_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let result = async {
        let mut tx = state.ctx.store.begin_write().await?;
        let row = repo::machine_secret_by_id(&mut tx, &secret_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("Secret not found".into()))?;
        repo::delete_machine_secret(&mut tx, &secret_id).await?;
        let mut entry = NewAuditEntry::new(operator.identity(), "secret.delete");
        entry.machine_id = Some(row.machine_id.clone());
        entry.detail = Some(format!("secret {} name={}", row.secret_id, row.name));
        AuditRepo::append(&mut tx, &entry, state.ctx.clock.now()).await?;
        tx.commit().await?;
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    counted(&state.ctx, "delete", result)
}

//! The stack secrets provider: `pulumi config set --secret`, and every
//! decryption of stack secrets during `up`/`preview`/`stack export
//! --show-secrets`.

use std::collections::BTreeMap;
use std::sync::Arc;

use attest_ext::axum::extract::{Path, State};
use attest_ext::axum::Json;
use attest_ext::sealing::SecretKey;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::load_stack;
use crate::auth::AccessToken;
use crate::body::PulumiJson;
use crate::crypto::{self, SecretsError};
use crate::error::{PulumiError, Result};
use crate::names::StackRef;
use crate::repo;
use crate::state::PulumiState;
use crate::wire::{
    BatchDecryptRequest, BatchDecryptResponse, BatchEncryptRequest, BatchEncryptResponse,
    DecryptValueRequest, DecryptValueResponse, EncryptValueRequest, EncryptValueResponse, B64,
};

type St = State<Arc<PulumiState>>;
type StackPath = Path<(String, String, String)>;

/// Most values in one batch call.
const MAX_BATCH: usize = 10_000;
/// Largest single plaintext (config values, not files).
const MAX_PLAINTEXT: usize = 1024 * 1024;

fn map_err(err: SecretsError) -> PulumiError {
    match err {
        SecretsError::Format | SecretsError::Decrypt => {
            PulumiError::BadRequest(format!("Bad Request: {err}"))
        }
        SecretsError::KeyUnavailable => PulumiError::Unavailable(err.to_string()),
        SecretsError::Encrypt => PulumiError::Internal(err.to_string()),
    }
}

/// The stack's key, created (and sealed under the master key) on first
/// use when `create` is set.
async fn stack_key(state: &PulumiState, r: &StackRef, create: bool) -> Result<SecretKey> {
    let row = load_stack(state.ctx.store.pool(), r).await?;
    if let Some(sealed) = row.secrets_key.as_deref() {
        return crypto::open_stack_key(&state.master, sealed).map_err(map_err);
    }
    if !create {
        return Err(PulumiError::BadRequest(
            "Bad Request: this stack has no secrets yet".into(),
        ));
    }
    let (key, sealed) = crypto::new_stack_key(&state.master).map_err(map_err)?;
    let mut tx = state.ctx.store.begin_write().await?;
    let stored = repo::stack_set_key(&mut *tx, &row.stack_id, &sealed, state.master.key_id).await?;
    tx.commit().await?;
    if stored {
        return Ok(key);
    }
    // Another request created the key first: use that one.
    let row = load_stack(state.ctx.store.pool(), r).await?;
    let sealed = row
        .secrets_key
        .ok_or_else(|| PulumiError::Internal("secrets key vanished".into()))?;
    crypto::open_stack_key(&state.master, &sealed).map_err(map_err)
}

fn check_size(value: &[u8]) -> Result<()> {
    if value.len() > MAX_PLAINTEXT {
        return Err(PulumiError::TooLarge(format!(
            "value too large (at most {MAX_PLAINTEXT} bytes)"
        )));
    }
    Ok(())
}

fn stack_ref(Path((org, project, stack)): StackPath) -> Result<StackRef> {
    StackRef::new(org, project, stack)
}

/// `POST …/encrypt`.
pub async fn encrypt(
    State(state): St,
    _caller: AccessToken,
    path: StackPath,
    PulumiJson(body): PulumiJson<EncryptValueRequest>,
) -> Result<Json<EncryptValueResponse>> {
    let r = stack_ref(path)?;
    check_size(&body.plaintext.0)?;
    let key = stack_key(&state, &r, true).await?;
    let ct = crypto::encrypt(&key, &body.plaintext.0).map_err(map_err)?;
    Ok(Json(EncryptValueResponse {
        ciphertext: B64(ct.into_bytes()),
    }))
}

/// `POST …/batch-encrypt`.
pub async fn batch_encrypt(
    State(state): St,
    _caller: AccessToken,
    path: StackPath,
    PulumiJson(body): PulumiJson<BatchEncryptRequest>,
) -> Result<Json<BatchEncryptResponse>> {
    let r = stack_ref(path)?;
    if body.plaintexts.len() > MAX_BATCH {
        return Err(PulumiError::BadRequest(format!(
            "Bad Request: at most {MAX_BATCH} values per batch"
        )));
    }
    for p in &body.plaintexts {
        check_size(&p.0)?;
    }
    let key = stack_key(&state, &r, true).await?;
    let ciphertexts = body
        .plaintexts
        .iter()
        .map(|p| crypto::encrypt(&key, &p.0).map(|c| B64(c.into_bytes())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
    Ok(Json(BatchEncryptResponse { ciphertexts }))
}

/// `POST …/decrypt`.
pub async fn decrypt(
    State(state): St,
    _caller: AccessToken,
    path: StackPath,
    PulumiJson(body): PulumiJson<DecryptValueRequest>,
) -> Result<Json<DecryptValueResponse>> {
    let r = stack_ref(path)?;
    let key = stack_key(&state, &r, false).await?;
    let plain = crypto::decrypt(&key, &body.ciphertext.0).map_err(map_err)?;
    Ok(Json(DecryptValueResponse {
        plaintext: B64(plain.to_vec()),
    }))
}

/// `POST …/batch-decrypt`: answered as a map from each ciphertext's
/// base64 to its plaintext, as the CLI reads it.
pub async fn batch_decrypt(
    State(state): St,
    _caller: AccessToken,
    path: StackPath,
    PulumiJson(body): PulumiJson<BatchDecryptRequest>,
) -> Result<Json<BatchDecryptResponse>> {
    let r = stack_ref(path)?;
    if body.ciphertexts.len() > MAX_BATCH {
        return Err(PulumiError::BadRequest(format!(
            "Bad Request: at most {MAX_BATCH} values per batch"
        )));
    }
    let mut plaintexts = BTreeMap::new();
    if !body.ciphertexts.is_empty() {
        let key = stack_key(&state, &r, false).await?;
        for ct in &body.ciphertexts {
            let plain = crypto::decrypt(&key, &ct.0).map_err(map_err)?;
            plaintexts.insert(STANDARD.encode(&ct.0), B64(plain.to_vec()));
        }
    }
    Ok(Json(BatchDecryptResponse { plaintexts }))
}

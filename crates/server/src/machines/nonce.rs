//! Attestation challenges: issued to anyone, redeemed once within
//! [`NONCE_TTL`] by any replica (`attest_nonces`).

use attest_domain::audit::format_timestamp;
use attest_proto::machine::ChallengeResponse;
use attest_store::sqlx::AnyConnection;
use attest_store::{NewNonce, NonceRepo, Redeemed, StoreError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

use super::MachineError;
use crate::config::machines::NONCE_TTL;
use crate::state::AppState;

/// `GET /api/v1/attest/challenge`: 32 random bytes, stored so any replica
/// can redeem them once within [`NONCE_TTL`].
pub async fn challenge(state: &AppState) -> Result<ChallengeResponse, MachineError> {
    let mut nonce = [0u8; 32];
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    rand::rngs::OsRng.fill_bytes(&mut id);
    let nonce_b64 = STANDARD.encode(nonce);
    let nonce_id = hex::encode(id);
    let now = state.clock.now();
    let ttl = chrono::Duration::from_std(NONCE_TTL).unwrap_or(chrono::Duration::seconds(60));
    let expires = now + ttl;
    let new = NewNonce {
        nonce_id: &nonce_id,
        nonce: &nonce_b64,
        issued_at_ms: now.timestamp_millis(),
        expires_at_ms: expires.timestamp_millis(),
    };
    let mut tx = state.store.begin_write().await?;
    if !NonceRepo::issue(&mut tx, &new, state.settings.machines.nonce_capacity).await? {
        return Err(MachineError::NonceCapacity);
    }
    tx.commit().await?;
    Ok(ChallengeResponse {
        nonce_id,
        nonce: nonce_b64,
        expires_at: format_timestamp(expires),
    })
}

/// Redeems `nonce_id` in its own transaction, so a nonce is burnt even
/// when the evidence it guarded is then refused.
pub(super) async fn redeem(state: &AppState, nonce_id: &str) -> Result<Vec<u8>, MachineError> {
    issuable(nonce_id)?;
    let now_ms = state.clock.now().timestamp_millis();
    let mut tx = state.store.begin_write().await?;
    let redeemed = NonceRepo::redeem(&mut tx, nonce_id, now_ms).await?;
    tx.commit().await?;
    nonce_bytes(redeemed)
}

/// Checks `nonce_id` without spending it: `POST /attest` spends it in the
/// transaction that records the attestation (one write transaction fewer
/// per attest), or on its own when the evidence is refused.
pub(super) async fn peek(
    state: &AppState,
    conn: &mut AnyConnection,
    nonce_id: &str,
) -> Result<Vec<u8>, MachineError> {
    issuable(nonce_id)?;
    let now_ms = state.clock.now().timestamp_millis();
    nonce_bytes(NonceRepo::peek(conn, nonce_id, now_ms).await?)
}

/// Ids longer than any issued one are unknown without asking the database.
fn issuable(nonce_id: &str) -> Result<(), MachineError> {
    if nonce_id.len() > 128 {
        return Err(MachineError::field("nonce_id", "unknown nonce_id"));
    }
    Ok(())
}

/// Spends the nonce of refused evidence. The refusal is the answer, so a
/// database failure here is only logged.
pub(super) async fn burn(state: &AppState, nonce_id: &str) {
    if let Err(MachineError::Store(e)) = redeem(state, nonce_id).await {
        tracing::warn!(error = %e, "could not spend the nonce of a refused request");
    }
}

/// The nonce bytes of a fresh redemption, or the answer for a spent,
/// expired or unknown nonce.
pub(super) fn nonce_bytes(redeemed: Redeemed) -> Result<Vec<u8>, MachineError> {
    match redeemed {
        Redeemed::Fresh(b64) => STANDARD
            .decode(b64)
            .map_err(|e| StoreError::Corrupt(format!("attest_nonces.nonce: {e}")).into()),
        Redeemed::AlreadyConsumed => Err(MachineError::NonceReplayed),
        Redeemed::Expired => Err(MachineError::NonceExpired),
        Redeemed::Unknown => Err(MachineError::field("nonce_id", "unknown nonce_id")),
    }
}

/// A non-empty, trimmed `nonce_id`, if given.
pub(super) fn given(nonce_id: Option<&str>) -> Option<&str> {
    nonce_id.map(str::trim).filter(|s| !s.is_empty())
}

//! Update leases: who may write to a stack while an update runs.
//!
//! Starting an update (other than a preview) hands out a random lease
//! token valid for [`LEASE_SECONDS`]; the CLI renews it every few minutes
//! (`renew_lease`) and presents it as `Authorization: update-token …` on
//! every checkpoint, event batch and completion. Only its SHA-256 is
//! stored. While a lease is live no other update of the stack may start
//! (409, which the CLI reports as "another update is in progress"); once
//! it lapses (the CLI crashed, the network went away) the next update
//! marks the abandoned one failed and proceeds. Expiry is decided with the
//! host clock, so tests move time instead of sleeping.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::PulumiError;
use crate::repo::UpdateRow;

/// Lease length handed out at start and the longest renewal.
pub const LEASE_SECONDS: i64 = 300;

/// Status of an update that runs.
pub const RUNNING: &str = "running";

/// A fresh token and its stored hash.
pub fn new_token() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let hash = hash_token(&token);
    (token, hash)
}

/// Hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `update` still holds its stack at `now_ms`.
pub fn is_live(update: &UpdateRow, now_ms: i64) -> bool {
    update.status == RUNNING && update.lease_expires_ms.is_some_and(|t| t > now_ms)
}

/// Checks a presented lease token against `update`: 401 for a wrong
/// token, 409 once the update is over or its lease has lapsed.
pub fn check(update: &UpdateRow, presented: &str, now_ms: i64) -> Result<(), PulumiError> {
    let Some(stored) = update.token_hash.as_deref() else {
        return Err(PulumiError::Unauthorized(
            "Unauthorized: invalid update token".into(),
        ));
    };
    let ok: bool = hash_token(presented)
        .as_bytes()
        .ct_eq(stored.as_bytes())
        .into();
    if !ok {
        return Err(PulumiError::Unauthorized(
            "Unauthorized: invalid update token".into(),
        ));
    }
    if update.status != RUNNING {
        return Err(PulumiError::Conflict(format!(
            "Conflict: the update is no longer in progress (status: {})",
            update.status
        )));
    }
    if !is_live(update, now_ms) {
        return Err(PulumiError::Conflict(
            "Conflict: the update's lease has expired".into(),
        ));
    }
    Ok(())
}

/// Seconds of a renewal request, clamped to 1 ..= [`LEASE_SECONDS`].
pub fn renewal_seconds(requested: i64) -> i64 {
    requested.clamp(1, LEASE_SECONDS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn update(status: &str, hash: Option<String>, expires: Option<i64>) -> UpdateRow {
        UpdateRow {
            update_id: "u".into(),
            stack_id: "s".into(),
            kind: "update".into(),
            status: status.into(),
            version: 1,
            program: "{}".into(),
            token_hash: hash,
            lease_expires_ms: expires,
            sequence: 0,
            checkpoint: None,
            resource_changes: None,
            created_by: "x".into(),
            created_at: "t".into(),
            start_time: None,
            end_time: None,
        }
    }

    #[test]
    fn tokens_leases_and_statuses() {
        let (token, hash) = new_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, hash);
        let live = update(RUNNING, Some(hash.clone()), Some(1_000));
        assert!(check(&live, &token, 999).is_ok());
        assert!(matches!(
            check(&live, &token, 1_000),
            Err(PulumiError::Conflict(_))
        ));
        assert!(matches!(
            check(&live, "wrong", 0),
            Err(PulumiError::Unauthorized(_))
        ));
        let done = update("succeeded", Some(hash), Some(1_000));
        assert!(matches!(
            check(&done, &token, 0),
            Err(PulumiError::Conflict(_))
        ));
        let none = update(RUNNING, None, Some(1_000));
        assert!(matches!(
            check(&none, &token, 0),
            Err(PulumiError::Unauthorized(_))
        ));
        assert_eq!(renewal_seconds(0), 1);
        assert_eq!(renewal_seconds(120), 120);
        assert_eq!(renewal_seconds(86_400), 300);
    }
}

//! Audit checkpoints: signing the chain's length and newest hash, checking
//! the chain against stored and outside checkpoints, and the periodic task.
//!
//! Encoding and comparison are pure (`attest_domain::audit::checkpoint`),
//! the key is the PKI's ([`attest_pki::CheckpointSigner`]), the rows the
//! store's; this module puts them together for the routes and the timer.
//! Every checkpoint is also emitted as the `audit.checkpoint` activity
//! event, which the webhooks extension delivers to subscribed receivers:
//! the way a checkpoint leaves the database.

use std::time::Duration;

use attest_domain::audit::checkpoint::{
    statement, AuditCheckpoint, CheckpointRef, ExpectedCheckpoint,
};
use attest_domain::audit::{format_timestamp, ChainVerifier, VerifyReport};
use attest_ext::activity::{kinds, ActivityEvent};
use attest_pki::CheckpointSigner;
use attest_proto::audit::AuditCheckpointKey;
use attest_store::CheckpointRepo;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::state::AppState;

/// Why a checkpoint could not be taken or checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The chain does not verify: signing it would vouch for tampering.
    #[error("the audit chain is invalid ({0}); no checkpoint was signed")]
    ChainInvalid(String),
    /// A checkpoint supplied from outside is malformed or not signed by
    /// this server's checkpoint key.
    #[error("{0}")]
    Refused(String),
    /// Signing failed.
    #[error("checkpoint key: {0}")]
    Pki(#[from] attest_pki::PkiError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] attest_store::StoreError),
}

impl From<CheckpointError> for ApiError {
    fn from(err: CheckpointError) -> Self {
        match err {
            CheckpointError::ChainInvalid(_) => ApiError::Conflict(err.to_string()),
            CheckpointError::Refused(m) => ApiError::Unprocessable(m),
            CheckpointError::Pki(e) => ApiError::Internal(format!("checkpoint key: {e}")),
            CheckpointError::Store(e) => e.into(),
        }
    }
}

/// Why a checkpoint is being taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The timer: skipped when the newest checkpoint already covers the
    /// chain as it is.
    Periodic,
    /// An operator asked (`POST /api/v1/audit/checkpoints`).
    OnDemand,
}

/// The checkpoint key as served.
pub fn public_key(signer: &CheckpointSigner) -> AuditCheckpointKey {
    AuditCheckpointKey {
        algorithm: signer.algorithm().to_owned(),
        key_id: signer.key_id().to_owned(),
        public_key_pem: signer.public_key_pem().to_owned(),
    }
}

/// Verifies the chain (against the stored checkpoints too), then signs,
/// stores and announces a checkpoint of it. `None`: nothing to sign (an
/// empty chain, or a periodic run with nothing new since the last one).
pub async fn take(
    state: &AppState,
    trigger: Trigger,
) -> Result<Option<AuditCheckpoint>, CheckpointError> {
    let report = verify(state, &[]).await?;
    if !report.valid {
        return Err(CheckpointError::ChainInvalid(
            report.error.unwrap_or_else(|| "unknown failure".into()),
        ));
    }
    let Some(root_hash) = report.root_hash.filter(|_| report.entries > 0) else {
        return Ok(None);
    };
    if trigger == Trigger::Periodic {
        let latest = state.store.audit_checkpoints().latest().await?;
        if latest.is_some_and(|l| l.entries == report.entries && l.root_hash == root_hash) {
            return Ok(None);
        }
    }
    let signer = &state.checkpoint_signer;
    let mut checkpoint = AuditCheckpoint {
        id: None,
        entries: report.entries,
        root_hash,
        timestamp: format_timestamp(state.clock.now()),
        key_id: signer.key_id().to_owned(),
        algorithm: signer.algorithm().to_owned(),
        signature: String::new(),
    };
    let signature = signer.sign(&statement(&checkpoint).signed_bytes())?;
    checkpoint.signature = STANDARD.encode(signature);
    let mut tx = state.store.begin_write().await?;
    let stored = CheckpointRepo::insert_in(&mut tx, &checkpoint).await?;
    let event = announcement(state, &stored);
    attest_ext::activity::record(&mut tx, &event).await?;
    tx.commit().await?;
    state.activity.emit(event);
    tracing::info!(
        id = ?stored.id,
        entries = stored.entries,
        root_hash = %stored.root_hash,
        ?trigger,
        "signed an audit checkpoint"
    );
    Ok(Some(stored))
}

/// The activity event webhooks deliver as `audit.checkpoint`, its `data`
/// the checkpoint as served; recorded with the checkpoint.
fn announcement(state: &AppState, checkpoint: &AuditCheckpoint) -> ActivityEvent {
    let mut event = ActivityEvent::new(kinds::AUDIT_CHECKPOINT, state.clock.now(), None);
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(checkpoint) {
        event.data = fields;
    }
    event
}

/// Walks the chain and checks it against every stored checkpoint and every
/// one in `external` (kept outside the database by the operator).
///
/// A stored checkpoint whose signature fails makes the report invalid (the
/// database was tampered with); an external one is refused as bad input.
pub async fn verify(
    state: &AppState,
    external: &[AuditCheckpoint],
) -> Result<VerifyReport, CheckpointError> {
    let signer = &state.checkpoint_signer;
    for (i, checkpoint) in external.iter().enumerate() {
        check(signer, checkpoint).map_err(|reason| {
            CheckpointError::Refused(format!("checkpoints[{i}] refused: {reason}"))
        })?;
    }
    // Read before the walk: the chain only grows, so every checkpoint read
    // here covers entries the walk will see.
    let stored = state.store.audit_checkpoints().all().await?;
    let mut verifier = ChainVerifier::new();
    let mut expected: Vec<ExpectedCheckpoint> = external.iter().map(Into::into).collect();
    for checkpoint in &stored {
        match check(signer, checkpoint) {
            Ok(()) => expected.push(checkpoint.into()),
            Err(reason) => verifier.reject_checkpoint(
                CheckpointRef {
                    id: checkpoint.id,
                    timestamp: checkpoint.timestamp.clone(),
                },
                format!("{reason} (forged or altered in the database)"),
            ),
        }
    }
    Ok(state
        .store
        .audit()
        .verify_with(verifier.with_checkpoints(expected))
        .await?)
}

/// Whether `checkpoint` is well formed and signed by `signer`; the reason
/// when not.
fn check(signer: &CheckpointSigner, checkpoint: &AuditCheckpoint) -> Result<(), String> {
    let statement = statement(checkpoint);
    statement.validate().map_err(|e| e.to_string())?;
    if checkpoint.algorithm != signer.algorithm() {
        return Err(format!(
            "algorithm `{}` is not `{}`",
            checkpoint.algorithm,
            signer.algorithm()
        ));
    }
    if checkpoint.key_id != signer.key_id() {
        return Err(format!(
            "signed by key {}, not this server's checkpoint key {}",
            checkpoint.key_id,
            signer.key_id()
        ));
    }
    let signature = STANDARD
        .decode(checkpoint.signature.as_bytes())
        .map_err(|_| "signature is not base64".to_owned())?;
    signer
        .verify(&statement.signed_bytes(), &signature)
        .map_err(|_| "signature does not verify with this server's checkpoint key".to_owned())
}

/// Takes a [`Trigger::Periodic`] checkpoint now and then every `interval`
/// until aborted. A failure is logged (an invalid chain as an error: it is
/// the alarm) and the next run tries again.
pub fn spawn_periodic(state: AppState, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        crate::periodic::every(interval, || async {
            match take(&state, Trigger::Periodic).await {
                Ok(_) => {}
                Err(CheckpointError::ChainInvalid(reason)) => {
                    tracing::error!(%reason, "AUDIT CHAIN INVALID: periodic checkpoint not signed");
                }
                Err(err) => tracing::warn!(error = %err, "periodic audit checkpoint failed"),
            }
        })
        .await;
    })
}

//! Automatic lock after repeated refused attestations (the seed's
//! `machine.locked`: "machine exceeds failed attestation threshold").
//!
//! A machine whose quotes keep failing is either broken or being
//! impersonated; after `ITL_MAX_FAILED_ATTESTATIONS` refusals in a row it
//! is locked like an operator would lock it, audited as `SYSTEM`.

use attest_domain::audit::{format_timestamp, AuditAction};
use attest_domain::machine::{transition, Event, MachineStatus};
use attest_ext::activity::kinds;
use attest_store::{AuditRepo, MachineRepo, NewAuditEntry};

use super::MachineError;
use crate::events::machine_event;
use crate::state::AppState;
use attest_ext::activity::record;

/// Counts a refused attestation of `machine_id` and locks the machine when
/// the count reaches the threshold. The refusal is what the client hears,
/// so a failure here is only logged.
pub(super) async fn record_refusal(state: &AppState, machine_id: &str, error: &MachineError) {
    let threshold = state.settings.machines.max_failed_attestations;
    if threshold == 0 || !error.is_evidence_refusal() {
        return;
    }
    if let Err(e) = count_and_lock(state, machine_id, threshold, &error.to_string()).await {
        tracing::warn!(%machine_id, error = %e, "could not record a refused attestation");
    }
}

async fn count_and_lock(
    state: &AppState,
    machine_id: &str,
    threshold: u32,
    reason: &str,
) -> Result<(), MachineError> {
    let now = state.clock.now();
    let ts = format_timestamp(now);
    let mut tx = state.store.begin_write().await?;
    let Some(mut m) = MachineRepo::lock(&mut tx, machine_id).await? else {
        return Ok(());
    };
    m.failed_attestations = m.failed_attestations.saturating_add(1);
    let lock = m.failed_attestations >= i64::from(threshold)
        && matches!(
            m.status,
            MachineStatus::Registered | MachineStatus::Attested
        );
    let previous = m.status;
    if lock {
        m.status = transition(Some(m.status), Event::Lock)?.status;
        m.locked_at = Some(ts.clone());
    }
    m.updated_at = ts;
    MachineRepo::save(&mut tx, &m).await?;
    let detail = format!(
        "automatic lock: {} consecutive refused attestations (ITL_MAX_FAILED_ATTESTATIONS={threshold}); last: {reason}",
        m.failed_attestations
    );
    if lock {
        let entry = NewAuditEntry {
            operator_cn: attest_auth::BREAK_GLASS_IDENTITY.to_owned(),
            action: AuditAction::Lock.into(),
            machine_id: Some(m.machine_id.clone()),
            prev_state: Some(previous.as_str().to_owned()),
            new_state: Some(m.status.as_str().to_owned()),
            detail: Some(detail.clone()),
        };
        AuditRepo::append(&mut tx, &entry, now).await?;
        let event = machine_event(
            kinds::MACHINE_LOCKED,
            &m,
            now,
            &[
                ("locked_by", Some(attest_auth::BREAK_GLASS_IDENTITY)),
                ("reason", Some(&detail)),
            ],
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        tracing::warn!(%machine_id, "{detail}");
        state.activity.emit(event);
        return Ok(());
    }
    tx.commit().await?;
    Ok(())
}

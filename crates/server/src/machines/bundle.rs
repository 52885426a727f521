//! `GET /machines/{id}/offline-bundle`: everything an air-gapped machine
//! needs, in one audited answer.

use attest_domain::audit::{format_timestamp, AuditAction};
use attest_domain::machine::MachineStatus;
use attest_proto::machine::OfflineBundle;
use attest_store::{AuditRepo, MachineRepo, NewAuditEntry};

use super::certs::{issue_for_machine, PURPOSE_OFFLINE_BUNDLE};
use super::delivery::render_full;
use super::{rotate_token, MachineError};
use crate::state::AppState;
use attest_store::HolderProof;

/// Builds the bundle: a fresh config token (the previous one stops
/// working), the rendered MachineConfig, and a freshly issued enrollment
/// certificate and key. The issuance and the token are committed with the
/// audit entry, or not at all.
pub async fn offline_bundle(
    state: &AppState,
    operator: &str,
    machine_id: &str,
) -> Result<OfflineBundle, MachineError> {
    let now = state.clock.now();
    let ts = format_timestamp(now);
    let mut tx = state.store.begin_write().await?;
    let mut m = MachineRepo::lock(&mut tx, machine_id)
        .await?
        .ok_or(MachineError::UnknownMachine)?;
    if !matches!(
        m.status,
        MachineStatus::Registered | MachineStatus::Attested
    ) {
        return Err(MachineError::StateConflict(format!(
            "cannot build an offline bundle: current status: {} (approve the machine first)",
            m.status
        )));
    }
    let machineconfig = render_full(state, &m).await?;
    let token = rotate_token(&mut m, now);
    m.updated_at = ts.clone();
    MachineRepo::save(&mut tx, &m).await?;
    let (issued, key_pem) = issue_for_machine(
        state,
        &mut tx,
        &m,
        PURPOSE_OFFLINE_BUNDLE,
        HolderProof::Operator,
        now,
    )
    .await?;
    let entry = NewAuditEntry {
        operator_cn: operator.to_owned(),
        action: AuditAction::OfflineBundle.into(),
        machine_id: Some(m.machine_id.clone()),
        prev_state: Some(m.status.as_str().to_owned()),
        new_state: Some(m.status.as_str().to_owned()),
        detail: Some(format!(
            "enrollment certificate serial={} issued; config token rotated; machineconfig={}",
            issued.serial_hex,
            if machineconfig.is_some() {
                "included"
            } else {
                "none"
            }
        )),
    };
    AuditRepo::append(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(OfflineBundle {
        config_url: state.settings.machines.config_url(&token),
        config_token: token,
        machine_id: m.machine_id,
        role: m.role,
        status: m.status,
        ek_fingerprint: m.ek_fingerprint,
        hostname: m.hostname,
        assigned_ip: m.assigned_ip,
        iso_url: m.iso_url,
        machineconfig,
        enrollment_cert_pem: issued.cert_pem,
        enrollment_key_pem: key_pem.to_string(),
        enrollment_ca_pem: state.ca.ca_cert_pem().to_owned(),
        install_mode: "offline".into(),
        built_at: ts,
    })
}

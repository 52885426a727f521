//! Stored machines and votes as the API shows them.

use attest_proto::machine::{ApprovalRecord, EkSource, MachineDetail};
use attest_store::{MachineRecord, VoteRecord};

use super::MachineError;

/// The stored `ek_source` text as the wire enum (unknown → `cert`, the
/// seed's default; the column is only ever written from the enum).
pub fn ek_source(text: &str) -> EkSource {
    match text {
        "pub" => EkSource::Pub,
        "offline-import" => EkSource::OfflineImport,
        _ => EkSource::Cert,
    }
}

/// `MachineDetail` of a stored machine.
pub fn machine_detail(m: &MachineRecord) -> MachineDetail {
    MachineDetail {
        machine_id: m.machine_id.clone(),
        ek_fingerprint: m.ek_fingerprint.clone(),
        hw_uuid: m.hw_uuid.clone(),
        hw_mac: m.hw_mac.clone(),
        hw_serial: m.hw_serial.clone(),
        hw_product: m.hw_product.clone(),
        role: m.role,
        status: m.status,
        hostname: m.hostname.clone(),
        assigned_ip: m.assigned_ip.clone(),
        registered_at: m.registered_at.clone(),
        attested_at: m.attested_at.clone(),
        locked_at: m.locked_at.clone(),
        revoked_at: m.revoked_at.clone(),
        wipe_pending: m.wipe_pending,
        ek_source: ek_source(&m.ek_source),
        iso_url: m.iso_url.clone(),
        ak_activated_at: m.ak_activated_at.clone(),
        ak_binding: match (&m.ak_public_pem, &m.ak_name) {
            (None, _) => None,
            (Some(_), Some(_)) => Some("credential".into()),
            (Some(_), None) => Some("ek-cert".into()),
        },
        last_attest_at: m.last_attest_at.clone(),
        config_token_outstanding: m.config_token_outstanding(),
        updated_at: m.updated_at.clone(),
    }
}

/// One row of `GET /machines/{id}/approvals`.
pub fn approval_record(v: &VoteRecord) -> Result<ApprovalRecord, MachineError> {
    Ok(ApprovalRecord {
        id: v.id,
        machine_id: v.machine_id.clone(),
        operator_cn: v.operator_cn.clone(),
        role: v.role.parse().map_err(|e| {
            MachineError::Store(attest_store::StoreError::Corrupt(format!(
                "approval_votes.role: {e}"
            )))
        })?,
        hostname: v.hostname.clone(),
        assigned_ip: v.assigned_ip.clone(),
        created_at: v.created_at.clone(),
        expires_at: v.expires_at.clone(),
        consumed: v.consumed,
    })
}

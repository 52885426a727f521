//! Operator actions on host enrollments: list, show, approve, deny,
//! remove. Each change appends exactly one audit entry in the transaction
//! that makes it.

use attest_domain::audit::{format_timestamp, AuditAction};
use attest_proto::host_enroll::{HostDecisionRequest, HostEnrollmentInfo, HostEnrollmentState};
use attest_store::{
    AuditRepo, EnrollmentCertRepo, HostEnrollmentRecord, HostEnrollmentRepo, NewAuditEntry,
    WriteTx, HOST_APPROVED, HOST_DENIED, HOST_REMOVED,
};

use super::{info, HostEnrollError, PURPOSE_HOST, REASON_HOST_REMOVED};
use crate::state::AppState;

/// Most requests listed.
const LIST_LIMIT: i64 = 1000;
/// Longest note an operator may attach.
const REASON_MAX: usize = 256;

/// Requests, oldest first, optionally only those in `status`.
pub async fn list(
    state: &AppState,
    status: Option<HostEnrollmentState>,
) -> Result<Vec<HostEnrollmentInfo>, HostEnrollError> {
    let rows = state
        .store
        .host_enrollments()
        .list(status.map(HostEnrollmentState::as_str), LIST_LIMIT)
        .await?;
    rows.iter().map(info).collect()
}

/// One request.
pub async fn get(state: &AppState, id: &str) -> Result<HostEnrollmentInfo, HostEnrollError> {
    let row = state
        .store
        .host_enrollments()
        .get(id)
        .await?
        .ok_or(HostEnrollError::UnknownEnrollment)?;
    info(&row)
}

/// Approves a pending request: the host's next poll receives its bundle.
pub async fn approve(
    state: &AppState,
    operator: &str,
    id: &str,
) -> Result<HostEnrollmentInfo, HostEnrollError> {
    decide(state, operator, id, HOST_APPROVED, None).await
}

/// Denies a pending request: the host's next poll answers `denied`.
pub async fn deny(
    state: &AppState,
    operator: &str,
    id: &str,
    req: HostDecisionRequest,
) -> Result<HostEnrollmentInfo, HostEnrollError> {
    let reason = reason(req)?;
    decide(state, operator, id, HOST_DENIED, reason.as_deref()).await
}

/// Removes an approved or enrolled host: its certificate is revoked (the
/// enrollment CRL lists it) and its machine-id and FQDN may enroll again.
pub async fn remove(
    state: &AppState,
    operator: &str,
    id: &str,
    req: HostDecisionRequest,
) -> Result<HostEnrollmentInfo, HostEnrollError> {
    let reason = reason(req)?;
    let now = state.clock.now();
    let at = format_timestamp(now);
    let mut tx = state.store.begin_write().await?;
    let before = existing(&mut tx, id).await?;
    if !HostEnrollmentRepo::remove(&mut tx, id, &at, operator, reason.as_deref()).await? {
        return Err(HostEnrollError::StatusForbids(format!(
            "only an approved or enrolled host can be removed; this one is {}",
            before.status
        )));
    }
    let mut detail = describe(&before);
    if let Some(serial) = &before.cert_serial {
        EnrollmentCertRepo::revoke_serial(&mut tx, serial, PURPOSE_HOST, &at, REASON_HOST_REMOVED)
            .await?;
        detail.push_str(&format!(" revoked_serial={serial}"));
    }
    if let Some(r) = &reason {
        detail.push_str(&format!(" reason={r}"));
    }
    append(
        &mut tx,
        operator,
        AuditAction::HostRemove,
        &before,
        HOST_REMOVED,
        detail,
        now,
    )
    .await?;
    let after = existing(&mut tx, id).await?;
    tx.commit().await?;
    info(&after)
}

/// Moves a pending, unexpired request to `to`, audited.
async fn decide(
    state: &AppState,
    operator: &str,
    id: &str,
    to: &'static str,
    reason: Option<&str>,
) -> Result<HostEnrollmentInfo, HostEnrollError> {
    let now = state.clock.now();
    let at = format_timestamp(now);
    let mut tx = state.store.begin_write().await?;
    let before = existing(&mut tx, id).await?;
    if !HostEnrollmentRepo::decide(&mut tx, id, to, &at, operator, reason).await? {
        return Err(HostEnrollError::StatusForbids(
            if before.status == attest_store::HOST_PENDING {
                "the enrollment request expired (24 hours); the host must enroll again".to_owned()
            } else {
                format!("the enrollment request is {}, not pending", before.status)
            },
        ));
    }
    let mut detail = describe(&before);
    if let Some(r) = reason {
        detail.push_str(&format!(" reason={r}"));
    }
    let action = if to == HOST_APPROVED {
        AuditAction::HostApprove
    } else {
        AuditAction::HostDeny
    };
    append(&mut tx, operator, action, &before, to, detail, now).await?;
    let after = existing(&mut tx, id).await?;
    tx.commit().await?;
    info(&after)
}

async fn existing(tx: &mut WriteTx, id: &str) -> Result<HostEnrollmentRecord, HostEnrollError> {
    HostEnrollmentRepo::get_in(tx, id)
        .await?
        .ok_or(HostEnrollError::UnknownEnrollment)
}

fn describe(r: &HostEnrollmentRecord) -> String {
    format!(
        "host={} machine_id={} fqdn={} ip={}",
        r.id, r.machine_id, r.fqdn, r.ip_address
    )
}

async fn append(
    tx: &mut WriteTx,
    operator: &str,
    action: AuditAction,
    before: &HostEnrollmentRecord,
    new_state: &str,
    detail: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), HostEnrollError> {
    let entry = NewAuditEntry {
        prev_state: Some(before.status.clone()),
        new_state: Some(new_state.to_owned()),
        detail: Some(detail),
        ..NewAuditEntry::new(operator, action)
    };
    AuditRepo::append(tx, &entry, now).await?;
    Ok(())
}

/// The operator's note: trimmed, at most [`REASON_MAX`] characters, no
/// control characters (it goes into the audit log).
fn reason(req: HostDecisionRequest) -> Result<Option<String>, HostEnrollError> {
    let Some(r) = req
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
    else {
        return Ok(None);
    };
    if r.chars().count() > REASON_MAX || r.chars().any(char::is_control) {
        return Err(HostEnrollError::InvalidField {
            field: "reason",
            message: format!("at most {REASON_MAX} characters, no control characters"),
        });
    }
    Ok(Some(r))
}

//! `GET /api/v1/enroll/status/{token}`: the seed's tagged answer. The
//! first poll after approval issues the host certificate and hands out
//! the bundle, which consumes the token: later polls answer `not_found`.

use std::net::IpAddr;

use attest_domain::audit::{format_timestamp, parse_timestamp, AuditAction};
use attest_pki::{HostName, IssuedCert};
use attest_proto::host_enroll::{is_well_formed_token, ApprovedBundle, EnrollStatus};
use attest_store::{
    AuditRepo, HostEnrollmentRecord, HostEnrollmentRepo, IssuedCertRecord, NewAuditEntry,
    HOST_APPROVED, HOST_DENIED, HOST_ENROLLED, HOST_PENDING,
};
use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::{token_hash, HostEnrollError, HOST_CERT_DAYS, HOST_OU, PURPOSE_HOST};
use crate::machines::certs::record;
use crate::state::AppState;

/// Where the request of `token` stands; an approved one is answered with
/// its bundle, once.
pub async fn poll(state: &AppState, token: &str) -> Result<EnrollStatus, HostEnrollError> {
    if !is_well_formed_token(token) {
        return Ok(EnrollStatus::NotFound);
    }
    let Some(row) = state
        .store
        .host_enrollments()
        .by_token(&token_hash(token))
        .await?
    else {
        return Ok(EnrollStatus::NotFound);
    };
    let now = state.clock.now();
    if expired(&row, now)? {
        return Ok(EnrollStatus::NotFound);
    }
    match row.status.as_str() {
        HOST_PENDING => Ok(EnrollStatus::Pending),
        HOST_DENIED => Ok(EnrollStatus::Denied),
        HOST_APPROVED => hand_out(state, &row, now).await,
        // Enrolled (consumed) or removed.
        _ => Ok(EnrollStatus::NotFound),
    }
}

/// True once the 24 hours of the token have passed.
fn expired(row: &HostEnrollmentRecord, now: DateTime<Utc>) -> Result<bool, HostEnrollError> {
    let expires = parse_timestamp(&row.expires_at).ok_or_else(|| {
        HostEnrollError::Internal(format!("host enrollment {} expires_at", row.id))
    })?;
    Ok(now >= expires)
}

/// Issues the certificate, records it and consumes the token in one
/// transaction; a fetch that loses a race to another answers `not_found`
/// and its certificate is never handed out or recorded.
async fn hand_out(
    state: &AppState,
    row: &HostEnrollmentRecord,
    now: DateTime<Utc>,
) -> Result<EnrollStatus, HostEnrollError> {
    let (issued, key) = issue(state, row)?;
    let at = format_timestamp(now);
    let mut tx = state.store.begin_write().await?;
    if !HostEnrollmentRepo::consume(&mut tx, &row.id, &issued.serial_hex, &at).await? {
        tx.rollback().await?;
        return Ok(EnrollStatus::NotFound);
    }
    record(
        &mut tx,
        &issued,
        IssuedCertRecord::new(&row.fqdn, PURPOSE_HOST),
        now,
    )
    .await?;
    let entry = NewAuditEntry {
        prev_state: Some(HOST_APPROVED.to_owned()),
        new_state: Some(HOST_ENROLLED.to_owned()),
        detail: Some(format!(
            "host={} machine_id={} fqdn={} serial={} key={}",
            row.id,
            row.machine_id,
            row.fqdn,
            issued.serial_hex,
            if key.is_some() { "server" } else { "host" }
        )),
        ..NewAuditEntry::new(
            format!("host:{}", row.machine_id),
            AuditAction::HostIssueCert,
        )
    };
    AuditRepo::append(&mut tx, &entry, now).await?;
    tx.commit().await?;
    tracing::info!(id = %row.id, fqdn = %row.fqdn, serial = %issued.serial_hex, "host certificate handed out");
    Ok(EnrollStatus::Approved(ApprovedBundle {
        ca_crt: state.ca.ca_cert_pem().to_owned(),
        server_crt: issued.cert_pem,
        server_key: key.map(|k| k.to_string()),
    }))
}

/// The host certificate: for the key of the host's CSR, or for a fresh
/// key returned with it.
fn issue(
    state: &AppState,
    row: &HostEnrollmentRecord,
) -> Result<(IssuedCert, Option<Zeroizing<String>>), HostEnrollError> {
    let ip: IpAddr = row
        .ip_address
        .parse()
        .map_err(|_| HostEnrollError::Internal(format!("host enrollment {} ip_address", row.id)))?;
    let host = HostName {
        fqdn: &row.fqdn,
        ip,
    };
    let validity = chrono::Duration::days(HOST_CERT_DAYS);
    match &row.csr_pem {
        Some(pem) => {
            let csr = attest_pki::verify_csr(pem)?;
            Ok((
                state.ca.issue_host(host, HOST_OU, csr.spki, validity)?,
                None,
            ))
        }
        None => {
            let (issued, key) = state.ca.issue_host_with_new_key(host, HOST_OU, validity)?;
            Ok((issued, Some(key)))
        }
    }
}

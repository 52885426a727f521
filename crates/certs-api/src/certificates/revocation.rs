//! Revoking certificates (RFC 5280 reason codes): the certificate and
//! every version it has, in one transaction with the audit entry.

use attest_certs_domain::permissions as p;
use attest_certs_store::certificates as repo;
use attest_certs_store::records;
use attest_proto::certs::certificates::{
    BulkError, BulkRevokeRequest, BulkRevokeResult, ManagedCertificate, REVOCATION_REASONS,
};
use serde_json::json;

use attest_certs_store::timestamp;

use super::{load, select, target, ARCHIVED, REVOKED};
use crate::audit::{record, Change};
use crate::auth::Caller;
use crate::error::{CertsError, CertsResult};
use crate::state::CertsState;

/// The reason, checked against the seed's `RevocationReason` values.
pub fn parse_reason(reason: Option<&str>) -> CertsResult<String> {
    let reason = reason.filter(|r| !r.is_empty()).unwrap_or("unspecified");
    if REVOCATION_REASONS.contains(&reason) {
        Ok(reason.to_owned())
    } else {
        Err(CertsError::Invalid(format!(
            "reason must be one of {}",
            REVOCATION_REASONS.join(", ")
        )))
    }
}

/// Revokes certificate `id`; `Ok(false)` when it already was.
async fn revoke_one(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    reason: &str,
    action: &str,
) -> CertsResult<bool> {
    let now = state.clock.now();
    let at = timestamp(now);
    state.store.write_with(async |tx| {
        let mut cert = records::get_in::<ManagedCertificate>(tx, id)
            .await?
            .ok_or_else(|| CertsError::not_found("certificate"))?;
        caller.require_on(&p::CERT_REVOKE, target(&cert))?;
        if cert.status == REVOKED {
            return Ok(false);
        }
        let previous = std::mem::replace(&mut cert.status, REVOKED.into());
        cert.revoked_at = Some(at.clone());
        cert.revocation_reason = Some(reason.to_owned());
        cert.updated_at = at.clone();
        records::replace(tx, &cert).await?;
        let versions = repo::revoke_versions(tx, id, reason, &at).await?;
        record(
            tx,
            caller,
            Change {
                action,
                resource_type: "certificate",
                resource_id: id,
                details: json!({"reason": reason, "previous_status": previous, "versions_revoked": versions}),
            },
            now,
        )
        .await?;
        Ok(true)
    })
    .await
}

/// Revokes certificate `id` with `reason` (409 when already revoked).
pub async fn revoke(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    reason: Option<&str>,
) -> CertsResult<()> {
    load(state, caller, &p::CERT_REVOKE, id).await?;
    let reason = parse_reason(reason)?;
    if revoke_one(state, caller, id, &reason, "cert.revoke").await? {
        Ok(())
    } else {
        Err(CertsError::Conflict(format!(
            "certificate {id} is already revoked"
        )))
    }
}

/// Revokes every selected certificate, each in its own transaction;
/// already revoked or archived ones are skipped, failures reported.
pub async fn bulk_revoke(
    state: &CertsState,
    caller: &Caller,
    body: &BulkRevokeRequest,
) -> CertsResult<BulkRevokeResult> {
    caller.require(&p::CERT_BULK_REVOKE)?;
    let reason = parse_reason(Some(&body.reason))?;
    let ids = select(state, &body.criteria).await?;
    let mut result = BulkRevokeResult::default();
    for id in ids {
        result.total_matched += 1;
        let archived = records::get::<ManagedCertificate>(&state.store, &id)
            .await?
            .is_some_and(|c| c.status == ARCHIVED);
        if archived {
            result.total_skipped += 1;
            continue;
        }
        match revoke_one(state, caller, &id, &reason, "cert.bulk_revoke").await {
            Ok(true) => result.total_revoked += 1,
            Ok(false) => result.total_skipped += 1,
            Err(e) => {
                result.total_failed += 1;
                result.errors.push(BulkError {
                    certificate_id: id,
                    error: e.to_string(),
                });
            }
        }
    }
    Ok(result)
}

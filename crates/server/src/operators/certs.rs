//! Operator client certificates: issued only to the caller's own
//! authenticated identity, short-lived, recorded with the principal of the
//! login that asked, revocable by serial and refused once revoked.
//!
//! A certificate carries a display name (its CN); what it proves for dual
//! control is the principal recorded at issuance. Only an OIDC login mints:
//! the break-glass token names no person, and a certificate may not mint
//! its own successor (it would outlive the login that vouched for it).

use attest_auth::{AuthMethod, Operator, OperatorCertRecord, OperatorCertRegistry};
use attest_domain::audit::{format_timestamp, AuditAction};
use attest_pki::KeyAlgorithm;
use attest_proto::operator::{
    OperatorCertInfo, OperatorCertRequest, OperatorCertResponse, RevokeOperatorCertRequest,
};
use attest_store::{AuditRepo, EnrollmentCertRepo, IssuedCertRecord, NewAuditEntry, Store};
use futures::future::BoxFuture;

use super::OperatorError;
use crate::machines::certs::{record, PURPOSE_OPERATOR};
use crate::state::AppState;

/// OU that marks operator certificates.
pub const OPERATOR_OU: &str = attest_auth::OPERATOR_OU;

/// CRL reason recorded when no reason is given.
const DEFAULT_REVOKE_REASON: &str = "cessationOfOperation";

/// RFC 5280 CRLReason names an operator may give.
const REVOKE_REASONS: &[&str] = &[
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
];

/// Most certificates listed by [`list`].
const LIST_LIMIT: i64 = 1000;

/// `^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`: names that are safe in a
/// certificate subject, in logs and in the audit log.
fn is_operator_name(cn: &str) -> bool {
    let mut chars = cn.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && cn.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// Issues an `OU=operator` certificate with a fresh EC P-384 key to the
/// caller, for their own identity. Audited as `issue_operator_cert`, naming
/// who asked, for whom and the principal the certificate carries.
pub async fn issue(
    state: &AppState,
    caller: &Operator,
    request: OperatorCertRequest,
) -> Result<OperatorCertResponse, OperatorError> {
    let principal = minting_principal(caller)?;
    let cn = match request.cn.as_deref().map(str::trim) {
        None | Some("") => caller.identity.clone(),
        Some(cn) if cn == caller.identity => cn.to_owned(),
        Some(_) => {
            return Err(OperatorError::NotPermitted(format!(
                "an operator may obtain a certificate only for their own identity ('{}')",
                caller.identity
            )))
        }
    };
    if !is_operator_name(&cn) {
        return Err(OperatorError::InvalidField {
            field: "cn",
            message: format!(
                "identity '{cn}' cannot name a certificate: 1-64 characters of letters, digits \
                 and ._@-, starting with a letter or digit"
            ),
        });
    }
    let hours = validity_hours(state, &request)?;
    let (issued, key_pem) = state.ca.issue_with_new_key(
        &cn,
        OPERATOR_OU,
        chrono::Duration::hours(i64::from(hours)),
        KeyAlgorithm::EcP384,
    )?;
    // Recorded with its audit entry, so it can be checked and revoked.
    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    record(
        &mut tx,
        &issued,
        IssuedCertRecord {
            principal: Some(principal.to_owned()),
            ..IssuedCertRecord::new(&cn, PURPOSE_OPERATOR)
        },
        now,
    )
    .await?;
    let entry = NewAuditEntry {
        detail: Some(format!(
            "for={cn} principal={principal} serial={} valid_hours={hours} method={}",
            issued.serial_hex, caller.method
        )),
        ..NewAuditEntry::new(&caller.identity, AuditAction::IssueOperatorCert)
    };
    AuditRepo::append(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(OperatorCertResponse {
        cn,
        serial: issued.serial_hex,
        cert_pem: issued.cert_pem,
        key_pem: key_pem.to_string(),
        ca_pem: state.ca.ca_cert_pem().to_string(),
        not_after: issued.not_after.to_rfc3339(),
    })
}

/// The principal a new certificate will carry: the caller's, if they
/// logged in with OIDC.
fn minting_principal(caller: &Operator) -> Result<&str, OperatorError> {
    match (caller.method, caller.principal.as_deref()) {
        (AuthMethod::Oidc, Some(principal)) => Ok(principal),
        (AuthMethod::Oidc, None) => Err(OperatorError::NotPermitted(
            "the token has no subject (sub) to record as the certificate's principal".into(),
        )),
        (AuthMethod::BreakGlass, _) => Err(OperatorError::NotPermitted(
            "the break-glass token names no person and cannot obtain operator certificates; \
             log in with OIDC"
                .into(),
        )),
        (AuthMethod::ClientCert, _) => Err(OperatorError::NotPermitted(
            "a certificate cannot obtain another certificate; log in with OIDC to renew".into(),
        )),
    }
}

/// Hours of validity asked for (`valid_hours`, or `valid_days`), within
/// `ITL_OPERATOR_CERT_MAX_HOURS`; `ITL_OPERATOR_CERT_HOURS` by default.
fn validity_hours(state: &AppState, request: &OperatorCertRequest) -> Result<u32, OperatorError> {
    let limits = &state.settings.operators;
    let (field, hours) = match (request.valid_hours, request.valid_days) {
        (Some(_), Some(_)) => {
            return Err(OperatorError::InvalidField {
                field: "valid_days",
                message: "give valid_hours or valid_days, not both".into(),
            })
        }
        (Some(h), None) => ("valid_hours", h),
        (None, Some(d)) => ("valid_days", d.saturating_mul(24)),
        (None, None) => return Ok(limits.cert_hours),
    };
    if hours == 0 || hours > limits.cert_max_hours {
        return Err(OperatorError::InvalidField {
            field,
            message: format!(
                "operator certificates live at most {} hours (ITL_OPERATOR_CERT_MAX_HOURS)",
                limits.cert_max_hours
            ),
        });
    }
    Ok(hours)
}

/// Revokes the operator certificate `serial` (audited as
/// `revoke_operator_cert`); the operator path refuses it from then on and
/// the enrollment CRL lists it.
pub async fn revoke(
    state: &AppState,
    caller: &Operator,
    serial: &str,
    request: RevokeOperatorCertRequest,
) -> Result<OperatorCertInfo, OperatorError> {
    let serial = serial.trim().to_ascii_lowercase();
    let reason = request.reason.as_deref().unwrap_or(DEFAULT_REVOKE_REASON);
    if !REVOKE_REASONS.contains(&reason) {
        return Err(OperatorError::InvalidField {
            field: "reason",
            message: format!("reason must be one of {}", REVOKE_REASONS.join(", ")),
        });
    }
    let now = state.clock.now();
    let ts = format_timestamp(now);
    let mut tx = state.store.begin_write().await?;
    let revoked =
        EnrollmentCertRepo::revoke_serial(&mut tx, &serial, PURPOSE_OPERATOR, &ts, reason).await?;
    let stored = EnrollmentCertRepo::get_in(&mut tx, &serial)
        .await?
        .filter(|c| c.purpose == PURPOSE_OPERATOR)
        .ok_or_else(|| OperatorError::UnknownCertificate(serial.clone()))?;
    if !revoked {
        return Err(OperatorError::AlreadyRevoked(serial));
    }
    let entry = NewAuditEntry {
        detail: Some(format!(
            "serial={serial} cn={} reason={reason}",
            stored.subject_cn
        )),
        ..NewAuditEntry::new(&caller.identity, AuditAction::RevokeOperatorCert)
    };
    AuditRepo::append(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(info(&stored))
}

/// Every operator certificate, newest first.
pub async fn list(state: &AppState) -> Result<Vec<OperatorCertInfo>, OperatorError> {
    let certs = state
        .store
        .enrollment_certs()
        .list_purpose(PURPOSE_OPERATOR, LIST_LIMIT)
        .await?;
    Ok(certs.iter().map(info).collect())
}

fn info(c: &IssuedCertRecord) -> OperatorCertInfo {
    OperatorCertInfo {
        serial: c.serial_hex.clone(),
        cn: c.subject_cn.clone(),
        principal: c.principal.clone(),
        issued_at: c.issued_at.clone(),
        not_after: c.not_after.clone(),
        revoked_at: c.revoked_at.clone(),
        revocation_reason: c.revocation_reason.clone(),
    }
}

/// The issuance records in the database, as the authenticator asks for
/// them on every certificate login (a primary-key read).
pub struct StoredOperatorCerts(pub Store);

impl OperatorCertRegistry for StoredOperatorCerts {
    fn lookup<'a>(
        &'a self,
        serial_hex: &'a str,
    ) -> BoxFuture<'a, Result<Option<OperatorCertRecord>, String>> {
        Box::pin(async move {
            let stored = self
                .0
                .enrollment_certs()
                .get(serial_hex)
                .await
                .map_err(|e| e.to_string())?;
            Ok(stored
                .filter(|c| c.purpose == PURPOSE_OPERATOR)
                .map(|c| OperatorCertRecord {
                    revoked: c.revoked_at.is_some(),
                    principal: c.principal,
                }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_operator_name;

    #[test]
    fn operator_names() {
        for ok in [
            "alice",
            "niels.weistra",
            "ops-1@example.com",
            "a",
            &"a".repeat(64),
        ] {
            assert!(is_operator_name(ok), "{ok}");
        }
        for bad in [
            "",
            " alice",
            ".alice",
            "al ice",
            "al\nice",
            "SYSTEM\u{0}",
            &"a".repeat(65),
            "ä",
        ] {
            assert!(!is_operator_name(bad), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod reason_schema {
    use attest_proto::operator::OperatorRevocationReason;

    /// The OpenAPI enum and the server's list say the same.
    #[test]
    fn the_documented_reasons_are_the_accepted_ones() {
        for reason in super::REVOKE_REASONS {
            let parsed: Result<OperatorRevocationReason, _> =
                serde_json::from_value(serde_json::Value::String((*reason).into()));
            assert!(parsed.is_ok(), "{reason}");
        }
        let documented = [
            OperatorRevocationReason::Unspecified,
            OperatorRevocationReason::KeyCompromise,
            OperatorRevocationReason::AffiliationChanged,
            OperatorRevocationReason::Superseded,
            OperatorRevocationReason::CessationOfOperation,
            OperatorRevocationReason::PrivilegeWithdrawn,
        ];
        assert_eq!(documented.len(), super::REVOKE_REASONS.len());
    }
}

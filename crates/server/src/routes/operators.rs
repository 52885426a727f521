//! `POST /api/v1/operator-certs`: client certificates for operators who
//! authenticate through a TLS proxy (`X-Client-Cert`) instead of OIDC.

use attest_pki::KeyAlgorithm;
use attest_proto::error::ErrorBody;
use attest_proto::error::LocItem;
use attest_proto::operator::{OperatorCertRequest, OperatorCertResponse};
use attest_store::{AuditRepo, NewAuditEntry};
use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::machines::certs;
use crate::operator::AuthenticatedOperator;
use crate::state::AppState;

/// Default lifetime of an operator certificate.
pub const DEFAULT_VALID_DAYS: u32 = 30;
/// Longest lifetime allowed (the CA/Browser Forum's 397-day ceiling).
pub const MAX_VALID_DAYS: u32 = 397;
/// OU that marks operator certificates.
pub const OPERATOR_OU: &str = attest_auth::OPERATOR_OU;

/// `^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`: names that are safe in a
/// certificate subject, in logs and in the audit log.
fn is_operator_name(cn: &str) -> bool {
    let mut chars = cn.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && cn.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue_operator_cert))
}

/// Issues an `OU=operator` client certificate with a fresh EC P-384 key.
///
/// Audited as `issue_operator_cert`.
#[utoipa::path(post, path = "/api/v1/operator-certs", tag = "operators",
    request_body = OperatorCertRequest,
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Certificate and key", body = OperatorCertResponse),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 422, description = "Invalid request", body = ErrorBody)))]
pub async fn issue_operator_cert(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<OperatorCertRequest>,
) -> Result<Json<OperatorCertResponse>, ApiError> {
    let cn = request.cn.as_str();
    if !is_operator_name(cn) {
        return Err(ApiError::invalid(
            "string_pattern_mismatch",
            vec![LocItem::from("body"), LocItem::from("cn")],
            "cn must be 1-64 characters of letters, digits and ._@-, starting with a letter or digit",
        ));
    }
    if cn.eq_ignore_ascii_case(attest_auth::BREAK_GLASS_IDENTITY) {
        return Err(ApiError::invalid(
            "value_error",
            vec![LocItem::from("body"), LocItem::from("cn")],
            "cn SYSTEM is reserved for the break-glass token",
        ));
    }
    let days = request.valid_days.unwrap_or(DEFAULT_VALID_DAYS);
    if !(1..=MAX_VALID_DAYS).contains(&days) {
        return Err(ApiError::invalid(
            "value_error",
            vec![LocItem::from("body"), LocItem::from("valid_days")],
            format!("valid_days must be between 1 and {MAX_VALID_DAYS}"),
        ));
    }
    let (issued, key_pem) = state
        .ca
        .issue_with_new_key(
            cn,
            OPERATOR_OU,
            chrono::Duration::days(i64::from(days)),
            KeyAlgorithm::EcP384,
        )
        .map_err(crate::error::pki_error)?;
    // Recorded with its audit entry, so the certificate can be revoked later.
    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    certs::record(&mut tx, &issued, cn, None, certs::PURPOSE_OPERATOR, now).await?;
    AuditRepo::append(
        &mut tx,
        &NewAuditEntry {
            detail: Some(format!(
                "cn={cn} serial={} valid_days={days}",
                issued.serial_hex
            )),
            ..NewAuditEntry::new(operator.identity(), "issue_operator_cert")
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(OperatorCertResponse {
        cn: cn.to_string(),
        serial: issued.serial_hex,
        cert_pem: issued.cert_pem,
        key_pem: key_pem.to_string(),
        ca_pem: state.ca.ca_cert_pem().to_string(),
        not_after: issued.not_after.to_rfc3339(),
    }))
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

//! `POST /api/v1/operator-certs`: client certificates for operators who
//! authenticate through a TLS proxy (`X-Client-Cert`) instead of OIDC.

use attest_pki::KeyAlgorithm;
use attest_proto::error::ErrorBody;
use attest_proto::operator::{OperatorCertRequest, OperatorCertResponse};
use attest_store::NewAuditEntry;
use axum::extract::State;
use axum::Json;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::operator::AuthenticatedOperator;
use crate::state::AppState;

/// Default lifetime of an operator certificate.
pub const DEFAULT_VALID_DAYS: u32 = 30;
/// Longest lifetime allowed (the CA/Browser Forum's 397-day ceiling).
pub const MAX_VALID_DAYS: u32 = 397;
/// OU that marks operator certificates.
pub const OPERATOR_OU: &str = attest_auth::OPERATOR_OU;

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
    let cn = request.cn.trim();
    if cn.is_empty() || cn.len() > 64 || cn.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "value_error",
            vec![Value::from("body"), Value::from("cn")],
            "cn must be 1-64 printable characters",
        ));
    }
    let days = request.valid_days.unwrap_or(DEFAULT_VALID_DAYS);
    if !(1..=MAX_VALID_DAYS).contains(&days) {
        return Err(ApiError::invalid(
            "value_error",
            vec![Value::from("body"), Value::from("valid_days")],
            format!("valid_days must be between 1 and {MAX_VALID_DAYS}"),
        ));
    }
    let (issued, key_pem) = state.ca.issue_with_new_key(
        cn,
        OPERATOR_OU,
        chrono::Duration::days(i64::from(days)),
        KeyAlgorithm::EcP384,
    )?;
    state
        .store
        .audit()
        .append_one(
            &NewAuditEntry {
                detail: Some(format!(
                    "cn={cn} serial={} valid_days={days}",
                    issued.serial_hex
                )),
                ..NewAuditEntry::new(operator.identity(), "issue_operator_cert")
            },
            state.clock.now(),
        )
        .await?;
    Ok(Json(OperatorCertResponse {
        cn: cn.to_string(),
        serial: issued.serial_hex,
        cert_pem: issued.cert_pem,
        key_pem: key_pem.to_string(),
        ca_pem: state.ca.ca_cert_pem().to_string(),
        not_after: issued.not_after.to_rfc3339(),
    }))
}

//! `/api/v1/operator-certs`: client certificates for operators who
//! authenticate through a TLS proxy (`X-Client-Cert`) instead of OIDC;
//! issued to the caller's own OIDC identity only, listed and revoked.

use attest_proto::error::ErrorBody;
use attest_proto::operator::{
    OperatorCertInfo, OperatorCertRequest, OperatorCertResponse, RevokeOperatorCertRequest,
};
use axum::extract::{Path, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, OptionalJson};
use crate::operators::certs;
use crate::state::AppState;
use attest_http::AuthenticatedOperator;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue_operator_cert, list_operator_certs))
        .routes(routes!(revoke_operator_cert))
}

/// Issues an `OU=operator` client certificate with a fresh EC P-384 key
/// for the caller's own identity (OIDC logins only), valid for
/// `ITL_OPERATOR_CERT_HOURS` unless asked otherwise.
///
/// Audited as `issue_operator_cert` with who asked, for whom, and the
/// principal the certificate carries for dual control.
#[utoipa::path(post, path = "/api/v1/operator-certs", tag = "operators",
    request_body = OperatorCertRequest,
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Certificate and key", body = OperatorCertResponse),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator, another operator's name, or a login that cannot mint (break-glass, certificate)", body = ErrorBody),
        (status = 422, description = "Invalid request", body = ErrorBody)))]
pub async fn issue_operator_cert(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<OperatorCertRequest>,
) -> Result<Json<OperatorCertResponse>, ApiError> {
    Ok(Json(certs::issue(&state, &operator.0, request).await?))
}

/// Every operator certificate this server issued, newest first, with its
/// principal and revocation state.
#[utoipa::path(get, path = "/api/v1/operator-certs", tag = "operators",
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Operator certificates", body = Vec<OperatorCertInfo>),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody)))]
pub async fn list_operator_certs(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
) -> Result<Json<Vec<OperatorCertInfo>>, ApiError> {
    Ok(Json(certs::list(&state).await?))
}

/// Revokes an operator certificate by serial: the operator path refuses it
/// at once and the enrollment CRL lists it. Audited as
/// `revoke_operator_cert`.
#[utoipa::path(post, path = "/api/v1/operator-certs/{serial}/revoke", tag = "operators",
    params(("serial" = String, Path, description = "Serial number, hex")),
    request_body(content = Option<RevokeOperatorCertRequest>, description = "Optional reason"),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Revoked", body = OperatorCertInfo),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No operator certificate with that serial", body = ErrorBody),
        (status = 409, description = "Already revoked", body = ErrorBody),
        (status = 422, description = "Unknown reason", body = ErrorBody)))]
pub async fn revoke_operator_cert(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(serial): Path<String>,
    OptionalJson(request): OptionalJson<RevokeOperatorCertRequest>,
) -> Result<Json<OperatorCertInfo>, ApiError> {
    Ok(Json(
        certs::revoke(&state, &operator.0, &serial, request).await?,
    ))
}

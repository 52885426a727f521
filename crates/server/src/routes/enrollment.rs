//! `POST /api/v1/machines/{machine_id}/request-cert` and
//! `POST /api/v1/machines/enroll` (public: EK material or an enrollment
//! certificate plus a signed server nonce is the credential), and the
//! enrollment CA's CRL.

use attest_proto::error::ErrorBody;
use attest_proto::machine::{
    EnrollRequest, EnrollResponse, RequestCertRequest, RequestCertResponse,
};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::limits::{AttestClass, Throttled};
use crate::machines::certs::{self, ENROLLMENT_ISSUER_ID};
use crate::state::AppState;

/// Media type of a DER CRL (RFC 5280 / RFC 2585).
const PKIX_CRL: &str = "application/pkix-crl";

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_cert))
        .routes(routes!(enroll))
        .routes(routes!(crl))
}

/// Issues an enrollment certificate (CN = machine id, OU = role) to a
/// machine that re-presents its EK. With `wrapping_key_pem` the private key
/// comes back RSA-OAEP-SHA256-encrypted to that (TPM-resident) key.
#[utoipa::path(post, path = "/api/v1/machines/{machine_id}/request-cert", tag = "enrollment",
    params(("machine_id" = String, Path, description = "Machine UUID")),
    request_body = RequestCertRequest,
    responses(
        (status = 200, description = "Enrollment cert issued", body = RequestCertResponse),
        (status = 403, description = "EK material does not match the stored fingerprint, or the machine is not approved, locked or revoked", body = ErrorBody),
        (status = 404, description = "Machine not found", body = ErrorBody),
        (status = 422, description = "Invalid body, or a wrapping key that is not RSA >= 2048 or too small to carry the key", body = ErrorBody),
        (status = 429, description = "Too many requests from this source, or the machine reached ITL_MACHINE_CERTS_PER_DAY; Retry-After says when to retry", body = ErrorBody)))]
pub async fn request_cert(
    _limit: Throttled<AttestClass>,
    State(state): State<AppState>,
    Path(machine_id): Path<String>,
    ApiJson(req): ApiJson<RequestCertRequest>,
) -> Result<Json<RequestCertResponse>, ApiError> {
    Ok(Json(certs::request_cert(&state, &machine_id, req).await?))
}

/// Offline self-enrollment: the certificate must chain to the enrollment
/// CA, and `nonce_signature` must sign a nonce from
/// `GET /api/v1/attest/challenge` with the certificate's key.
#[utoipa::path(post, path = "/api/v1/machines/enroll", tag = "enrollment",
    request_body = EnrollRequest,
    responses(
        (status = 200, description = "Self-enrollment successful", body = EnrollResponse),
        (status = 403, description = "Cert chain verification failed, nonce signature invalid, or machine locked/revoked", body = ErrorBody),
        (status = 404, description = "machine_id from cert CN not found", body = ErrorBody),
        (status = 409, description = "Nonce already consumed — replay detected", body = ErrorBody),
        (status = 410, description = "Nonce has expired", body = ErrorBody),
        (status = 422, description = "Invalid body, or a nonce this server did not issue", body = ErrorBody),
        (status = 429, description = "Too many requests from this source (per-source rate limit); Retry-After says when to retry", body = ErrorBody)))]
pub async fn enroll(
    _limit: Throttled<AttestClass>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    Ok(Json(certs::enroll(&state, req).await?))
}

/// DER CRL (RFC 5280) of an issuer; `enrollment` is the enrollment CA.
#[utoipa::path(get, path = "/.well-known/pki/crl/{issuer_id}", tag = "pki",
    params(("issuer_id" = String, Path, description = "Issuer id (`enrollment`)")),
    responses(
        (status = 200, description = "DER-encoded CRL", content_type = "application/pkix-crl", body = Vec<u8>),
        (status = 404, description = "Unknown issuer", body = ErrorBody)))]
pub async fn crl(
    State(state): State<AppState>,
    Path(issuer_id): Path<String>,
) -> Result<Response, ApiError> {
    if issuer_id != ENROLLMENT_ISSUER_ID {
        return Err(ApiError::NotFound(format!(
            "issuer {issuer_id:?} not found"
        )));
    }
    let der = certs::enrollment_crl(&state).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(PKIX_CRL)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=300"),
            ),
        ],
        der,
    )
        .into_response())
}

//! Host enrollment (seed: `linux-patch-api.txt`, "Enrollment Endpoints"):
//! the public `POST /api/v1/enroll` and `GET /api/v1/enroll/status/{token}`
//! a host agent calls, and the operators' `/api/v1/host-enrollments`.

use attest_proto::error::ErrorBody;
use attest_proto::host_enroll::{
    EnrollAccepted, EnrollError, EnrollRequest, EnrollStatus, HostDecisionRequest,
    HostEnrollmentInfo, HostEnrollmentListQuery,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, EnrollApiError};
use crate::extract::{ApiJson, ApiQuery, ClientIp, OptionalJson};
use crate::host_enrollment::{admin, request, status};
use crate::limits::{HostEnrollClass, Throttled};
use crate::state::AppState;
use attest_http::AuthenticatedOperator;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enroll))
        .routes(routes!(enroll_status))
        .routes(routes!(list_host_enrollments))
        .routes(routes!(get_host_enrollment))
        .routes(routes!(approve_host_enrollment))
        .routes(routes!(deny_host_enrollment))
        .routes(routes!(remove_host))
}

/// A host asks to join (no authentication: an operator approves). Answers
/// a 64-character polling token, stored only as its SHA-256. Beyond the
/// seed, `csr` may carry a PEM PKCS#10 request: its signature is verified
/// and the approved bundle then holds no key.
#[utoipa::path(post, path = "/api/v1/enroll", tag = "host-enrollment",
    request_body = EnrollRequest,
    responses(
        (status = 202, description = "Request recorded; poll with the token", body = EnrollAccepted),
        (status = 409, description = "The machine-id or FQDN is already enrolled or has a pending request", body = EnrollError),
        (status = 422, description = "Malformed body, invalid field or unverifiable CSR", body = ErrorBody),
        (status = 429, description = "More than the allowed requests per minute from this address (seed: 1)", body = EnrollError,
            headers(("retry-after" = u64, description = "Seconds until a retry may succeed"))),
        (status = 500, description = "Database or internal error", body = EnrollError)))]
pub async fn enroll(
    _limit: Throttled<HostEnrollClass>,
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<(StatusCode, Json<EnrollAccepted>), EnrollApiError> {
    let parsed = request::parse(req)?;
    request::verify(&parsed)?;
    let accepted = request::record(&state, parsed, source).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Where an enrollment stands, always 200 and tagged by `status`:
/// `pending`, `approved` with the PKI bundle (handed out once: the token
/// is consumed), `denied`, or `not_found` (unknown, expired after 24
/// hours, or consumed).
#[utoipa::path(get, path = "/api/v1/enroll/status/{token}", tag = "host-enrollment",
    params(("token" = String, Path, description = "The 64-character polling token")),
    responses(
        (status = 200, description = "The tagged status", body = EnrollStatus),
        (status = 500, description = "Database or internal error", body = EnrollError)))]
pub async fn enroll_status(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<EnrollStatus>, EnrollApiError> {
    Ok(Json(status::poll(&state, &token).await?))
}

/// Host enrollment requests, oldest first, optionally only those in one
/// status (`pending`, `approved`, `denied`, `enrolled`, `removed`).
#[utoipa::path(get, path = "/api/v1/host-enrollments", tag = "host-enrollment",
    params(HostEnrollmentListQuery),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Requests", body = Vec<HostEnrollmentInfo>),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 422, description = "Unknown status", body = ErrorBody)))]
pub async fn list_host_enrollments(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HostEnrollmentListQuery>,
) -> Result<Json<Vec<HostEnrollmentInfo>>, ApiError> {
    Ok(Json(admin::list(&state, query.status).await?))
}

/// One host enrollment request.
#[utoipa::path(get, path = "/api/v1/host-enrollments/{id}", tag = "host-enrollment",
    params(("id" = String, Path, description = "Request id (UUID)")),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "The request", body = HostEnrollmentInfo),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody)))]
pub async fn get_host_enrollment(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<HostEnrollmentInfo>, ApiError> {
    Ok(Json(admin::get(&state, &id).await?))
}

/// Approves a pending request; the host's next poll receives its bundle
/// (certificate from the enrollment CA, `OU=host`). Audited as
/// `host.approve`.
#[utoipa::path(post, path = "/api/v1/host-enrollments/{id}/approve", tag = "host-enrollment",
    params(("id" = String, Path, description = "Request id (UUID)")),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Approved", body = HostEnrollmentInfo),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Not pending, or expired", body = ErrorBody)))]
pub async fn approve_host_enrollment(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<HostEnrollmentInfo>, ApiError> {
    Ok(Json(
        admin::approve(&state, operator.identity(), &id).await?,
    ))
}

/// Denies a pending request; the host's next poll answers `denied`.
/// Audited as `host.deny`.
#[utoipa::path(post, path = "/api/v1/host-enrollments/{id}/deny", tag = "host-enrollment",
    params(("id" = String, Path, description = "Request id (UUID)")),
    request_body(content = Option<HostDecisionRequest>, description = "Optional reason"),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Denied", body = HostEnrollmentInfo),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Not pending, or expired", body = ErrorBody),
        (status = 422, description = "Invalid reason", body = ErrorBody)))]
pub async fn deny_host_enrollment(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<HostDecisionRequest>,
) -> Result<Json<HostEnrollmentInfo>, ApiError> {
    Ok(Json(
        admin::deny(&state, operator.identity(), &id, req).await?,
    ))
}

/// Removes an approved or enrolled host: its certificate is revoked and
/// listed in the enrollment CRL (`/.well-known/pki/crl/enrollment`), and
/// its machine-id and FQDN may enroll again. Audited as `host.remove`.
#[utoipa::path(post, path = "/api/v1/host-enrollments/{id}/remove", tag = "host-enrollment",
    params(("id" = String, Path, description = "Request id (UUID)")),
    request_body(content = Option<HostDecisionRequest>, description = "Optional reason"),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Removed", body = HostEnrollmentInfo),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Neither approved nor enrolled", body = ErrorBody),
        (status = 422, description = "Invalid reason", body = ErrorBody)))]
pub async fn remove_host(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<HostDecisionRequest>,
) -> Result<Json<HostEnrollmentInfo>, ApiError> {
    Ok(Json(
        admin::remove(&state, operator.identity(), &id, req).await?,
    ))
}

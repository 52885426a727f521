//! `/api/v1/certificates…`.

use attest_proto::certs::certificates::{
    BulkCriteria, BulkReassignRequest, BulkReassignResult, BulkRenewResult, BulkRevokeRequest,
    BulkRevokeResult, CertificateInput, CertificateQuery, CertificateVersion, DeploymentList,
    DownloadQuery, ManagedCertificate, PemExport, Pkcs12Request, RenewResponse, RevokeRequest,
};
use attest_proto::certs::common::{Page, PageQuery, StatusBody};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::certificates::{self, export, issuance, revocation};
use crate::error::CertsError;
use crate::extract::{Json, OptionalJson, Path, Query};
use crate::state::CertsState;

type Result<T> = std::result::Result<T, CertsError>;

/// Routes of this module.
pub fn router() -> OpenApiRouter<CertsState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, archive))
        .routes(routes!(versions))
        .routes(routes!(renew))
        .routes(routes!(revoke))
        .routes(routes!(bulk_revoke))
        .routes(routes!(bulk_renew))
        .routes(routes!(bulk_reassign))
        .routes(routes!(export_pem))
        .routes(routes!(export_pkcs12))
        .routes(routes!(deployments))
}

/// List certificates, filtered by `status`, `environment`, `owner_id`,
/// `team_id`, `issuer_id`. Permission `cert.list` (scoped grants see
/// their profiles' and issuers' certificates).
#[utoipa::path(get, path = "/api/v1/certificates", tag = "Certificates", operation_id = "listCertificates",
    security(("bearerAuth" = [])), params(CertificateQuery),
    responses((status = 200, description = "Paginated list of certificates", body = Page<ManagedCertificate>),
              (status = 400, description = "Bad filter or page"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden")))]
pub async fn list(
    State(state): State<CertsState>,
    caller: Caller,
    Query(q): Query<CertificateQuery>,
) -> Result<JsonBody<Page<ManagedCertificate>>> {
    Ok(JsonBody(certificates::list(&state, &caller, &q).await?))
}

/// Create a managed certificate (status `Pending`; `renew` issues it).
/// Permission `cert.create`.
#[utoipa::path(post, path = "/api/v1/certificates", tag = "Certificates", operation_id = "createCertificate",
    security(("bearerAuth" = [])), request_body = CertificateInput,
    responses((status = 201, description = "Certificate created", body = ManagedCertificate),
              (status = 400, description = "Validation error"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 409, description = "Id taken")))]
pub async fn create(
    State(state): State<CertsState>,
    caller: Caller,
    Json(body): Json<CertificateInput>,
) -> Result<(StatusCode, JsonBody<ManagedCertificate>)> {
    Ok((
        StatusCode::CREATED,
        JsonBody(certificates::create(&state, &caller, &body).await?),
    ))
}

/// Get a certificate. Permission `cert.read`.
#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "Certificates", operation_id = "getCertificate",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Certificate id")),
    responses((status = 200, description = "Certificate details", body = ManagedCertificate),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found")))]
pub async fn get(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonBody<ManagedCertificate>> {
    Ok(JsonBody(certificates::get(&state, &caller, &id).await?))
}

/// Update a certificate (omitted fields unchanged). Permission `cert.edit`.
#[utoipa::path(put, path = "/api/v1/certificates/{id}", tag = "Certificates", operation_id = "updateCertificate",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Certificate id")),
    request_body = CertificateInput,
    responses((status = 200, description = "Certificate updated", body = ManagedCertificate),
              (status = 400, description = "Validation error"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found"), (status = 409, description = "Archived")))]
pub async fn update(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<CertificateInput>,
) -> Result<JsonBody<ManagedCertificate>> {
    Ok(JsonBody(
        certificates::update(&state, &caller, &id, &body).await?,
    ))
}

/// Archive a certificate. Permission `cert.edit`.
#[utoipa::path(delete, path = "/api/v1/certificates/{id}", tag = "Certificates", operation_id = "archiveCertificate",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Certificate id")),
    responses((status = 204, description = "Certificate archived"),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found")))]
pub async fn archive(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    certificates::archive(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A certificate's issued versions, newest first. Permission `cert.read`.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/versions", tag = "Certificates",
    operation_id = "listCertificateVersions", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Certificate id"), PageQuery),
    responses((status = 200, description = "Paginated list of certificate versions", body = Page<CertificateVersion>),
              (status = 400, description = "Malformed id or bad page parameters"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found")))]
pub async fn versions(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<JsonBody<Page<CertificateVersion>>> {
    Ok(JsonBody(
        certificates::versions(&state, &caller, &id, q.page, q.per_page).await?,
    ))
}

/// Issue a new version now with a key the server generates (the profile
/// decides algorithm, validity and EKUs, and is enforced); the private key
/// is in this answer only. Permission `cert.renew`.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/renew", tag = "Certificates", operation_id = "triggerRenewal",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Certificate id")),
    responses((status = 202, description = "Renewed", body = RenewResponse),
              (status = 400, description = "Profile rule broken, or issuer connector not available"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found"),
              (status = 409, description = "Revoked, archived, or the issuer/CA cannot issue")))]
pub async fn renew(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, JsonBody<RenewResponse>)> {
    Ok((
        StatusCode::ACCEPTED,
        JsonBody(issuance::renew(&state, &caller, &id).await?),
    ))
}

/// Revoke a certificate and every version it has, with an RFC 5280
/// reason (default `unspecified`). Permission `cert.revoke`.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/revoke", tag = "Certificates", operation_id = "revokeCertificate",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Certificate id")),
    request_body = RevokeRequest,
    responses((status = 200, description = "Certificate revoked", body = StatusBody),
              (status = 400, description = "Unknown reason"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found"), (status = 409, description = "Already revoked")))]
pub async fn revoke(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RevokeRequest>,
) -> Result<JsonBody<StatusBody>> {
    revocation::revoke(&state, &caller, &id, body.reason.as_deref()).await?;
    Ok(JsonBody(StatusBody {
        status: "revoked".into(),
    }))
}

/// Revoke every certificate matching the criteria (at least one).
/// Permission `cert.bulk_revoke`.
#[utoipa::path(post, path = "/api/v1/certificates/bulk-revoke", tag = "Certificates", operation_id = "bulkRevokeCertificates",
    security(("bearerAuth" = [])), request_body = BulkRevokeRequest,
    responses((status = 200, description = "Bulk revocation result", body = BulkRevokeResult),
              (status = 400, description = "No criterion, or unknown reason"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden")))]
pub async fn bulk_revoke(
    State(state): State<CertsState>,
    caller: Caller,
    Json(body): Json<BulkRevokeRequest>,
) -> Result<JsonBody<BulkRevokeResult>> {
    Ok(JsonBody(
        revocation::bulk_revoke(&state, &caller, &body).await?,
    ))
}

/// Queue a renewal for every certificate matching the criteria (marked
/// `RenewalInProgress`; completed by `renew` or an agent). Permission
/// `cert.bulk_renew`.
#[utoipa::path(post, path = "/api/v1/certificates/bulk-renew", tag = "Certificates", operation_id = "bulkRenewCertificates",
    security(("bearerAuth" = [])), request_body = BulkCriteria,
    responses((status = 200, description = "Bulk renewal result", body = BulkRenewResult),
              (status = 400, description = "No criterion"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden")))]
pub async fn bulk_renew(
    State(state): State<CertsState>,
    caller: Caller,
    Json(body): Json<BulkCriteria>,
) -> Result<JsonBody<BulkRenewResult>> {
    Ok(JsonBody(
        issuance::bulk_renew(&state, &caller, &body).await?,
    ))
}

/// Set the owner (and optionally team) of listed certificates.
/// Permission `cert.bulk_reassign`.
#[utoipa::path(post, path = "/api/v1/certificates/bulk-reassign", tag = "Certificates", operation_id = "bulkReassignCertificates",
    security(("bearerAuth" = [])), request_body = BulkReassignRequest,
    responses((status = 200, description = "Bulk reassignment result", body = BulkReassignResult),
              (status = 400, description = "No ids, or unknown owner/team"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden")))]
pub async fn bulk_reassign(
    State(state): State<CertsState>,
    caller: Caller,
    Json(body): Json<BulkReassignRequest>,
) -> Result<JsonBody<BulkReassignResult>> {
    Ok(JsonBody(
        certificates::bulk_reassign(&state, &caller, &body).await?,
    ))
}

/// The newest version's certificate and chain as PEM: JSON, or with
/// `?download=true` a `application/x-pem-file` download. Permission
/// `cert.export`.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/export/pem", tag = "Certificates", operation_id = "exportCertificatePEM",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Certificate id"), DownloadQuery),
    responses((status = 200, description = "PEM export (JSON; a file with ?download=true)",
               content((PemExport = "application/json"), (String = "application/x-pem-file"))),
              (status = 400, description = "Malformed id or query"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found or not issued yet")))]
pub async fn export_pem(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<DownloadQuery>,
) -> Result<Response> {
    let pem = export::pem(&state, &caller, &id).await?;
    if q.download.as_deref() == Some("true") {
        return Ok((
            [
                (header::CONTENT_TYPE, "application/x-pem-file".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}.pem\"", safe_name(&id)),
                ),
            ],
            pem.full_pem,
        )
            .into_response());
    }
    Ok(JsonBody(pem).into_response())
}

/// The newest version's certificate and chain as PKCS#12 (no private
/// key), MAC'd with `password` (empty when omitted). Permission
/// `cert.export`.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/export/pkcs12", tag = "Certificates", operation_id = "exportCertificatePKCS12",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Certificate id")),
    request_body = Pkcs12Request,
    responses((status = 200, description = "PKCS#12 binary", content_type = "application/x-pkcs12", body = Vec<u8>),
              (status = 400, description = "Malformed id or body"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found or not issued yet")))]
pub async fn export_pkcs12(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<Pkcs12Request>,
) -> Result<Response> {
    let p12 = export::pkcs12(&state, &caller, &id, body.password.as_deref().unwrap_or("")).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pkcs12".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.p12\"", safe_name(&id)),
            ),
        ],
        p12,
    )
        .into_response())
}

/// The deployment targets of a certificate (none until targets exist).
/// Permission `cert.read`.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/deployments", tag = "Certificates",
    operation_id = "getCertificateDeployments", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Certificate id")),
    responses((status = 200, description = "Deployment targets for this certificate", body = DeploymentList),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found")))]
pub async fn deployments(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonBody<DeploymentList>> {
    certificates::deployments(&state, &caller, &id).await?;
    Ok(JsonBody(DeploymentList {
        data: Vec::new(),
        total: 0,
    }))
}

/// `id` safe inside a quoted header parameter.
fn safe_name(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

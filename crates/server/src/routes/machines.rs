//! Machine lifecycle for operators: list, show, approve (dual control),
//! revoke, lock, unlock, approvals, import. Every route takes an
//! [`AuthenticatedOperator`], and every change is audited.

use attest_proto::error::ErrorBody;
use attest_proto::machine::{
    ApprovalRecord, ApproveRequest, ImportRequest, ImportResponse, LockRequest, MachineDetail,
    MachineListQuery, OfflineBundle, PendingApprovalResponse, RevokeRequest,
};
use attest_store::MachineFilter;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{page_window, ApiJson, ApiQuery, OptionalJson};
use crate::machines::admin::{self, ApproveOutcome};
use crate::machines::{bundle, register};
use crate::routes::audit::{DEFAULT_PER_PAGE, MAX_PER_PAGE};
use crate::state::AppState;
use attest_http::AuthenticatedOperator;

/// Header carrying the number of machines matching the list filter.
pub const TOTAL_COUNT: &str = "x-total-count";

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_machines))
        .routes(routes!(get_machine))
        .routes(routes!(approve_machine))
        .routes(routes!(list_approvals))
        .routes(routes!(revoke_machine))
        .routes(routes!(lock_machine))
        .routes(routes!(unlock_machine))
        .routes(routes!(import_machine))
        .routes(routes!(offline_bundle))
}

/// Machines, oldest registration first, optionally filtered by status and
/// role. Without `page` and `per_page` every machine is listed (as the seed
/// does), streamed as it is read; with either, one page. The total is in
/// the `X-Total-Count` header.
#[utoipa::path(get, path = "/api/v1/machines", tag = "machines",
    params(MachineListQuery),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "A page of machines", body = Vec<MachineDetail>,
            headers(("x-total-count" = i64, description = "Machines matching the filter"))),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 422, description = "Invalid filter or paging", body = ErrorBody)))]
pub async fn list_machines(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<MachineListQuery>,
) -> Result<Response, ApiError> {
    let filter = MachineFilter {
        status: query.status,
        role: query.role,
    };
    let response = if query.page.is_none() && query.per_page.is_none() {
        let total = state.store.machines().count(filter).await?;
        let stream = admin::stream_all(&state, filter).map_err(|e| {
            tracing::error!(error = %e, "machine list stream failed");
            std::io::Error::other(e.to_string())
        });
        let mut response = (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            Body::from_stream(stream),
        )
            .into_response();
        insert_total(&mut response, total);
        response
    } else {
        let (per_page, offset) =
            page_window(query.page, query.per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
        let (machines, total) = admin::list(&state, filter, per_page, offset).await?;
        let mut response = Json(machines).into_response();
        insert_total(&mut response, total);
        response
    };
    Ok(response)
}

fn insert_total(response: &mut Response, total: i64) {
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(TOTAL_COUNT), v);
    }
}

/// One machine, with every stored detail.
#[utoipa::path(get, path = "/api/v1/machines/{machine_id}", tag = "machines",
    params(("machine_id" = String, Path, description = "Machine UUID")),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "The machine", body = MachineDetail),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "Machine not found", body = ErrorBody)))]
pub async fn get_machine(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(machine_id): Path<String>,
) -> Result<Json<MachineDetail>, ApiError> {
    Ok(Json(admin::get(&state, &machine_id).await?))
}

/// Approves a `pending_approval` or `registered` machine: assigns role,
/// hostname and IP and issues a fresh config token. For a role in
/// `ITL_DUAL_CONTROL_ROLES` the first vote answers 202; a second,
/// different operator asking for the same role/hostname/IP within the
/// window completes it (200).
#[utoipa::path(post, path = "/api/v1/machines/{machine_id}/approve", tag = "machines",
    params(("machine_id" = String, Path, description = "Machine UUID")),
    request_body = ApproveRequest,
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Approved", body = MachineDetail),
        (status = 202, description = "First dual-control vote recorded", body = PendingApprovalResponse),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator, or the break-glass identity voting on a dual-controlled role", body = ErrorBody),
        (status = 404, description = "Machine not found", body = ErrorBody),
        (status = 409, description = "Not approvable in its current status", body = ErrorBody),
        (status = 422, description = "Invalid role, hostname or assigned_ip", body = ErrorBody)))]
pub async fn approve_machine(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(machine_id): Path<String>,
    ApiJson(req): ApiJson<ApproveRequest>,
) -> Result<Response, ApiError> {
    Ok(
        match admin::approve(&state, &operator.voter(), &machine_id, req).await? {
            ApproveOutcome::Approved(detail) => Json(*detail).into_response(),
            ApproveOutcome::Pending(pending) => {
                (StatusCode::ACCEPTED, Json(pending)).into_response()
            }
        },
    )
}

/// Every dual-control vote for the machine, including expired and
/// consumed ones.
#[utoipa::path(get, path = "/api/v1/machines/{machine_id}/approvals", tag = "machines",
    params(("machine_id" = String, Path, description = "Machine UUID")),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Votes, oldest first", body = Vec<ApprovalRecord>),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "Machine not found", body = ErrorBody)))]
pub async fn list_approvals(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(machine_id): Path<String>,
) -> Result<Json<Vec<ApprovalRecord>>, ApiError> {
    Ok(Json(admin::approvals(&state, &machine_id).await?))
}

/// Revokes a machine; with `wipe=true` its next attestation answers
/// `wipe`.
#[utoipa::path(post, path = "/api/v1/machines/{machine_id}/revoke", tag = "machines",
    params(("machine_id" = String, Path, description = "Machine UUID")),
    request_body = RevokeRequest,
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Revoked", body = MachineDetail),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "Machine not found", body = ErrorBody),
        (status = 409, description = "Already revoked (without a new wipe), or rejected", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody)))]
pub async fn revoke_machine(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(machine_id): Path<String>,
    OptionalJson(req): OptionalJson<RevokeRequest>,
) -> Result<Json<MachineDetail>, ApiError> {
    Ok(Json(
        admin::revoke(&state, operator.identity(), &machine_id, req).await?,
    ))
}

/// Temporarily locks a machine (reversible with unlock).
#[utoipa::path(post, path = "/api/v1/machines/{machine_id}/lock", tag = "machines",
    params(("machine_id" = String, Path, description = "Machine UUID")),
    request_body = LockRequest,
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Locked", body = MachineDetail),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "Machine not found", body = ErrorBody),
        (status = 409, description = "Not lockable in its current status", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody)))]
pub async fn lock_machine(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(machine_id): Path<String>,
    OptionalJson(req): OptionalJson<LockRequest>,
) -> Result<Json<MachineDetail>, ApiError> {
    Ok(Json(
        admin::lock(&state, operator.identity(), &machine_id, req).await?,
    ))
}

/// Restores a locked machine (to `attested`, or `registered` if it never
/// attested).
#[utoipa::path(post, path = "/api/v1/machines/{machine_id}/unlock", tag = "machines",
    params(("machine_id" = String, Path, description = "Machine UUID")),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Unlocked", body = MachineDetail),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "Machine not found", body = ErrorBody),
        (status = 409, description = "Not locked", body = ErrorBody)))]
pub async fn unlock_machine(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(machine_id): Path<String>,
) -> Result<Json<MachineDetail>, ApiError> {
    Ok(Json(
        admin::unlock(&state, operator.identity(), &machine_id).await?,
    ))
}

/// Imports a machine from an offline USB-agent receipt (idempotent).
#[utoipa::path(post, path = "/api/v1/machines/import", tag = "machines",
    request_body = ImportRequest,
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Imported", body = ImportResponse),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 409, description = "Machine locked/revoked/rejected, or machine_id taken", body = ErrorBody),
        (status = 422, description = "Invalid fingerprint, machine_id or EK material", body = ErrorBody)))]
pub async fn import_machine(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ImportRequest>,
) -> Result<Json<ImportResponse>, ApiError> {
    Ok(Json(
        register::import(&state, operator.identity(), req).await?,
    ))
}

/// Air-gap bundle: a fresh config token, the rendered MachineConfig (null
/// when the role has no base config) and a freshly issued enrollment
/// certificate and key. Audited; any earlier config token stops working.
#[utoipa::path(get, path = "/api/v1/machines/{machine_id}/offline-bundle", tag = "machines",
    params(("machine_id" = String, Path, description = "Machine UUID")),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "The bundle", body = OfflineBundle),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "Machine not found", body = ErrorBody),
        (status = 409, description = "Machine not approved, or locked/revoked/rejected", body = ErrorBody),
        (status = 503, description = "The role's base config is invalid", body = ErrorBody)))]
pub async fn offline_bundle(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
    Path(machine_id): Path<String>,
) -> Result<Json<OfflineBundle>, ApiError> {
    Ok(Json(
        bundle::offline_bundle(&state, operator.identity(), &machine_id).await?,
    ))
}

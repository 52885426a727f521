//! The audit log (operator only): `GET /api/v1/audit`,
//! `GET /api/v1/audit/verify`, and its signed checkpoints under
//! `/api/v1/audit/checkpoints` (see `docs/audit.md`).

use attest_domain::audit::AuditAction;
use attest_proto::audit::{
    AuditCheckpoint, AuditCheckpointKey, AuditCheckpointList, AuditCheckpointVerifyRequest,
    AuditEntry, AuditPageQuery, AuditVerifyResponse,
};
use attest_proto::error::ErrorBody;
use attest_store::{AuditRepo, NewAuditEntry};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::checkpoints::{self, Trigger};
use crate::error::ApiError;
use crate::extract::{page_window, ApiJson, ApiQuery};
use crate::state::AppState;
use attest_http::AuthenticatedOperator;

/// Largest page the seed allows.
pub const MAX_PER_PAGE: i64 = 200;
/// Page size when none is asked for.
pub const DEFAULT_PER_PAGE: i64 = 50;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(verify_audit))
        .routes(routes!(list_checkpoints, create_checkpoint))
        .routes(routes!(checkpoint_public_key))
        .routes(routes!(verify_against_checkpoints))
}

/// Newest-first page of the append-only audit log.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(AuditPageQuery),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Entries, newest first", body = Vec<AuditEntry>),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 422, description = "Invalid paging", body = ErrorBody)))]
pub async fn list_audit(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditPageQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let (per_page, offset) =
        page_window(query.page, query.per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    let entries = state.store.audit().list_range(per_page, offset).await?;
    Ok(Json(entries))
}

/// Re-computes every entry hash, checks the chain links, and checks the
/// chain against every stored signed checkpoint (a chain shorter than, or
/// different from, one of them is invalid).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Chain integrity report", body = AuditVerifyResponse),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody)))]
pub async fn verify_audit(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
) -> Result<Json<AuditVerifyResponse>, ApiError> {
    Ok(Json(checkpoints::verify(&state, &[]).await?))
}

/// Signed checkpoints, newest first, with the key that signs them.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit",
    params(AuditPageQuery),
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Checkpoints, newest first", body = AuditCheckpointList),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 422, description = "Invalid paging", body = ErrorBody)))]
pub async fn list_checkpoints(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditPageQuery>,
) -> Result<Json<AuditCheckpointList>, ApiError> {
    let (per_page, offset) =
        page_window(query.page, query.per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    let list = state
        .store
        .audit_checkpoints()
        .list_range(per_page, offset)
        .await?;
    Ok(Json(AuditCheckpointList {
        public_key: checkpoints::public_key(&state.checkpoint_signer),
        checkpoints: list,
    }))
}

/// Signs a checkpoint of the chain now (audited as `audit.checkpoint`; the
/// checkpoint covers that entry) and sends it to webhooks subscribed to
/// `audit.checkpoint`. Refused with 409 while the chain does not verify.
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit",
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 201, description = "The new checkpoint", body = AuditCheckpoint),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 409, description = "The chain is invalid; nothing was signed", body = ErrorBody)))]
pub async fn create_checkpoint(
    operator: AuthenticatedOperator,
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<AuditCheckpoint>), ApiError> {
    let mut entry = NewAuditEntry::new(operator.identity(), AuditAction::AuditCheckpoint);
    entry.detail = Some("checkpoint requested".into());
    let mut tx = state.store.begin_write().await?;
    AuditRepo::append(&mut tx, &entry, state.clock.now()).await?;
    tx.commit().await?;
    let checkpoint = checkpoints::take(&state, Trigger::OnDemand)
        .await?
        .ok_or_else(|| ApiError::Internal("no checkpoint of a non-empty chain".into()))?;
    Ok((StatusCode::CREATED, Json(checkpoint)))
}

/// The public key checkpoints are signed with (ECDSA P-384, SHA-384).
#[utoipa::path(get, path = "/api/v1/audit/checkpoints/public-key", tag = "audit",
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "The checkpoint signing key", body = AuditCheckpointKey),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody)))]
pub async fn checkpoint_public_key(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
) -> Json<AuditCheckpointKey> {
    Json(checkpoints::public_key(&state.checkpoint_signer))
}

/// `GET /api/v1/audit/verify`, also checking the live chain against
/// checkpoints kept outside the database. A checkpoint that is malformed
/// or not signed by this server's key is refused with 422.
#[utoipa::path(post, path = "/api/v1/audit/checkpoints/verify", tag = "audit",
    request_body = AuditCheckpointVerifyRequest,
    security(("bearer" = []), ("client_cert" = [])),
    responses(
        (status = 200, description = "Chain integrity report", body = AuditVerifyResponse),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 422, description = "A checkpoint is malformed or its signature is refused", body = ErrorBody)))]
pub async fn verify_against_checkpoints(
    _operator: AuthenticatedOperator,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AuditCheckpointVerifyRequest>,
) -> Result<Json<AuditVerifyResponse>, ApiError> {
    if body.checkpoints.is_empty() {
        return Err(ApiError::invalid(
            "too_short",
            vec!["body".into(), "checkpoints".into()],
            "at least one checkpoint is required",
        ));
    }
    Ok(Json(checkpoints::verify(&state, &body.checkpoints).await?))
}

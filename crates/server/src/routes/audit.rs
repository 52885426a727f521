//! `GET /api/v1/audit` and `GET /api/v1/audit/verify` (operator only).

use attest_proto::audit::{AuditEntry, AuditPageQuery, AuditVerifyResponse};
use attest_proto::error::ErrorBody;
use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{page_window, ApiQuery};
use crate::operator::AuthenticatedOperator;
use crate::state::AppState;

/// Largest page the seed allows.
pub const MAX_PER_PAGE: i64 = 200;
/// Page size when none is asked for.
pub const DEFAULT_PER_PAGE: i64 = 50;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(verify_audit))
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

/// Re-computes every entry hash and checks the chain links.
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
    Ok(Json(state.store.audit().verify().await?))
}

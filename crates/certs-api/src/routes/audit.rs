//! `GET /api/v1/audit` and `/api/v1/audit/{id}`: the one hash-chained log
//! (both applications' entries) in certctl's `AuditEvent` shape.

use attest_certs_domain::audit::{AUTH_PREFIXES, CATEGORIES, CLASSIFIED_PREFIXES, CONFIG_PREFIXES};
use attest_certs_domain::permissions::AUDIT_LIST;
use attest_proto::certs::audit::{AuditEvent, AuditQuery};
use attest_proto::certs::common::Page;
use attest_store::ActionFilter;
use axum::extract::State;
use axum::Json as JsonBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::event;
use crate::auth::Caller;
use crate::error::CertsError;
use crate::extract::{page, Path, Query};
use crate::state::CertsState;

/// Routes of this module.
pub fn router() -> OpenApiRouter<CertsState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(get_audit))
}

/// Audit events, newest first, optionally of one `category`.
/// Permission `audit.list`.
#[utoipa::path(get, path = "/api/v1/audit", tag = "Audit", operation_id = "listAuditEvents",
    security(("bearerAuth" = [])), params(AuditQuery),
    responses((status = 200, description = "Paginated list of audit events", body = Page<AuditEvent>),
              (status = 400, description = "Invalid category or page"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden")))]
pub async fn list_audit(
    State(state): State<CertsState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<JsonBody<Page<AuditEvent>>, CertsError> {
    caller.require(&AUDIT_LIST)?;
    let p = page(q.page, q.per_page)?;
    if let Some(c) = q.category.as_deref() {
        if !CATEGORIES.contains(&c) {
            return Err(CertsError::Invalid(
                "category must be cert_lifecycle, auth or config".into(),
            ));
        }
    }
    let filter = match q.category.as_deref() {
        None => ActionFilter::All,
        Some("auth") => ActionFilter::AnyPrefix(AUTH_PREFIXES),
        Some("config") => ActionFilter::AnyPrefix(CONFIG_PREFIXES),
        Some(_) => ActionFilter::NoPrefix(CLASSIFIED_PREFIXES),
    };
    let (entries, total) = state
        .store
        .audit()
        .list_matching(filter, p.limit(), p.offset())
        .await?;
    Ok(JsonBody(Page {
        data: entries.iter().map(event).collect(),
        total,
        page: p.page,
        per_page: p.per_page,
    }))
}

/// One audit event. Permission `audit.list`.
#[utoipa::path(get, path = "/api/v1/audit/{id}", tag = "Audit", operation_id = "getAuditEvent",
    security(("bearerAuth" = [])),
    params(("id" = i64, Path, minimum = 1, description = "Event id: its position in the chain")),
    responses((status = 200, description = "Audit event", body = AuditEvent),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "No such event")))]
pub async fn get_audit(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonBody<AuditEvent>, CertsError> {
    caller.require(&AUDIT_LIST)?;
    let id: i64 = id
        .parse()
        .map_err(|_| CertsError::Invalid("audit event ids are integers".into()))?;
    let entry = state
        .store
        .audit()
        .get(id)
        .await?
        .ok_or_else(|| CertsError::not_found("audit event"))?;
    Ok(JsonBody(event(&entry)))
}

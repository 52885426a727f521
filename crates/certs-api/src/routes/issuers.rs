//! `/api/v1/issuers…` and `/api/v1/intermediates…`.

use attest_proto::certs::common::{Page, PageQuery, StatusBody};
use attest_proto::certs::issuers::{
    CreateIntermediate, IntermediateCa, IntermediateList, Issuer, IssuerInput, RetireRequest,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::CertsError;
use crate::extract::{Json, OptionalJson, Path, Query};
use crate::issuers::{hierarchy, service};
use crate::state::CertsState;

type Result<T> = std::result::Result<T, CertsError>;

/// Routes of this module.
pub fn router() -> OpenApiRouter<CertsState> {
    OpenApiRouter::new()
        .routes(routes!(list_issuers, create_issuer))
        .routes(routes!(get_issuer, update_issuer, delete_issuer))
        .routes(routes!(test_issuer))
        .routes(routes!(list_intermediates, create_intermediate))
        .routes(routes!(get_intermediate))
        .routes(routes!(retire_intermediate))
}

/// List issuers. Permission `issuer.list`.
#[utoipa::path(get, path = "/api/v1/issuers", tag = "Issuers", operation_id = "listIssuers",
    security(("bearerAuth" = [])), params(PageQuery),
    responses((status = 200, description = "Paginated list of issuers", body = Page<Issuer>),
              (status = 400, description = "Bad page parameters"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden")))]
pub async fn list_issuers(
    State(state): State<CertsState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<JsonBody<Page<Issuer>>> {
    Ok(JsonBody(
        service::list(&state, &caller, q.page, q.per_page).await?,
    ))
}

/// Create an issuer. A `GenericCA` generates its root CA (or imports one
/// from `config.ca_cert_pem` + `config.ca_key_pem`; the key is encrypted
/// at rest and never returned). Other types are stored and answer
/// "connector not available" when used. Permission `issuer.create`.
#[utoipa::path(post, path = "/api/v1/issuers", tag = "Issuers", operation_id = "createIssuer",
    security(("bearerAuth" = [])), request_body = IssuerInput,
    responses((status = 201, description = "Issuer created", body = Issuer),
              (status = 400, description = "Validation error"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 409, description = "Id or name taken")))]
pub async fn create_issuer(
    State(state): State<CertsState>,
    caller: Caller,
    Json(body): Json<IssuerInput>,
) -> Result<(StatusCode, JsonBody<Issuer>)> {
    Ok((
        StatusCode::CREATED,
        JsonBody(service::create(&state, &caller, &body).await?),
    ))
}

/// Get an issuer. Permission `issuer.read`.
#[utoipa::path(get, path = "/api/v1/issuers/{id}", tag = "Issuers", operation_id = "getIssuer",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Issuer id")),
    responses((status = 200, description = "Issuer details", body = Issuer),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found")))]
pub async fn get_issuer(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonBody<Issuer>> {
    Ok(JsonBody(service::get(&state, &caller, &id).await?))
}

/// Update an issuer: name, enabled, and for a GenericCA
/// `config.issuing_ca_id` (which CA of its hierarchy signs). Permission
/// `issuer.edit`.
#[utoipa::path(put, path = "/api/v1/issuers/{id}", tag = "Issuers", operation_id = "updateIssuer",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Issuer id")),
    request_body = IssuerInput,
    responses((status = 200, description = "Issuer updated", body = Issuer),
              (status = 400, description = "Validation error"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found"), (status = 409, description = "Name taken or CA not active")))]
pub async fn update_issuer(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<IssuerInput>,
) -> Result<JsonBody<Issuer>> {
    Ok(JsonBody(
        service::update(&state, &caller, &id, &body).await?,
    ))
}

/// Delete an issuer no certificate refers to, with its CA hierarchy.
/// Permission `issuer.delete`.
#[utoipa::path(delete, path = "/api/v1/issuers/{id}", tag = "Issuers", operation_id = "deleteIssuer",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Issuer id")),
    responses((status = 204, description = "Issuer deleted"),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found"), (status = 409, description = "Still in use")))]
pub async fn delete_issuer(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    service::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Test an issuer: its CA key opens with the master key and the CA is
/// active and valid; other types answer "connector not available" (400).
/// Permission `issuer.edit`.
#[utoipa::path(post, path = "/api/v1/issuers/{id}/test", tag = "Issuers", operation_id = "testIssuerConnection",
    security(("bearerAuth" = [])), params(("id" = String, Path, description = "Issuer id")),
    responses((status = 200, description = "Connection successful", body = StatusBody),
              (status = 400, description = "Connector not available or CA unusable"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found"),
              (status = 409, description = "Issuer disabled, or its CA retiring or retired")))]
pub async fn test_issuer(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonBody<StatusBody>> {
    Ok(JsonBody(StatusBody {
        status: service::test(&state, &caller, &id).await?,
    }))
}

/// The CA hierarchy of an issuer, flat, roots first (render the tree from
/// `parent_ca_id`). Permission `issuer.list`.
#[utoipa::path(get, path = "/api/v1/issuers/{id}/intermediates", tag = "IntermediateCAs",
    operation_id = "listIntermediateCAs", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Issuer id")),
    responses((status = 200, description = "Flat list of CA rows", body = IntermediateList),
              (status = 400, description = "Issuer type has no local hierarchy"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Issuer not found")))]
pub async fn list_intermediates(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonBody<IntermediateList>> {
    Ok(JsonBody(IntermediateList {
        data: hierarchy::list(&state, &caller, &id).await?,
    }))
}

/// Register an operator-supplied root (no `parent_ca_id`:
/// `root_cert_pem` + `root_key_pem`) or sign a child CA under an active
/// parent (path length tightened, name constraints within the parent's).
/// Permission `issuer.create`.
#[utoipa::path(post, path = "/api/v1/issuers/{id}/intermediates", tag = "IntermediateCAs",
    operation_id = "createIntermediateCA", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Issuer id")), request_body = CreateIntermediate,
    responses((status = 201, description = "CA created", body = IntermediateCa),
              (status = 400, description = "Validation failed (RFC 5280 rules, malformed PEM)"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Issuer or parent CA not found"),
              (status = 409, description = "Parent CA not active")))]
pub async fn create_intermediate(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<CreateIntermediate>,
) -> Result<(StatusCode, JsonBody<IntermediateCa>)> {
    Ok((
        StatusCode::CREATED,
        JsonBody(hierarchy::create(&state, &caller, &id, &body).await?),
    ))
}

/// One CA of a hierarchy. Permission `issuer.read`.
#[utoipa::path(get, path = "/api/v1/intermediates/{id}", tag = "IntermediateCAs",
    operation_id = "getIntermediateCA", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "CA id")),
    responses((status = 200, description = "CA row", body = IntermediateCa),
              (status = 400, description = "Malformed id"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found")))]
pub async fn get_intermediate(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonBody<IntermediateCa>> {
    Ok(JsonBody(hierarchy::get(&state, &caller, &id).await?))
}

/// Retire a CA in two phases: `confirm: false` moves active → retiring
/// (it issues nothing new); `confirm: true` moves retiring → retired once
/// no child CA is live, it is not its issuer's issuing CA, and no
/// certificate it issued is still valid. Permission `issuer.edit`.
#[utoipa::path(post, path = "/api/v1/intermediates/{id}/retire", tag = "IntermediateCAs",
    operation_id = "retireIntermediateCA", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "CA id")), request_body = RetireRequest,
    responses((status = 200, description = "Retire transition recorded", body = IntermediateCa),
              (status = 400, description = "Malformed id or body"),
              (status = 401, description = "Unauthorized"), (status = 403, description = "Forbidden"),
              (status = 404, description = "Not found"),
              (status = 409, description = "Wrong state, or something still depends on it")))]
pub async fn retire_intermediate(
    State(state): State<CertsState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RetireRequest>,
) -> Result<JsonBody<IntermediateCa>> {
    Ok(JsonBody(
        hierarchy::retire(&state, &caller, &id, &body).await?,
    ))
}

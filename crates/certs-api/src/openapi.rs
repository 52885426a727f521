//! The application's OpenAPI document (served at its own `/openapi.json`,
//! with Swagger UI at `/docs`).

use attest_certs_domain::permissions::CATALOGUE;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

/// Document metadata; paths come from the route modules.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Certificate lifecycle API",
        description = "certctl's certificate lifecycle API (issuers, CA hierarchy, profiles, \
                       owners, teams, renewal policies, managed certificates, RBAC, audit) on \
                       the fleet-trust control plane. Paginated lists take `page` (default 1) \
                       and `per_page` (default 50, max 500) and answer `{data, total, page, \
                       per_page}`; errors are `{\"error\", \"request_id\"}`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    security(("bearerAuth" = [])),
    tags(
        (name = "Health", description = "Health and readiness probes, auth info"),
        (name = "Auth", description = "Bootstrap, API keys, roles and permissions"),
        (name = "Audit", description = "The hash-chained audit trail shared with the attestation API"),
        (name = "Teams", description = "Team management for ownership grouping"),
        (name = "Owners", description = "Certificate owner management with email routing"),
        (name = "Profiles", description = "Certificate enrollment profiles with crypto constraints"),
        (name = "RenewalPolicies", description = "Lifecycle renewal policies"),
        (name = "Issuers", description = "Issuers: GenericCA (a local CA) has a connector; other types answer connector not available"),
        (name = "IntermediateCAs", description = "The CA hierarchy of an issuer"),
        (name = "Certificates", description = "Managed certificates: inventory, versions, renewal, revocation, export")
    )
)]
pub struct CertsApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearerAuth",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "An API key (bootstrap or POST /api/v1/auth/keys), an operator's \
                             OIDC access token, or the break-glass ITL_ADMIN_TOKEN",
                        ))
                        .build(),
                ),
            );
    }
}

/// A permission id: one of the catalogue's.
fn permission_id() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A catalogue id (`GET /api/v1/auth/permissions`)"))
            .enum_values(Some(CATALOGUE.iter().map(|p| p.id)))
            .build(),
    )
}

/// `document` as served, completed with what the wire types cannot say
/// themselves: the catalogue (this crate's data, not the wire crate's)
/// lists the permission ids a grant may name, so clients see them and the
/// server's 400 for an unknown id is what the schema predicts.
pub fn finish(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    if let Some(RefOr::T(Schema::Object(grant))) = document
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("GrantPermission"))
    {
        grant
            .properties
            .insert("permission".into(), RefOr::T(permission_id()));
    }
    let revoke = document
        .paths
        .paths
        .get_mut("/api/v1/auth/roles/{id}/permissions/{perm}")
        .and_then(|item| item.delete.as_mut())
        .and_then(|op| op.parameters.as_mut());
    for param in revoke.into_iter().flatten() {
        if param.name == "perm" {
            param.schema = Some(RefOr::T(permission_id()));
        }
    }
    document
}

//! The OpenAPI 3.1 document and the interactive docs.
//!
//! Paths come from the `#[utoipa::path]` attribute on each handler, collected
//! by the routers in [`crate::routes`]; this module adds the document's
//! metadata and security schemes. `/docs` serves Swagger UI from files
//! compiled into the binary (no CDN).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Document metadata; paths are merged in by [`crate::app::build`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ITL Attestation Service",
        description = "Fleet-trust control plane: TPM-based machine registration, attestation, \
                       configuration delivery, enrollment certificates and a hash-chained audit log.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "audit", description = "Hash-chained audit log (operator)"),
        (name = "operators", description = "Operator client certificates (operator)"),
        (name = "host-enrollment", description = "Host agents joining the control plane (seed: linux-patch-api.txt); admin routes need an operator")
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "OIDC access token carrying the operator role, or the break-glass ITL_ADMIN_TOKEN",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_cert",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Client-Cert",
                "URL-encoded PEM of an enrollment-CA certificate with OU=operator, set by the TLS proxy",
            ))),
        );
        components.add_security_scheme(
            "machine",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-EK-Fingerprint",
                "Machine authentication for extension routes, as ITL_MACHINE_AUTH selects: the machine's EK fingerprint (sha256:<hex>) in X-EK-Fingerprint, or its enrollment certificate forwarded by the TLS proxy in X-Client-Cert",
            ))),
        );
    }
}

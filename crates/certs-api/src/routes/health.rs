//! `/health`, `/ready`, `/api/v1/version`, `/api/v1/auth/info`,
//! `/api/v1/auth/check`, `/api/v1/auth/me`.

use attest_proto::certs::auth::{AuthCheck, AuthInfo, AuthMe};
use attest_proto::certs::common::{StatusBody, VersionInfo};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::config::AuthType;
use crate::error::CertsError;
use crate::state::CertsState;

/// Routes of this module.
pub fn router() -> OpenApiRouter<CertsState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(version))
        .routes(routes!(auth_info))
        .routes(routes!(auth_check))
        .routes(routes!(auth_me))
}

/// Health check: the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "Health", operation_id = "getHealth", security(()),
    responses((status = 200, description = "Server is healthy", body = StatusBody)))]
pub async fn health() -> Json<StatusBody> {
    Json(StatusBody {
        status: "healthy".into(),
    })
}

/// How long readiness waits for the database.
const READINESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: 200 while the database answers (within 2 s), 503 otherwise.
#[utoipa::path(get, path = "/ready", tag = "Health", operation_id = "getReady", security(()),
    responses(
        (status = 200, description = "Server is ready", body = StatusBody),
        (status = 503, description = "Database unavailable", body = StatusBody)))]
pub async fn ready(State(state): State<CertsState>) -> (StatusCode, Json<StatusBody>) {
    match tokio::time::timeout(READINESS_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(StatusBody {
                status: "ready".into(),
            }),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            unavailable()
        }
        Err(_) => unavailable(),
    }
}

fn unavailable() -> (StatusCode, Json<StatusBody>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(StatusBody {
            status: "unavailable".into(),
        }),
    )
}

/// Build identity; served without authentication for rollout probes.
#[utoipa::path(get, path = "/api/v1/version", tag = "Health", operation_id = "getVersion",
    security(()), responses((status = 200, description = "Build identity", body = VersionInfo)))]
pub async fn version() -> Json<VersionInfo> {
    Json(VersionInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        commit: option_env!("ATTEST_GIT_COMMIT").unwrap_or_default().into(),
        modified: false,
        build_time: String::new(),
        go_version: format!("rust (edition {})", "2021"),
    })
}

/// Auth configuration, served without authentication so a client can
/// tell whether it needs credentials.
#[utoipa::path(get, path = "/api/v1/auth/info", tag = "Health", operation_id = "getAuthInfo",
    security(()), responses((status = 200, description = "Auth configuration", body = AuthInfo)))]
pub async fn auth_info(State(state): State<CertsState>) -> Json<AuthInfo> {
    Json(AuthInfo {
        auth_type: state.config.auth_type.as_str().into(),
        required: state.config.auth_type != AuthType::None,
    })
}

/// Validates credentials: 200 with the caller's roles and effective
/// permissions, 401 otherwise. No permission needed.
#[utoipa::path(get, path = "/api/v1/auth/check", tag = "Health", operation_id = "checkAuth",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Authenticated", body = AuthCheck),
              (status = 401, description = "Unauthorized")))]
pub async fn auth_check(caller: Caller) -> Result<Json<AuthCheck>, CertsError> {
    Ok(Json(AuthCheck {
        status: "authenticated".into(),
        user: caller.actor_id.clone(),
        admin: caller.is_admin(),
        actor_id: caller.actor_id.clone(),
        actor_type: caller.actor_type.into(),
        tenant_id: caller.tenant_id().into(),
        admin_via_role: caller.is_admin(),
        effective_permissions: caller.effective_permissions(),
        roles: caller.roles,
    }))
}

/// The caller's roles and effective permissions. No permission needed.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "Auth", operation_id = "getAuthMe",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Caller identity, roles and effective permissions", body = AuthMe),
              (status = 401, description = "Unauthorized")))]
pub async fn auth_me(caller: Caller) -> Result<Json<AuthMe>, CertsError> {
    Ok(Json(AuthMe {
        admin: caller.is_admin(),
        actor_id: caller.actor_id.clone(),
        actor_type: caller.actor_type.into(),
        tenant_id: caller.tenant_id().into(),
        effective_permissions: caller.effective_permissions(),
        roles: caller.roles,
    }))
}

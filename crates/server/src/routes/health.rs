//! Liveness and readiness probes.

use attest_proto::health::{HealthResponse, ReadinessResponse};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Service is up", body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".to_string(),
    })
}

/// How long readiness waits for the database. Shorter than the pool's
/// acquire timeout: while the database is down the pool keeps retrying
/// the connection until that timeout, and a probe must not hang that long.
const READINESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: 200 only while the database answers (within 2 s).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Database answers", body = ReadinessResponse),
        (status = 503, description = "Database unavailable", body = ReadinessResponse)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadinessResponse>) {
    let database = state.store.backend().to_string();
    let ping = match tokio::time::timeout(READINESS_TIMEOUT, state.store.ping()).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {READINESS_TIMEOUT:?}")),
    };
    match ping {
        Ok(()) => (
            StatusCode::OK,
            Json(ReadinessResponse {
                status: "ok".to_string(),
                database,
            }),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(ReadinessResponse {
                    status: "unavailable".to_string(),
                    database,
                }),
            )
        }
    }
}

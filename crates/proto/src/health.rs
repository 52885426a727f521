//! Liveness and readiness bodies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `GET /healthz` and of a ready `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `"ok"` when healthy.
    #[schema(example = "ok")]
    pub status: String,
}

/// Body of `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadinessResponse {
    /// `"ok"` when the database answers, `"unavailable"` otherwise.
    pub status: String,
    /// Which database backend is configured (`sqlite` or `postgres`).
    pub database: String,
}

//! The patch API (seed: `linux-patch-api.txt`): routes, the response
//! envelope, errors and rate limits. Handlers are thin: validate, call the
//! job service or the backend, wrap the answer.

pub mod envelope;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod packages;
pub mod patches;
pub mod rate_limit;
pub mod system;
pub mod ws;

use std::sync::Arc;

use attest_domain::clock::SharedClock;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};

use crate::jobs::Jobs;
use crate::packages::os_release::OsRelease;
use crate::packages::SharedBackend;
use error::ApiError;
use rate_limit::RateLimiter;

/// Version reported by `/health` and `/api/v1/system/info` (the seed's API
/// version).
pub const API_VERSION: &str = "1.0.0";

/// Every route the agent serves (method, path template): the seed's
/// endpoints. The access test walks this list; `router` must serve each.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/api/v1/system/info"),
    ("POST", "/api/v1/system/reboot"),
    ("GET", "/api/v1/packages"),
    ("POST", "/api/v1/packages"),
    ("GET", "/api/v1/packages/{name}"),
    ("PUT", "/api/v1/packages/{name}"),
    ("DELETE", "/api/v1/packages/{name}"),
    ("GET", "/api/v1/patches"),
    ("POST", "/api/v1/patches/apply"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{id}"),
    ("DELETE", "/api/v1/jobs/{id}"),
    ("POST", "/api/v1/jobs/{id}/rollback"),
    ("GET", "/api/v1/ws/jobs"),
];

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub jobs: Arc<Jobs>,
    pub backend: SharedBackend,
    pub clock: SharedClock,
    pub started: DateTime<Utc>,
    pub os: Arc<OsRelease>,
    /// Expiry of the certificate the agent serves.
    pub server_not_after: Option<DateTime<Utc>>,
}

/// The router with every route of the seed.
pub fn router(state: AppState, limiter: Arc<RateLimiter>) -> Router {
    let clock = state.clock.clone();
    Router::new()
        .route("/health", get(system::health))
        .route("/api/v1/system/info", get(system::info))
        .route("/api/v1/system/reboot", post(system::reboot))
        .route(
            "/api/v1/packages",
            get(packages::list).post(packages::install),
        )
        .route(
            "/api/v1/packages/{name}",
            get(packages::show)
                .put(packages::update)
                .delete(packages::remove),
        )
        .route("/api/v1/patches", get(patches::list))
        .route("/api/v1/patches/apply", post(patches::apply))
        .route("/api/v1/jobs", get(jobs::list))
        .route("/api/v1/jobs/{id}", get(jobs::show).delete(jobs::delete))
        .route("/api/v1/jobs/{id}/rollback", post(jobs::rollback))
        .route("/api/v1/ws/jobs", get(ws::upgrade))
        .route_layer(axum::middleware::from_fn_with_state(
            limiter,
            rate_limit::enforce,
        ))
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .layer(axum::middleware::from_fn_with_state(
            clock,
            envelope::with_context,
        ))
        .with_state(state)
}

async fn unknown_route() -> ApiError {
    ApiError::invalid("no such endpoint or method")
}

/// Parses a `limit`/`offset` pair with the seed's defaults and maximum.
pub fn page(limit: Option<u64>, offset: Option<u64>, max: u64) -> Result<(u64, u64), ApiError> {
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit > max {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {max}"
        )));
    }
    Ok((limit, offset.unwrap_or(0)))
}

/// `asc` (default) or `desc`.
pub fn descending(order: Option<&str>) -> Result<bool, ApiError> {
    match order {
        None | Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(other) => Err(ApiError::invalid(format!(
            "order must be asc or desc, not {other:?}"
        ))),
    }
}

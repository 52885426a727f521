//! The seed's rate limits, per client certificate and endpoint category,
//! in fixed one-minute windows measured by the agent's clock.

use std::collections::HashMap;
use std::sync::Mutex;

use attest_domain::clock::SharedClock;
use attest_proto::patch::ErrorCode;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::error::ApiError;
use crate::server::ConnInfo;

/// The seed's endpoint categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Health,
    PackageList,
    PackageOperations,
    PatchOperations,
    JobOperations,
    SystemOperations,
}

impl Category {
    /// Requests allowed per window (seed table).
    pub const fn limit(self) -> u32 {
        match self {
            Category::Health => 60,
            Category::PackageList => 30,
            Category::PackageOperations => 10,
            Category::PatchOperations => 5,
            Category::JobOperations => 60,
            Category::SystemOperations => 5,
        }
    }

    /// The category of a route (its matched path template and method).
    pub fn of(method: &Method, path: &str) -> Option<Self> {
        Some(match path {
            "/health" => Category::Health,
            "/api/v1/packages" | "/api/v1/packages/{name}" if method == Method::GET => {
                Category::PackageList
            }
            "/api/v1/packages" | "/api/v1/packages/{name}" => Category::PackageOperations,
            p if p.starts_with("/api/v1/patches") => Category::PatchOperations,
            p if p.starts_with("/api/v1/jobs") || p == "/api/v1/ws/jobs" => Category::JobOperations,
            p if p.starts_with("/api/v1/system") => Category::SystemOperations,
            _ => return None,
        })
    }
}

const WINDOW_SECS: i64 = 60;

/// (category, client certificate fingerprint).
type WindowKey = (Category, String);
/// (window start, requests counted in it).
type Window = (DateTime<Utc>, u32);

/// Counters per (category, client).
pub struct RateLimiter {
    clock: SharedClock,
    windows: Mutex<HashMap<WindowKey, Window>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").finish_non_exhaustive()
    }
}

impl RateLimiter {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request; `Err(seconds until the window ends)` when over.
    pub fn check(&self, category: Category, client: &str) -> Result<(), i64> {
        let now = self.clock.now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget finished windows now and then, so memory stays bounded by
        // the clients of the last minute.
        if windows.len() > 4096 {
            windows.retain(|_, (start, _)| now - *start < Duration::seconds(WINDOW_SECS));
        }
        let entry = windows
            .entry((category, client.to_owned()))
            .or_insert((now, 0));
        if now - entry.0 >= Duration::seconds(WINDOW_SECS) {
            *entry = (now, 0);
        }
        if entry.1 >= category.limit() {
            let left = (entry.0 + Duration::seconds(WINDOW_SECS) - now).num_seconds();
            return Err(left.max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Middleware: answers 429 `RATE_LIMIT_EXCEEDED` over the limit.
pub async fn enforce(
    State(limiter): State<std::sync::Arc<RateLimiter>>,
    req: Request,
    next: Next,
) -> Response {
    let category = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| Category::of(req.method(), p.as_str()));
    let client = req
        .extensions()
        .get::<ConnInfo>()
        .map(|c| c.client.fingerprint.clone())
        .unwrap_or_default();
    if let Some(category) = category {
        if let Err(retry_after) = limiter.check(category, &client) {
            return ApiError::new(ErrorCode::RateLimitExceeded, "Too many requests")
                .with_details(json!({ "retry_after_seconds": retry_after }))
                .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use attest_domain::clock::ManualClock;
    use std::sync::Arc;

    #[test]
    fn limits_per_client_and_window() {
        let clock = ManualClock::new(Utc::now());
        let limiter = RateLimiter::new(Arc::new(clock.clone()));
        for _ in 0..5 {
            limiter.check(Category::PatchOperations, "a").unwrap();
        }
        assert!(limiter.check(Category::PatchOperations, "a").is_err());
        limiter.check(Category::PatchOperations, "b").unwrap();
        limiter.check(Category::JobOperations, "a").unwrap();
        clock.advance(Duration::seconds(59));
        assert_eq!(limiter.check(Category::PatchOperations, "a"), Err(1));
        clock.advance(Duration::seconds(1));
        limiter.check(Category::PatchOperations, "a").unwrap();
    }

    #[test]
    fn categories() {
        use Category as C;
        assert_eq!(C::of(&Method::GET, "/health"), Some(C::Health));
        assert_eq!(
            C::of(&Method::GET, "/api/v1/packages/{name}"),
            Some(C::PackageList)
        );
        assert_eq!(
            C::of(&Method::PUT, "/api/v1/packages/{name}"),
            Some(C::PackageOperations)
        );
        assert_eq!(
            C::of(&Method::POST, "/api/v1/patches/apply"),
            Some(C::PatchOperations)
        );
        assert_eq!(
            C::of(&Method::GET, "/api/v1/ws/jobs"),
            Some(C::JobOperations)
        );
        assert_eq!(
            C::of(&Method::POST, "/api/v1/system/reboot"),
            Some(C::SystemOperations)
        );
    }
}

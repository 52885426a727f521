//! Per-source rate limits on the unauthenticated endpoints, agreed across
//! replicas without a database write per request.
//!
//! Three classes: `register` (endpoints that create machine records),
//! `attest` (challenge, attest, AK activation, config fetch, certificate
//! requests) and `host_enroll` (host agents asking to join, the seed's
//! 1 request/minute, refused with the seed's own 429 body). A handler names [`Throttled`] in its arguments to be limited.
//! The source is the peer address (an IPv6 client counts per /64), or the
//! client a trusted proxy names in `X-Forwarded-For`. Counts live in
//! memory ([`attest_domain::rate_limit`]) and are published to the database
//! by [`Limits::sync`] once a second, when it also reads what the other
//! replicas counted.

mod source;

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Mutex;

use attest_domain::rate_limit::{Admission, RateWindow};
use attest_store::{SourceCount, Store, StoreError};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::response::IntoResponse;

use crate::error::ApiError;
use crate::state::AppState;
pub use source::{Cidr, Sources};

/// A kind of request with its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Requests that may create machine records.
    Register,
    /// Attestation, activation, config fetch and certificate requests.
    Attest,
    /// Host enrollment requests (`POST /api/v1/enroll`).
    HostEnroll,
}

impl Class {
    /// Stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Attest => "attest",
            Self::HostEnroll => "host_enroll",
        }
    }
}

/// Requests per source and minute of each class (`0`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerMinute {
    pub register: u32,
    pub attest: u32,
    pub host_enroll: u32,
}

/// This replica's counters.
pub struct Limits {
    replica: String,
    sources: Sources,
    register: Mutex<RateWindow>,
    attest: Mutex<RateWindow>,
    host_enroll: Mutex<RateWindow>,
    /// One sync round at a time: an older round's read of the others'
    /// totals must not land after a newer one's.
    syncing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

impl Limits {
    /// Limits per source and minute of each class (`0`: unlimited).
    pub fn new(per_minute: PerMinute, sources: Sources) -> Self {
        Self {
            replica: uuid::Uuid::new_v4().to_string(),
            sources,
            register: Mutex::new(RateWindow::new(per_minute.register)),
            attest: Mutex::new(RateWindow::new(per_minute.attest)),
            host_enroll: Mutex::new(RateWindow::new(per_minute.host_enroll)),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    fn window(&self, class: Class) -> &Mutex<RateWindow> {
        match class {
            Class::Register => &self.register,
            Class::Attest => &self.attest,
            Class::HostEnroll => &self.host_enroll,
        }
    }

    /// Counts a request of `class` from `source` at `now_ms`, or refuses it.
    pub fn check(&self, class: Class, source: &str, now_ms: i64) -> Result<(), ApiError> {
        let admission = match self.window(class).lock() {
            Ok(mut window) => window.check(source, now_ms),
            // A poisoned counter must not take the endpoint down.
            Err(_) => Admission::Admit,
        };
        match admission {
            Admission::Admit => Ok(()),
            Admission::Refuse { retry_after_secs } => {
                tracing::info!(class = class.as_str(), %source, "rate limit reached");
                Err(ApiError::RateLimited {
                    message: format!(
                        "Too many {} requests from this address; retry in {retry_after_secs} s",
                        class.as_str()
                    ),
                    retry_after_secs,
                })
            }
        }
    }

    /// Publishes this replica's new counts and reads the others' totals.
    pub async fn sync(&self, store: &Store, now_ms: i64) -> Result<(), StoreError> {
        let _round = self.syncing.lock().await;
        for class in [Class::Register, Class::Attest, Class::HostEnroll] {
            let (window_start, changes, threshold) = match self.window(class).lock() {
                Ok(mut w) => {
                    if w.limit() == 0 {
                        continue;
                    }
                    let (start, changes) = w.take_changes(now_ms);
                    (start, changes, w.remote_threshold())
                }
                Err(_) => continue,
            };
            let counts: Vec<SourceCount> = changes
                .iter()
                .map(|(source, count)| SourceCount {
                    class: class.as_str().to_owned(),
                    source: source.clone(),
                    count: i64::from(*count),
                })
                .collect();
            let repo = store.rate_limits();
            if !counts.is_empty() {
                if let Err(e) = repo.publish(window_start, &self.replica, &counts).await {
                    // Taken but not stored: publish them in the next round.
                    if let Ok(mut w) = self.window(class).lock() {
                        w.unpublished(window_start, &changes);
                    }
                    return Err(e);
                }
            }
            let others = repo
                .others(window_start, &self.replica, i64::from(threshold))
                .await?;
            let totals: Vec<(String, u32)> = others
                .into_iter()
                .filter(|c| c.class == class.as_str())
                .map(|c| (c.source, u32::try_from(c.count).unwrap_or(u32::MAX)))
                .collect();
            if let Ok(mut w) = self.window(class).lock() {
                w.set_remote(window_start, &totals);
            }
        }
        Ok(())
    }
}

/// Which [`Class`] a [`Throttled`] extractor counts, and how its refusal
/// is answered.
pub trait LimitClass {
    /// The class.
    const CLASS: Class;
    /// The refusal's answer, made from the [`ApiError::RateLimited`] of
    /// [`Limits::check`] (the host enrollment endpoints answer the seed's
    /// own body, the others FastAPI's).
    type Rejection: From<ApiError> + IntoResponse;
}

/// Marker: the `register` class.
#[derive(Debug)]
pub struct RegisterClass;
impl LimitClass for RegisterClass {
    const CLASS: Class = Class::Register;
    type Rejection = ApiError;
}

/// Marker: the `attest` class.
#[derive(Debug)]
pub struct AttestClass;
impl LimitClass for AttestClass {
    const CLASS: Class = Class::Attest;
    type Rejection = ApiError;
}

/// Marker: the `host_enroll` class.
#[derive(Debug)]
pub struct HostEnrollClass;
impl LimitClass for HostEnrollClass {
    const CLASS: Class = Class::HostEnroll;
    type Rejection = crate::error::EnrollApiError;
}

/// Naming it in a handler's arguments rate-limits the route: the request
/// is counted for its source, or refused with `429` and `Retry-After`
/// before anything else is read.
#[derive(Debug)]
pub struct Throttled<C>(PhantomData<C>);

impl<C: LimitClass + Send + Sync> FromRequestParts<AppState> for Throttled<C> {
    type Rejection = C::Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if let Some(source) = peer.and_then(|ip| state.limits.sources.key(ip, &parts.headers)) {
            state
                .limits
                .check(C::CLASS, &source, state.clock.now().timestamp_millis())
                .map_err(C::Rejection::from)?;
        }
        Ok(Self(PhantomData))
    }
}

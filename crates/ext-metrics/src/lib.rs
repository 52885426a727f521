//! The `metrics` extension: `GET /metrics` in the Prometheus text format.
//!
//! Counters kept by the code paths that change them (registrations,
//! attestations, secret operations, webhook deliveries) come from the
//! host's [`Telemetry`](attest_ext::Telemetry) and are per replica, as
//! Prometheus expects. Everything that describes shared state is read from
//! the database at scrape time, so every replica reports the same value:
//! machines per status, outstanding attestation nonces ("active sessions"),
//! and audit log entries per action (the log is append-only, so the count
//! is a true counter).

mod render;
mod scrape;

use attest_ext::axum::extract::State;
use attest_ext::axum::http::header::CONTENT_TYPE;
use attest_ext::axum::response::IntoResponse;
use attest_ext::axum::routing::get;
use attest_ext::http::ApiError;
use attest_ext::utoipa_axum::router::OpenApiRouter;
use attest_ext::{Extension, ExtensionContext, Mount};

pub use render::render;
pub use scrape::{scrape, Snapshot};

/// The Prometheus text exposition format, version 0.0.4.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The extension.
#[derive(Debug, Default)]
pub struct Metrics;

impl Extension for Metrics {
    fn name(&self) -> &'static str {
        "metrics"
    }
    fn version(&self) -> &'static str {
        "1.0.0"
    }
    fn description(&self) -> &'static str {
        "Prometheus-compatible metrics exporter"
    }
    fn routes(&self, ctx: &ExtensionContext) -> Vec<Mount> {
        // Not in the OpenAPI document: it is not JSON, and scrapers do not
        // read OpenAPI.
        let router = OpenApiRouter::new()
            .route("/", get(metrics))
            .with_state(ctx.clone());
        vec![Mount::new("/metrics", router)]
    }
}

/// `GET /metrics`, no authentication (as the seed): it holds counts, not
/// identities. Restrict it at the proxy if counts are sensitive.
async fn metrics(State(ctx): State<ExtensionContext>) -> Result<impl IntoResponse, ApiError> {
    let now_ms = ctx.clock.now().timestamp_millis();
    let snapshot = scrape(&ctx.store, now_ms).await?;
    let body = render(&ctx.telemetry, &snapshot);
    Ok(([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], body))
}

//! Assembles the router: every route module, the OpenAPI document, the docs
//! UI, and the cross-cutting layers (body limit, request deadline, panic
//! guard, tracing).

use std::any::Any;
use std::time::Duration;

use attest_ext::Mount;
use attest_http::OperatorAuth;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{method_not_allowed, not_found, ApiError};
use crate::openapi::ApiDoc;
use crate::routes;
use crate::state::AppState;

/// The OpenAPI document of every route [`build`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::health::router())
        .merge(routes::audit::router())
        .merge(routes::operators::router())
        .merge(routes::registration::router())
        .merge(routes::attestation::router())
        .merge(routes::machines::router())
        .merge(routes::config::router())
        .merge(routes::enrollment::router())
        .merge(routes::extensions::router())
        .merge(routes::host_enroll::router())
}

/// The core's route paths (OpenAPI form, `{param}`), which no extension
/// prefix may cover.
pub fn core_paths() -> Vec<String> {
    let mut paths: Vec<String> = openapi().paths.paths.keys().cloned().collect();
    paths.extend([
        "/docs".to_owned(),
        "/docs/{*rest}".to_owned(),
        "/openapi.json".to_owned(),
    ]);
    paths
}

/// The complete application for `state`, with the extensions' routes
/// (prefixes already checked by the registry) nested in.
///
/// The operator authenticator is lent to every route, core and extension,
/// as a request extension: that is where `AuthenticatedOperator` finds it.
pub fn build(state: AppState, mounts: Vec<Mount>) -> Router {
    let max_body = state.settings.max_body_bytes;
    let operator_auth = OperatorAuth(state.auth.clone());
    let mut api = api_router();
    for mount in mounts {
        api = api.nest(mount.prefix, mount.router.with_state(()));
    }
    let (router, document) = api.split_for_parts();
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(operator_auth))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(from_fn_with_state(state.settings.request_timeout, deadline))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// Answers `408` (with `Retry-After`, closing the connection) when a
/// request has not produced its response head within `limit`: a client
/// sending its body too slowly, or work waiting too long, must not hold a
/// connection and a task without bound. A streamed body, once its head is
/// out, is not limited.
async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            ApiError::RequestTimeout(format!(
                "the request did not complete within {} s",
                limit.as_secs()
            ))
            .into_response()
        }
    }
}

/// The request span: method and path, with config tokens and host
/// enrollment polling tokens (bearer credentials in the path) replaced,
/// so debug logs never hold one.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let path = loggable_path(req.uri().path());
    tracing::debug_span!("request", method = %req.method(), path = %path)
}

/// `path` with a config or polling token replaced by `<token>`.
fn loggable_path(path: &str) -> &str {
    if let Some(token) = path.strip_prefix("/api/v1/config/") {
        if !token.is_empty() {
            return "/api/v1/config/<token>";
        }
    }
    match path.strip_prefix(attest_proto::host_enroll::ENROLL_STATUS_PATH) {
        Some(token) if !token.is_empty() => "/api/v1/enroll/status/<token>",
        _ => path,
    }
}

/// A handler panic is a bug: log it, answer a generic 500, keep serving.
fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Internal(format!("handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn config_tokens_are_not_logged() {
        assert_eq!(
            loggable_path("/api/v1/config/s3cr3t-token"),
            "/api/v1/config/<token>"
        );
        assert_eq!(loggable_path("/api/v1/config"), "/api/v1/config");
        assert_eq!(loggable_path("/api/v1/machines/x"), "/api/v1/machines/x");
        assert_eq!(
            loggable_path(&format!("/api/v1/enroll/status/{}", "a".repeat(64))),
            "/api/v1/enroll/status/<token>"
        );
        assert_eq!(loggable_path("/api/v1/enroll"), "/api/v1/enroll");
    }
}

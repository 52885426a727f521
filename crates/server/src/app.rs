//! Assembles the router: every route module, the OpenAPI document, the docs
//! UI, and the cross-cutting layers (body limit, panic guard, tracing).

use std::any::Any;

use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::Router;
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
}

/// The complete application for `state`.
pub fn build(state: AppState) -> Router {
    let max_body = state.settings.max_body_bytes;
    let (router, document) = api_router().split_for_parts();
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The request span: method and path, with config tokens (bearer
/// credentials in the path) replaced, so debug logs never hold one.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let path = loggable_path(req.uri().path());
    tracing::debug_span!("request", method = %req.method(), path = %path)
}

/// `path` with a config token replaced by `<token>`.
fn loggable_path(path: &str) -> &str {
    match path.strip_prefix("/api/v1/config/") {
        Some(token) if !token.is_empty() => "/api/v1/config/<token>",
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
    }
}

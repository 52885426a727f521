//! Assembles the router: the route modules, the OpenAPI document and
//! docs UI, certctl's error format, request ids, and the cross-cutting
//! limits (body size, request deadline, panic guard).

use std::any::Any;
use std::time::Duration;

use attest_http::{ApiError, ErrorFormat, REQUEST_ID_HEADER};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::CertsError;
use crate::openapi::CertsApiDoc;
use crate::routes;
use crate::state::CertsState;

fn api_router() -> OpenApiRouter<CertsState> {
    OpenApiRouter::with_openapi(CertsApiDoc::openapi())
        .merge(routes::health::router())
        .merge(routes::auth::router())
        .merge(routes::audit::router())
        .merge(routes::catalog::teams::router())
        .merge(routes::catalog::owners::router())
        .merge(routes::catalog::profiles::router())
        .merge(routes::catalog::renewal_policies::router())
        .merge(routes::issuers::router())
        .merge(routes::certificates::router())
}

/// The OpenAPI document of every route [`build`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::openapi::finish(api_router().split_for_parts().1)
}

/// The complete application for `state`.
pub fn build(state: CertsState) -> Router {
    let max_body = state.config.max_body_bytes;
    let deadline_after = state.config.request_timeout;
    let (router, document) = api_router().split_for_parts();
    let document = crate::openapi::finish(document);
    let router = router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(from_fn_with_state(deadline_after, deadline))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state);
    // Outermost last: the request id is set before the format layer reads
    // it for the error body, and copied to every response.
    ErrorFormat::Certctl
        .apply(router)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
        .layer(TraceLayer::new_for_http())
}

async fn not_found() -> CertsError {
    CertsError::NotFound("not found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("method not allowed".into())
}

/// 408 when a request has not produced its response head within `limit`.
async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout(format!(
            "the request did not complete within {} s",
            limit.as_secs()
        ))
        .into_response(),
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

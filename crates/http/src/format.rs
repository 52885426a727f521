//! The error body is the application's choice; the status is not.
//!
//! [`ApiError`](crate::ApiError) decides the status code and the headers
//! (`WWW-Authenticate`, `Retry-After`) of every failure once, for every
//! application. What the body looks like differs per API: the attestation
//! API answers FastAPI's `{"detail": …}` (seed clients parse it), the
//! certificate-lifecycle API answers certctl's
//! `{"error": "…", "request_id": "…"}` (its `ErrorResponse` schema).
//!
//! # Why a layer on the router, not a type parameter
//!
//! A router picks its format with [`ErrorFormat::apply`], a layer that
//! renders the body again, in its format, as an error response leaves the
//! router. `ApiError::into_response` cannot do it itself: it never sees the
//! request or the router, so it renders the default (FastAPI) body and
//! attaches the format-neutral [`ErrorReport`] as a response extension for
//! the layer to use. A type parameter (`ApiError<F>`, `ApiJson<T, F>`)
//! would have to appear in every handler signature, every extractor and
//! every `From` conversion, and an extension's routes would be tied to one
//! application's format at compile time; with the layer, `ApiError`, the
//! extractors and extension handlers stay one non-generic vocabulary and
//! answer in the format of whichever application mounts them. The layer
//! also sees the request, so it can quote the request's `X-Request-ID`.
//! The innermost layer wins: it takes the report, so an outer layer leaves
//! that response alone.

use attest_proto::error::{ErrorBody, ErrorDetail, LocItem};
use axum::extract::{Request, State};
use axum::http::header::{HeaderName, CONTENT_LENGTH};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// The header a request's id travels in (set by a request-id layer in
/// front of the application, or by the client).
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// How an application shapes its error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorFormat {
    /// `{"detail": "<message>"}`, or `{"detail": [{"type", "loc", "msg"}]}`
    /// for validation failures: the attestation API, as FastAPI answers.
    /// The default, so routers without a format layer (and extension
    /// routers tested on their own) answer as the attestation API does.
    #[default]
    FastApi,
    /// `{"error": "<message>", "request_id": "<id>"}`: the
    /// certificate-lifecycle API, as certctl answers (`ErrorResponse`).
    /// Validation issues become one message naming each field.
    Certctl,
}

/// What a failed request is told, before a format shapes it: the status
/// (decided by [`ApiError::status`](crate::ApiError::status)) and the
/// message or the per-field validation issues.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReport {
    /// The response status.
    pub status: StatusCode,
    /// The client-facing message (never an internal cause) or the issues.
    pub detail: ErrorDetail,
}

impl ErrorReport {
    /// The detail as one line: the message, or each issue as
    /// `loc.path: msg`, joined by `; `.
    pub fn message(&self) -> String {
        match &self.detail {
            ErrorDetail::Message(message) => message.clone(),
            ErrorDetail::Validation(issues) => issues
                .iter()
                .map(|issue| format!("{}: {}", loc_path(&issue.loc), issue.msg))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

fn loc_path(loc: &[LocItem]) -> String {
    loc.iter()
        .map(|item| match item {
            LocItem::Field(name) => name.clone(),
            LocItem::Index(index) => index.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// certctl's `ErrorResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertctlErrorBody {
    /// What went wrong, for humans.
    pub error: String,
    /// The request's id, to find it in the server's logs.
    pub request_id: String,
}

impl ErrorFormat {
    /// The response for `report` in this format: status and JSON body.
    /// `request_id` is the request's `X-Request-ID`; the certctl format
    /// makes one up when there is none (and sends it back in the header,
    /// so the client can quote it). The FastAPI format has no use for it.
    pub fn render(self, report: &ErrorReport, request_id: Option<&str>) -> Response {
        match self {
            Self::FastApi => (
                report.status,
                Json(ErrorBody {
                    detail: report.detail.clone(),
                }),
            )
                .into_response(),
            Self::Certctl => {
                let request_id =
                    request_id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
                let header = HeaderValue::from_str(&request_id).ok();
                let mut response = (
                    report.status,
                    Json(CertctlErrorBody {
                        error: report.message(),
                        request_id,
                    }),
                )
                    .into_response();
                if let Some(header) = header {
                    response.headers_mut().insert(REQUEST_ID_HEADER, header);
                }
                response
            }
        }
    }

    /// `router` with every error it answers (handler errors, extractor
    /// rejections, fallbacks added before this call) rendered in this
    /// format. Responses that are not [`ApiError`](crate::ApiError)s pass
    /// through untouched.
    pub fn apply<S>(self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router.layer(axum::middleware::from_fn_with_state(self, render_errors))
    }

    /// `response` with its body rendered again in this format, if it is
    /// an error response carrying an [`ErrorReport`]; the status and the
    /// other headers stay as [`ApiError`](crate::ApiError) set them.
    pub fn rerender(self, mut response: Response, request_id: Option<&str>) -> Response {
        let Some(report) = response.extensions_mut().remove::<ErrorReport>() else {
            return response;
        };
        let (mut parts, _) = response.into_parts();
        let (rendered, body) = self.render(&report, request_id).into_parts();
        parts.headers.remove(CONTENT_LENGTH);
        for (name, value) in &rendered.headers {
            parts.headers.insert(name.clone(), value.clone());
        }
        Response::from_parts(parts, body)
    }
}

async fn render_errors(
    State(format): State<ErrorFormat>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    format.rerender(response, request_id.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiError;
    use axum::body::{to_bytes, Body};
    use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
    use axum::routing::get;
    use tower::ServiceExt;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// A router whose one route fails with the error named by the path.
    fn failing(format: Option<ErrorFormat>) -> Router {
        let router = Router::new().route(
            "/{kind}",
            get(
                |axum::extract::Path(kind): axum::extract::Path<String>| async move {
                    Err::<(), _>(match kind.as_str() {
                        "missing" => ApiError::NotFound("Machine not found".into()),
                        "anonymous" => ApiError::Unauthorized("Not authenticated".into()),
                        "busy" => ApiError::RateLimited {
                            message: "slow down".into(),
                            retry_after_secs: 0,
                        },
                        "invalid" => ApiError::Validation(vec![
                            attest_proto::error::ValidationIssue {
                                kind: "missing".into(),
                                loc: vec!["body".into(), "items".into(), 2usize.into()],
                                msg: "Field required".into(),
                            },
                            attest_proto::error::ValidationIssue {
                                kind: "type_error".into(),
                                loc: vec!["query".into(), "page".into()],
                                msg: "invalid type".into(),
                            },
                        ]),
                        _ => ApiError::Internal("the database said something secret".into()),
                    })
                },
            ),
        );
        match format {
            Some(format) => format.apply(router),
            None => router,
        }
    }

    async fn call(router: Router, path: &str, request_id: Option<&str>) -> Response {
        let mut request = Request::builder().uri(path);
        if let Some(id) = request_id {
            request = request.header(REQUEST_ID_HEADER, id);
        }
        router
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn certctl_bodies_carry_the_message_and_the_request_id() {
        let response = call(
            failing(Some(ErrorFormat::Certctl)),
            "/missing",
            Some("req-42"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "req-42");
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"error": "Machine not found", "request_id": "req-42"})
        );
    }

    #[tokio::test]
    async fn certctl_keeps_the_status_and_headers_apierror_decided() {
        let router = failing(Some(ErrorFormat::Certctl));
        let response = call(router.clone(), "/anonymous", Some("r1")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"error": "Not authenticated", "request_id": "r1"})
        );

        let response = call(router.clone(), "/busy", Some("r2")).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(body_json(response).await["error"], "slow down");

        // The cause of an internal error is logged, never sent.
        let response = call(router, "/boom", Some("r3")).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"error": "Internal Server Error", "request_id": "r3"})
        );
    }

    #[tokio::test]
    async fn certctl_validation_names_every_field_in_one_message() {
        let response = call(failing(Some(ErrorFormat::Certctl)), "/invalid", Some("v")).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body_json(response).await,
            serde_json::json!({
                "error": "body.items.2: Field required; query.page: invalid type",
                "request_id": "v"
            })
        );
    }

    #[tokio::test]
    async fn certctl_makes_up_a_request_id_when_there_is_none() {
        let response = call(failing(Some(ErrorFormat::Certctl)), "/missing", None).await;
        let echoed = response.headers()[REQUEST_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        let body = body_json(response).await;
        assert_eq!(body["request_id"], echoed.as_str());
        assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "{echoed}");
    }

    #[tokio::test]
    async fn fastapi_is_the_default_and_its_layer_changes_nothing() {
        for format in [None, Some(ErrorFormat::FastApi)] {
            let router = failing(format);
            let response = call(router.clone(), "/missing", Some("ignored")).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            assert!(response.headers().get(REQUEST_ID_HEADER).is_none());
            let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(&bytes[..], br#"{"detail":"Machine not found"}"#);

            let response = call(router, "/invalid", None).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(
                &bytes[..],
                br#"{"detail":[{"type":"missing","loc":["body","items",2],"msg":"Field required"},{"type":"type_error","loc":["query","page"],"msg":"invalid type"}]}"#
            );
        }
    }

    #[tokio::test]
    async fn other_responses_pass_through_untouched() {
        let router = ErrorFormat::Certctl.apply(Router::new().route(
            "/teapot",
            get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }),
        ));
        let response = call(router, "/teapot", Some("t")).await;
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        assert!(response.headers().get(REQUEST_ID_HEADER).is_none());
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], b"short and stout");
    }

    #[test]
    fn the_innermost_format_wins() {
        let response = ApiError::Conflict("taken".into()).into_response();
        let certctl = ErrorFormat::Certctl.rerender(response, Some("in"));
        // The report was taken: an outer FastAPI layer leaves it alone.
        let outer = ErrorFormat::FastApi.rerender(certctl, None);
        assert_eq!(outer.status(), StatusCode::CONFLICT);
        assert_eq!(outer.headers()[REQUEST_ID_HEADER], "in");
    }
}

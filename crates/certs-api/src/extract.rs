//! Extractors answering certctl's 400 for a malformed body, query or
//! path.
//!
//! They wrap `attest-http`'s validating extractors (which never panic and
//! name the offending field) and turn their 422 into the 400 certctl's
//! clients expect, the field named in the message; axum's own path
//! rejection (plain text) becomes the same 400.

use attest_certs_domain::paging::PageRequest;
use attest_http::{ApiError, ApiJson, ApiQuery, ErrorReport};
use attest_proto::error::ErrorDetail;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::CertsError;

fn as_bad_request(err: ApiError) -> CertsError {
    match err {
        ApiError::Validation(issues) => {
            let report = ErrorReport {
                status: axum::http::StatusCode::BAD_REQUEST,
                detail: ErrorDetail::Validation(issues),
            };
            CertsError::Invalid(report.message())
        }
        ApiError::PayloadTooLarge(m) => CertsError::Invalid(m),
        other => CertsError::from(other),
    }
}

/// A JSON body (`Content-Type: application/json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = CertsError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        ApiJson::<T>::from_request(req, state)
            .await
            .map(|ApiJson(v)| Json(v))
            .map_err(as_bad_request)
    }
}

/// Query parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = CertsError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        ApiQuery::<T>::from_request_parts(parts, state)
            .await
            .map(|ApiQuery(v)| Query(v))
            .map_err(as_bad_request)
    }
}

/// Path parameters. A segment that is not percent-encoded UTF-8 is a
/// certctl 400 with the `{"error", "request_id"}` body, like every other
/// malformed request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = CertsError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|rejection| {
                // A route whose pattern and extractor disagree is a bug.
                if rejection.status().is_server_error() {
                    CertsError::Internal(rejection.body_text())
                } else {
                    CertsError::Invalid(rejection.body_text())
                }
            })
    }
}

/// Validates `page`/`per_page` (400 when out of range).
pub fn page(page: Option<i64>, per_page: Option<i64>) -> Result<PageRequest, CertsError> {
    PageRequest::new(page, per_page).map_err(|e| CertsError::Invalid(e.to_string()))
}

/// A JSON body that may be absent (`T::default()`): for bodies whose every
/// field is optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = CertsError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        attest_http::OptionalJson::<T>::from_request(req, state)
            .await
            .map(|attest_http::OptionalJson(v)| OptionalJson(v))
            .map_err(as_bad_request)
    }
}

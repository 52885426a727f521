//! The seed's response envelope: every answer, success or error, carries a
//! fresh `request_id` and the agent's `timestamp`.
//!
//! A middleware opens a request context (id and time from the agent's
//! clock) around each request; [`Reply`] and [`super::error::ApiError`]
//! read it when they turn into a response, so no handler can forget it.

use attest_domain::clock::SharedClock;
use attest_proto::patch::{ApiErrorBody, Envelope};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// Id and time of the request being answered.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub now: DateTime<Utc>,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// RFC 3339 in UTC with second precision and `Z`, as in the seed.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The current request's context (a fresh one outside a request).
pub fn current() -> RequestContext {
    CONTEXT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| RequestContext {
            request_id: uuid::Uuid::new_v4().to_string(),
            now: Utc::now(),
        })
}

/// Middleware: runs the rest of the request inside a fresh context.
pub async fn with_context(State(clock): State<SharedClock>, req: Request, next: Next) -> Response {
    let ctx = RequestContext {
        request_id: uuid::Uuid::new_v4().to_string(),
        now: clock.now(),
    };
    CONTEXT.scope(ctx, next.run(req)).await
}

/// A successful answer: `data` in the envelope with this status.
#[derive(Debug)]
pub struct Reply<T> {
    status: StatusCode,
    data: T,
}

impl<T> Reply<T> {
    /// 200 OK.
    pub fn ok(data: T) -> Self {
        Self {
            status: StatusCode::OK,
            data,
        }
    }

    /// 202 Accepted (a job was queued).
    pub fn accepted(data: T) -> Self {
        Self {
            status: StatusCode::ACCEPTED,
            data,
        }
    }
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        let ctx = current();
        let body = Envelope {
            success: true,
            request_id: ctx.request_id,
            timestamp: rfc3339(ctx.now),
            data: Some(self.data),
            error: None,
        };
        (self.status, Json(body)).into_response()
    }
}

/// The envelope of an error.
pub fn error_response(status: StatusCode, error: ApiErrorBody) -> Response {
    let ctx = current();
    let body: Envelope<()> = Envelope {
        success: false,
        request_id: ctx.request_id,
        timestamp: rfc3339(ctx.now),
        data: None,
        error: Some(error),
    };
    (status, Json(body)).into_response()
}

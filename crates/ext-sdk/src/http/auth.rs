//! Authentication extractors for extension handlers.
//!
//! Naming one in a handler's arguments is what guards the route: the
//! request is refused (401 without or with bad credentials, 403 with valid
//! credentials lacking the right) before the handler runs.

use axum::extract::FromRequestParts;
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::Method;

use crate::host::{HasContext, MachineIdentity};
use crate::http::error::ApiError;

/// An operator whose credentials were verified for this request.
#[derive(Debug, Clone)]
pub struct Operator(pub attest_auth::Operator);

impl Operator {
    /// The identity recorded in the audit log and `created_by` columns.
    pub fn identity(&self) -> &str {
        &self.0.identity
    }
}

impl<S: HasContext + Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let operator = state
            .context()
            .authenticate_operator(&parts.headers)
            .await?;
        refuse_forgeable(parts)?;
        tracing::debug!(identity = %operator.identity, method = %operator.method, "operator authenticated");
        Ok(Self(operator))
    }
}

/// A machine that proved its identity for this request (see
/// `ITL_MACHINE_AUTH`).
#[derive(Debug, Clone)]
pub struct AuthenticatedMachine(pub MachineIdentity);

impl<S: HasContext + Send + Sync> FromRequestParts<S> for AuthenticatedMachine {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let machine = state.context().authenticate_machine(&parts.headers).await?;
        tracing::debug!(machine_id = %machine.machine_id, credential = ?machine.credential, "machine authenticated");
        Ok(Self(machine))
    }
}

/// Refuses operator requests a browser could have been tricked into
/// sending with the operator's ambient credentials (a client certificate,
/// a cookie set by a proxy): any request the browser marks as coming from
/// another site (`Sec-Fetch-Site: cross-site`, or an `Origin` that is not
/// this host), and state-changing requests with a body type an HTML form or
/// a "simple" cross-origin request can carry (anything but JSON; no body
/// must come with no `Content-Type`). CLIs and scripts send neither header
/// and are unaffected.
pub fn refuse_forgeable(parts: &Parts) -> Result<(), ApiError> {
    let headers = &parts.headers;
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
    let foreign_origin = headers.get(ORIGIN).is_some_and(|origin| {
        let origin = origin.to_str().unwrap_or("null");
        let origin_host = origin
            .split_once("://")
            .map_or(origin, |(_, rest)| rest)
            .trim_end_matches('/');
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()));
        host != Some(origin_host)
    });
    if cross_site || foreign_origin {
        return Err(ApiError::Forbidden(
            "cross-site requests are refused on operator routes".into(),
        ));
    }
    let changes_state = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state {
        if let Some(content_type) = headers.get(CONTENT_TYPE) {
            if !super::extract::is_json_content_type(Some(content_type)) {
                return Err(ApiError::UnsupportedMediaType(
                    "Content-Type must be application/json (or absent for an empty body)".into(),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::builder().method(method).uri("/api/v1/x");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn browser_forgeable_requests_are_refused() {
        let host = ("host", "attest.example:9000");
        // What a CLI or curl sends.
        assert!(refuse_forgeable(&parts("POST", &[host])).is_ok());
        assert!(refuse_forgeable(&parts(
            "POST",
            &[host, ("content-type", "application/json")]
        ))
        .is_ok());
        // Same-origin browser use (the /docs UI).
        assert!(refuse_forgeable(&parts(
            "POST",
            &[
                host,
                ("origin", "https://attest.example:9000"),
                ("sec-fetch-site", "same-origin")
            ]
        ))
        .is_ok());
        for bad in [
            vec![host, ("sec-fetch-site", "cross-site")],
            vec![host, ("origin", "https://evil.example")],
            vec![host, ("origin", "null")],
            vec![host, ("content-type", "text/plain")],
            vec![host, ("content-type", "application/x-www-form-urlencoded")],
            vec![host, ("content-type", "multipart/form-data; boundary=x")],
        ] {
            assert!(refuse_forgeable(&parts("POST", &bad)).is_err(), "{bad:?}");
        }
        // A cross-site GET (the state-changing offline bundle) is refused too.
        assert!(
            refuse_forgeable(&parts("GET", &[host, ("sec-fetch-site", "cross-site")])).is_err()
        );
        assert!(refuse_forgeable(&parts("GET", &[host, ("content-type", "text/plain")])).is_ok());
    }
}

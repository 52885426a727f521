//! The operator extractor every operator route uses, core and extension.
//!
//! Naming [`AuthenticatedOperator`] in a handler's arguments is what guards
//! the route: the request is refused (401 without or with bad credentials,
//! 403 with valid credentials lacking the right, or a request a browser
//! could have been tricked into sending) before the handler runs.

use std::sync::Arc;

use attest_auth::{Operator, OperatorAuthenticator};
use axum::extract::FromRequestParts;
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::Method;

use crate::error::ApiError;

pub use attest_tls::PeerCertificates;

/// The client certificate the server's TLS listener verified for this
/// request's connection (the leaf, DER), if any: what operator and machine
/// authentication take instead of a forwarded `X-Client-Cert`.
pub fn tls_peer_certificate(parts: &Parts) -> Option<&[u8]> {
    parts
        .extensions
        .get::<PeerCertificates>()
        .and_then(PeerCertificates::leaf)
}

/// The operator authentication of an application, lent to
/// [`AuthenticatedOperator`] as a request extension: install it on the
/// assembled router with `router.layer(axum::Extension(OperatorAuth(…)))`.
///
/// A request extension rather than a bound on the router state: core
/// routes (the server's `AppState`) and every extension's routes (each
/// with a state of its own, implementing the SDK's `HasContext`) share
/// this one extractor, and Rust's orphan rule lets no crate implement a
/// trait of this crate for all of those states at once. The application
/// installs the extension once, around every route it mounts; a router
/// assembled without it refuses operator requests with a 500 (a bug in the
/// assembly, logged), never lets them through.
#[derive(Clone)]
pub struct OperatorAuth(pub Arc<OperatorAuthenticator>);

/// An operator whose credentials were verified for this request.
#[derive(Debug, Clone)]
pub struct AuthenticatedOperator(pub Operator);

impl AuthenticatedOperator {
    /// The identity recorded in the audit log and `created_by` columns.
    pub fn identity(&self) -> &str {
        &self.0.identity
    }

    /// Who votes under dual control: the identity and its principal.
    pub fn voter(&self) -> attest_domain::machine::Voter {
        attest_domain::machine::Voter {
            identity: self.0.identity.clone(),
            principal: self.0.principal.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthenticatedOperator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(OperatorAuth(auth)) = parts.extensions.get::<OperatorAuth>().cloned() else {
            return Err(ApiError::Internal(
                "operator route mounted without OperatorAuth".into(),
            ));
        };
        let operator = auth
            .authenticate_with_peer_cert(&parts.headers, tls_peer_certificate(parts))
            .await?;
        refuse_forgeable(parts)?;
        tracing::debug!(identity = %operator.identity, method = %operator.method, "operator authenticated");
        Ok(Self(operator))
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
            if !crate::extract::is_json_content_type(Some(content_type)) {
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

    async fn extract(
        auth: Option<&OperatorAuth>,
        headers: &[(&str, &str)],
    ) -> Result<AuthenticatedOperator, ApiError> {
        let mut parts = parts("POST", headers);
        if let Some(auth) = auth {
            parts.extensions.insert(auth.clone());
        }
        AuthenticatedOperator::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn the_operator_extractor_authenticates_with_the_routers_authenticator() {
        let config = attest_auth::AuthConfig {
            admin_token: Some(secrecy::SecretString::from("break-glass")),
            ..Default::default()
        };
        let clock = Arc::new(attest_domain::clock::SystemClock);
        let auth = OperatorAuth(Arc::new(
            OperatorAuthenticator::new(config, None, clock).unwrap(),
        ));
        let host = ("host", "attest.example");
        let good = ("authorization", "Bearer break-glass");

        let operator = extract(Some(&auth), &[host, good]).await.unwrap();
        assert_eq!(operator.identity(), "SYSTEM");
        assert_eq!(operator.voter().identity, "SYSTEM");

        let status = |r: Result<AuthenticatedOperator, ApiError>| r.unwrap_err().status();
        assert_eq!(status(extract(Some(&auth), &[host]).await), 401);
        let bad = ("authorization", "Bearer wrong");
        assert_eq!(status(extract(Some(&auth), &[host, bad]).await), 401);
        // Valid credentials on a forgeable request are still refused.
        let form = ("content-type", "text/plain");
        assert_eq!(status(extract(Some(&auth), &[host, good, form]).await), 415);
        // A router assembled without the authenticator fails closed.
        assert_eq!(status(extract(None, &[host, good]).await), 500);
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

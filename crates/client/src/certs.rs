//! The certificate-lifecycle API (certctl's, served by `attestation
//! serve` on its own listener): [`CertsClient`] on the wire types of
//! [`attest_proto::certs`], failing with one [`CertsClientError`].
//!
//! A client of its own rather than more methods on [`crate::Client`]: it
//! is another listener (another base URL, its own CA), other credentials
//! (API keys besides operator tokens) and another error body
//! (`{"error", "request_id"}` instead of `{"detail"}`).

use std::time::Instant;

use attest_proto::certs::audit::{AuditEvent, AuditQuery};
use attest_proto::certs::auth::{
    ActorKeyList, AuthInfo, AuthMe, BootstrapRequest, CreateKey, MintedKey, RoleList,
};
use attest_proto::certs::catalog::{
    CertificateProfile, Owner, OwnerInput, ProfileInput, RenewalPolicy, RenewalPolicyCreateRequest,
    RenewalPolicyUpdateRequest, Team, TeamInput,
};
use attest_proto::certs::certificates::{
    CertificateInput, CertificateQuery, CertificateVersion, ManagedCertificate, PemExport,
    Pkcs12Request, RenewResponse, RevokeRequest,
};
use attest_proto::certs::common::{Page, PageQuery, StatusBody};
use attest_proto::certs::issuers::{
    CreateIntermediate, IntermediateCa, IntermediateList, Issuer, IssuerInput, RetireRequest,
};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::error_chain;
use crate::{render_detail, segment, Response};

/// The header certctl answers every request's id in (also in error
/// bodies).
const REQUEST_ID_HEADER: &str = "x-request-id";

/// Why a call to the certificate-lifecycle API failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertsClientError {
    /// The server answered with a non-2xx status.
    #[error("HTTP {status}: {}", described(error, request_id.as_deref()))]
    Status {
        /// The HTTP status code.
        status: u16,
        /// certctl's `error` (or, from something in front of the server,
        /// its body rendered for humans).
        error: String,
        /// certctl's `request_id` (or the `X-Request-ID` header), to find
        /// the request in the server's logs.
        request_id: Option<String>,
        /// The body as received.
        body: String,
    },
    /// No answer: connection refused, TLS, DNS, timeout, or the body could
    /// not be read. Every cause in the chain is spelled out.
    #[error("{0}")]
    Transport(String),
    /// A 2xx answer whose body is not the expected JSON.
    #[error("the answer is not the expected JSON: {0}")]
    Decode(String),
}

/// certctl's `ErrorResponse`, as far as the client reads it.
#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    request_id: Option<String>,
}

/// `error (request_id …)`: the message with the id an operator quotes
/// when asking what happened.
fn described(error: &str, request_id: Option<&str>) -> String {
    match request_id {
        Some(id) if !id.is_empty() => format!("{error} (request_id {id})"),
        _ => error.to_owned(),
    }
}

impl CertsClientError {
    /// An error from a non-2xx status, its body and its `X-Request-ID`.
    pub fn from_status(status: u16, body: String, header_request_id: Option<String>) -> Self {
        let (error, request_id) = match serde_json::from_str::<ErrorResponse>(&body) {
            Ok(parsed) => (
                parsed.error,
                parsed
                    .request_id
                    .filter(|id| !id.is_empty())
                    .or(header_request_id),
            ),
            // A proxy's page or another API's shape: shown as it came.
            Err(_) => (render_detail(&body), header_request_id),
        };
        CertsClientError::Status {
            status,
            error,
            request_id,
            body,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CertsClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's message and request id (`error (request_id …)`), or
    /// the failure's description.
    pub fn message(&self) -> String {
        match self {
            CertsClientError::Status {
                error, request_id, ..
            } => described(error, request_id.as_deref()),
            other => other.to_string(),
        }
    }
}

impl From<reqwest::Error> for CertsClientError {
    fn from(err: reqwest::Error) -> Self {
        CertsClientError::Transport(error_chain(&err))
    }
}

/// A resource of the catalogue around certificates, all served alike
/// (`GET/POST {PATH}`, `GET/PUT/DELETE {PATH}/{id}`).
pub trait CatalogResource: DeserializeOwned {
    /// What `POST` takes.
    type Create: Serialize;
    /// What `PUT` takes.
    type Update: Serialize;
    /// The collection's path, e.g. `/api/v1/teams`.
    const PATH: &'static str;
}

impl CatalogResource for Team {
    type Create = TeamInput;
    type Update = TeamInput;
    const PATH: &'static str = "/api/v1/teams";
}

impl CatalogResource for Owner {
    type Create = OwnerInput;
    type Update = OwnerInput;
    const PATH: &'static str = "/api/v1/owners";
}

impl CatalogResource for CertificateProfile {
    type Create = ProfileInput;
    type Update = ProfileInput;
    const PATH: &'static str = "/api/v1/profiles";
}

impl CatalogResource for RenewalPolicy {
    type Create = RenewalPolicyCreateRequest;
    type Update = RenewalPolicyUpdateRequest;
    const PATH: &'static str = "/api/v1/renewal-policies";
}

/// One certificate-lifecycle listener, as one caller. Cheap to clone (the
/// connection pool is shared).
#[derive(Clone)]
pub struct CertsClient {
    base: String,
    http: reqwest::Client,
    bearer: Option<String>,
}

impl std::fmt::Debug for CertsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertsClient")
            .field("base", &self.base)
            .field("bearer", &self.bearer.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

type Result<T> = std::result::Result<T, CertsClientError>;

impl CertsClient {
    /// A client for `base` (e.g. `https://127.0.0.1:8443`; a trailing `/`
    /// is dropped) over `http`, sending no credentials (the bootstrap and
    /// the public probes need none).
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            bearer: None,
        }
    }

    /// The same listener and pool, sending `Authorization: Bearer token`:
    /// an API key, an operator's OIDC access token or the break-glass
    /// token.
    #[must_use]
    pub fn with_bearer(&self, token: impl Into<String>) -> Self {
        Self {
            base: self.base.clone(),
            http: self.http.clone(),
            bearer: Some(token.into()),
        }
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.bearer {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Response<T>> {
        typed(text(self.request(Method::GET, path)).await?)
    }

    async fn get_query<Q: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<Response<T>> {
        typed(text(self.request(Method::GET, path).query(query)).await?)
    }

    async fn with_body<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<Response<T>> {
        typed(text(self.request(method, path).json(body)).await?)
    }

    // --- auth -----------------------------------------------------------

    /// `GET /api/v1/auth/info`: whether credentials are needed.
    pub async fn auth_info(&self) -> Result<Response<AuthInfo>> {
        self.get("/api/v1/auth/info").await
    }

    /// `GET /api/v1/auth/me`: who the credentials are, with roles and
    /// effective permissions.
    pub async fn auth_me(&self) -> Result<Response<AuthMe>> {
        self.get("/api/v1/auth/me").await
    }

    /// `POST /api/v1/auth/bootstrap`: the first administrator's key from
    /// the one-shot token. The answer (and its `raw`) holds the key value,
    /// shown this once.
    pub async fn bootstrap(&self, body: &BootstrapRequest) -> Result<Response<MintedKey>> {
        self.with_body(Method::POST, "/api/v1/auth/bootstrap", body)
            .await
    }

    /// `GET /api/v1/auth/keys`: actors holding roles.
    pub async fn keys(&self) -> Result<Response<ActorKeyList>> {
        self.get("/api/v1/auth/keys").await
    }

    /// `POST /api/v1/auth/keys`: a key for a new actor; the answer holds
    /// the key value, shown this once.
    pub async fn create_key(&self, body: &CreateKey) -> Result<Response<MintedKey>> {
        self.with_body(Method::POST, "/api/v1/auth/keys", body)
            .await
    }

    /// `DELETE /api/v1/auth/keys/{id}` (`ak-…`): stops authenticating at
    /// once.
    pub async fn revoke_key(&self, id: &str) -> Result<Response<()>> {
        text(self.request(
            Method::DELETE,
            &format!("/api/v1/auth/keys/{}", segment(id)),
        ))
        .await
    }

    /// `GET /api/v1/auth/roles`.
    pub async fn roles(&self) -> Result<Response<RoleList>> {
        self.get("/api/v1/auth/roles").await
    }

    // --- issuers and their CA hierarchy ---------------------------------

    /// `GET /api/v1/issuers`.
    pub async fn issuers(&self, query: &PageQuery) -> Result<Response<Page<Issuer>>> {
        self.get_query("/api/v1/issuers", query).await
    }

    /// `GET /api/v1/issuers/{id}`.
    pub async fn issuer(&self, id: &str) -> Result<Response<Issuer>> {
        self.get(&format!("/api/v1/issuers/{}", segment(id))).await
    }

    /// `POST /api/v1/issuers`: a `GenericCA` generates its root, or
    /// imports `config.ca_cert_pem` + `config.ca_key_pem`.
    pub async fn create_issuer(&self, body: &IssuerInput) -> Result<Response<Issuer>> {
        self.with_body(Method::POST, "/api/v1/issuers", body).await
    }

    /// `GET /api/v1/issuers/{id}/intermediates`: the hierarchy, flat,
    /// roots first.
    pub async fn intermediates(&self, issuer_id: &str) -> Result<Response<IntermediateList>> {
        self.get(&format!(
            "/api/v1/issuers/{}/intermediates",
            segment(issuer_id)
        ))
        .await
    }

    /// `POST /api/v1/issuers/{id}/intermediates`.
    pub async fn create_intermediate(
        &self,
        issuer_id: &str,
        body: &CreateIntermediate,
    ) -> Result<Response<IntermediateCa>> {
        self.with_body(
            Method::POST,
            &format!("/api/v1/issuers/{}/intermediates", segment(issuer_id)),
            body,
        )
        .await
    }

    /// `GET /api/v1/intermediates/{id}`.
    pub async fn intermediate(&self, id: &str) -> Result<Response<IntermediateCa>> {
        self.get(&format!("/api/v1/intermediates/{}", segment(id)))
            .await
    }

    /// `POST /api/v1/intermediates/{id}/retire`: active → retiring, or with
    /// `confirm` retiring → retired.
    pub async fn retire_intermediate(
        &self,
        id: &str,
        body: &RetireRequest,
    ) -> Result<Response<IntermediateCa>> {
        self.with_body(
            Method::POST,
            &format!("/api/v1/intermediates/{}/retire", segment(id)),
            body,
        )
        .await
    }

    // --- teams, owners, profiles, renewal policies ----------------------

    /// `GET {R::PATH}`.
    pub async fn catalog_list<R: CatalogResource>(
        &self,
        query: &PageQuery,
    ) -> Result<Response<Page<R>>> {
        self.get_query(R::PATH, query).await
    }

    /// `GET {R::PATH}/{id}`.
    pub async fn catalog_get<R: CatalogResource>(&self, id: &str) -> Result<Response<R>> {
        self.get(&format!("{}/{}", R::PATH, segment(id))).await
    }

    /// `POST {R::PATH}`.
    pub async fn catalog_create<R: CatalogResource>(
        &self,
        body: &R::Create,
    ) -> Result<Response<R>> {
        self.with_body(Method::POST, R::PATH, body).await
    }

    /// `PUT {R::PATH}/{id}`: omitted fields are left unchanged.
    pub async fn catalog_update<R: CatalogResource>(
        &self,
        id: &str,
        body: &R::Update,
    ) -> Result<Response<R>> {
        self.with_body(Method::PUT, &format!("{}/{}", R::PATH, segment(id)), body)
            .await
    }

    /// `DELETE {R::PATH}/{id}`: refused (409) while something refers to
    /// it.
    pub async fn catalog_delete<R: CatalogResource>(&self, id: &str) -> Result<Response<()>> {
        text(self.request(Method::DELETE, &format!("{}/{}", R::PATH, segment(id)))).await
    }

    // --- managed certificates -------------------------------------------

    /// `GET /api/v1/certificates` with filters.
    pub async fn certificates(
        &self,
        query: &CertificateQuery,
    ) -> Result<Response<Page<ManagedCertificate>>> {
        self.get_query("/api/v1/certificates", query).await
    }

    /// `GET /api/v1/certificates/{id}`.
    pub async fn certificate(&self, id: &str) -> Result<Response<ManagedCertificate>> {
        self.get(&cert_path(id, "")).await
    }

    /// `POST /api/v1/certificates` (status `Pending`: renewing issues it).
    pub async fn create_certificate(
        &self,
        body: &CertificateInput,
    ) -> Result<Response<ManagedCertificate>> {
        self.with_body(Method::POST, "/api/v1/certificates", body)
            .await
    }

    /// `GET /api/v1/certificates/{id}/versions`, newest first.
    pub async fn certificate_versions(
        &self,
        id: &str,
        query: &PageQuery,
    ) -> Result<Response<Page<CertificateVersion>>> {
        self.get_query(&cert_path(id, "/versions"), query).await
    }

    /// `POST /api/v1/certificates/{id}/renew`: a new version with a key
    /// the server generated. The answer (and its `raw`) holds that private
    /// key, returned this once: keep it out of logs.
    pub async fn renew_certificate(&self, id: &str) -> Result<Response<RenewResponse>> {
        typed(text(self.request(Method::POST, &cert_path(id, "/renew"))).await?)
    }

    /// `POST /api/v1/certificates/{id}/revoke`.
    pub async fn revoke_certificate(
        &self,
        id: &str,
        body: &RevokeRequest,
    ) -> Result<Response<StatusBody>> {
        self.with_body(Method::POST, &cert_path(id, "/revoke"), body)
            .await
    }

    /// `GET /api/v1/certificates/{id}/export/pem`: the newest version's
    /// leaf and chain.
    pub async fn export_pem(&self, id: &str) -> Result<Response<PemExport>> {
        self.get(&cert_path(id, "/export/pem")).await
    }

    /// `POST /api/v1/certificates/{id}/export/pkcs12`: the newest version's
    /// chain (no private key) as PKCS#12 DER, MAC'd with the password.
    pub async fn export_pkcs12(&self, id: &str, body: &Pkcs12Request) -> Result<Vec<u8>> {
        let req = self
            .request(Method::POST, &cert_path(id, "/export/pkcs12"))
            .json(body);
        Ok(exchange(req).await?.body)
    }

    // --- audit ----------------------------------------------------------

    /// `GET /api/v1/audit`, newest first.
    pub async fn audit_events(&self, query: &AuditQuery) -> Result<Response<Page<AuditEvent>>> {
        self.get_query("/api/v1/audit", query).await
    }
}

fn cert_path(id: &str, suffix: &str) -> String {
    format!("/api/v1/certificates/{}{suffix}", segment(id))
}

/// A successful answer's bytes.
struct Exchanged {
    status: u16,
    body: Vec<u8>,
    elapsed: std::time::Duration,
}

/// Sends `req` and reads the whole body; a non-2xx status is
/// [`CertsClientError::Status`].
async fn exchange(req: RequestBuilder) -> Result<Exchanged> {
    let started = Instant::now();
    let res = req.send().await?;
    let status = res.status().as_u16();
    let request_id = res
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.bytes().await?.to_vec();
    if !(200..300).contains(&status) {
        return Err(CertsClientError::from_status(
            status,
            String::from_utf8_lossy(&body).into_owned(),
            request_id,
        ));
    }
    Ok(Exchanged {
        status,
        body,
        elapsed: started.elapsed(),
    })
}

/// [`exchange`] of a textual (JSON or empty) answer.
async fn text(req: RequestBuilder) -> Result<Response<()>> {
    let done = exchange(req).await?;
    let raw = String::from_utf8(done.body)
        .map_err(|_| CertsClientError::Decode("the body is not UTF-8".into()))?;
    Ok(Response {
        status: done.status,
        total: None,
        raw,
        body: (),
        elapsed: done.elapsed,
    })
}

fn typed<T: DeserializeOwned>(res: Response<()>) -> Result<Response<T>> {
    let body =
        serde_json::from_str(&res.raw).map_err(|e| CertsClientError::Decode(e.to_string()))?;
    Ok(res.map(|()| body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certctl_errors_carry_the_message_and_the_request_id() {
        let err = CertsClientError::from_status(
            401,
            r#"{"error":"invalid API key","request_id":"req-7"}"#.into(),
            Some("header-id".into()),
        );
        assert_eq!(err.status(), Some(401));
        assert_eq!(err.message(), "invalid API key (request_id req-7)");
        assert_eq!(
            err.to_string(),
            "HTTP 401: invalid API key (request_id req-7)"
        );
        // Not certctl's shape (a proxy): the body, and the header's id.
        let err = CertsClientError::from_status(502, "Bad Gateway".into(), Some("h-1".into()));
        assert_eq!(err.message(), "Bad Gateway (request_id h-1)");
        let err = CertsClientError::from_status(500, String::new(), None);
        assert_eq!(err.message(), "(no detail)");
    }

    #[test]
    fn the_credentials_never_show_in_debug_output() {
        let client = CertsClient::new("http://x/", reqwest::Client::new()).with_bearer("sekrit");
        let debug = format!("{client:?}");
        assert!(!debug.contains("sekrit"), "{debug}");
        assert_eq!(client.base(), "http://x");
    }
}

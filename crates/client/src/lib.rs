//! Typed async client for the attestation API.
//!
//! Every method takes and returns the wire types of [`attest_proto`], the
//! same types the server (de)serialises, so a field renamed there breaks
//! the CLI, the fleet simulator and the tests at compile time rather than
//! at run time. Calls fail with one [`ClientError`]: the status and the
//! server's `{"detail"}`, a transport error, or an answer that is not the
//! expected type.
//!
//! A [`Client`] is cheap to clone (the connection pool is shared); clone it
//! with other [`Credentials`] to act as someone else.
//!
//! The certificate-lifecycle API (certctl's, on its own listener) has its
//! own [`CertsClient`] and [`CertsClientError`], in [`certs`].

mod audit;
pub mod certs;
mod error;
mod extensions;
mod hosts;
mod machines;
mod secrets;
mod webhooks;

use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use certs::{CatalogResource, CertsClient, CertsClientError};
pub use error::{render_detail, ClientError};
pub use hosts::HostListQuery;
pub use machines::{Approval, ApproveBody, ImportBody, MachineListQuery};
pub use secrets::{
    AccessInfo, AccessRequest, MachineSecretBlob, MachineSecretCreate, MachineSecretInfo,
    SharedSecretCreate, SharedSecretInfo, SharedSecretUpdate,
};
pub use webhooks::{
    DeliveryQuery, DeliveryRead, EventList, TestQueued, WebhookCreate, WebhookRead, WebhookUpdate,
};

/// Who a request is sent as.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// Nothing: a machine's own calls (register, attest, …) and public
    /// endpoints.
    #[default]
    None,
    /// `Authorization: Bearer …`: an OIDC access token or the break-glass
    /// token.
    Bearer(String),
    /// `X-EK-Fingerprint`: a machine on extension routes under the default
    /// `ITL_MACHINE_AUTH=ek-fingerprint`.
    EkFingerprint(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Bearer(_) => f.write_str("Bearer([redacted])"),
            Credentials::EkFingerprint(fp) => write!(f, "EkFingerprint({fp})"),
        }
    }
}

/// A successful answer: the typed body and what came with it.
#[derive(Debug, Clone)]
pub struct Response<T> {
    /// HTTP status (2xx).
    pub status: u16,
    /// `X-Total-Count`, when the server sent one (paged lists).
    pub total: Option<u64>,
    /// The body exactly as received: what `--output json` prints, so
    /// scripts see the server's bytes.
    pub raw: String,
    /// The body as its `attest-proto` type.
    pub body: T,
    /// From sending the request until the whole body was read.
    pub elapsed: Duration,
}

impl<T> Response<T> {
    /// The same answer with its body turned into `f(body)`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            status: self.status,
            total: self.total,
            raw: self.raw,
            body: f(self.body),
            elapsed: self.elapsed,
        }
    }

    /// The same answer carrying `body` instead (a part or a view of it).
    pub fn with_body<U>(&self, body: U) -> Response<U> {
        Response {
            status: self.status,
            total: self.total,
            raw: self.raw.clone(),
            body,
            elapsed: self.elapsed,
        }
    }
}

/// One attestation server, as one caller.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    credentials: Credentials,
}

impl Client {
    /// A client for `base` (e.g. `http://localhost:9000`; a trailing `/` is
    /// dropped) over `http`, sending no credentials.
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            credentials: Credentials::None,
        }
    }

    /// The same server and connection pool, as `credentials`.
    #[must_use]
    pub fn with_credentials(&self, credentials: Credentials) -> Self {
        Self {
            base: self.base.clone(),
            http: self.http.clone(),
            credentials,
        }
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.credentials {
            Credentials::None => req,
            Credentials::Bearer(token) => req.bearer_auth(token),
            Credentials::EkFingerprint(fp) => req.header("X-EK-Fingerprint", fp),
        }
    }

    /// `GET path` with a typed answer.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Response<T>, ClientError> {
        typed(send(self.request(Method::GET, path)).await?)
    }

    /// `GET path?query` with a typed answer.
    async fn get_query<Q: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<Response<T>, ClientError> {
        typed(send(self.request(Method::GET, path).query(query)).await?)
    }

    /// `method path` with a JSON body and a typed answer.
    async fn with_body<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<Response<T>, ClientError> {
        typed(send(self.request(method, path).json(body)).await?)
    }

    /// `method path` without a body and with a typed answer.
    async fn bodiless<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<Response<T>, ClientError> {
        typed(send(self.request(method, path)).await?)
    }

    /// `DELETE path` answered by `204 No Content`.
    async fn delete_empty(&self, path: &str) -> Result<Response<()>, ClientError> {
        send(self.request(Method::DELETE, path)).await
    }

    /// `GET path` of something that is not JSON (Prometheus `/metrics`),
    /// as text.
    pub async fn get_text(&self, path: &str) -> Result<Response<String>, ClientError> {
        let res = send(self.request(Method::GET, path)).await?;
        let text = res.raw.clone();
        Ok(res.map(|()| text))
    }
}

/// Sends `req` and reads the whole body; a non-2xx status is
/// [`ClientError::Status`].
async fn send(req: RequestBuilder) -> Result<Response<()>, ClientError> {
    let started = Instant::now();
    let res = req.send().await?;
    let status = res.status().as_u16();
    let total = res
        .headers()
        .get("x-total-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let raw = res.text().await?;
    let elapsed = started.elapsed();
    if !(200..300).contains(&status) {
        return Err(ClientError::from_status(status, raw));
    }
    Ok(Response {
        status,
        total,
        raw,
        body: (),
        elapsed,
    })
}

/// Parses the body of an answer as `T`.
fn typed<T: DeserializeOwned>(res: Response<()>) -> Result<Response<T>, ClientError> {
    let body = serde_json::from_str(&res.raw).map_err(|e| ClientError::Decode(e.to_string()))?;
    Ok(res.map(|()| body))
}

/// Percent-encodes one path segment (an id typed by a human).
fn segment(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}

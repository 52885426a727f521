//! A small HTTP client for the attestation REST API with typed errors.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use crate::error::{CliError, CliResult};

/// A successful answer: status, `X-Total-Count` if any, the raw body and
/// its JSON.
#[derive(Debug)]
pub struct ApiResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// The `X-Total-Count` header, when the server sent one.
    pub total: Option<u64>,
    /// The body exactly as received (printed by `--output json`).
    pub raw: String,
    /// The body parsed as JSON (`Null` when empty).
    pub json: Value,
}

/// Talks to one attestation server with an optional bearer token.
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// Builds a reqwest client trusting the system roots plus `ca_cert`.
pub fn http_client(ca_cert: Option<&Path>) -> CliResult<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("attestation-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120));
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).map_err(|e| {
            CliError::Usage(format!("cannot read --ca-cert {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            CliError::Usage(format!("--ca-cert {} is not PEM: {e}", path.display()))
        })?;
        if certs.is_empty() {
            return Err(CliError::Usage(format!(
                "--ca-cert {} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| CliError::Failure(format!("cannot build the HTTP client: {e}")))
}

impl ApiClient {
    /// A client for `base` (e.g. `http://localhost:9000`).
    pub fn new(base: &str, token: Option<String>, http: reqwest::Client) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// `GET path?query`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> CliResult<ApiResponse> {
        send(self.request(Method::GET, path).query(query)).await
    }

    /// `POST path` with an optional JSON body.
    pub async fn post(&self, path: &str, body: Option<&Value>) -> CliResult<ApiResponse> {
        let req = self.request(Method::POST, path);
        let req = match body {
            Some(body) => req.json(body),
            None => req,
        };
        send(req).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> CliResult<ApiResponse> {
        send(self.request(Method::PUT, path).json(body)).await
    }

    /// `DELETE path` with an optional JSON body.
    pub async fn delete(&self, path: &str, body: Option<&Value>) -> CliResult<ApiResponse> {
        let req = self.request(Method::DELETE, path);
        let req = match body {
            Some(body) => req.json(body),
            None => req,
        };
        send(req).await
    }

    /// `GET path` as a machine: no bearer token, the `X-EK-Fingerprint`
    /// header instead (the default `ITL_MACHINE_AUTH=ek-fingerprint`).
    pub async fn get_as_machine(&self, path: &str, ek_fingerprint: &str) -> CliResult<ApiResponse> {
        let req = self
            .http
            .get(format!("{}{}", self.base, path))
            .header("X-EK-Fingerprint", ek_fingerprint);
        send(req).await
    }
}

/// Sends `req`; a non-2xx status becomes [`CliError::Http`].
pub async fn send(req: RequestBuilder) -> CliResult<ApiResponse> {
    let res = req.send().await.map_err(connection_error)?;
    let status = res.status().as_u16();
    let total = res
        .headers()
        .get("x-total-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let raw = res.text().await.map_err(connection_error)?;
    if !(200..300).contains(&status) {
        return Err(CliError::from_response(status, &raw));
    }
    let json = if raw.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&raw)
            .map_err(|e| CliError::Connection(format!("the answer is not JSON: {e}")))?
    };
    Ok(ApiResponse {
        status,
        total,
        raw,
        json,
    })
}

/// A transport error, with its causes (TLS, DNS, refused) spelled out.
pub fn connection_error(err: reqwest::Error) -> CliError {
    let mut msg = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        msg.push_str(": ");
        msg.push_str(&cause.to_string());
        source = cause.source();
    }
    CliError::Connection(msg)
}

/// Percent-encodes one path segment (a machine id typed by a human).
pub fn segment(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}

//! HTTP client for `POST /schematics`.

use std::error::Error as _;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::{Customization, FactoryError};

/// Largest answer body read from the factory. Its real answers are a few
/// dozen bytes; the cap keeps a misbehaving server from filling memory.
const MAX_BODY: usize = 64 * 1024;

/// How much of an error body is kept in [`FactoryError::Status`].
const STATUS_BODY_CHARS: usize = 200;

/// Longest schematic id accepted; real ones are 64 hex digits.
const MAX_ID_LEN: usize = 128;

/// Client for one Image Factory instance. Cheap to clone (the connection
/// pool is shared). Holds no secrets: URLs with credentials are refused.
#[derive(Debug, Clone)]
pub struct FactoryClient {
    http: reqwest::Client,
    /// Parsed base, used to build URLs segment by segment (so ids and
    /// versions are percent-encoded rather than able to change the path).
    base: Url,
    /// `base` without trailing slash, as shown to operators.
    base_str: String,
    timeout: Duration,
}

#[derive(Deserialize)]
struct CreateResponse {
    id: String,
}

impl FactoryClient {
    /// `base_url` e.g. `"https://factory.talos.dev"`; a trailing slash is
    /// tolerated, a path prefix kept (for a factory behind a proxy). It must
    /// be http or https without credentials, query or fragment, else
    /// [`FactoryError::InvalidUrl`]. `timeout` bounds each whole request
    /// (connect + answer).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, FactoryError> {
        let trimmed = base_url.trim();
        let base = Url::parse(trimmed)
            .map_err(|e| FactoryError::InvalidUrl(format!("{trimmed:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(FactoryError::InvalidUrl(format!(
                "{trimmed:?}: scheme must be http or https"
            )));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(FactoryError::InvalidUrl(format!("{trimmed:?}: no host")));
        }
        // Credentials would end up in logs and error texts via the URL.
        if !base.username().is_empty() || base.password().is_some() {
            return Err(FactoryError::InvalidUrl(
                "credentials in the URL are not supported".into(),
            ));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(FactoryError::InvalidUrl(format!(
                "{trimmed:?}: must not have a query or fragment"
            )));
        }
        let base_str = base.as_str().trim_end_matches('/').to_owned();

        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirected POST becomes a GET for 301/302/303, which would
            // turn a misconfigured URL into a baffling answer; a 3xx is
            // reported as a status instead, naming the real problem.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("attest-image-factory/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                FactoryError::Unreachable(format!("cannot set up HTTP client: {}", chain(&e)))
            })?;
        Ok(Self {
            http,
            base,
            base_str,
            timeout,
        })
    }

    /// The normalised base URL, without trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_str
    }

    /// `POST {base}/schematics`; returns the schematic id. Accepts 200 or
    /// 201 (factory versions differ). Never retries: the caller decides
    /// whether a failure is worth another attempt.
    pub async fn create_schematic(&self, c: &Customization) -> Result<String, FactoryError> {
        let result = self.create_schematic_inner(c).await;
        match &result {
            Ok(id) => {
                tracing::debug!(factory = %self.base_str, schematic = %id, "schematic created")
            }
            Err(error) => tracing::warn!(
                factory = %self.base_str,
                timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                %error,
                "creating Talos Image Factory schematic failed"
            ),
        }
        result
    }

    async fn create_schematic_inner(&self, c: &Customization) -> Result<String, FactoryError> {
        let body = c.to_yaml()?;
        let url = self.url_with_segments(&["schematics"]);
        let mut response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/yaml")
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;

        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            let room = MAX_BODY.saturating_sub(bytes.len());
            if chunk.len() > room {
                bytes.extend_from_slice(&chunk[..room]);
                if status == StatusCode::OK || status == StatusCode::CREATED {
                    return Err(FactoryError::InvalidResponse(format!(
                        "answer larger than {MAX_BODY} bytes"
                    )));
                }
                break;
            }
            bytes.extend_from_slice(&chunk);
        }

        if status != StatusCode::OK && status != StatusCode::CREATED {
            let text = String::from_utf8_lossy(&bytes);
            return Err(FactoryError::Status {
                status: status.as_u16(),
                body: text.trim().chars().take(STATUS_BODY_CHARS).collect(),
            });
        }

        let parsed: CreateResponse = serde_json::from_slice(&bytes).map_err(|e| {
            FactoryError::InvalidResponse(format!("expected JSON {{\"id\": …}}: {e}"))
        })?;
        let id = parsed.id;
        let valid = !id.is_empty()
            && id.len() <= MAX_ID_LEN
            && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            let shown: String = id.chars().take(STATUS_BODY_CHARS).collect();
            return Err(FactoryError::InvalidResponse(format!(
                "schematic id {shown:?} is not 1 to {MAX_ID_LEN} letters or digits"
            )));
        }
        Ok(id)
    }

    /// `{base}/image/{id}/{talos_version}/metal-amd64.iso`. The id and
    /// version are percent-encoded as path segments, so odd input yields a
    /// URL the factory rejects rather than one pointing elsewhere.
    pub fn iso_url(&self, schematic_id: &str, talos_version: &str) -> String {
        self.url_with_segments(&["image", schematic_id, talos_version, "metal-amd64.iso"])
            .into()
    }

    fn url_with_segments(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // `path_segments_mut` only fails for cannot-be-a-base URLs, which
        // `new` excluded by requiring http(s) with a host.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }
}

/// Maps a transport failure: time-outs (including connect time-outs) to
/// [`FactoryError::Timeout`], everything else to `Unreachable` with the
/// whole cause chain, since reqwest's top-level text hides the cause
/// ("error sending request") that an operator needs ("Connection refused").
fn transport_error(e: reqwest::Error) -> FactoryError {
    if e.is_timeout() {
        FactoryError::Timeout
    } else {
        FactoryError::Unreachable(chain(&e))
    }
}

fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        // hyper and std often repeat the inner message in the outer one.
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn client(url: &str) -> Result<FactoryClient, FactoryError> {
        FactoryClient::new(url, Duration::from_secs(1))
    }

    #[test]
    fn base_url_is_normalised() {
        assert_eq!(
            client("https://factory.talos.dev").unwrap().base_url(),
            "https://factory.talos.dev"
        );
        assert_eq!(
            client("https://factory.talos.dev/").unwrap().base_url(),
            "https://factory.talos.dev"
        );
        assert_eq!(
            client(" http://proxy.example/talos-factory/ ")
                .unwrap()
                .base_url(),
            "http://proxy.example/talos-factory"
        );
    }

    #[test]
    fn bad_urls_are_rejected() {
        for bad in [
            "",
            "factory.talos.dev",
            "ftp://factory.talos.dev",
            "file:///etc/passwd",
            "https://user:pw@factory.talos.dev",
            "https://factory.talos.dev/?x=1",
            "https://factory.talos.dev/#frag",
            "mailto:a@b",
        ] {
            let err = client(bad).unwrap_err();
            assert!(matches!(err, FactoryError::InvalidUrl(_)), "{bad}: {err:?}");
        }
    }

    #[test]
    fn iso_url_keeps_prefix_and_encodes_segments() {
        let c = client("http://proxy.example/factory/").unwrap();
        assert_eq!(
            c.iso_url("abc123", "v1.9.5"),
            "http://proxy.example/factory/image/abc123/v1.9.5/metal-amd64.iso"
        );
        assert_eq!(
            c.iso_url("abc", "../x"),
            "http://proxy.example/factory/image/abc/..%2Fx/metal-amd64.iso"
        );
    }
}

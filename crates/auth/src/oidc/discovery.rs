//! OpenID Connect discovery: `{issuer}/.well-known/openid-configuration`.

use serde::Deserialize;

/// Largest discovery or JWKS document we read (Keycloak's are a few KiB).
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

/// Why the identity provider could not be consulted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("identity provider unreachable")]
    Http(#[source] reqwest::Error),
    #[error("identity provider returned HTTP {0}")]
    Status(u16),
    #[error("identity provider response too large")]
    TooLarge,
    #[error("identity provider returned an invalid document")]
    Invalid(#[source] serde_json::Error),
    #[error("discovery document is for another issuer")]
    IssuerMismatch,
    #[error("discovery document has an invalid jwks_uri")]
    BadJwksUri,
}

/// Fetches the discovery document and returns `jwks_uri`.
///
/// The document's `issuer` must equal ours (OpenID Connect Discovery 4.3),
/// so a misrouted or spoofed discovery cannot point us at foreign keys.
pub(crate) async fn jwks_uri(http: &reqwest::Client, issuer: &str) -> Result<String, FetchError> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let body = get_limited(http, &url).await?;
    let doc: DiscoveryDocument = serde_json::from_slice(&body).map_err(FetchError::Invalid)?;
    if doc.issuer.trim_end_matches('/') != issuer {
        return Err(FetchError::IssuerMismatch);
    }
    if !reqwest::Url::parse(&doc.jwks_uri).is_ok_and(|u| url_allowed(&u)) {
        return Err(FetchError::BadJwksUri);
    }
    Ok(doc.jwks_uri)
}

/// Where signing keys may be fetched from: `https`, or plain `http` only to
/// a loopback host (a local test IdP or a sidecar). Over plain HTTP anyone
/// on the path could substitute the JWKS and mint operator tokens.
pub(crate) fn url_allowed(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    match url.scheme() {
        "https" => !host.is_empty(),
        "http" => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// Redirects are followed (at most 3) only to URLs [`url_allowed`] accepts,
/// so an `https` issuer cannot be downgraded to plain HTTP by a redirect.
pub(crate) fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 3 {
            attempt.error("too many redirects")
        } else if !url_allowed(attempt.url()) {
            attempt.error("redirect to a URL that is neither https nor loopback http")
        } else {
            attempt.follow()
        }
    })
}

/// GET `url`, failing on non-2xx and on bodies over [`MAX_DOCUMENT_BYTES`].
pub(crate) async fn get_limited(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, FetchError> {
    let mut response = http
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(FetchError::Http)?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(FetchError::Http)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::url_allowed;

    fn allowed(u: &str) -> bool {
        url_allowed(&reqwest::Url::parse(u).unwrap_or_else(|e| panic!("{u}: {e}")))
    }

    #[test]
    fn only_https_or_loopback_http() {
        assert!(allowed("https://sts.itlusions.com/realms/itl"));
        assert!(allowed("http://127.0.0.1:8080/realms/itl"));
        assert!(allowed("http://127.9.9.9/x"));
        assert!(allowed("http://localhost:8080/x"));
        assert!(allowed("http://[::1]:8080/x"));
        assert!(!allowed("http://sts.itlusions.com/realms/itl"));
        assert!(!allowed("http://10.0.0.1/certs"));
        assert!(!allowed("http://localhost.evil.example/certs"));
        assert!(!allowed("http://127.0.0.1.evil.example/certs"));
        assert!(!allowed("ftp://127.0.0.1/certs"));
        assert!(!allowed("file:///etc/passwd"));
    }
}

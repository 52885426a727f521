//! The HTTP side of the CLI: the reqwest client with the operator's
//! `--ca-cert` (or `certs --ca-file`), and the typed attestation client
//! on it.

use std::path::Path;
use std::time::Duration;

use attest_client::{Client, Credentials};

use crate::error::{CliError, CliResult};

/// Builds a reqwest client trusting the system roots plus `ca_cert`.
pub fn http_client(ca_cert: Option<&Path>) -> CliResult<reqwest::Client> {
    http_client_trusting(ca_cert, "--ca-cert")
}

/// [`http_client`] trusting the PEM certificates of `ca_cert`, given as
/// option `flag` (named in errors).
pub fn http_client_trusting(ca_cert: Option<&Path>, flag: &str) -> CliResult<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("attestation-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120));
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| CliError::Usage(format!("cannot read {flag} {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| CliError::Usage(format!("{flag} {} is not PEM: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(CliError::Usage(format!(
                "{flag} {} holds no certificate",
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

/// The attestation client for `base`, sending `token` as a bearer token
/// when there is one.
pub fn api_client(base: &str, token: Option<String>, http: reqwest::Client) -> Client {
    let client = Client::new(base, http);
    match token {
        Some(token) => client.with_credentials(Credentials::Bearer(token)),
        None => client,
    }
}

/// A transport error, with its causes (TLS, DNS, refused) spelled out.
pub fn connection_error(err: reqwest::Error) -> CliError {
    attest_client::ClientError::from(err).into()
}

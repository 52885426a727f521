//! Enrollment, agent side (seed: "Enrollment Endpoints").
//!
//! `attestation-agent enroll --manager https://…` sends `POST
//! /api/v1/enroll`, polls `GET /api/v1/enroll/status/{token}` until an
//! administrator decides (24 hours at most), and on approval writes the CA,
//! the certificate and the key atomically with mode 0600, adds the manager
//! to the allow-list and leaves the patch API to start mutual TLS with them.
//!
//! Unlike the seed, the manager is never trusted blindly ([`pin`]). With
//! `--csr` the host sends a certificate request and keeps its key; the
//! manager then returns no key.

pub mod csr;
pub mod identity;
pub mod pin;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use attest_domain::clock::SharedClock;
use attest_proto::host_enroll::{
    is_well_formed_token, ApprovedBundle, EnrollAccepted, EnrollError as ErrorBody, EnrollRequest,
    EnrollStatus, ENROLLMENT_TTL_SECS, ENROLL_PATH, ENROLL_STATUS_PATH,
};
use reqwest::StatusCode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::config::AgentConfig;
use crate::fsutil::write_atomic;
use pin::{Fingerprint, ManagerVerifier, Trust};

/// Why enrollment stopped.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the manager: {0}")]
    Transport(String),
    #[error("the manager refused the enrollment request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the manager answered something this agent does not understand: {0}")]
    Protocol(String),
    #[error("enrollment was denied by an administrator")]
    Denied,
    #[error("the manager does not know this enrollment (expired, invalid or already consumed); enroll again")]
    NotFound,
    #[error("no decision within 24 hours; enroll again")]
    Expired,
    #[error("the approved certificate bundle is not usable: {0}")]
    Bundle(String),
    #[error("cannot write {0}")]
    Write(#[from] crate::fsutil::WriteError),
}

/// What `enroll` was asked to do.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// `https://host[:port]` of the manager.
    pub manager: reqwest::Url,
    pub trust: Trust,
    /// Send a CSR; keep the key on the host.
    pub csr: bool,
    pub poll_interval: Duration,
    /// Overrides of the detected identity.
    pub identity: identity::Overrides,
}

/// What was provisioned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub manager: String,
    /// The manager CA fingerprint that was trusted.
    pub manager_ca_fingerprint: String,
    pub machine_id: String,
    pub enrolled_at: String,
    /// Addresses added to the allow-list.
    pub allowlisted: Vec<IpAddr>,
    /// The key was generated here and never sent.
    pub key_generated_on_host: bool,
}

/// Where the enrollment record is kept.
pub fn state_file(config: &AgentConfig) -> PathBuf {
    config.roles.patch_api.state_dir.join("enrollment.json")
}

/// Builds the options' trust from a fingerprint, an optional CA file and
/// the TOFU flag. Exactly one way of trusting must be chosen.
pub fn trust_from(
    fingerprint: Option<&str>,
    ca_file: Option<&std::path::Path>,
    tofu: bool,
) -> Result<Trust, EnrollError> {
    match (fingerprint, tofu) {
        (Some(_), true) => Err(EnrollError::Usage(
            "give either --ca-fingerprint or --trust-on-first-use, not both".into(),
        )),
        (None, false) => Err(EnrollError::Usage(
            "the manager's CA must be pinned: pass --ca-fingerprint sha256:… (or, knowingly, --trust-on-first-use)".into(),
        )),
        (None, true) => Ok(Trust::TrustOnFirstUse),
        (Some(fp), false) => {
            let fingerprint = Fingerprint::parse(fp).map_err(EnrollError::Usage)?;
            let ca = match ca_file {
                None => None,
                Some(path) => {
                    let ca = CertificateDer::from_pem_file(path)
                        .map_err(|e| EnrollError::Usage(format!("{}: {e}", path.display())))?;
                    let actual = Fingerprint::of(&ca);
                    if actual != fingerprint {
                        return Err(EnrollError::Usage(format!(
                            "{} has fingerprint {actual}, not the pinned {fingerprint}",
                            path.display()
                        )));
                    }
                    Some(ca)
                }
            };
            Ok(Trust::Pinned { fingerprint, ca })
        }
    }
}

/// The HTTPS client pinned to the manager.
fn client(verifier: Arc<ManagerVerifier>) -> Result<reqwest::Client, EnrollError> {
    let provider = crate::tls::provider();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EnrollError::Transport(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| EnrollError::Transport(e.to_string()))
}

/// The full error chain of a transport error (reqwest hides the TLS cause
/// in its sources), without the URL: a status URL carries the polling token.
fn chain(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let e = e.without_url();
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn error_message(resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    serde_json::from_str::<ErrorBody>(&text)
        .map(|b| b.error)
        .unwrap_or_else(|_| text.chars().take(200).collect())
}

/// Runs the whole enrollment: ask, wait for the decision, provision.
pub async fn enroll(
    options: &EnrollOptions,
    config: &AgentConfig,
    clock: SharedClock,
) -> Result<Enrollment, EnrollError> {
    if options.manager.scheme() != "https" {
        return Err(EnrollError::Usage(
            "the manager URL must be https://".into(),
        ));
    }
    let deadline = clock.now() + chrono::Duration::seconds(ENROLLMENT_TTL_SECS as i64);
    let verifier = Arc::new(ManagerVerifier::new(
        crate::tls::provider(),
        options.trust.clone(),
    ));
    let session = Session {
        http: client(verifier.clone())?,
        options,
        clock: &clock,
        deadline,
    };

    let facts = identity::detect(config, &options.identity, &options.manager).await?;
    let key = if options.csr {
        Some(csr::generate(&facts.fqdn, facts.ip_address)?)
    } else {
        None
    };
    let request = EnrollRequest {
        machine_id: facts.machine_id.clone(),
        fqdn: facts.fqdn.clone(),
        ip_address: facts.ip_address.to_string(),
        os_details: facts.os_details.clone(),
        csr: key.as_ref().map(|k| k.csr_pem.clone()),
    };
    let token = session.ask(&request).await?;
    let pinned = verifier
        .pinned()
        .ok_or_else(|| EnrollError::Protocol("no manager certificate was verified".into()))?;
    println!(
        "enrollment requested; waiting for an administrator to approve it (manager CA {pinned})"
    );
    let bundle = session.decision(&token).await?;
    provision(
        options,
        config,
        &clock,
        &bundle,
        key.as_ref(),
        facts.machine_id,
        pinned.to_string(),
    )
    .await
}

/// One enrollment's connection to the manager and its 24-hour limit.
struct Session<'a> {
    http: reqwest::Client,
    options: &'a EnrollOptions,
    clock: &'a SharedClock,
    deadline: chrono::DateTime<chrono::Utc>,
}

impl Session<'_> {
    /// Sends the request until the manager accepts it. A rate limit or a
    /// server error is waited out; anything else is final.
    async fn ask(&self, request: &EnrollRequest) -> Result<SecretString, EnrollError> {
        let url = self
            .options
            .manager
            .join(ENROLL_PATH)
            .map_err(|e| EnrollError::Usage(e.to_string()))?;
        loop {
            match self.http.post(url.clone()).json(request).send().await {
                Ok(resp)
                    if resp.status() == StatusCode::ACCEPTED || resp.status() == StatusCode::OK =>
                {
                    let body: EnrollAccepted = resp.json().await.map_err(|e| {
                        EnrollError::Protocol(format!("enroll answer: {}", e.without_url()))
                    })?;
                    if !is_well_formed_token(&body.polling_token) {
                        return Err(EnrollError::Protocol(
                            "polling token is not 64 alphanumerics".into(),
                        ));
                    }
                    return Ok(SecretString::from(body.polling_token));
                }
                Ok(resp)
                    if resp.status() == StatusCode::TOO_MANY_REQUESTS
                        || resp.status().is_server_error() =>
                {
                    let status = resp.status();
                    tracing::warn!(%status, "manager asked to retry the enrollment request: {}", error_message(resp).await);
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    return Err(EnrollError::Refused {
                        status,
                        message: error_message(resp).await,
                    });
                }
                // The first contact decides whether the manager is who we
                // pinned: a TLS failure here is final.
                Err(e) => return Err(EnrollError::Transport(chain(e))),
            }
            if self.clock.now() >= self.deadline {
                return Err(EnrollError::Expired);
            }
            tokio::time::sleep(
                self.options
                    .poll_interval
                    .max(Duration::from_secs(1))
                    .min(Duration::from_secs(60)),
            )
            .await;
        }
    }

    /// Polls the status until an administrator decides or the 24-hour
    /// limit passes; the approved bundle.
    async fn decision(&self, token: &SecretString) -> Result<ApprovedBundle, EnrollError> {
        let status_url = self
            .options
            .manager
            .join(&format!("{ENROLL_STATUS_PATH}{}", token.expose_secret()))
            .map_err(|e| EnrollError::Usage(e.to_string()))?;
        loop {
            if self.clock.now() >= self.deadline {
                return Err(EnrollError::Expired);
            }
            tokio::time::sleep(self.options.poll_interval).await;
            let resp = match self.http.get(status_url.clone()).send().await {
                Ok(resp) => resp,
                Err(e) => {
                    // Never log the URL: the token is in it.
                    tracing::warn!(error = %chain(e), "status poll failed; retrying");
                    continue;
                }
            };
            if resp.status() != StatusCode::OK {
                tracing::warn!(status = %resp.status(), "status poll answered an error; retrying");
                continue;
            }
            let status: EnrollStatus = resp.json().await.map_err(|e| {
                EnrollError::Protocol(format!("status answer: {}", e.without_url()))
            })?;
            match status {
                EnrollStatus::Pending => tracing::debug!("enrollment pending"),
                EnrollStatus::Approved(bundle) => return Ok(bundle),
                EnrollStatus::Denied => return Err(EnrollError::Denied),
                EnrollStatus::NotFound => return Err(EnrollError::NotFound),
            }
        }
    }
}

/// Writes the key, certificate and CA (0600, atomically), lets the
/// manager through the allow-list and records the enrollment.
async fn provision(
    options: &EnrollOptions,
    config: &AgentConfig,
    clock: &SharedClock,
    bundle: &ApprovedBundle,
    key: Option<&csr::HostKey>,
    machine_id: String,
    manager_ca_fingerprint: String,
) -> Result<Enrollment, EnrollError> {
    let files = check_bundle(bundle, key, clock)?;
    let tls = &config.roles.patch_api.tls;
    write_atomic(&tls.key_file, files.key_pem.as_bytes(), 0o600)?;
    write_atomic(&tls.cert_file, bundle.server_crt.as_bytes(), 0o600)?;
    write_atomic(&tls.ca_file, bundle.ca_crt.as_bytes(), 0o600)?;
    let manager_addrs = manager_addresses(&options.manager).await;
    crate::allowlist::append_entries(&config.roles.patch_api.allowlist_file, &manager_addrs)?;
    let enrollment = Enrollment {
        manager: options.manager.to_string(),
        manager_ca_fingerprint,
        machine_id,
        enrolled_at: crate::api::envelope::rfc3339(clock.now()),
        allowlisted: manager_addrs,
        key_generated_on_host: key.is_some(),
    };
    let record =
        serde_json::to_vec_pretty(&enrollment).map_err(|e| EnrollError::Protocol(e.to_string()))?;
    write_atomic(&state_file(config), &record, 0o600)?;
    Ok(enrollment)
}

/// The manager's addresses, to let it through the allow-list.
async fn manager_addresses(url: &reqwest::Url) -> Vec<IpAddr> {
    let Some(host) = url.host_str() else {
        return Vec::new();
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let mut addrs: Vec<IpAddr> = tokio::net::lookup_host((host, port))
        .await
        .map(|it| it.map(|a| a.ip()).collect())
        .unwrap_or_default();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// The key to write, after the bundle was checked.
#[derive(Debug)]
pub struct Files {
    /// PEM private key (ours, or the manager's).
    pub key_pem: zeroize::Zeroizing<String>,
}

/// Checks the approved bundle before anything is written: parseable PEM,
/// the certificate valid now, issued by the CA's subject, and matching the
/// key (ours when we sent a CSR, the manager's otherwise). Public for the
/// fuzz target: the bundle is untrusted input.
pub fn check_bundle(
    bundle: &ApprovedBundle,
    key: Option<&csr::HostKey>,
    clock: &SharedClock,
) -> Result<Files, EnrollError> {
    use der::{Decode, Encode};
    let bad = |m: String| EnrollError::Bundle(m);
    let cas = CertificateDer::pem_slice_iter(bundle.ca_crt.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("ca_crt: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(bundle.server_crt.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("server_crt: {e}")))?;
    let (Some(_), Some(leaf)) = (cas.first(), certs.first()) else {
        return Err(bad(
            "ca_crt and server_crt must each hold a certificate".into()
        ));
    };
    let leaf =
        x509_cert::Certificate::from_der(leaf).map_err(|e| bad(format!("server_crt: {e}")))?;
    let now = clock.now().timestamp();
    let tbs = &leaf.tbs_certificate;
    let from = tbs.validity.not_before.to_unix_duration().as_secs() as i64;
    let to = tbs.validity.not_after.to_unix_duration().as_secs() as i64;
    // Five minutes of tolerance for a manager whose clock runs ahead.
    if now + 300 < from || now > to {
        return Err(bad("server_crt is not valid now".into()));
    }
    let issuers = cas
        .iter()
        .chain(certs.iter().skip(1))
        .filter_map(|c| x509_cert::Certificate::from_der(c).ok())
        .map(|c| c.tbs_certificate.subject)
        .collect::<Vec<_>>();
    if !issuers.contains(&tbs.issuer) {
        return Err(bad("server_crt was not issued by ca_crt".into()));
    }
    let leaf_spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| bad(e.to_string()))?;
    let key_pem = match (key, &bundle.server_key) {
        (Some(ours), theirs) => {
            if theirs.is_some() {
                tracing::warn!("the manager returned a key although a CSR was sent; it is ignored");
            }
            if ours.spki_der != leaf_spki {
                return Err(bad(
                    "server_crt does not certify the key this host generated".into(),
                ));
            }
            ours.key_pem.clone()
        }
        (None, Some(theirs)) => {
            let der = PrivateKeyDer::from_pem_slice(theirs.as_bytes())
                .map_err(|e| bad(format!("server_key: {e}")))?;
            let signing = crate::tls::provider()
                .key_provider
                .load_private_key(der)
                .map_err(|e| bad(format!("server_key: {e}")))?;
            let public = signing
                .public_key()
                .ok_or_else(|| bad("server_key: public key unavailable".into()))?;
            if public.as_ref() != leaf_spki.as_slice() {
                return Err(bad("server_key does not match server_crt".into()));
            }
            zeroize::Zeroizing::new(theirs.clone())
        }
        (None, None) => return Err(bad("the manager returned no server_key".into())),
    };
    Ok(Files { key_pem })
}

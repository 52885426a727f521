//! Machine authentication for extension routes, as `ITL_MACHINE_AUTH`
//! selects: the seed's `X-EK-Fingerprint` header, or the machine's
//! enrollment certificate, verified by the server's own TLS listener or
//! forwarded by a TLS proxy in `X-Client-Cert`.

use std::sync::Arc;

use attest_domain::machine::validate::{parse_prefixed_ek_fingerprint, FingerprintAlg};
use attest_domain::machine::MachineStatus;
use attest_ext::http::ApiError;
use attest_ext::{MachineAuthenticator, MachineCredential, MachineIdentity};
use attest_pki::EnrollmentCa;
use attest_store::{HolderProof, MachineRecord, MachineRepo, Store};
use axum::http::HeaderMap;
use futures::future::BoxFuture;

use crate::config::extensions::MachineAuthMode;

/// The seed's header naming the machine's EK fingerprint.
pub const EK_FINGERPRINT_HEADER: &str = "x-ek-fingerprint";

/// The server's [`MachineAuthenticator`].
pub struct HostMachineAuth {
    pub store: Store,
    pub ca: Arc<EnrollmentCa>,
    pub mode: MachineAuthMode,
    /// Whether `X-Client-Cert` is trusted at all (`ITL_CLIENT_CERT_HEADER`).
    pub client_cert_header: bool,
    /// Whether the listener verifies client certificates
    /// (`ITL_TLS_CLIENT_AUTH` optional or required): the verified one then
    /// comes before the header.
    pub tls_client_certs: bool,
}

impl MachineAuthenticator for HostMachineAuth {
    fn authenticate<'a>(
        &'a self,
        headers: &'a HeaderMap,
        tls_peer_cert: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<MachineIdentity, ApiError>> {
        Box::pin(async move {
            let (record, credential) = match self.mode {
                MachineAuthMode::EkFingerprint => (
                    self.by_fingerprint(headers).await?,
                    MachineCredential::EkFingerprint,
                ),
                MachineAuthMode::EnrollmentCert => (
                    self.by_certificate(headers, tls_peer_cert).await?,
                    MachineCredential::EnrollmentCertificate,
                ),
            };
            // Only a machine whose attestation stands: not one waiting for
            // approval, approved but not yet attested, locked, or revoked.
            if record.status != MachineStatus::Attested {
                return Err(ApiError::Forbidden(format!(
                    "machine is {}; only attested machines authenticate here",
                    record.status.as_str()
                )));
            }
            Ok(MachineIdentity {
                machine_id: record.machine_id,
                ek_fingerprint: record.ek_fingerprint,
                status: record.status.as_str().to_owned(),
                hostname: record.hostname,
                role: record.role.as_str().to_owned(),
                credential,
            })
        })
    }
}

impl HostMachineAuth {
    async fn by_fingerprint(&self, headers: &HeaderMap) -> Result<MachineRecord, ApiError> {
        let raw = headers
            .get(EK_FINGERPRINT_HEADER)
            .ok_or_else(|| ApiError::Unauthorized("X-EK-Fingerprint header required".into()))?
            .to_str()
            .map_err(|_| ApiError::Unauthorized("malformed X-EK-Fingerprint header".into()))?;
        let fp = parse_prefixed_ek_fingerprint(raw.trim())
            .map_err(|e| ApiError::Unauthorized(format!("X-EK-Fingerprint: {e}")))?;
        let (sha256, sha384) = match fp.alg() {
            FingerprintAlg::Sha256 => (Some(fp.as_str()), None),
            FingerprintAlg::Sha384 => (None, Some(fp.as_str())),
        };
        let mut conn = self.store.acquire().await?;
        MachineRepo::find_by_ek(&mut conn, sha256, sha384)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown EK fingerprint".into()))
    }

    /// The certificate verified by the TLS handshake when there is one,
    /// else the forwarded header when it is trusted; checked against the
    /// enrollment CA either way (the listener may trust other CAs).
    async fn by_certificate(
        &self,
        headers: &HeaderMap,
        tls_peer_cert: Option<&[u8]>,
    ) -> Result<MachineRecord, ApiError> {
        let verified = match tls_peer_cert.filter(|_| self.tls_client_certs) {
            Some(der) => self.ca.verify_client_cert_der(der),
            None if self.client_cert_header => {
                let pem = attest_auth::forwarded_cert_pem(headers)?.ok_or_else(|| {
                    ApiError::Unauthorized("a machine enrollment certificate is required".into())
                })?;
                self.ca.verify_client_cert(&pem)
            }
            None => {
                return Err(ApiError::Unauthorized(
                    "a machine enrollment certificate is required (a client certificate in \
                     the TLS handshake)"
                        .into(),
                ))
            }
        };
        let cert =
            verified.map_err(|_| ApiError::Unauthorized("machine certificate not valid".into()))?;
        let issued = self
            .store
            .enrollment_certs()
            .get(&cert.serial_hex)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("machine certificate unknown".into()))?;
        if issued.revoked_at.is_some() {
            return Err(ApiError::Unauthorized("machine certificate revoked".into()));
        }
        // A certificate issued on the (public) EK material alone proves
        // nothing about who holds it; only one whose requester signed a
        // server nonce with the machine's AK, or one an operator issued
        // into an offline bundle, authenticates a machine here.
        if HolderProof::parse(issued.holder_proof.as_deref()) == HolderProof::Ek {
            return Err(ApiError::Forbidden(
                "machine certificate was issued without proof of TPM possession; request a new \
                 one with nonce_id and nonce_signature (the activated AK signing a challenge)"
                    .into(),
            ));
        }
        let machine_id = issued.machine_id.ok_or_else(|| {
            ApiError::Forbidden("certificate is not a machine certificate".into())
        })?;
        self.store
            .machines()
            .get(&machine_id)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("machine certificate unknown".into()))
    }
}

//! Operator client certificates: verified by the server's own TLS
//! handshake (DER, from the listener), or forwarded by a TLS proxy in
//! `X-Client-Cert`.
//!
//! Either way the certificate is verified again against the enrollment CA
//! and looked up in the issuance records: the listener's (or the proxy's)
//! verification may trust other CAs, and a misconfigured proxy that
//! forwards any certificate must not turn into a bypass. The header itself
//! is only trustworthy if the proxy strips it from client requests: that is
//! why it is off unless configured. A certificate verified by the server's
//! own handshake takes precedence over the header.

use attest_pki::{EnrollmentCa, PkiError};
use futures::future::BoxFuture;
use http::HeaderMap;

use crate::{AuthError, AuthMethod, Operator};

/// Header carrying the URL-encoded client certificate PEM.
pub const CLIENT_CERT_HEADER: &str = "x-client-cert";

/// The OU an operator certificate must carry.
pub const OPERATOR_OU: &str = "operator";

/// Upper bound on the header, to keep parsing cheap (a P-384 or RSA-4096
/// certificate PEM is 1-3 KiB; URL-encoding at most triples that).
const MAX_HEADER_LEN: usize = 16 * 1024;

/// What a verified certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertIdentity {
    /// Subject CN.
    pub cn: String,
    /// Subject OU, if any.
    pub ou: Option<String>,
    /// Serial number, lowercase hex: the key of its issuance record.
    pub serial_hex: String,
}

/// What the server recorded when it issued an operator certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorCertRecord {
    /// Revoked certificates authenticate no one.
    pub revoked: bool,
    /// The principal of the login that obtained it; `None` for certificates
    /// issued before principals were recorded (they never vote).
    pub principal: Option<String>,
}

/// The issuance records of operator certificates: a signature by the CA is
/// not enough, the certificate must be on record and not revoked.
pub trait OperatorCertRegistry: Send + Sync {
    /// The record of the operator certificate `serial_hex`, `None` if this
    /// server never issued one with that serial; `Err` with a log-safe
    /// reason when the records cannot be read.
    fn lookup<'a>(
        &'a self,
        serial_hex: &'a str,
    ) -> BoxFuture<'a, Result<Option<OperatorCertRecord>, String>>;
}

/// Verifies a client certificate PEM. Implemented for [`EnrollmentCa`];
/// a trait so tests and future CAs can plug in.
pub trait ClientCertVerifier: Send + Sync {
    /// Returns the identity, or a client-safe reason why the certificate is
    /// not acceptable (not issued by the CA, bad signature, expired, revoked…).
    fn verify(&self, cert_pem: &str) -> Result<ClientCertIdentity, String>;

    /// [`ClientCertVerifier::verify`] for a DER certificate (the leaf a TLS
    /// handshake verified).
    fn verify_der(&self, cert_der: &[u8]) -> Result<ClientCertIdentity, String>;
}

impl ClientCertVerifier for EnrollmentCa {
    fn verify(&self, cert_pem: &str) -> Result<ClientCertIdentity, String> {
        identity(self.verify_client_cert(cert_pem))
    }

    fn verify_der(&self, cert_der: &[u8]) -> Result<ClientCertIdentity, String> {
        identity(self.verify_client_cert_der(cert_der))
    }
}

fn identity(
    verified: Result<attest_pki::VerifiedClientCert, PkiError>,
) -> Result<ClientCertIdentity, String> {
    verified
        .map(|v| ClientCertIdentity {
            cn: v.cn,
            ou: v.ou,
            serial_hex: v.serial_hex,
        })
        .map_err(|e| safe_reason(&e))
}

/// Where the operator's certificate comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Presented<'a> {
    /// The leaf the server's TLS handshake verified, DER.
    Tls(&'a [u8]),
    /// The PEM a proxy forwarded in `X-Client-Cert`.
    Forwarded(&'a str),
}

/// PKI errors reworded for clients: no paths, no parser internals.
fn safe_reason(e: &PkiError) -> String {
    match e {
        PkiError::NotIssuedByCa => "certificate not issued by the enrollment CA".into(),
        PkiError::BadSignature => "certificate signature invalid".into(),
        PkiError::Expired { .. } => "certificate expired".into(),
        PkiError::NotYetValid { .. } => "certificate not yet valid".into(),
        PkiError::Revoked { .. } => "certificate revoked".into(),
        PkiError::WrongUsage(_) => "certificate not valid for client authentication".into(),
        _ => "malformed client certificate".into(),
    }
}

/// The PEM in the `X-Client-Cert` header: `Ok(None)` when absent or empty
/// (nginx sends an empty value when the client presented none),
/// `Err(Unauthenticated)` when repeated, oversized or not decodable.
pub fn forwarded_cert_pem(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let mut values = headers.get_all(CLIENT_CERT_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let unauth = |r: &str| AuthError::Unauthenticated(r.to_owned());
    if values.next().is_some() {
        return Err(unauth("more than one X-Client-Cert header"));
    }
    if value.len() > MAX_HEADER_LEN {
        return Err(unauth("X-Client-Cert header too large"));
    }
    let raw = value
        .to_str()
        .map_err(|_| unauth("malformed X-Client-Cert header"))?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let pem = urlencoding::decode(raw).map_err(|_| unauth("malformed X-Client-Cert header"))?;
    Ok(Some(pem.into_owned()))
}

/// `Ok(operator)` for a valid, recorded, unrevoked operator certificate;
/// `Err(Forbidden)` for a valid certificate whose OU is not `operator`;
/// `Err(Unauthenticated)` for anything else.
pub(crate) async fn authenticate(
    presented: Presented<'_>,
    verifier: &dyn ClientCertVerifier,
    registry: &dyn OperatorCertRegistry,
) -> Result<Operator, AuthError> {
    let unauth = |r: &str| AuthError::Unauthenticated(r.to_owned());
    let identity = match presented {
        Presented::Tls(der) => verifier.verify_der(der),
        Presented::Forwarded(pem) => verifier.verify(pem),
    }
    .map_err(AuthError::Unauthenticated)?;
    if identity.ou.as_deref() != Some(OPERATOR_OU) {
        return Err(AuthError::Forbidden(
            "client certificate is not an operator certificate (OU must be 'operator')".into(),
        ));
    }
    // The name first: a certificate naming SYSTEM is refused as such.
    let cn = crate::normalize_identity(&identity.cn)?;
    let record = registry
        .lookup(&identity.serial_hex)
        .await
        .map_err(|reason| {
            tracing::warn!(%reason, "cannot read operator certificate records");
            unauth("operator certificate status unavailable")
        })?
        .ok_or_else(|| unauth("operator certificate is not on record"))?;
    if record.revoked {
        return Err(unauth("operator certificate revoked"));
    }
    Ok(Operator {
        identity: cn,
        method: AuthMethod::ClientCert,
        principal: record.principal,
    })
}

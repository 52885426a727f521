//! Host enrollment, manager side (seed: `linux-patch-api.txt`, "Enrollment
//! Endpoints"): host agents ask to join with `POST /api/v1/enroll`
//! ([`request`]), poll `GET /api/v1/enroll/status/{token}` ([`status`]),
//! and operators list, approve, deny and remove them ([`admin`]).
//!
//! The polling token is stored only as its SHA-256. The host certificate
//! comes from the enrollment CA (`OU=host`, serverAuth and clientAuth, the
//! FQDN and address as SANs) and is issued when the approved host fetches
//! its bundle: a key the server generates (no CSR) is handed out in that
//! one answer and never stored. A removed host's certificate is revoked
//! and listed in the enrollment CRL. Operator actions and issuance are
//! audited on the one chain.

pub mod admin;
pub mod request;
pub mod status;

use attest_proto::host_enroll::{HostEnrollmentInfo, HostEnrollmentState};
use attest_store::{HostEnrollmentRecord, StoreError};
use sha2::{Digest, Sha256};

/// OU of host certificates.
pub const HOST_OU: &str = "host";

/// `purpose` of host certificates in `enrollment_certs`.
pub const PURPOSE_HOST: &str = "host";

/// Validity of a host certificate (the seed: at most one year), capped at
/// the CA's own notAfter.
pub const HOST_CERT_DAYS: i64 = 365;

/// CRL reason recorded when a host is removed.
pub const REASON_HOST_REMOVED: &str = "cessationOfOperation";

/// A refused or failed host-enrollment operation, named for what went
/// wrong; `crate::error` decides the HTTP answer of each.
#[derive(Debug, thiserror::Error)]
pub enum HostEnrollError {
    /// A request body or query field is missing or invalid.
    #[error("{field}: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    /// The machine-id or FQDN belongs to an enrolled host or a request
    /// still pending.
    #[error("{0} is already enrolled or has a pending enrollment request")]
    Duplicate(&'static str),
    /// No enrollment with that id.
    #[error("host enrollment not found")]
    UnknownEnrollment,
    /// The enrollment's status does not allow the operation.
    #[error("{0}")]
    StatusForbids(String),
    /// The enrollment CA failed.
    #[error(transparent)]
    Pki(#[from] attest_pki::PkiError),
    /// A stored row cannot be read back (a bug or tampering).
    #[error("{0}")]
    Internal(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lowercase hex SHA-256 of a polling token: what is stored and looked up.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The operators' view of a stored request.
pub fn info(r: &HostEnrollmentRecord) -> Result<HostEnrollmentInfo, HostEnrollError> {
    let status = HostEnrollmentState::parse(&r.status).ok_or_else(|| {
        HostEnrollError::Internal(format!(
            "host enrollment {} has status {:?}",
            r.id, r.status
        ))
    })?;
    let os_details = serde_json::from_str(&r.os_details).map_err(|e| {
        HostEnrollError::Internal(format!("host enrollment {} os_details: {e}", r.id))
    })?;
    Ok(HostEnrollmentInfo {
        id: r.id.clone(),
        machine_id: r.machine_id.clone(),
        fqdn: r.fqdn.clone(),
        ip_address: r.ip_address.clone(),
        os_details,
        status,
        key_on_host: r.csr_pem.is_some(),
        source: r.source.clone(),
        requested_at: r.requested_at.clone(),
        expires_at: r.expires_at.clone(),
        decided_at: r.decided_at.clone(),
        decided_by: r.decided_by.clone(),
        enrolled_at: r.enrolled_at.clone(),
        removed_at: r.removed_at.clone(),
        removed_by: r.removed_by.clone(),
        reason: r.reason.clone(),
        cert_serial: r.cert_serial.clone(),
    })
}

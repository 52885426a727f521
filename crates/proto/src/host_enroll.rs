//! Host enrollment into the control plane (seed: `linux-patch-api.txt`,
//! "Enrollment Endpoints"), shared by the host agent (client) and the
//! manager (server).
//!
//! `POST /api/v1/enroll` takes an [`EnrollRequest`] and answers 202 with an
//! [`EnrollAccepted`]; `GET /api/v1/enroll/status/{token}` always answers
//! 200 with an [`EnrollStatus`]. Errors are [`EnrollError`] bodies (429 rate
//! limit, 500).
//!
//! Beyond the seed, a host may send a PEM certificate signing request in
//! `csr`; the manager then signs it and returns no `server_key`, so the
//! host's private key never leaves the host.
//!
//! Operators see requests as [`HostEnrollmentInfo`] under
//! `/api/v1/host-enrollments` (list, approve, deny, remove).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `POST /api/v1/enroll` path, relative to the manager's origin.
pub const ENROLL_PATH: &str = "/api/v1/enroll";

/// `GET` path prefix of the status endpoint; the token follows.
pub const ENROLL_STATUS_PATH: &str = "/api/v1/enroll/status/";

/// Length of the seed's polling token (alphanumeric).
pub const POLLING_TOKEN_LEN: usize = 64;

/// Tokens expire after this long (seed default TTL: 24 hours); the host
/// stops polling after the same time.
pub const ENROLLMENT_TTL_SECS: u64 = 24 * 60 * 60;

/// Body of `POST /api/v1/enroll`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrollRequest {
    /// Contents of `/etc/machine-id`.
    pub machine_id: String,
    /// Fully qualified domain name of the host.
    pub fqdn: String,
    /// Primary non-loopback IPv4 address.
    pub ip_address: String,
    /// OS metadata (free-form object; the common fields are typed).
    pub os_details: OsDetails,
    /// Our extension: a PEM PKCS#10 request for the host's certificate.
    /// When present the manager signs it and returns no key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr: Option<String>,
}

/// `os_details` of [`EnrollRequest`]: the seed's common fields, plus any
/// other keys a host chooses to send.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OsDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_like: Option<String>,
    /// Further free-form fields.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// 202 answer of `POST /api/v1/enroll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollAccepted {
    /// 64-character alphanumeric bearer token: a secret.
    pub polling_token: String,
}

/// 200 answer of `GET /api/v1/enroll/status/{token}`, tagged by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EnrollStatus {
    /// Awaiting an administrator.
    Pending,
    /// Approved: the PKI bundle.
    Approved(ApprovedBundle),
    /// Rejected by an administrator: stop.
    Denied,
    /// Unknown, expired or already consumed token: stop.
    NotFound,
}

/// The PKI bundle of an approved enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovedBundle {
    /// PEM CA certificate: the agent trusts client certificates it issued.
    pub ca_crt: String,
    /// PEM certificate the agent serves on its mTLS port.
    pub server_crt: String,
    /// PEM PKCS#8 private key of `server_crt`; absent when the host sent a
    /// CSR (the key stayed on the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_key: Option<String>,
}

/// Error body of the enrollment endpoints (`{"error": "..."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollError {
    pub error: String,
}

/// Where a host enrollment stands, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostEnrollmentState {
    /// Awaiting an operator.
    Pending,
    /// Approved; the host has not fetched its bundle yet.
    Approved,
    /// Denied by an operator.
    Denied,
    /// The host fetched its bundle and holds a certificate.
    Enrolled,
    /// Removed by an operator; its certificate is revoked.
    Removed,
}

impl HostEnrollmentState {
    /// Every state.
    pub const ALL: [HostEnrollmentState; 5] = [
        Self::Pending,
        Self::Approved,
        Self::Denied,
        Self::Enrolled,
        Self::Removed,
    ];

    /// The wire and stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Enrolled => "enrolled",
            Self::Removed => "removed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for HostEnrollmentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host enrollment request and what became of it (operators' view; the
/// polling token is never shown, only a hash of it is kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostEnrollmentInfo {
    /// Id of the request (UUID), used by approve, deny and remove.
    pub id: String,
    pub machine_id: String,
    pub fqdn: String,
    pub ip_address: String,
    /// The `os_details` the host sent.
    #[schema(value_type = Object)]
    pub os_details: serde_json::Value,
    pub status: HostEnrollmentState,
    /// The host sent a certificate request: its key never left it.
    pub key_on_host: bool,
    /// The address the request came from.
    pub source: Option<String>,
    pub requested_at: String,
    /// The polling token stops working then (24 hours after the request).
    pub expires_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub enrolled_at: Option<String>,
    pub removed_at: Option<String>,
    pub removed_by: Option<String>,
    /// The operator's note on a denial or removal.
    pub reason: Option<String>,
    /// Serial (hex) of the host certificate, once the bundle was fetched.
    pub cert_serial: Option<String>,
}

/// Query of `GET /api/v1/host-enrollments`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HostEnrollmentListQuery {
    /// Only requests in this status.
    pub status: Option<HostEnrollmentState>,
}

/// Optional body of deny and remove: a note for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostDecisionRequest {
    /// Recorded with the decision and in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// True when `token` has the seed's form (64 ASCII alphanumerics). A host
/// checks this before putting the token into a URL path.
pub fn is_well_formed_token(token: &str) -> bool {
    token.len() == POLLING_TOKEN_LEN && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn status_variants_have_the_seeds_shape() {
        for (json, want) in [
            (r#"{"status":"pending"}"#, EnrollStatus::Pending),
            (r#"{"status":"denied"}"#, EnrollStatus::Denied),
            (r#"{"status":"not_found"}"#, EnrollStatus::NotFound),
        ] {
            assert_eq!(serde_json::from_str::<EnrollStatus>(json).unwrap(), want);
            assert_eq!(serde_json::to_string(&want).unwrap(), json);
        }
        let approved: EnrollStatus = serde_json::from_str(
            r#"{"status":"approved","ca_crt":"C","server_crt":"S","server_key":"K"}"#,
        )
        .unwrap();
        assert_eq!(
            approved,
            EnrollStatus::Approved(ApprovedBundle {
                ca_crt: "C".into(),
                server_crt: "S".into(),
                server_key: Some("K".into()),
            })
        );
        let no_key = EnrollStatus::Approved(ApprovedBundle {
            ca_crt: "C".into(),
            server_crt: "S".into(),
            server_key: None,
        });
        assert_eq!(
            serde_json::to_value(&no_key).unwrap(),
            serde_json::json!({"status": "approved", "ca_crt": "C", "server_crt": "S"})
        );
    }

    #[test]
    fn request_without_csr_is_the_seeds() {
        let req = EnrollRequest {
            machine_id: "m".into(),
            fqdn: "h.example.com".into(),
            ip_address: "192.0.2.1".into(),
            os_details: OsDetails {
                name: Some("Debian".into()),
                version_id: Some("12".into()),
                kernel: Some("6.1.0".into()),
                id_like: None,
                extra: Default::default(),
            },
            csr: None,
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"machine_id": "m", "fqdn": "h.example.com",
                "ip_address": "192.0.2.1",
                "os_details": {"name": "Debian", "version_id": "12", "kernel": "6.1.0"}})
        );
    }

    #[test]
    fn token_form() {
        assert!(is_well_formed_token(&"a".repeat(64)));
        assert!(!is_well_formed_token(&"a".repeat(63)));
        assert!(!is_well_formed_token(&format!("{}/", "a".repeat(63))));
    }
}

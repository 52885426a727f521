//! `POST /api/v1/enroll`: parse the host's request, verify its CSR if it
//! sent one, record it with the hash of a fresh polling token.

use std::net::IpAddr;

use attest_domain::audit::format_timestamp;
use attest_domain::machine::validate::normalize_hostname;
use attest_proto::host_enroll::{
    EnrollAccepted, EnrollRequest, ENROLLMENT_TTL_SECS, POLLING_TOKEN_LEN,
};
use attest_store::{HostEnrollmentRecord, HostEnrollmentRepo, HOST_PENDING};
use rand::distributions::{Alphanumeric, DistString};

use super::{token_hash, HostEnrollError};
use crate::state::AppState;

/// Longest machine-id accepted (`/etc/machine-id` is 32 hex digits).
const MACHINE_ID_MAX: usize = 64;
/// Longest FQDN accepted: it becomes the certificate's CN (RFC 5280
/// ub-common-name).
const FQDN_MAX: usize = 64;
/// Largest `os_details` kept, as JSON.
const OS_DETAILS_MAX: usize = 4096;

/// A request that passed [`parse`] and [`verify`].
#[derive(Debug)]
pub struct Parsed {
    machine_id: String,
    fqdn: String,
    ip: IpAddr,
    os_details: String,
    csr_pem: Option<String>,
}

/// Checks and normalises the fields: machine-id (letters, digits, `-`,
/// `_`; lowercased), FQDN (RFC 1123, lowercased, at most 64 characters),
/// an IP address that names one host, `os_details` of bounded size.
pub fn parse(req: EnrollRequest) -> Result<Parsed, HostEnrollError> {
    let invalid = |field, message: String| HostEnrollError::InvalidField { field, message };
    let machine_id = req.machine_id.trim().to_ascii_lowercase();
    if machine_id.is_empty()
        || machine_id.len() > MACHINE_ID_MAX
        || !machine_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "machine_id",
            format!("1-{MACHINE_ID_MAX} letters, digits, '-' or '_' (the host's /etc/machine-id)"),
        ));
    }
    let fqdn = req.fqdn.trim().trim_end_matches('.');
    let fqdn = normalize_hostname(fqdn).map_err(|e| invalid("fqdn", e.to_string()))?;
    if fqdn.len() > FQDN_MAX {
        return Err(invalid(
            "fqdn",
            format!("at most {FQDN_MAX} characters (it names the host's certificate)"),
        ));
    }
    let ip: IpAddr = req
        .ip_address
        .trim()
        .parse()
        .map_err(|_| invalid("ip_address", "not an IPv4 or IPv6 address".into()))?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(invalid(
            "ip_address",
            "must be the host's own unicast address".into(),
        ));
    }
    let os_details =
        serde_json::to_string(&req.os_details).map_err(|e| invalid("os_details", e.to_string()))?;
    if os_details.len() > OS_DETAILS_MAX {
        return Err(invalid(
            "os_details",
            format!("at most {OS_DETAILS_MAX} bytes of JSON"),
        ));
    }
    Ok(Parsed {
        machine_id,
        fqdn,
        ip,
        os_details,
        csr_pem: req.csr,
    })
}

/// Verifies the CSR's self-signature (the host holds the key it names).
pub fn verify(parsed: &Parsed) -> Result<(), HostEnrollError> {
    if let Some(pem) = &parsed.csr_pem {
        attest_pki::verify_csr(pem).map_err(|e| HostEnrollError::InvalidField {
            field: "csr",
            message: format!("not a usable certificate request: {e}"),
        })?;
    }
    Ok(())
}

/// Records the request unless its machine-id or FQDN is taken, and returns
/// the polling token (only its hash is stored).
pub async fn record(
    state: &AppState,
    parsed: Parsed,
    source: Option<String>,
) -> Result<EnrollAccepted, HostEnrollError> {
    let token = Alphanumeric.sample_string(&mut rand::rngs::OsRng, POLLING_TOKEN_LEN);
    let now = state.clock.now();
    let ttl = chrono::Duration::seconds(i64::try_from(ENROLLMENT_TTL_SECS).unwrap_or(i64::MAX));
    let at = format_timestamp(now);
    let row = HostEnrollmentRecord {
        id: uuid::Uuid::new_v4().to_string(),
        token_sha256: token_hash(&token),
        machine_id: parsed.machine_id,
        fqdn: parsed.fqdn,
        ip_address: parsed.ip.to_string(),
        os_details: parsed.os_details,
        csr_pem: parsed.csr_pem,
        source,
        status: HOST_PENDING.to_owned(),
        requested_at: at.clone(),
        expires_at: format_timestamp(now + ttl),
        ..HostEnrollmentRecord::default()
    };
    let mut tx = state.store.begin_write().await?;
    HostEnrollmentRepo::lock_requests(&mut tx).await?;
    if let Some(field) = HostEnrollmentRepo::taken(&mut tx, &row.machine_id, &row.fqdn, &at).await?
    {
        return Err(HostEnrollError::Duplicate(field));
    }
    HostEnrollmentRepo::insert(&mut tx, &row).await?;
    tx.commit().await?;
    tracing::info!(id = %row.id, machine_id = %row.machine_id, fqdn = %row.fqdn, "host enrollment requested");
    Ok(EnrollAccepted {
        polling_token: token,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use attest_proto::host_enroll::OsDetails;

    use super::*;

    fn req(machine_id: &str, fqdn: &str, ip: &str) -> EnrollRequest {
        EnrollRequest {
            machine_id: machine_id.into(),
            fqdn: fqdn.into(),
            ip_address: ip.into(),
            os_details: OsDetails::default(),
            csr: None,
        }
    }

    fn field(r: Result<Parsed, HostEnrollError>) -> &'static str {
        match r {
            Err(HostEnrollError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_are_checked_and_normalised() {
        let p = parse(req(
            " A1B2c3d4e5f6a7b8c9d0e1f2a3b4c5d6 ",
            "Host-01.Example.COM.",
            "192.0.2.5",
        ))
        .unwrap();
        assert_eq!(p.machine_id, "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6");
        assert_eq!(p.fqdn, "host-01.example.com");
        assert_eq!(p.os_details, "{}");
        assert_eq!(
            field(parse(req("", "h.example", "192.0.2.5"))),
            "machine_id"
        );
        assert_eq!(
            field(parse(req("a/b", "h.example", "192.0.2.5"))),
            "machine_id"
        );
        assert_eq!(field(parse(req("m", "h_x.example", "192.0.2.5"))), "fqdn");
        let long = format!("{}.example.com", "a".repeat(60));
        assert_eq!(field(parse(req("m", &long, "192.0.2.5"))), "fqdn");
        assert_eq!(
            field(parse(req("m", "h.example", "300.1.1.1"))),
            "ip_address"
        );
        assert_eq!(field(parse(req("m", "h.example", "0.0.0.0"))), "ip_address");
        let mut big = req("m", "h.example", "192.0.2.5");
        big.os_details
            .extra
            .insert("x".into(), serde_json::Value::String("y".repeat(5000)));
        assert_eq!(field(parse(big)), "os_details");
    }

    #[test]
    fn a_csr_must_verify() {
        let mut r = req("m", "h.example", "192.0.2.5");
        r.csr = Some(
            "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n".into(),
        );
        let parsed = parse(r).unwrap();
        assert!(matches!(
            verify(&parsed),
            Err(HostEnrollError::InvalidField { field: "csr", .. })
        ));
    }
}

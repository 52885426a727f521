//! Issuing a new version of a managed certificate now, with a key the
//! server generates (no agent involved): the profile decides the key
//! algorithm, validity and extended key usages and is checked before
//! anything is signed; the private key is handed to the caller once and
//! not kept.

use attest_certs_domain::permissions as p;
use attest_certs_domain::profile::{self, Issuance, KeyInfo};
use attest_certs_store::authorities::IssuerRecord;
use attest_certs_store::certificates::VersionRecord;
use attest_certs_store::records;
use attest_pki::authority::{generate_key_pair, Eku, KeyAlgorithm, LeafRequest};
use attest_proto::certs::catalog::CertificateProfile;
use attest_proto::certs::certificates::{
    BulkCriteria, BulkEnqueuedJob, BulkError, BulkRenewResult, CertificateVersion,
    ManagedCertificate, RenewResponse,
};
use serde_json::json;

use attest_certs_store::timestamp;

use super::{load, select, target, ARCHIVED, EXPIRED, REVOKED};
use crate::audit::{record, Change};
use crate::auth::Caller;
use crate::error::{CertsError, CertsResult};
use crate::issuers::pki_error;
use crate::issuers::service::connector;
use crate::issuers::signing::signing_ca;
use crate::state::CertsState;

/// Validity when no profile limits it: 90 days.
const DEFAULT_TTL_SECONDS: i64 = 90 * 86400;

/// Subject alternative names sorted by kind.
#[derive(Debug, Default)]
struct Names {
    dns: Vec<String>,
    ips: Vec<String>,
    emails: Vec<String>,
    uris: Vec<String>,
}

/// Sorts names by their shape: `scheme://…` is a URI, an address an IP,
/// `a@b` an e-mail, anything else a DNS name. The common name is added as
/// a DNS name when it looks like one (clients match SANs, not the CN).
fn classify(common_name: &str, sans: &[String]) -> Names {
    let mut names = Names::default();
    let looks_dns =
        |s: &str| s.contains('.') && !s.contains(' ') && !s.contains('@') && !s.contains("://");
    let mut all: Vec<&str> = sans.iter().map(String::as_str).collect();
    if looks_dns(common_name) && common_name.parse::<std::net::IpAddr>().is_err() {
        all.insert(0, common_name);
    }
    for s in all {
        let s = s.trim();
        let list = if s.contains("://") {
            &mut names.uris
        } else if s.parse::<std::net::IpAddr>().is_ok() {
            &mut names.ips
        } else if s.contains('@') {
            &mut names.emails
        } else {
            &mut names.dns
        };
        if !list.iter().any(|x| x.eq_ignore_ascii_case(s)) {
            list.push(s.to_owned());
        }
    }
    names
}

/// The key the profile wants: its first allowed algorithm at its minimum
/// size (ECDSA P-256 without a profile or rule).
fn key_for(profile: Option<&CertificateProfile>) -> CertsResult<KeyAlgorithm> {
    let Some(rule) = profile.and_then(|p| p.allowed_key_algorithms.first()) else {
        return Ok(KeyAlgorithm::EcP256);
    };
    match (rule.algorithm.as_str(), rule.min_size) {
        ("ECDSA", n) if n <= 256 => Ok(KeyAlgorithm::EcP256),
        ("ECDSA", n) if n <= 384 => Ok(KeyAlgorithm::EcP384),
        ("RSA", n) if n <= 2048 => Ok(KeyAlgorithm::Rsa2048),
        ("RSA", n) if n <= 3072 => Ok(KeyAlgorithm::Rsa3072),
        ("RSA", n) if n <= 4096 => Ok(KeyAlgorithm::Rsa4096),
        (alg, n) => Err(CertsError::Invalid(format!(
            "profile {}: the server cannot generate {alg} keys of {n} bits",
            profile.map(|p| p.id.as_str()).unwrap_or_default()
        ))),
    }
}

/// Issues a new version of certificate `id` now.
pub async fn renew(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<RenewResponse> {
    let cert = load(state, caller, &p::CERT_RENEW, id).await?;
    let (version, key_pem) = issue(state, caller, &cert, "cert.renew").await?;
    Ok(RenewResponse {
        status: "renewed".into(),
        certificate_id: cert.id,
        version_id: version.id,
        serial_number: version.serial_number,
        not_after: version.not_after,
        private_key_pem: key_pem,
    })
}

async fn issue(
    state: &CertsState,
    caller: &Caller,
    cert: &ManagedCertificate,
    action: &str,
) -> CertsResult<(CertificateVersion, String)> {
    if cert.status == REVOKED || cert.status == ARCHIVED {
        return Err(CertsError::Conflict(format!(
            "certificate {} is {}: it is not renewed",
            cert.id, cert.status
        )));
    }
    let issuer = records::get::<IssuerRecord>(&state.store, &cert.issuer_id)
        .await?
        .ok_or_else(|| CertsError::Invalid(format!("issuer {} does not exist", cert.issuer_id)))?;
    connector(&issuer)?;
    let ca_id = issuer.issuing_ca_id.clone().ok_or_else(|| {
        CertsError::Conflict(format!("issuer {} has no issuing CA", issuer.issuer.id))
    })?;
    let profile = match &cert.certificate_profile_id {
        Some(pid) => Some(
            records::get::<CertificateProfile>(&state.store, pid)
                .await?
                .ok_or_else(|| CertsError::Invalid(format!("profile {pid} does not exist")))?,
        ),
        None => None,
    };
    let algorithm = key_for(profile.as_ref())?;
    let ttl = profile.as_ref().map_or(DEFAULT_TTL_SECONDS, |p| {
        p.max_ttl_seconds.min(DEFAULT_TTL_SECONDS)
    });
    let ekus: Vec<String> = profile
        .as_ref()
        .map(|p| p.allowed_ekus.clone())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| vec!["serverAuth".into()]);
    let names = classify(&cert.common_name, &cert.sans);
    if let Some(profile) = &profile {
        profile::check(
            profile,
            &Issuance {
                key: KeyInfo {
                    algorithm: algorithm.family(),
                    bits: algorithm.bits(),
                },
                ttl_seconds: ttl,
                ekus: &ekus,
                dns_names: &names.dns,
                ip_addresses: &names.ips,
                emails: &names.emails,
                uris: &names.uris,
            },
        )
        .map_err(|v| CertsError::Invalid(v.to_string()))?;
    }
    let ca = signing_ca(state, &ca_id).await?;
    let (spki, key_pem) = generate_key_pair(algorithm).map_err(pki_error)?;
    let request = LeafRequest {
        common_name: cert.common_name.clone(),
        dns_names: names.dns,
        ip_addresses: names.ips.iter().filter_map(|s| s.parse().ok()).collect(),
        emails: names.emails,
        uris: names.uris,
        public_key_der: spki,
        validity: chrono::Duration::seconds(ttl),
        extended_key_usages: ekus
            .iter()
            .map(|e| Eku::parse(e))
            .collect::<Result<_, _>>()
            .map_err(pki_error)?,
        ..LeafRequest::default()
    };
    let now = state.clock.now();
    let leaf = ca.authority.issue_leaf(&request, now).map_err(pki_error)?;
    let at = timestamp(now);
    let version = VersionRecord {
        version: CertificateVersion {
            id: crate::rbac::new_id("cv"),
            certificate_id: cert.id.clone(),
            serial_number: leaf.serial_hex.clone(),
            not_before: timestamp(leaf.not_before),
            not_after: timestamp(leaf.not_after),
            fingerprint_sha256: leaf.fingerprint_sha256.clone(),
            pem_chain: format!("{}{}", leaf.cert_pem, ca.chain_pem),
            csr_pem: None,
            key_algorithm: algorithm.family().into(),
            key_size: i64::from(algorithm.bits()),
            created_at: at.clone(),
        },
        issuing_ca_id: ca_id,
        revoked_at: None,
        revocation_reason: None,
    };
    state
        .store
        .write_with(async |tx| {
            // The certificate row first: it serialises renewals of one
            // certificate, and a revocation meanwhile wins.
            if !attest_certs_store::certificates::mark_issued(
                tx,
                &cert.id,
                &version.version.not_after,
                &at,
            )
            .await?
            {
                return Err(CertsError::Conflict(format!(
                    "certificate {} was revoked or archived meanwhile: it is not renewed",
                    cert.id
                )));
            }
            records::insert(tx, &version).await?;
            record(
                tx,
                caller,
                Change {
                    action,
                    resource_type: "certificate",
                    resource_id: &cert.id,
                    details: json!({
                        "version_id": version.version.id,
                        "serial_number": version.version.serial_number,
                        "issuing_ca_id": version.issuing_ca_id,
                        "not_after": version.version.not_after,
                        "key_algorithm": version.version.key_algorithm,
                        "key_size": version.version.key_size,
                    }),
                },
                now,
            )
            .await
        })
        .await?;
    Ok((version.version, key_pem.to_string()))
}

/// Status of a certificate waiting for its renewal.
pub const RENEWAL_IN_PROGRESS: &str = "RenewalInProgress";

/// Queues a renewal for every selected certificate: each is marked
/// `RenewalInProgress` with a renewal job id (its own transaction and
/// audit entry); archived, revoked, expired and already queued ones are
/// skipped. The keys of a renewal belong to whoever completes it (an
/// agent, or the owner calling `POST …/renew`, which answers with the
/// key), so bulk renewal issues nothing itself: a certificate signed here
/// would have a key nobody holds.
pub async fn bulk_renew(
    state: &CertsState,
    caller: &Caller,
    criteria: &BulkCriteria,
) -> CertsResult<BulkRenewResult> {
    caller.require(&p::CERT_BULK_RENEW)?;
    let ids = select(state, criteria).await?;
    let mut result = BulkRenewResult::default();
    let now = state.clock.now();
    let at = timestamp(now);
    for id in ids {
        result.total_matched += 1;
        let job_id = crate::rbac::new_id("job");
        let outcome: CertsResult<bool> = state
            .store
            .write_with(async |tx| {
                let mut cert = records::get_in::<ManagedCertificate>(tx, &id)
                    .await?
                    .ok_or_else(|| CertsError::not_found("certificate"))?;
                let expired = cert.expires_at.as_deref().is_some_and(|e| e <= at.as_str());
                if [REVOKED, ARCHIVED, EXPIRED, RENEWAL_IN_PROGRESS].contains(&cert.status.as_str())
                    || expired
                {
                    return Ok(false);
                }
                caller.require_on(&p::CERT_RENEW, target(&cert))?;
                cert.status = RENEWAL_IN_PROGRESS.into();
                cert.updated_at = at.clone();
                records::replace(tx, &cert).await?;
                record(
                    tx,
                    caller,
                    Change {
                        action: "cert.bulk_renew",
                        resource_type: "certificate",
                        resource_id: &id,
                        details: json!({"job_id": job_id}),
                    },
                    now,
                )
                .await?;
                Ok(true)
            })
            .await;
        match outcome {
            Ok(true) => {
                result.total_enqueued += 1;
                result.enqueued_jobs.push(BulkEnqueuedJob {
                    certificate_id: id,
                    job_id,
                });
            }
            Ok(false) => result.total_skipped += 1,
            Err(e) => {
                result.total_failed += 1;
                result.errors.push(BulkError {
                    certificate_id: id,
                    error: e.to_string(),
                });
            }
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn names_are_sorted_by_shape() {
        let n = classify(
            "api.example.com",
            &[
                "www.example.com".into(),
                "10.0.0.1".into(),
                "::1".into(),
                "ops@example.com".into(),
                "spiffe://example.com/api".into(),
                "API.example.com".into(),
            ],
        );
        assert_eq!(n.dns, ["api.example.com", "www.example.com"]);
        assert_eq!(n.ips, ["10.0.0.1", "::1"]);
        assert_eq!(n.emails, ["ops@example.com"]);
        assert_eq!(n.uris, ["spiffe://example.com/api"]);
        assert!(classify("My Service", &[]).dns.is_empty());
    }
}

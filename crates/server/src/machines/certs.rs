//! Machine enrollment certificates: `request-cert` (EK-authenticated),
//! `enroll` (certificate + server nonce), and the revocation list.
//!
//! Every certificate is recorded in `enrollment_certs` in the transaction
//! that hands it out, after the machine row is locked: a revoke that
//! commits first is seen, and one that commits later revokes it too.

use attest_domain::audit::{format_timestamp, AuditAction};
use attest_domain::machine::{transition, Event, MachineStatus};
use attest_pki::{IssuedCert, KeyAlgorithm};
use attest_proto::events::NodeEvent;
use attest_proto::machine::{
    EnrollRequest, EnrollResponse, RequestCertRequest, RequestCertResponse,
};
use attest_store::{
    AuditRepo, EnrollmentCertRepo, HolderProof, IssuedCertRecord, MachineRecord, MachineRepo,
    NewAuditEntry, NonceRepo, Redeemed, StoreError, WriteTx,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::{ek, evidence, nonce, MachineError};
use crate::state::AppState;

/// `purpose` of certificates issued by request-cert.
pub const PURPOSE_REQUEST_CERT: &str = "request-cert";
/// `purpose` of certificates issued into an offline bundle.
pub const PURPOSE_OFFLINE_BUNDLE: &str = "offline-bundle";
/// `purpose` of operator client certificates.
pub const PURPOSE_OPERATOR: &str = "operator";
/// CRL reason recorded when a machine is revoked.
pub const REASON_MACHINE_REVOKED: &str = "cessationOfOperation";
/// CRL reason recorded when an approval changes a machine's role (its
/// certificates name the old role).
pub const REASON_ROLE_CHANGED: &str = "affiliationChanged";

/// Key type of machine enrollment keys (the seed hands out EC keys).
const MACHINE_KEY: KeyAlgorithm = KeyAlgorithm::EcP384;

/// Issues a certificate `CN=<machine_id>, OU=<role>` with a fresh key and
/// records it with what its holder proved, inside `tx` (whose machine row
/// the caller has locked).
pub(crate) async fn issue_for_machine(
    state: &AppState,
    tx: &mut WriteTx,
    m: &MachineRecord,
    purpose: &str,
    proof: HolderProof,
    now: DateTime<Utc>,
) -> Result<(IssuedCert, Zeroizing<String>), MachineError> {
    let (issued, key_pem) = state.ca.issue_with_new_key(
        &m.machine_id,
        m.role.as_str(),
        state.settings.delivery.enrollment_cert_validity(),
        MACHINE_KEY,
    )?;
    let template = IssuedCertRecord {
        machine_id: Some(m.machine_id.clone()),
        holder_proof: Some(proof.as_str().to_owned()),
        ..IssuedCertRecord::new(&m.machine_id, purpose)
    };
    record(tx, &issued, template, now).await?;
    Ok((issued, key_pem))
}

/// Records an issued certificate: `template` with the serial and times of
/// `issued` filled in.
pub(crate) async fn record(
    tx: &mut WriteTx,
    issued: &IssuedCert,
    template: IssuedCertRecord,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    EnrollmentCertRepo::insert(
        tx,
        &IssuedCertRecord {
            serial_hex: issued.serial_hex.clone(),
            issued_at: format_timestamp(now),
            not_after: format_timestamp(issued.not_after),
            ..template
        },
    )
    .await
}

/// Machines that may hold a certificate: approved and not locked.
fn check_certifiable(m: &MachineRecord) -> Result<(), MachineError> {
    match m.status {
        MachineStatus::Registered | MachineStatus::Attested => Ok(()),
        other => Err(MachineError::StatusForbids(format!(
            "certificate refused: current status: {other}"
        ))),
    }
}

/// `POST /api/v1/machines/{machine_id}/request-cert`.
///
/// The EK material is public, so on its own it proves nothing about who
/// asks. With `nonce_id` + `nonce_signature` the machine's activated AK
/// signs a fresh server nonce, which proves the requester holds the TPM;
/// that proof is required when `ITL_REQUIRE_QUOTE` or
/// `ITL_REQUIRE_AK_CREDENTIAL` is on, and recorded with the certificate
/// (the secret vault accepts only certificates with such a proof).
/// Issuance is capped per machine per day and audited.
pub async fn request_cert(
    state: &AppState,
    machine_id: &str,
    req: RequestCertRequest,
) -> Result<RequestCertResponse, MachineError> {
    let m = state
        .store
        .machines()
        .get(machine_id)
        .await?
        .ok_or(MachineError::UnknownMachine)?;
    ek::verify_stored(&m, &req.ek_fingerprint, &req.ek_cert_pem, req.ek_source)?;
    check_certifiable(&m)?;
    let wrapping_key = req
        .wrapping_key_pem
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let nonce_id = possession_proof(state, &m, &req).await?;
    let proof = if nonce_id.is_some() {
        HolderProof::Tpm
    } else {
        HolderProof::Ek
    };

    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    if let Some(id) = nonce_id {
        // Spent with the issuance: a concurrent request with the same
        // nonce gets 409 and no certificate.
        nonce::nonce_bytes(NonceRepo::redeem(&mut tx, id, now.timestamp_millis()).await?)?;
    }
    let m = MachineRepo::lock(&mut tx, machine_id)
        .await?
        .ok_or(MachineError::UnknownMachine)?;
    check_certifiable(&m)?;
    check_issuance_cap(state, &mut tx, &m, now).await?;
    let (issued, key_pem) =
        issue_for_machine(state, &mut tx, &m, PURPOSE_REQUEST_CERT, proof, now).await?;
    // Wrap before committing: a key that cannot be delivered must not leave
    // an issued certificate behind.
    let (key_clear, key_encrypted, encoding) = match wrapping_key {
        None => (key_pem.to_string(), String::new(), "pem"),
        Some(pem) => {
            let wrapped = attest_pki::wrap_private_key(pem, &key_pem)
                .map_err(|e| MachineError::field("wrapping_key_pem", e.to_string()))?;
            (
                String::new(),
                STANDARD.encode(&wrapped.ciphertext),
                wrapped.encoding.as_str(),
            )
        }
    };
    let entry = NewAuditEntry {
        operator_cn: attest_auth::machine_actor(&m.machine_id),
        action: AuditAction::RequestCert.into(),
        machine_id: Some(m.machine_id.clone()),
        prev_state: Some(m.status.as_str().to_owned()),
        new_state: Some(m.status.as_str().to_owned()),
        detail: Some(format!(
            "requested by the machine: serial={} holder_proof={} key={}",
            issued.serial_hex,
            proof.as_str(),
            if wrapping_key.is_some() {
                "wrapped"
            } else {
                "clear"
            }
        )),
    };
    AuditRepo::append(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(RequestCertResponse {
        machine_id: m.machine_id.clone(),
        role: m.role,
        enrollment_cert_pem: issued.cert_pem,
        enrollment_key_pem: key_clear,
        enrollment_key_encrypted_b64: key_encrypted,
        enrollment_key_encoding: encoding.to_owned(),
        enrollment_ca_pem: state.ca.ca_cert_pem().to_owned(),
        serial: issued.serial_hex,
        valid_days: i64::from(state.settings.delivery.enrollment_cert_days),
        message: "Enrollment cert issued".into(),
    })
}

/// Checks the TPM possession proof of a request-cert, if any, and returns
/// the nonce to spend with the issuance. Refused evidence spends the nonce.
async fn possession_proof<'r>(
    state: &AppState,
    m: &MachineRecord,
    req: &'r RequestCertRequest,
) -> Result<Option<&'r str>, MachineError> {
    let strict =
        state.settings.machines.require_quote || state.settings.delivery.require_ak_credential;
    let nonce_id = req
        .nonce_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let signature = evidence::decode_b64("nonce_signature", req.nonce_signature.as_deref())?;
    let (id, signature) = match (nonce_id, signature) {
        (Some(id), Some(sig)) => (id, sig),
        (None, None) if strict => {
            return Err(MachineError::missing(
                "nonce_id",
                "with ITL_REQUIRE_QUOTE or ITL_REQUIRE_AK_CREDENTIAL on, request-cert needs \
                 nonce_id and nonce_signature: the machine's activated AK signs the nonce of \
                 GET /api/v1/attest/challenge",
            ))
        }
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(MachineError::missing(
                "nonce_signature",
                "nonce_signature is required with nonce_id",
            ))
        }
        (None, Some(_)) => {
            return Err(MachineError::field(
                "nonce_signature",
                "nonce_signature needs the nonce_id of the nonce it signs",
            ))
        }
    };
    let nonce = {
        let mut conn = state.store.acquire().await?;
        nonce::peek(state, &mut conn, id).await?
    };
    let checked = match evidence::stored_ak(m)? {
        None => Err(MachineError::ProofRefused(
            "certificate refused: no attestation key is activated for this machine".into(),
        )),
        Some(_) if state.settings.delivery.require_ak_credential && m.ak_name.is_none() => {
            Err(MachineError::ProofRefused(
                "certificate refused: the machine's AK was not proven by credential activation \
                 (ITL_REQUIRE_AK_CREDENTIAL)"
                    .into(),
            ))
        }
        Some(ak) => ak.verify_nonce_signature(&nonce, &signature).map_err(|e| {
            MachineError::ProofRefused(format!(
                "certificate refused: nonce_signature does not verify: {e}"
            ))
        }),
    };
    if let Err(e) = checked {
        nonce::burn(state, id).await;
        return Err(e);
    }
    Ok(Some(id))
}

/// At most `ITL_MACHINE_CERTS_PER_DAY` request-cert certificates per
/// machine in any 24 hours: a leaked EK (or a looping agent) cannot mint
/// an unbounded number of valid certificates.
async fn check_issuance_cap(
    state: &AppState,
    tx: &mut WriteTx,
    m: &MachineRecord,
    now: DateTime<Utc>,
) -> Result<(), MachineError> {
    let cap = state.settings.delivery.machine_certs_per_day;
    let since = format_timestamp(now - chrono::Duration::hours(24));
    let issued =
        EnrollmentCertRepo::count_issued_since(tx, &m.machine_id, PURPOSE_REQUEST_CERT, &since)
            .await?;
    if issued >= i64::from(cap) {
        return Err(MachineError::LimitReached {
            message: format!(
                "certificate refused: {issued} certificates were issued to this machine in the \
                 last 24 hours (ITL_MACHINE_CERTS_PER_DAY={cap})"
            ),
            retry_after_secs: 3600,
        });
    }
    Ok(())
}

fn enroll_forbidden(what: impl std::fmt::Display) -> MachineError {
    MachineError::ProofRefused(format!("{what}"))
}

/// `POST /api/v1/machines/enroll`: the certificate must chain to the
/// enrollment CA and not be revoked, the signature must be by its key over
/// a nonce this server issued and nobody redeemed.
pub async fn enroll(state: &AppState, req: EnrollRequest) -> Result<EnrollResponse, MachineError> {
    let cert = state.ca.verify_client_cert(&req.cert_pem).map_err(|e| {
        enroll_forbidden(format_args!("certificate chain verification failed: {e}"))
    })?;
    if cert.ou.as_deref() == Some(attest_auth::OPERATOR_OU) {
        return Err(enroll_forbidden(
            "certificate chain verification failed: an operator certificate cannot enroll a machine",
        ));
    }
    let signature = STANDARD
        .decode(req.nonce_signature.trim())
        .map_err(|_| enroll_forbidden("nonce signature invalid: not base64"))?;
    attest_pki::verify_with_spki(&cert.spki_der, req.nonce.as_bytes(), &signature)
        .map_err(|_| enroll_forbidden("nonce signature invalid"))?;
    let m = state
        .store
        .machines()
        .get(&cert.cn)
        .await?
        .ok_or(MachineError::UnknownMachine)?;
    let stored = state.store.enrollment_certs().get(&cert.serial_hex).await?;
    match stored {
        Some(c) if c.revoked_at.is_some() => {
            return Err(enroll_forbidden(
                "certificate chain verification failed: certificate is revoked",
            ))
        }
        Some(c) if c.machine_id.as_deref() == Some(cert.cn.as_str()) => {
            // request-cert only proves possession of the (public) EK
            // certificate; when attestation must prove more, enroll must
            // not be the way around it. Offline-bundle certificates come
            // from an operator and stay accepted.
            let strict = state.settings.machines.require_quote
                || state.settings.delivery.require_ak_credential;
            if strict && c.purpose == PURPOSE_REQUEST_CERT {
                return Err(enroll_forbidden(
                    "certificate chain verification failed: with ITL_REQUIRE_QUOTE or \
                     ITL_REQUIRE_AK_CREDENTIAL set, enroll accepts offline-bundle certificates \
                     only; attest with a quote instead",
                ));
            }
        }
        // Not in our issuance record (or issued to someone else): the CA
        // key signed it, but this server did not hand it to this machine.
        _ => return Err(enroll_forbidden(
            "certificate chain verification failed: certificate is not on record for this machine",
        )),
    }
    transition(Some(m.status), Event::Enroll)?;

    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    match NonceRepo::redeem_value(&mut tx, req.nonce.trim(), now.timestamp_millis()).await? {
        Redeemed::Fresh(_) => {}
        Redeemed::AlreadyConsumed => return Err(MachineError::NonceReplayed),
        Redeemed::Expired => return Err(MachineError::NonceExpired),
        Redeemed::Unknown => {
            return Err(MachineError::field(
                "nonce",
                "unknown nonce: sign the nonce of a GET /api/v1/attest/challenge answer",
            ))
        }
    }
    // The nonce is burnt even if the machine turns out to be refused.
    tx.commit().await?;

    let mut tx = state.store.begin_write().await?;
    let mut m = MachineRepo::lock(&mut tx, &cert.cn)
        .await?
        .ok_or(MachineError::UnknownMachine)?;
    let outcome = transition(Some(m.status), Event::Enroll)?;
    let became_attested = m.status != outcome.status;
    let ts = format_timestamp(now);
    m.status = outcome.status;
    if m.attested_at.is_none() {
        m.attested_at = Some(ts.clone());
    }
    m.last_attest_at = Some(ts.clone());
    m.updated_at = ts;
    MachineRepo::save(&mut tx, &m).await?;
    tx.commit().await?;
    if became_attested {
        state.events.emit(
            NodeEvent::Online,
            &m,
            now,
            &[("first_seen_at", Some(&m.registered_at))],
        );
    }
    Ok(EnrollResponse {
        machine_id: m.machine_id,
        status: m.status,
        message: "Self-enrollment successful".into(),
    })
}

/// Issuer id of the enrollment CA under `/.well-known/pki/crl/{issuer_id}`.
pub const ENROLLMENT_ISSUER_ID: &str = "enrollment";

/// The last signed CRL of this replica, reused while the revoked set is
/// unchanged and it is younger than half its validity, so an
/// unauthenticated GET does not cost a CA signature each time.
#[derive(Debug, Clone, Default)]
pub struct CrlCache(std::sync::Arc<tokio::sync::Mutex<Option<CachedCrl>>>);

#[derive(Debug)]
struct CachedCrl {
    /// The revoked set it lists: serials, times and reasons.
    key: String,
    generated_at: DateTime<Utc>,
    der: Vec<u8>,
}

/// The enrollment CA's DER CRL: every revoked certificate not yet expired.
/// The CRL number is the generation time in milliseconds, so it grows with
/// every new CRL without shared state between replicas.
pub async fn enrollment_crl(state: &AppState) -> Result<Vec<u8>, MachineError> {
    let now = state.clock.now();
    let revoked = state
        .store
        .enrollment_certs()
        .revoked(&format_timestamp(now))
        .await?;
    let key = revoked
        .iter()
        .map(|r| {
            format!(
                "{}/{}/{}",
                r.serial_hex,
                r.revoked_at,
                r.reason.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let validity = chrono::Duration::from_std(state.settings.delivery.crl_validity)
        .unwrap_or(chrono::Duration::hours(24));
    let mut cache = state.crl.0.lock().await;
    if let Some(c) = cache.as_ref() {
        if c.key == key && now >= c.generated_at && now - c.generated_at < validity / 2 {
            return Ok(c.der.clone());
        }
    }
    let entries = revoked
        .iter()
        .map(|r| {
            let revoked_at =
                attest_domain::audit::parse_timestamp(&r.revoked_at).ok_or_else(|| {
                    attest_store::StoreError::Corrupt(format!(
                        "enrollment_certs.revoked_at of {}",
                        r.serial_hex
                    ))
                })?;
            Ok(attest_pki::RevokedEntry {
                serial_hex: r.serial_hex.clone(),
                revoked_at,
                reason: r.reason.as_deref().and_then(|s| s.parse().ok()),
            })
        })
        .collect::<Result<Vec<_>, MachineError>>()?;
    let number = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    let der = state.ca.crl(&entries, number, now, now + validity)?;
    *cache = Some(CachedCrl {
        key,
        generated_at: now,
        der: der.clone(),
    });
    Ok(der)
}

//! The CA hierarchy of an issuer: roots and intermediates
//! (`/api/v1/issuers/{id}/intermediates`, `/api/v1/intermediates/{id}`),
//! and their two-phase retirement.
//!
//! Retirement: `active` → `retiring` stops the CA from issuing (new
//! children or certificates) while what it issued stays valid;
//! `retiring` → `retired` is refused while a child CA is not retired,
//! while it is its issuer's issuing CA, or while a certificate it issued
//! is still valid (not expired, not revoked).

use attest_certs_domain::permissions as p;
use attest_certs_store::authorities::{
    self as repo, CaRecord, IssuerRecord, CA_ACTIVE, CA_RETIRED, CA_RETIRING,
};
use attest_certs_store::records;
use attest_certs_store::timestamp;
use attest_pki::authority::{Authority, CaRequest};
use attest_proto::certs::issuers::{CreateIntermediate, IntermediateCa, RetireRequest};
use serde_json::{json, Value};

use super::service::{ca_record, Placement};
use super::signing::signing_ca;
use super::{parse_algorithm, parse_name_constraints, pki_error, GENERIC_CA};
use crate::audit::{record, Change};
use crate::auth::Caller;
use crate::error::{CertsError, CertsResult};
use crate::state::CertsState;

/// The wire form of a CA (its sealed key stays behind).
pub fn present(ca: CaRecord) -> IntermediateCa {
    IntermediateCa {
        id: ca.id,
        issuer_id: ca.issuer_id,
        parent_ca_id: ca.parent_ca_id,
        name: ca.name,
        state: ca.state,
        subject: ca.subject,
        serial_number: ca.serial_number,
        not_before: ca.not_before,
        not_after: ca.not_after,
        path_len_constraint: ca.path_len_constraint,
        name_constraints: ca.name_constraints,
        key_algorithm: ca.key_algorithm,
        cert_pem: ca.cert_pem,
        ocsp_responder_url: ca.ocsp_responder_url,
        metadata: ca.metadata,
        created_at: ca.created_at,
        updated_at: ca.updated_at,
    }
}

async fn issuer(state: &CertsState, id: &str) -> CertsResult<IssuerRecord> {
    let rec = records::get::<IssuerRecord>(&state.store, id)
        .await?
        .ok_or_else(|| CertsError::not_found("issuer"))?;
    if rec.issuer.issuer_type != GENERIC_CA {
        return Err(CertsError::NotAvailable(format!(
            "connector not available: issuers of type {} have no local CA hierarchy",
            rec.issuer.issuer_type
        )));
    }
    Ok(rec)
}

/// Every CA of issuer `id`, roots first.
pub async fn list(
    state: &CertsState,
    caller: &Caller,
    id: &str,
) -> CertsResult<Vec<IntermediateCa>> {
    caller.require(&p::ISSUER_LIST)?;
    issuer(state, id).await?;
    Ok(repo::cas_of(&state.store, id)
        .await?
        .into_iter()
        .map(present)
        .collect())
}

/// The CA `id`.
pub async fn get(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<IntermediateCa> {
    caller.require(&p::ISSUER_READ)?;
    records::get::<CaRecord>(&state.store, id)
        .await?
        .map(present)
        .ok_or_else(|| CertsError::not_found("intermediate CA"))
}

/// Registers an operator-supplied root (no `parent_ca_id`) or signs a
/// child CA under an active parent of the issuer.
pub async fn create(
    state: &CertsState,
    caller: &Caller,
    issuer_id: &str,
    body: &CreateIntermediate,
) -> CertsResult<IntermediateCa> {
    caller.require(&p::ISSUER_CREATE)?;
    issuer(state, issuer_id).await?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 255 {
        return Err(CertsError::Invalid(
            "name is required (1-255 characters)".into(),
        ));
    }
    let now = state.clock.now();
    let at = timestamp(now);
    let metadata = match &body.metadata {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(CertsError::Invalid("metadata must be an object".into())),
    };
    let ocsp = body.ocsp_responder_url.clone().unwrap_or_default();
    let parent_id = body.parent_ca_id.as_deref().filter(|s| !s.is_empty());
    let (authority, parent) = match parent_id {
        None => {
            let cert_pem = body.root_cert_pem.as_deref().ok_or_else(|| {
                CertsError::Invalid(
                    "root registration needs root_cert_pem (or give parent_ca_id to sign a child CA)"
                        .into(),
                )
            })?;
            let key_pem = body.root_key_pem.as_deref().ok_or_else(|| {
                CertsError::Invalid(if body.key_driver_id.is_some() {
                    "key drivers are not available in this deployment: give root_key_pem".into()
                } else {
                    "root registration needs root_key_pem".into()
                })
            })?;
            let authority = Authority::import(cert_pem, key_pem).map_err(pki_error)?;
            if !authority.is_self_signed() {
                return Err(CertsError::Invalid(
                    "root_cert_pem is not self-signed".into(),
                ));
            }
            (authority, None)
        }
        Some(parent_id) => {
            let parent_rec = records::get::<CaRecord>(&state.store, parent_id)
                .await?
                .filter(|ca| ca.issuer_id == issuer_id)
                .ok_or_else(|| CertsError::not_found("parent CA"))?;
            if parent_rec.state != CA_ACTIVE {
                return Err(CertsError::Conflict(format!(
                    "parent CA {parent_id} is {}, not active",
                    parent_rec.state
                )));
            }
            let parent = signing_ca(state, parent_id).await?;
            let subject = body.subject.as_ref();
            let field = |k: &str| {
                subject
                    .and_then(|s| s.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let days = body.ttl_days.unwrap_or(1825);
            if !(1..=36500).contains(&days) {
                return Err(CertsError::Invalid("ttl_days must be 1-36500".into()));
            }
            let path_len = match body.path_len_constraint {
                None => None,
                Some(n) => Some(u8::try_from(n).map_err(|_| {
                    CertsError::Invalid("path_len_constraint must be 0-255".into())
                })?),
            };
            let request = CaRequest {
                common_name: field("common_name").unwrap_or_else(|| name.to_owned()),
                organization: field("organization"),
                key_algorithm: parse_algorithm(body.algorithm.as_deref().unwrap_or("ECDSA-P256"))?,
                validity: chrono::Duration::days(days),
                path_len,
                name_constraints: parse_name_constraints(body.name_constraints.as_ref())?,
            };
            let child = parent
                .authority
                .issue_intermediate(&request, now)
                .map_err(pki_error)?;
            (child, Some(parent_id.to_owned()))
        }
    };
    let placement = Placement {
        issuer_id,
        parent,
        name,
        ocsp_responder_url: ocsp,
        metadata,
    };
    let ca = ca_record(state, &authority, placement, &at)?;
    state
        .store
        .write_with(async |tx| {
            records::insert(tx, &ca).await?;
            record(
                tx,
                caller,
                Change {
                    action: "intermediate.create",
                    resource_type: "intermediate_ca",
                    resource_id: &ca.id,
                    details: json!({
                        "issuer_id": issuer_id,
                        "parent_ca_id": ca.parent_ca_id,
                        "subject": ca.subject,
                        "serial_number": ca.serial_number,
                        "not_after": ca.not_after,
                    }),
                },
                now,
            )
            .await
        })
        .await?;
    Ok(present(ca))
}

/// One step of the two-phase retirement.
pub async fn retire(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    body: &RetireRequest,
) -> CertsResult<IntermediateCa> {
    caller.require(&p::ISSUER_EDIT)?;
    let now = state.clock.now();
    let at = timestamp(now);
    let confirm = body.confirm.unwrap_or(false);
    let ca = state
        .store
        .write_with(async |tx| {
            let ca = records::get_in::<CaRecord>(tx, id)
                .await?
                .ok_or_else(|| CertsError::not_found("intermediate CA"))?;
            let (from, to) = if confirm {
                (CA_RETIRING, CA_RETIRED)
            } else {
                (CA_ACTIVE, CA_RETIRING)
            };
            if ca.state != from {
                return Err(CertsError::Conflict(format!(
                    "CA {id} is {}; {} needs it {from}",
                    ca.state,
                    if confirm {
                        "confirming retirement"
                    } else {
                        "retiring"
                    }
                )));
            }
            if confirm {
                if repo::live_children(tx, id).await? > 0 {
                    return Err(CertsError::Conflict(format!(
                        "CA {id} still has child CAs that are not retired; drain them first"
                    )));
                }
                if let Some(iss) = records::get_in::<IssuerRecord>(tx, &ca.issuer_id).await? {
                    if iss.issuing_ca_id.as_deref() == Some(id) {
                        return Err(CertsError::Conflict(format!(
                        "CA {id} is issuer {}'s issuing CA; switch the issuer to another CA first",
                        ca.issuer_id
                    )));
                    }
                }
                let valid = attest_certs_store::certificates::valid_issued_by(tx, id, &at).await?;
                if valid > 0 {
                    return Err(CertsError::Conflict(format!(
                    "CA {id} still has {valid} valid certificates; revoke or let them expire first"
                )));
                }
            }
            repo::set_state(tx, id, from, to, &at).await?;
            record(
                tx,
                caller,
                Change {
                    action: "intermediate.retire",
                    resource_type: "intermediate_ca",
                    resource_id: id,
                    details: json!({"from": from, "to": to, "note": body.note}),
                },
                now,
            )
            .await?;
            Ok(CaRecord {
                state: to.to_owned(),
                updated_at: at.clone(),
                ..ca
            })
        })
        .await?;
    Ok(present(ca))
}

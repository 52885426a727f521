//! What a machine presents as evidence, and the checks shared by attest,
//! AK activation, credential activation and request-cert: the machine
//! located by id whose stored EK the request re-presents, base64 evidence
//! fields, the activated AK, and the role's quote policy.

use std::collections::BTreeMap;

use attest_proto::machine::EkSource;
use attest_store::{MachineRecord, StoreError};
use attest_tpm::quote::{verify_quote, CounterState, PcrValues, QuoteEvidence, QuotePolicy};
use attest_tpm::AkPublicKey;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::ek::{self, VerifiedEk};
use super::MachineError;
use crate::config::quote_policy::RoleQuotePolicy;
use crate::state::AppState;

/// Largest base64 evidence field accepted (a TPM2B_ATTEST is < 2 KiB).
const MAX_EVIDENCE_B64: usize = 8 * 1024;

/// The machine `machine_id`, after checking that the request re-presents
/// its stored EK (`fingerprint`: the one the request names, or the stored
/// one when the request names none). Callers check the status they need.
pub(super) async fn machine_presenting_ek(
    state: &AppState,
    machine_id: &str,
    fingerprint: Option<&str>,
    material: &str,
    source: Option<EkSource>,
) -> Result<(MachineRecord, VerifiedEk), MachineError> {
    let m = state
        .store
        .machines()
        .get(machine_id)
        .await?
        .ok_or(MachineError::UnknownMachine)?;
    let fingerprint = fingerprint.unwrap_or(&m.ek_fingerprint).to_owned();
    let verified = ek::verify_stored(&m, &fingerprint, material, source)?;
    Ok((m, verified))
}

/// A base64 evidence field, `None` when absent or blank.
pub(super) fn decode_b64(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<Vec<u8>>, MachineError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.len() > MAX_EVIDENCE_B64 => Err(MachineError::field(
            field,
            format!("{field} is longer than {MAX_EVIDENCE_B64} characters"),
        )),
        Some(v) => STANDARD
            .decode(v)
            .map(Some)
            .map_err(|_| MachineError::field(field, format!("{field} is not valid base64"))),
    }
}

/// The activated AK of `m`, if any.
pub(super) fn stored_ak(m: &MachineRecord) -> Result<Option<AkPublicKey>, MachineError> {
    match &m.ak_public_pem {
        None => Ok(None),
        Some(pem) => AkPublicKey::from_spki_pem(pem)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("machines.ak_public_pem: {e}")).into()),
    }
}

/// The boot counters of the last accepted quote, if any.
pub(super) fn counters(m: &MachineRecord) -> Option<CounterState> {
    match (m.quote_reset_count, m.quote_restart_count) {
        (Some(reset), Some(restart)) => Some(CounterState {
            reset_count: u32::try_from(reset).unwrap_or(u32::MAX),
            restart_count: u32::try_from(restart).unwrap_or(u32::MAX),
        }),
        _ => None,
    }
}

/// A quote of machine `m` over `nonce`, checked against its role's policy
/// (selection, golden values, counters that never go backwards). Returns
/// the quote's counters.
pub(super) fn verify_role_quote(
    m: &MachineRecord,
    ak: &AkPublicKey,
    policy: &RoleQuotePolicy,
    quote: &[u8],
    signature: &[u8],
    supplied: Option<&BTreeMap<String, String>>,
    nonce: &[u8],
) -> Result<CounterState, MachineError> {
    let values = expected_values(supplied, &policy.golden)?;
    let verified = verify_quote(
        &QuoteEvidence {
            attest: quote,
            signature,
            pcr_values: &values,
        },
        ak,
        &QuotePolicy {
            expected_nonce: nonce,
            expected_selection: &policy.selection,
            previous: counters(m),
        },
    )
    .map_err(|e| MachineError::EvidenceRejected(format!("quote rejected: {e}")))?;
    Ok(verified.counters())
}

/// Supplied values, completed and checked with the role's golden values.
fn expected_values(
    supplied: Option<&BTreeMap<String, String>>,
    golden: &PcrValues,
) -> Result<PcrValues, MachineError> {
    let mut values = match supplied {
        Some(map) => PcrValues::from_map(map)
            .map_err(|e| MachineError::field("pcr_values", e.to_string()))?,
        None => PcrValues::new(),
    };
    for (bank, idx, want) in golden.iter() {
        match values.get(bank, idx) {
            Some(got) if got != want => {
                return Err(MachineError::EvidenceRejected(format!(
                    "quote rejected: PCR {bank}:{idx} differs from the golden value"
                )));
            }
            Some(_) => {}
            None => {
                values
                    .insert(bank, idx, want.to_vec())
                    .map_err(|e| MachineError::EvidenceRejected(e.to_string()))?;
            }
        }
    }
    Ok(values)
}

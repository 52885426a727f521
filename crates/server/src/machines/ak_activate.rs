//! `POST /api/v1/machines/{machine_id}/ak-activate` (seed form): binds an
//! attestation key to the machine after checking its EK, the credential
//! activation (when required or given) and a quote signed by the AK.

use attest_domain::audit::format_timestamp;
use attest_domain::machine::MachineStatus;
use attest_proto::machine::{AkActivateRequest, AkActivateResponse};
use attest_store::{MachineRecord, MachineRepo};
use attest_tpm::quote::{verify_quote, CounterState, PcrValues, QuoteEvidence, QuotePolicy};
use attest_tpm::wire::PcrSelection;
use attest_tpm::AkPublicKey;

use super::evidence::{counters, decode_b64, machine_presenting_ek};
use super::nonce::{self, redeem};
use super::MachineError;
use crate::state::AppState;

/// A parsed ak-activate request.
struct ActivateInput<'r> {
    ak: AkPublicKey,
    activation: Option<(&'r str, &'r str)>,
    quote: Vec<u8>,
    signature: Vec<u8>,
    values: PcrValues,
    selection: PcrSelection,
    nonce_id: Option<&'r str>,
}

/// `POST /api/v1/machines/{machine_id}/ak-activate`.
pub async fn ak_activate(
    state: &AppState,
    machine_id: &str,
    req: AkActivateRequest,
) -> Result<AkActivateResponse, MachineError> {
    let (m, _) =
        machine_presenting_ek(state, machine_id, None, &req.ek_cert_pem, req.ek_source).await?;
    check_activatable(&m)?;
    let input = ActivateInput::parse(state, &req)?;
    if !may_bind_ak(&m, input.activation.is_some()) {
        return Err(ak_already_active());
    }
    let nonce = match input.nonce_id {
        Some(id) => Some(redeem(state, id).await?),
        None => None,
    };
    let ak_name = match input.activation {
        Some((id, secret)) => {
            Some(super::ak_credential::redeem(state, machine_id, id, secret, &input.ak).await?)
        }
        None => None,
    };
    let counters = verify_activation_quote(&m, &input, nonce, ak_name.is_some())?;
    let m = record(state, machine_id, &req, ak_name, counters).await?;
    Ok(AkActivateResponse {
        message: if m.ak_name.is_some() {
            "AK registered, credential activation and PCR quote verified".into()
        } else {
            "AK registered and PCR quote verified".into()
        },
        machine_id: m.machine_id,
        ak_accepted: true,
    })
}

fn check_activatable(m: &MachineRecord) -> Result<(), MachineError> {
    if matches!(m.status, MachineStatus::Revoked | MachineStatus::Rejected) {
        return Err(MachineError::StatusForbids(format!(
            "ak-activate refused: current status: {}",
            m.status
        )));
    }
    Ok(())
}

impl<'r> ActivateInput<'r> {
    fn parse(state: &AppState, req: &'r AkActivateRequest) -> Result<Self, MachineError> {
        let nonce_id = nonce::given(req.nonce_id.as_deref());
        if nonce_id.is_none() && state.settings.machines.require_nonce {
            return Err(MachineError::missing(
                "nonce_id",
                "nonce_id is required (ITL_REQUIRE_NONCE=true)",
            ));
        }
        let activation = activation_fields(state, req)?;
        let ak = AkPublicKey::from_spki_pem(&req.ak_pub)
            .map_err(|e| MachineError::field("ak_pub", e.to_string()))?;
        ak.check_policy(state.settings.delivery.ak_policy.policy())
            .map_err(|e| MachineError::field("ak_pub", e.to_string()))?;
        let quote = decode_b64("quote", Some(&req.quote))?
            .ok_or_else(|| MachineError::missing("quote", "quote is required"))?;
        let signature = decode_b64("quote_sig", Some(&req.quote_sig))?
            .ok_or_else(|| MachineError::missing("quote_sig", "quote_sig is required"))?;
        let values = PcrValues::from_map(&req.pcr_values)
            .map_err(|e| MachineError::field("pcr_values", e.to_string()))?;
        let selection = values
            .selection()
            .map_err(|e| MachineError::field("pcr_values", e.to_string()))?;
        if selection.banks.is_empty() {
            return Err(MachineError::field(
                "pcr_values",
                "pcr_values must not be empty",
            ));
        }
        Ok(Self {
            ak,
            activation,
            quote,
            signature,
            values,
            selection,
            nonce_id,
        })
    }
}

/// The quote, signed by the AK over the server nonce (or, without one, its
/// own non-empty qualifying data, as the seed allows).
fn verify_activation_quote(
    m: &MachineRecord,
    input: &ActivateInput<'_>,
    nonce: Option<Vec<u8>>,
    credential_proven: bool,
) -> Result<CounterState, MachineError> {
    let expected_nonce = match nonce {
        Some(n) => n,
        None => attest_tpm::wire::Attest::parse_either(&input.quote)
            .map(|(a, _)| a.extra_data)
            .map_err(|e| MachineError::EvidenceRejected(format!("quote rejected: {e}")))?,
    };
    if expected_nonce.is_empty() {
        return Err(MachineError::EvidenceRejected(
            "quote rejected: it carries no qualifying data; quote over a nonce from GET \
             /api/v1/attest/challenge"
                .into(),
        ));
    }
    let verified = verify_quote(
        &QuoteEvidence {
            attest: &input.quote,
            signature: &input.signature,
            pcr_values: &input.values,
        },
        &input.ak,
        &QuotePolicy {
            expected_nonce: &expected_nonce,
            expected_selection: &input.selection,
            // Counters recorded under an AK bound by the EK certificate only
            // may come from a forged quote: a credential-proven replacement
            // starts a fresh baseline rather than inherit them.
            previous: if credential_proven && m.ak_name.is_none() {
                None
            } else {
                counters(m)
            },
        },
    )
    .map_err(|e| MachineError::EvidenceRejected(format!("quote rejected: {e}")))?;
    Ok(verified.counters())
}

/// Binds the AK, re-checking under the row lock what may have changed.
async fn record(
    state: &AppState,
    machine_id: &str,
    req: &AkActivateRequest,
    ak_name: Option<String>,
    c: CounterState,
) -> Result<MachineRecord, MachineError> {
    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    let mut m = MachineRepo::lock(&mut tx, machine_id)
        .await?
        .ok_or(MachineError::UnknownMachine)?;
    check_activatable(&m)?;
    if !may_bind_ak(&m, ak_name.is_some()) {
        return Err(ak_already_active());
    }
    m.ak_public_pem = Some(req.ak_pub.trim().to_owned());
    m.ak_name = ak_name;
    m.ak_activated_at = Some(format_timestamp(now));
    m.quote_reset_count = Some(i64::from(c.reset_count));
    m.quote_restart_count = Some(i64::from(c.restart_count));
    m.updated_at = format_timestamp(now);
    MachineRepo::save(&mut tx, &m).await?;
    tx.commit().await?;
    Ok(m)
}

/// First activation wins: `ek_cert_pem` is public, so letting a later
/// call replace the AK would let anyone holding the EK certificate swap in
/// a software key. The one exception is stronger proof: an AK proven by
/// credential activation replaces one bound by the EK certificate only.
pub(crate) fn may_bind_ak(m: &MachineRecord, credential_proven: bool) -> bool {
    m.ak_public_pem.is_none() || (m.ak_name.is_none() && credential_proven)
}

/// `(activation_id, activation_secret)` when given; both or neither, and
/// required when `ITL_REQUIRE_AK_CREDENTIAL=true`.
fn activation_fields<'r>(
    state: &AppState,
    req: &'r AkActivateRequest,
) -> Result<Option<(&'r str, &'r str)>, MachineError> {
    let present = |v: &'r Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty());
    match (present(&req.activation_id), present(&req.activation_secret)) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        (Some(_), None) => Err(MachineError::missing(
            "activation_secret",
            "activation_secret is required with activation_id",
        )),
        (None, Some(_)) => Err(MachineError::missing(
            "activation_id",
            "activation_id is required with activation_secret",
        )),
        (None, None) if state.settings.delivery.require_ak_credential => {
            Err(MachineError::missing(
                "activation_id",
                "credential activation is required (ITL_REQUIRE_AK_CREDENTIAL=true): POST \
                 /api/v1/machines/{machine_id}/ak-credential first",
            ))
        }
        (None, None) => Ok(None),
    }
}

pub(crate) fn ak_already_active() -> MachineError {
    MachineError::StateConflict(
        "an attestation key is already activated for this machine; it cannot be replaced".into(),
    )
}

//! `POST /api/v1/attest`: parse the request, verify its evidence against
//! the stored machine, record the attestation (spending the nonce in the
//! same transaction), answer the seed's action.

use attest_domain::audit::format_timestamp;
use attest_domain::machine::{transition, AttestAction, Event, MachineStatus, Role};
use attest_proto::events::NodeEvent;
use attest_proto::machine::{AttestRequest, AttestResponse};
use attest_store::{MachineRecord, MachineRepo, NonceRepo};
use attest_tpm::quote::CounterState;

use super::ek::{self, VerifiedEk};
use super::evidence::{decode_b64, stored_ak, verify_role_quote};
use super::nonce::{self, burn, nonce_bytes, peek};
use super::{new_record, retry_on_conflict, rotate_token, Hardware, MachineError};
use crate::config::machines::MachineSettings;
use crate::state::AppState;

/// A parsed attest request: what the machine presents, with the fields
/// the settings require checked to be there.
struct AttestInput<'r> {
    ek: VerifiedEk,
    hw: Hardware,
    nonce_id: Option<&'r str>,
    nonce_signature: Option<Vec<u8>>,
    quote: Option<Quote>,
    req: &'r AttestRequest,
}

/// A quote and its signature, decoded, with the base64 text stored as sent.
struct Quote {
    attest: Vec<u8>,
    signature: Vec<u8>,
    attest_b64: String,
    signature_b64: String,
}

/// What verification established, to be stored with the attestation.
#[derive(Default)]
struct CheckedEvidence {
    quote_b64: Option<String>,
    signature_b64: Option<String>,
    counters: Option<CounterState>,
}

/// What the write recorded, for the answer and the events.
struct Recorded {
    machine: MachineRecord,
    action: AttestAction,
    token: Option<String>,
    became_attested: bool,
}

/// `POST /api/v1/attest`: the whole action table of the seed.
pub async fn attest(state: &AppState, req: AttestRequest) -> Result<AttestResponse, MachineError> {
    let settings = &state.settings.machines;
    let input = AttestInput::parse(settings, &req)?;
    let (existing, nonce) = lookup(state, &input).await?;
    // From here the nonce is spent whatever the outcome: with the
    // attestation when it is recorded, on its own when it is refused.
    let recorded = async {
        let evidence = verify(state, &input, existing.as_ref(), nonce.as_deref())?;
        retry_on_conflict(|| record(state, &input, &evidence)).await
    }
    .await;
    let done = match recorded {
        Ok(done) => done,
        Err(e) => {
            if let Some(id) = input.nonce_id {
                burn(state, id).await;
            }
            if let Some(m) = &existing {
                super::failures::record_refusal(state, &m.machine_id, &e).await;
            }
            return Err(e);
        }
    };
    if done.became_attested {
        state.events.emit(
            NodeEvent::Online,
            &done.machine,
            state.clock.now(),
            &[("first_seen_at", Some(&done.machine.registered_at))],
        );
    }
    Ok(answer(settings, done))
}

impl<'r> AttestInput<'r> {
    /// Checks the EK, the hardware facts and that the evidence the
    /// settings require is present and well-formed.
    fn parse(settings: &MachineSettings, req: &'r AttestRequest) -> Result<Self, MachineError> {
        let ek = ek::verify(&req.ek_fingerprint, &req.ek_cert_pem, req.ek_source)?;
        let hw = Hardware::parse(
            req.hw_uuid.as_deref(),
            req.hw_mac.as_deref(),
            req.hw_serial.as_deref(),
            req.hw_product.as_deref(),
        )?;
        let nonce_id = nonce::given(req.nonce_id.as_deref());
        for (required, setting) in [
            (settings.require_quote, "ITL_REQUIRE_QUOTE"),
            (settings.require_nonce, "ITL_REQUIRE_NONCE"),
        ] {
            if required && nonce_id.is_none() {
                return Err(MachineError::missing(
                    "nonce_id",
                    format!(
                        "nonce_id is required ({setting}=true): get one from GET \
                         /api/v1/attest/challenge"
                    ),
                ));
            }
        }
        let nonce_signature = decode_b64("nonce_signature", req.nonce_signature.as_deref())?;
        if nonce_signature.is_some() && nonce_id.is_none() {
            return Err(MachineError::field(
                "nonce_signature",
                "nonce_signature needs the nonce_id of the nonce it signs",
            ));
        }
        let quote = Quote::parse(settings, req)?;
        Ok(Self {
            ek,
            hw,
            nonce_id,
            nonce_signature,
            quote,
            req,
        })
    }
}

impl Quote {
    fn parse(
        settings: &MachineSettings,
        req: &AttestRequest,
    ) -> Result<Option<Self>, MachineError> {
        let attest = decode_b64("pcr_quote", req.pcr_quote.as_deref())?;
        let signature = decode_b64("pcr_signature", req.pcr_signature.as_deref())?;
        match (attest, signature) {
            (Some(attest), Some(signature)) => Ok(Some(Self {
                attest,
                signature,
                attest_b64: req
                    .pcr_quote
                    .as_deref()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                signature_b64: req
                    .pcr_signature
                    .as_deref()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            })),
            (None, _) if settings.require_quote => Err(MachineError::missing(
                "pcr_quote",
                "pcr_quote is required (ITL_REQUIRE_QUOTE=true)",
            )),
            (_, None) if settings.require_quote => Err(MachineError::missing(
                "pcr_signature",
                "pcr_signature is required (ITL_REQUIRE_QUOTE=true)",
            )),
            (None, None) => Ok(None),
            _ => Err(MachineError::field(
                "pcr_signature",
                "pcr_quote and pcr_signature must be sent together",
            )),
        }
    }
}

/// The machine with this EK, if any, and the nonce's bytes, read on one
/// pooled connection (the nonce is checked, not spent).
async fn lookup(
    state: &AppState,
    input: &AttestInput<'_>,
) -> Result<(Option<MachineRecord>, Option<Vec<u8>>), MachineError> {
    let mut conn = state.store.acquire().await?;
    let existing =
        MachineRepo::find_by_ek(&mut conn, Some(&input.ek.sha256), Some(&input.ek.sha384)).await?;
    if existing
        .as_ref()
        .is_some_and(|m| m.status == MachineStatus::Rejected)
    {
        return Err(MachineError::MachineRejected);
    }
    let nonce = match input.nonce_id {
        Some(id) => Some(peek(state, &mut conn, id).await?),
        None => None,
    };
    Ok((existing, nonce))
}

/// Checks the AK's nonce signature and, when quotes are required, the
/// quote against the role's policy.
fn verify(
    state: &AppState,
    input: &AttestInput<'_>,
    existing: Option<&MachineRecord>,
    nonce: Option<&[u8]>,
) -> Result<CheckedEvidence, MachineError> {
    let settings = &state.settings.machines;
    let ak = existing.map(stored_ak).transpose()?.flatten();
    if let (Some(sig), Some(nonce)) = (&input.nonce_signature, nonce) {
        match &ak {
            Some(ak) => ak.verify_nonce_signature(nonce, sig).map_err(|e| {
                MachineError::field(
                    "nonce_signature",
                    format!("nonce_signature does not verify: {e}"),
                )
            })?,
            // Without an activated AK there is nothing to verify against;
            // ITL_REQUIRE_QUOTE is the setting that makes the AK mandatory.
            None => tracing::debug!("nonce_signature ignored: no AK activated for this EK"),
        }
    }
    let mut evidence = CheckedEvidence {
        quote_b64: input.quote.as_ref().map(|q| q.attest_b64.clone()),
        signature_b64: input.quote.as_ref().map(|q| q.signature_b64.clone()),
        counters: None,
    };
    // A locked or revoked machine only ever hears `lock`, `wipe` or
    // `none`, which reveal nothing; refusing its evidence (say its PCRs
    // changed) would keep a revoked machine from ever receiving its wipe.
    let answer_carries_nothing = existing
        .is_some_and(|m| matches!(m.status, MachineStatus::Locked | MachineStatus::Revoked));
    if !settings.require_quote || answer_carries_nothing {
        return Ok(evidence);
    }
    let (Some(quote), Some(nonce)) = (&input.quote, nonce) else {
        return Err(MachineError::EvidenceRejected(
            "quote evidence incomplete".into(),
        ));
    };
    let Some(ak) = &ak else {
        return Err(MachineError::EvidenceRejected(
            "no attestation key is activated for this machine: call POST \
             /api/v1/machines/{machine_id}/ak-activate first"
                .into(),
        ));
    };
    let m = existing.ok_or(MachineError::UnknownMachine)?;
    evidence.counters = Some(verify_role_quote(
        m,
        ak,
        settings.quote_policies.for_role(m.role),
        &quote.attest,
        &quote.signature,
        input.req.pcr_values.as_ref(),
        nonce,
    )?);
    Ok(evidence)
}

/// Records an attestation, spending the nonce in the same transaction: if
/// a concurrent request spent it first, nothing is recorded (`409`).
async fn record(
    state: &AppState,
    input: &AttestInput<'_>,
    evidence: &CheckedEvidence,
) -> Result<Recorded, MachineError> {
    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    if let Some(id) = input.nonce_id {
        nonce_bytes(NonceRepo::redeem(&mut tx, id, now.timestamp_millis()).await?)?;
    }
    let ek = &input.ek;
    let found = MachineRepo::find_by_ek(&mut tx, Some(&ek.sha256), Some(&ek.sha384)).await?;
    let locked = match found {
        Some(m) => MachineRepo::lock(&mut tx, &m.machine_id).await?,
        None => None,
    };
    let event = Event::Attest {
        wipe_pending: locked.as_ref().is_some_and(|m| m.wipe_pending),
        config_token_outstanding: locked
            .as_ref()
            .is_some_and(MachineRecord::config_token_outstanding),
    };
    let outcome = transition(locked.as_ref().map(|m| m.status), event)?;
    let created = locked.is_none();
    if created {
        super::check_pending_cap(state, &mut tx).await?;
    }
    let mut m = locked.unwrap_or_else(|| new_record(ek, Role::default(), outcome.status, now));
    let ts = format_timestamp(now);
    let became_attested = outcome.previous != Some(MachineStatus::Attested)
        && outcome.status == MachineStatus::Attested;
    m.status = outcome.status;
    super::learn_digests(&mut m, ek);
    if became_attested {
        m.attested_at = Some(ts.clone());
    }
    input.hw.apply_unless_approved(&mut m, outcome.previous);
    m.last_attest_at = Some(ts.clone());
    if evidence.quote_b64.is_some() {
        m.last_quote = evidence.quote_b64.clone();
        m.last_quote_signature = evidence.signature_b64.clone();
    }
    if let Some(c) = evidence.counters {
        m.quote_reset_count = Some(i64::from(c.reset_count));
        m.quote_restart_count = Some(i64::from(c.restart_count));
    }
    // Accepted evidence ends a run of refusals.
    m.failed_attestations = 0;
    // Only hashes are stored, so returning a config means issuing a fresh
    // token (the previous one stops working).
    let token = outcome.return_config.then(|| rotate_token(&mut m, now));
    m.updated_at = ts;
    if created {
        MachineRepo::insert(&mut tx, &m).await?;
    } else {
        MachineRepo::save(&mut tx, &m).await?;
    }
    tx.commit().await?;
    Ok(Recorded {
        machine: m,
        action: outcome.action.unwrap_or(AttestAction::None),
        token,
        became_attested,
    })
}

/// The seed's answer: status, action, and the config URL with it.
fn answer(settings: &MachineSettings, done: Recorded) -> AttestResponse {
    let Recorded {
        machine: m,
        action,
        token,
        ..
    } = done;
    let message = match (action, m.status) {
        (AttestAction::ApplyConfig, _) => {
            "Attestation successful — fetch config_url and apply with talosctl apply-config"
        }
        (AttestAction::Lock, _) => "Machine is locked — halt enrollment",
        (AttestAction::Wipe, _) => "Machine revoked — wipe requested (talosctl reset)",
        (_, MachineStatus::PendingApproval) => {
            "Machine pending operator approval — poll again in 60 s"
        }
        (_, MachineStatus::Revoked) => "Machine revoked",
        _ => "Machine already attested",
    };
    AttestResponse {
        machine_id: m.machine_id,
        status: m.status,
        hostname: m.hostname,
        role: m.role,
        message: message.to_owned(),
        action,
        config_url: token.as_deref().map(|t| settings.config_url(t)),
        config_token: token,
    }
}

//! `GET /attest/challenge`, `POST /attest` and `POST /machines/{id}/ak-activate`.

use attest_domain::audit::format_timestamp;
use attest_domain::machine::{transition, AttestAction, Event, MachineStatus, Role};
use attest_proto::events::NodeEvent;
use attest_proto::machine::{
    AkActivateRequest, AkActivateResponse, AttestRequest, AttestResponse, ChallengeResponse,
};
use attest_store::sqlx::AnyConnection;
use attest_store::{MachineRecord, MachineRepo, NewNonce, NonceRepo, Redeemed, StoreError};
use attest_tpm::quote::{verify_quote, CounterState, PcrValues, QuoteEvidence, QuotePolicy};
use attest_tpm::{AkPolicy, AkPublicKey};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

use super::ek::{self, VerifiedEk};
use super::{new_record, rotate_token, Hardware, MachineError};
use crate::config::machines::NONCE_TTL;
use crate::state::AppState;

/// Largest base64 evidence field accepted (a TPM2B_ATTEST is < 2 KiB).
const MAX_EVIDENCE_B64: usize = 8 * 1024;

/// `GET /api/v1/attest/challenge`: 32 random bytes, stored so any replica
/// can redeem them once within [`NONCE_TTL`].
pub async fn challenge(state: &AppState) -> Result<ChallengeResponse, MachineError> {
    let mut nonce = [0u8; 32];
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    rand::rngs::OsRng.fill_bytes(&mut id);
    let nonce_b64 = STANDARD.encode(nonce);
    let nonce_id = hex::encode(id);
    let now = state.clock.now();
    let ttl = chrono::Duration::from_std(NONCE_TTL).unwrap_or(chrono::Duration::seconds(60));
    let expires = now + ttl;
    let new = NewNonce {
        nonce_id: &nonce_id,
        nonce: &nonce_b64,
        issued_at_ms: now.timestamp_millis(),
        expires_at_ms: expires.timestamp_millis(),
    };
    let mut tx = state.store.begin_write().await?;
    if !NonceRepo::issue(&mut tx, &new, state.settings.machines.nonce_capacity).await? {
        return Err(MachineError::NonceCapacity);
    }
    tx.commit().await?;
    Ok(ChallengeResponse {
        nonce_id,
        nonce: nonce_b64,
        expires_at: format_timestamp(expires),
    })
}

/// Redeems `nonce_id` in its own transaction, so a nonce is burnt even
/// when the evidence it guarded is then refused.
async fn redeem(state: &AppState, nonce_id: &str) -> Result<Vec<u8>, MachineError> {
    issuable(nonce_id)?;
    let now_ms = state.clock.now().timestamp_millis();
    let mut tx = state.store.begin_write().await?;
    let redeemed = NonceRepo::redeem(&mut tx, nonce_id, now_ms).await?;
    tx.commit().await?;
    nonce_bytes(redeemed)
}

/// Checks `nonce_id` without spending it: `POST /attest` spends it in the
/// transaction that records the attestation (one write transaction fewer
/// per attest), or on its own when the evidence is refused.
pub(super) async fn peek(
    state: &AppState,
    conn: &mut AnyConnection,
    nonce_id: &str,
) -> Result<Vec<u8>, MachineError> {
    issuable(nonce_id)?;
    let now_ms = state.clock.now().timestamp_millis();
    nonce_bytes(NonceRepo::peek(conn, nonce_id, now_ms).await?)
}

/// Ids longer than any issued one are unknown without asking the database.
fn issuable(nonce_id: &str) -> Result<(), MachineError> {
    if nonce_id.len() > 128 {
        return Err(MachineError::field("nonce_id", "unknown nonce_id"));
    }
    Ok(())
}

/// Spends the nonce of refused evidence. The refusal is the answer, so a
/// database failure here is only logged.
pub(super) async fn burn(state: &AppState, nonce_id: &str) {
    if let Err(MachineError::Store(e)) = redeem(state, nonce_id).await {
        tracing::warn!(error = %e, "could not spend the nonce of a refused attest");
    }
}

/// The nonce bytes of a fresh redemption, or the answer for a spent,
/// expired or unknown nonce.
pub(super) fn nonce_bytes(redeemed: Redeemed) -> Result<Vec<u8>, MachineError> {
    match redeemed {
        Redeemed::Fresh(b64) => STANDARD
            .decode(b64)
            .map_err(|e| StoreError::Corrupt(format!("attest_nonces.nonce: {e}")).into()),
        Redeemed::AlreadyConsumed => Err(MachineError::NonceReplayed),
        Redeemed::Expired => Err(MachineError::NonceExpired),
        Redeemed::Unknown => Err(MachineError::field("nonce_id", "unknown nonce_id")),
    }
}

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

/// Supplied values, completed and checked with the role's golden values.
fn expected_values(
    supplied: Option<&std::collections::BTreeMap<String, String>>,
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
                return Err(MachineError::Unprocessable(format!(
                    "quote rejected: PCR {bank}:{idx} differs from the golden value"
                )));
            }
            Some(_) => {}
            None => {
                values
                    .insert(bank, idx, want.to_vec())
                    .map_err(|e| MachineError::Unprocessable(e.to_string()))?;
            }
        }
    }
    Ok(values)
}

fn counters(m: &MachineRecord) -> Option<CounterState> {
    match (m.quote_reset_count, m.quote_restart_count) {
        (Some(reset), Some(restart)) => Some(CounterState {
            reset_count: u32::try_from(reset).unwrap_or(u32::MAX),
            restart_count: u32::try_from(restart).unwrap_or(u32::MAX),
        }),
        _ => None,
    }
}

/// Evidence checked before the write, and what to store of it.
#[derive(Default)]
struct CheckedEvidence {
    quote_b64: Option<String>,
    signature_b64: Option<String>,
    counters: Option<CounterState>,
}

/// `POST /api/v1/attest`: the whole action table of the seed.
pub async fn attest(state: &AppState, req: AttestRequest) -> Result<AttestResponse, MachineError> {
    let settings = &state.settings.machines;
    let ek = ek::verify(&req.ek_fingerprint, &req.ek_cert_pem, req.ek_source)?;
    let hw = Hardware::parse(
        req.hw_uuid.as_deref(),
        req.hw_mac.as_deref(),
        req.hw_serial.as_deref(),
        req.hw_product.as_deref(),
    )?;
    let nonce_id = req
        .nonce_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if nonce_id.is_none() && settings.require_quote {
        return Err(MachineError::missing(
            "nonce_id",
            "nonce_id is required (ITL_REQUIRE_QUOTE=true): get one from GET /api/v1/attest/challenge",
        ));
    }
    if nonce_id.is_none() && settings.require_nonce {
        return Err(MachineError::missing(
            "nonce_id",
            "nonce_id is required (ITL_REQUIRE_NONCE=true): get one from GET /api/v1/attest/challenge",
        ));
    }
    let nonce_signature = decode_b64("nonce_signature", req.nonce_signature.as_deref())?;
    let quote = decode_b64("pcr_quote", req.pcr_quote.as_deref())?;
    let quote_sig = decode_b64("pcr_signature", req.pcr_signature.as_deref())?;
    if settings.require_quote && quote.is_none() {
        return Err(MachineError::missing(
            "pcr_quote",
            "pcr_quote is required (ITL_REQUIRE_QUOTE=true)",
        ));
    }
    if settings.require_quote && quote_sig.is_none() {
        return Err(MachineError::missing(
            "pcr_signature",
            "pcr_signature is required (ITL_REQUIRE_QUOTE=true)",
        ));
    }
    if quote.is_some() != quote_sig.is_some() {
        return Err(MachineError::field(
            "pcr_signature",
            "pcr_quote and pcr_signature must be sent together",
        ));
    }
    if nonce_signature.is_some() && nonce_id.is_none() {
        return Err(MachineError::field(
            "nonce_signature",
            "nonce_signature needs the nonce_id of the nonce it signs",
        ));
    }

    // One pooled connection reads both the machine and the nonce.
    let (existing, nonce) = {
        let mut conn = state.store.acquire().await?;
        let existing =
            MachineRepo::find_by_ek(&mut conn, Some(&ek.sha256), Some(&ek.sha384)).await?;
        if existing
            .as_ref()
            .is_some_and(|m| m.status == MachineStatus::Rejected)
        {
            return Err(MachineError::Rejected);
        }
        let nonce = match nonce_id {
            Some(id) => Some(peek(state, &mut conn, id).await?),
            None => None,
        };
        (existing, nonce)
    };
    // From here the nonce is spent whatever the outcome: with the
    // attestation when it is recorded, on its own when it is refused.
    let recorded: Result<_, MachineError> = async {
        let ak = match &existing {
            Some(m) => stored_ak(m)?,
            None => None,
        };

        if let (Some(sig), Some(nonce)) = (&nonce_signature, &nonce) {
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
            quote_b64: req.pcr_quote.as_deref().map(|s| s.trim().to_owned()),
            signature_b64: req.pcr_signature.as_deref().map(|s| s.trim().to_owned()),
            counters: None,
        };
        // A locked or revoked machine only ever hears `lock`, `wipe` or
        // `none`, which reveal nothing; refusing its evidence (say its PCRs
        // changed) would keep a revoked machine from ever receiving its wipe.
        let answer_carries_nothing = existing
            .as_ref()
            .is_some_and(|m| matches!(m.status, MachineStatus::Locked | MachineStatus::Revoked));
        if settings.require_quote && !answer_carries_nothing {
            let (Some(quote), Some(sig), Some(nonce)) = (&quote, &quote_sig, &nonce) else {
                return Err(MachineError::Unprocessable(
                    "quote evidence incomplete".into(),
                ));
            };
            let Some(ak) = &ak else {
                return Err(MachineError::Unprocessable(
                    "no attestation key is activated for this machine: call POST \
                     /api/v1/machines/{machine_id}/ak-activate first"
                        .into(),
                ));
            };
            let m = existing.as_ref().ok_or(MachineError::NotFound)?;
            let policy = settings.quote_policies.for_role(m.role);
            let values = expected_values(req.pcr_values.as_ref(), &policy.golden)?;
            let verified = verify_quote(
                &QuoteEvidence {
                    attest: quote,
                    signature: sig,
                    pcr_values: &values,
                },
                ak,
                &QuotePolicy {
                    expected_nonce: nonce,
                    expected_selection: &policy.selection,
                    previous: counters(m),
                },
            )
            .map_err(|e| MachineError::Unprocessable(format!("quote rejected: {e}")))?;
            evidence.counters = Some(verified.counters());
        }

        let default_role = Role::default();
        let mut attempt = 0;
        let (m, action, token, became_attested) = loop {
            attempt += 1;
            match attest_write(state, &ek, &hw, default_role, &evidence, nonce_id).await {
                Err(e) if e.is_write_conflict() && attempt < 3 => continue,
                other => break other?,
            }
        };
        Ok((m, action, token, became_attested))
    }
    .await;
    let (m, action, token, became_attested) = match recorded {
        Ok(done) => done,
        Err(e) => {
            if let Some(id) = nonce_id {
                burn(state, id).await;
            }
            if let Some(m) = &existing {
                super::failures::record_refusal(state, &m.machine_id, &e).await;
            }
            return Err(e);
        }
    };
    if became_attested {
        state.events.emit(
            NodeEvent::Online,
            &m,
            state.clock.now(),
            &[("first_seen_at", Some(&m.registered_at))],
        );
    }
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
    Ok(AttestResponse {
        machine_id: m.machine_id.clone(),
        status: m.status,
        hostname: m.hostname.clone(),
        role: m.role,
        message: message.to_owned(),
        action,
        config_url: token.as_deref().map(|t| settings.config_url(t)),
        config_token: token,
    })
}

/// Records an attestation, spending `nonce_id` in the same transaction:
/// if a concurrent request spent it first, nothing is recorded (`409`).
async fn attest_write(
    state: &AppState,
    ek: &VerifiedEk,
    hw: &Hardware,
    role: Role,
    evidence: &CheckedEvidence,
    nonce_id: Option<&str>,
) -> Result<(MachineRecord, AttestAction, Option<String>, bool), MachineError> {
    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    if let Some(id) = nonce_id {
        nonce_bytes(NonceRepo::redeem(&mut tx, id, now.timestamp_millis()).await?)?;
    }
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
    let mut m = locked.unwrap_or_else(|| new_record(ek, role, outcome.status, now));
    let ts = format_timestamp(now);
    let became_attested = outcome.previous != Some(MachineStatus::Attested)
        && outcome.status == MachineStatus::Attested;
    m.status = outcome.status;
    super::learn_digests(&mut m, ek);
    if became_attested {
        m.attested_at = Some(ts.clone());
    }
    hw.apply_unless_approved(&mut m, outcome.previous);
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
    let action = outcome.action.unwrap_or(AttestAction::None);
    Ok((m, action, token, became_attested))
}

/// `POST /api/v1/machines/{machine_id}/ak-activate` (seed form): binds an
/// AK to the machine after checking its EK and a quote signed by the AK.
pub async fn ak_activate(
    state: &AppState,
    machine_id: &str,
    req: AkActivateRequest,
) -> Result<AkActivateResponse, MachineError> {
    let m = state
        .store
        .machines()
        .get(machine_id)
        .await?
        .ok_or(MachineError::NotFound)?;
    ek::verify_stored(&m, &m.ek_fingerprint, &req.ek_cert_pem, req.ek_source)?;
    if matches!(m.status, MachineStatus::Revoked | MachineStatus::Rejected) {
        return Err(MachineError::Forbidden(format!(
            "ak-activate refused: current status: {}",
            m.status
        )));
    }
    let nonce_id = req
        .nonce_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if nonce_id.is_none() && state.settings.machines.require_nonce {
        return Err(MachineError::missing(
            "nonce_id",
            "nonce_id is required (ITL_REQUIRE_NONCE=true)",
        ));
    }
    let activation = activation_fields(state, &req)?;
    if !may_bind_ak(&m, activation.is_some()) {
        return Err(ak_already_active());
    }
    let nonce = match nonce_id {
        Some(id) => Some(redeem(state, id).await?),
        None => None,
    };
    let ak = AkPublicKey::from_spki_pem(&req.ak_pub)
        .map_err(|e| MachineError::field("ak_pub", e.to_string()))?;
    ak.check_policy(AkPolicy::Strong)
        .map_err(|e| MachineError::field("ak_pub", e.to_string()))?;
    let ak_name = match activation {
        Some((id, secret)) => {
            Some(super::ak_credential::redeem(state, machine_id, id, secret, &ak).await?)
        }
        None => None,
    };
    let quote = decode_b64("quote", Some(&req.quote))?
        .ok_or_else(|| MachineError::missing("quote", "quote is required"))?;
    let sig = decode_b64("quote_sig", Some(&req.quote_sig))?
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
    // Without a server nonce the quote's own qualifying data is accepted
    // (the seed makes nonce_id optional); it must at least be present.
    let expected_nonce = match nonce {
        Some(n) => n,
        None => attest_tpm::wire::Attest::parse_either(&quote)
            .map(|(a, _)| a.extra_data)
            .map_err(|e| MachineError::Unprocessable(format!("quote rejected: {e}")))?,
    };
    if expected_nonce.is_empty() {
        return Err(MachineError::Unprocessable(
            "quote rejected: it carries no qualifying data; quote over a nonce from GET \
             /api/v1/attest/challenge"
                .into(),
        ));
    }
    let verified = verify_quote(
        &QuoteEvidence {
            attest: &quote,
            signature: &sig,
            pcr_values: &values,
        },
        &ak,
        &QuotePolicy {
            expected_nonce: &expected_nonce,
            expected_selection: &selection,
            // Counters recorded under an AK bound by the EK certificate only
            // may come from a forged quote: a credential-proven replacement
            // starts a fresh baseline rather than inherit them.
            previous: if ak_name.is_some() && m.ak_name.is_none() {
                None
            } else {
                counters(&m)
            },
        },
    )
    .map_err(|e| MachineError::Unprocessable(format!("quote rejected: {e}")))?;

    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    let mut m = MachineRepo::lock(&mut tx, machine_id)
        .await?
        .ok_or(MachineError::NotFound)?;
    if matches!(m.status, MachineStatus::Revoked | MachineStatus::Rejected) {
        return Err(MachineError::Forbidden(format!(
            "ak-activate refused: current status: {}",
            m.status
        )));
    }
    if !may_bind_ak(&m, ak_name.is_some()) {
        return Err(ak_already_active());
    }
    let c = verified.counters();
    m.ak_public_pem = Some(req.ak_pub.trim().to_owned());
    m.ak_name = ak_name;
    m.ak_activated_at = Some(format_timestamp(now));
    m.quote_reset_count = Some(i64::from(c.reset_count));
    m.quote_restart_count = Some(i64::from(c.restart_count));
    m.updated_at = format_timestamp(now);
    MachineRepo::save(&mut tx, &m).await?;
    tx.commit().await?;
    Ok(AkActivateResponse {
        machine_id: m.machine_id,
        ak_accepted: true,
        message: if m.ak_name.is_some() {
            "AK registered, credential activation and PCR quote verified".into()
        } else {
            "AK registered and PCR quote verified".into()
        },
    })
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
    MachineError::Conflict(
        "an attestation key is already activated for this machine; it cannot be replaced".into(),
    )
}

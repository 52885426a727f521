//! `POST /register` (USB agent), `POST /self-register` (Talos extension)
//! and `POST /machines/import` (operator, offline receipt).

use attest_domain::audit::{format_timestamp, AuditAction};
use attest_domain::machine::validate::normalize_ek_fingerprint;
use attest_domain::machine::{transition, Event, MachineStatus, Role};
use attest_image_factory::Customization;
use attest_proto::events::NodeEvent;
use attest_proto::machine::{
    EkSource, ImportRequest, ImportResponse, RegisterRequest, RegisterResponse,
    SelfRegisterResponse,
};
use attest_store::{MachineRecord, MachineRepo, NewAuditEntry};

use super::ek::{self, VerifiedEk};
use super::{new_record, retry_on_conflict, rotate_token, Hardware, MachineError};
use crate::events::machine_event;
use crate::state::AppState;
use attest_ext::activity::record;
use attest_ext::activity::{kinds, ActivityEvent};

/// What register decided, for the response and the events.
struct Registered {
    machine: MachineRecord,
    token: Option<String>,
    created: bool,
    /// `machine.registered` for a new machine, recorded with it.
    activity: Option<ActivityEvent>,
}

/// `POST /api/v1/register`: verify the EK, build the boot ISO, then create
/// or update the machine. The factory is asked first, so its failure (503)
/// leaves no record behind.
pub async fn register(
    state: &AppState,
    req: RegisterRequest,
    client_ip: Option<String>,
) -> Result<RegisterResponse, MachineError> {
    let ek = ek::verify(&req.ek_fingerprint, &req.ek_cert_pem, req.ek_source)?;
    let hw = Hardware::parse(
        req.hw_uuid.as_deref(),
        req.hw_mac.as_deref(),
        req.hw_serial.as_deref(),
        req.hw_product.as_deref(),
    )?;
    let settings = &state.settings.machines;

    // Refuse early (no factory call) when the machine may not re-register,
    // and pick the role the ISO is built for.
    let existing = {
        let mut conn = state.store.acquire().await?;
        MachineRepo::find_by_ek(&mut conn, Some(&ek.sha256), Some(&ek.sha384)).await?
    };
    let role = match &existing {
        Some(m) if m.status != MachineStatus::PendingApproval => m.role,
        _ => req.desired_role.unwrap_or_default(),
    };
    if let Some(m) = &existing {
        transition(Some(m.status), register_event(state, role))?;
    }

    let (schematic_id, iso_url) = boot_iso(state, role).await?;
    let done = retry_on_conflict(|| register_write(state, &ek, &hw, role, &schematic_id, &iso_url))
        .await?;
    announce(state, &done, &schematic_id, &iso_url, client_ip.as_deref());
    Ok(register_answer(settings, done, iso_url))
}

/// The role's boot ISO: a schematic from the Talos Image Factory (its
/// failure is `503`, before anything is written) and its ISO URL.
async fn boot_iso(state: &AppState, role: Role) -> Result<(String, String), MachineError> {
    let settings = &state.settings.machines;
    let customization = Customization {
        extra_kernel_args: vec![format!("talos.config={}", settings.boot_config_url())],
        system_extensions: settings
            .role_extensions
            .get(&role)
            .cloned()
            .unwrap_or_default(),
    };
    let schematic_id = state
        .factory
        .create_schematic(&customization)
        .await
        .map_err(|e| MachineError::FactoryUnavailable(e.to_string()))?;
    let iso_url = state
        .factory
        .iso_url(&schematic_id, &settings.talos_version);
    Ok((schematic_id, iso_url))
}

/// `node.image_created`, and for a new machine `node.registered` and
/// `machine.registered`.
fn announce(
    state: &AppState,
    done: &Registered,
    schematic_id: &str,
    iso_url: &str,
    client_ip: Option<&str>,
) {
    let now = state.clock.now();
    let m = &done.machine;
    state.events.emit(
        NodeEvent::ImageCreated,
        m,
        now,
        &[
            ("schematic_id", Some(schematic_id)),
            ("iso_url", Some(iso_url)),
        ],
    );
    if done.created {
        state.events.emit(
            NodeEvent::Registered,
            m,
            now,
            &[("ip_address", client_ip), ("tpm_available", Some("true"))],
        );
    }
    if let Some(event) = &done.activity {
        state.activity.emit(event.clone());
    }
}

/// The seed's answer; no token (empty strings) when none was issued.
fn register_answer(
    settings: &crate::config::machines::MachineSettings,
    done: Registered,
    iso_url: String,
) -> RegisterResponse {
    let m = &done.machine;
    let message = match (m.status, &done.token, done.created) {
        (MachineStatus::PendingApproval, _, true) => {
            "Machine registered — awaiting operator approval; download the ISO and boot, the \
             machine receives its configuration once approved"
        }
        (_, Some(_), _) => "Machine registered — download ISO and boot to continue",
        (_, None, true) => {
            "Machine registered — download ISO and boot; the machine receives its \
             configuration by attesting (POST /api/v1/attest) with the evidence this server \
             requires"
        }
        (_, None, false) => {
            "Machine already registered — the same ISO is returned and its configuration \
             token is unchanged; the machine receives its configuration by attesting"
        }
    };
    // No token, no URL: an empty token is not a config address.
    let (config_token, config_url) = match done.token {
        Some(token) => (token.clone(), settings.config_url(&token)),
        None => (String::new(), String::new()),
    };
    RegisterResponse {
        machine_id: m.machine_id.clone(),
        role: m.role,
        status: m.status,
        iso_url,
        config_url,
        config_token,
        message: message.to_owned(),
    }
}

fn register_event(state: &AppState, role: Role) -> Event {
    let s = &state.settings.machines;
    Event::Register {
        auto_approve: s.register_auto_approve && !s.dual_control_roles.contains(&role),
        // What /attest would demand beyond the EK before handing out a
        // config: then /register (EK only) may not hand one out either.
        evidence_required: s.require_nonce || s.require_quote,
    }
}

async fn register_write(
    state: &AppState,
    ek: &VerifiedEk,
    hw: &Hardware,
    role: Role,
    schematic_id: &str,
    iso_url: &str,
) -> Result<Registered, MachineError> {
    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    let found = MachineRepo::find_by_ek(&mut tx, Some(&ek.sha256), Some(&ek.sha384)).await?;
    let locked = match found {
        Some(m) => MachineRepo::lock(&mut tx, &m.machine_id).await?,
        None => None,
    };
    let outcome = transition(
        locked.as_ref().map(|m| m.status),
        register_event(state, role),
    )?;
    let created = locked.is_none();
    if created && outcome.status == MachineStatus::PendingApproval {
        super::check_pending_cap(state, &mut tx).await?;
    }
    let mut m = locked.unwrap_or_else(|| new_record(ek, role, outcome.status, now));
    if m.status == MachineStatus::PendingApproval {
        m.role = role;
    }
    m.status = outcome.status;
    super::learn_digests(&mut m, ek);
    m.ek_material = Some(ek.material.clone());
    m.ek_source = ek.source.as_str().to_owned();
    hw.apply_unless_approved(&mut m, outcome.previous);
    m.schematic_id = Some(schematic_id.to_owned());
    m.iso_url = Some(iso_url.to_owned());
    let token = outcome
        .issue_config_token
        .then(|| rotate_token(&mut m, now));
    m.updated_at = format_timestamp(now);
    let activity = if created {
        MachineRepo::insert(&mut tx, &m).await?;
        let event = machine_event(
            kinds::MACHINE_REGISTERED,
            &m,
            now,
            &[("via", Some("register"))],
        );
        record(&mut tx, &event).await?;
        Some(event)
    } else {
        MachineRepo::save(&mut tx, &m).await?;
        None
    };
    tx.commit().await?;
    Ok(Registered {
        machine: m,
        token,
        created,
        activity,
    })
}

/// `POST /api/v1/self-register`: a new EK becomes `pending_approval`; a
/// known one is returned unchanged (seed), whatever its status.
pub async fn self_register(
    state: &AppState,
    req: RegisterRequest,
    client_ip: Option<String>,
) -> Result<SelfRegisterResponse, MachineError> {
    let ek = ek::verify(&req.ek_fingerprint, &req.ek_cert_pem, req.ek_source)?;
    let hw = Hardware::parse(
        req.hw_uuid.as_deref(),
        req.hw_mac.as_deref(),
        req.hw_serial.as_deref(),
        req.hw_product.as_deref(),
    )?;
    let role = req.desired_role.unwrap_or_default();
    let (m, activity) = retry_on_conflict(|| self_register_write(state, &ek, &hw, role)).await?;
    if let Some(event) = activity {
        let now = state.clock.now();
        state.events.emit(
            NodeEvent::Registered,
            &m,
            now,
            &[
                ("ip_address", client_ip.as_deref()),
                ("tpm_available", Some("true")),
            ],
        );
        state.activity.emit(event);
    }
    let message = match m.status {
        MachineStatus::PendingApproval => {
            "Machine registered — awaiting operator approval. Poll POST /api/v1/attest every \
             60 s; when action=apply-config, fetch config_url and run: talosctl apply-config \
             --insecure --file <(curl -sf <config_url>)"
                .to_owned()
        }
        other => format!(
            "Machine already registered (status: {other}) — continue with POST /api/v1/attest"
        ),
    };
    Ok(SelfRegisterResponse {
        machine_id: m.machine_id.clone(),
        role: m.role,
        status: m.status,
        config_token: None,
        config_url: None,
        message,
    })
}

async fn self_register_write(
    state: &AppState,
    ek: &VerifiedEk,
    hw: &Hardware,
    role: Role,
) -> Result<(MachineRecord, Option<ActivityEvent>), MachineError> {
    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    if let Some(m) = MachineRepo::find_by_ek(&mut tx, Some(&ek.sha256), Some(&ek.sha384)).await? {
        transition(Some(m.status), Event::SelfRegister)?;
        tx.rollback().await?;
        return Ok((m, None));
    }
    let outcome = transition(None, Event::SelfRegister)?;
    super::check_pending_cap(state, &mut tx).await?;
    let mut m = new_record(ek, role, outcome.status, now);
    hw.apply(&mut m);
    MachineRepo::insert(&mut tx, &m).await?;
    let event = machine_event(
        kinds::MACHINE_REGISTERED,
        &m,
        now,
        &[("via", Some("self-register"))],
    );
    record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok((m, Some(event)))
}

/// `POST /api/v1/machines/import` (operator): idempotent registration from
/// an offline receipt. Audited as `import`.
pub async fn import(
    state: &AppState,
    operator: &str,
    req: ImportRequest,
) -> Result<ImportResponse, MachineError> {
    let fp = normalize_ek_fingerprint(&req.ek_fingerprint)
        .map_err(|e| MachineError::field("ek_fingerprint", e.to_string()))?;
    let verified = match req.ek_cert_pem.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(material) => Some(ek::verify(
            fp.as_str(),
            material,
            Some(req.ek_source.unwrap_or(EkSource::OfflineImport)),
        )?),
        None => None,
    };
    let (sha256, sha384) = match &verified {
        Some(v) => (Some(v.sha256.clone()), Some(v.sha384.clone())),
        None if fp.as_str().len() == 64 => (Some(fp.as_str().to_owned()), None),
        None => (None, Some(fp.as_str().to_owned())),
    };
    let wanted_id = match req
        .machine_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(id) => Some(
            uuid::Uuid::parse_str(id)
                .map_err(|_| MachineError::field("machine_id", "machine_id must be a UUID"))?
                .to_string(),
        ),
        None => None,
    };
    let hw = Hardware::parse(
        req.hw_uuid.as_deref(),
        req.hw_mac.as_deref(),
        req.hw_serial.as_deref(),
        req.hw_product.as_deref(),
    )?;
    let role = req.role.unwrap_or_default();
    let source = req.ek_source.unwrap_or(EkSource::OfflineImport);
    let dual = state.settings.machines.dual_control_roles.contains(&role);
    let input = ImportInput {
        fingerprint: fp.as_str().to_owned(),
        verified,
        sha256,
        sha384,
        wanted_id,
        hw,
        role,
        source,
        dual,
    };
    // Import is idempotent: losing the insert race to a concurrent import
    // of the same EK means retrying, which then updates the winner's row.
    let (m, token) = retry_on_conflict(|| import_write(state, operator, &input)).await?;

    let message = match m.status {
        MachineStatus::PendingApproval => format!(
            "Machine imported from offline receipt — role {} is under dual control: two operators \
             must approve it",
            m.role
        ),
        _ => "Machine imported from offline receipt — ready for attestation".to_owned(),
    };
    Ok(ImportResponse {
        machine_id: m.machine_id.clone(),
        role: m.role,
        status: m.status,
        config_url: token.map(|t| state.settings.machines.config_url(&t)),
        message,
    })
}

/// The machine an import updates, locked; `None` when it creates one. A
/// `machine_id` asked for must match the EK's machine, or be free.
async fn lock_imported(
    tx: &mut attest_store::WriteTx,
    sha256: Option<&str>,
    sha384: Option<&str>,
    wanted_id: &Option<String>,
) -> Result<Option<MachineRecord>, MachineError> {
    match MachineRepo::find_by_ek(tx, sha256, sha384).await? {
        Some(m) => {
            if wanted_id.as_ref().is_some_and(|id| *id != m.machine_id) {
                return Err(MachineError::StateConflict(format!(
                    "this EK is already registered as machine {}",
                    m.machine_id
                )));
            }
            Ok(MachineRepo::lock(tx, &m.machine_id).await?)
        }
        None => {
            if let Some(id) = wanted_id {
                if MachineRepo::get_in(tx, id).await?.is_some() {
                    return Err(MachineError::StateConflict(format!(
                        "machine_id {id} is already used by another EK"
                    )));
                }
            }
            Ok(None)
        }
    }
}

/// A new record for an import, from the receipt's digests (the material
/// may be absent) and the `machine_id` asked for.
fn imported_record(
    input: &ImportInput,
    status: MachineStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> MachineRecord {
    let placeholder = VerifiedEk {
        fingerprint: input.fingerprint.clone(),
        sha256: String::new(),
        sha384: String::new(),
        material: String::new(),
        source: input.source,
    };
    let mut m = new_record(&placeholder, input.role, status, now);
    m.ek_sha256 = input.sha256.clone();
    m.ek_sha384 = input.sha384.clone();
    m.ek_material = None;
    if let Some(id) = &input.wanted_id {
        m.machine_id = id.clone();
    }
    m
}

/// A validated import request.
struct ImportInput {
    fingerprint: String,
    verified: Option<VerifiedEk>,
    sha256: Option<String>,
    sha384: Option<String>,
    wanted_id: Option<String>,
    hw: Hardware,
    role: Role,
    source: EkSource,
    dual: bool,
}

async fn import_write(
    state: &AppState,
    operator: &str,
    input: &ImportInput,
) -> Result<(MachineRecord, Option<String>), MachineError> {
    let ImportInput {
        verified,
        sha256,
        sha384,
        wanted_id,
        hw,
        role,
        source,
        dual,
        ..
    } = input;
    let (role, source, dual) = (*role, *source, *dual);
    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    let locked = lock_imported(&mut tx, sha256.as_deref(), sha384.as_deref(), wanted_id).await?;
    let previous = locked.as_ref().map(|m| m.status);
    let outcome = transition(
        previous,
        Event::Import {
            dual_controlled_role: dual,
        },
    )?;
    let created = locked.is_none();
    let mut m = match locked {
        Some(m) => m,
        None => imported_record(input, outcome.status, now),
    };
    if m.status == MachineStatus::PendingApproval {
        m.role = role;
    }
    m.status = outcome.status;
    if let Some(v) = &verified {
        m.ek_material = Some(v.material.clone());
        m.ek_sha256 = Some(v.sha256.clone());
        m.ek_sha384 = Some(v.sha384.clone());
    }
    m.ek_source = source.as_str().to_owned();
    hw.apply(&mut m);
    let token = outcome
        .issue_config_token
        .then(|| rotate_token(&mut m, now));
    m.updated_at = format_timestamp(now);
    if created {
        MachineRepo::insert(&mut tx, &m).await?;
    } else {
        MachineRepo::save(&mut tx, &m).await?;
    }
    let entry = NewAuditEntry {
        operator_cn: operator.to_owned(),
        action: AuditAction::Import.into(),
        machine_id: Some(m.machine_id.clone()),
        prev_state: previous.map(|s| s.as_str().to_owned()),
        new_state: Some(m.status.as_str().to_owned()),
        detail: Some(format!(
            "role={} ek_source={} {}",
            m.role,
            source,
            if created { "created" } else { "updated" }
        )),
    };
    attest_store::AuditRepo::append(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok((m, token))
}

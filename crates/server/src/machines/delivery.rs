//! Config delivery: `GET /config/{token}` and `GET /config?mac=`, in clear
//! or sealed to the machine's TPM (see docs/config-delivery.md).
//!
//! Full configs go only to approved machines; everyone else gets the
//! pending config, which is built from an allowlist and carries no secret.

use attest_domain::audit::format_timestamp;
use attest_domain::machine::validate::normalize_mac;
use attest_domain::machine::{MachineStatus, Role};
use attest_proto::events::NodeEvent;
use attest_proto::machine::{
    CredentialConfigEnvelope, EncryptedConfigEnvelope, MEDIA_TYPE_CREDENTIAL, MEDIA_TYPE_ENCRYPTED,
};
use attest_store::{MachineRecord, MachineRepo};
use attest_talos_config::{pending_config, MachinePatch, RoleConfigs};
use attest_tpm::envelope::{seal_ek_aes256gcm_v1, seal_ek_credential_v1, EnvelopeError};

use super::{ek, token, MachineError};
use crate::state::AppState;

/// Media type of a full MachineConfig.
pub const MEDIA_TYPE_YAML: &str = "application/yaml";
/// Media type of the pending config (seed: text/plain).
pub const MEDIA_TYPE_PENDING: &str = "text/plain; charset=utf-8";

/// What the client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// YAML in clear.
    Plain,
    /// `ek-aes256gcm-v1` (RSA-OAEP to the registered key).
    Encrypted,
    /// `ek-credential-aes256gcm-v1` (MakeCredential to the EK, for the AK).
    Credential,
}

impl ConfigFormat {
    /// Picks the format from an `Accept` header: an envelope type listed
    /// (and not refused with `q=0`) wins over plain text; the credential
    /// format wins over the seed's when both are listed.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let mut encrypted = false;
        let mut credential = false;
        for item in accept.unwrap_or("").split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                continue;
            }
            encrypted |= media == MEDIA_TYPE_ENCRYPTED;
            credential |= media == MEDIA_TYPE_CREDENTIAL;
        }
        match (credential, encrypted) {
            (true, _) => Self::Credential,
            (false, true) => Self::Encrypted,
            (false, false) => Self::Plain,
        }
    }
}

/// A response body and its content type.
#[derive(Debug)]
pub struct Delivered {
    pub content_type: &'static str,
    pub body: String,
}

/// The per-machine values patched into the role config.
pub(crate) fn patch_for(m: &MachineRecord) -> MachinePatch {
    MachinePatch {
        machine_id: m.machine_id.clone(),
        hostname: m.hostname.clone(),
        assigned_ip: m.assigned_ip.clone(),
        hw_mac: m.hw_mac.clone(),
    }
}

/// True for roles that boot Talos and so take a MachineConfig.
pub(crate) fn is_talos_role(role: Role) -> bool {
    !matches!(role, Role::Windows | Role::Linux)
}

fn role_configs(state: &AppState) -> RoleConfigs {
    RoleConfigs::new(&state.settings.delivery.config_cache_dir)
}

/// Runs role-config file I/O off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MachineError> + Send + 'static,
) -> Result<T, MachineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| MachineError::Internal(format!("role config task failed: {e}")))?
}

/// The machine's full MachineConfig; `None` when its role has no base
/// config (or takes none).
pub(crate) async fn render_full(
    state: &AppState,
    m: &MachineRecord,
) -> Result<Option<String>, MachineError> {
    if !is_talos_role(m.role) {
        return Ok(None);
    }
    let (configs, role, patch) = (role_configs(state), m.role, patch_for(m));
    blocking(move || {
        let base = configs
            .load(role)
            .map_err(|e| MachineError::RoleConfigUnavailable(e.to_string()))?;
        match base {
            None => Ok(None),
            Some(base) => base
                .render(&patch)
                .map(Some)
                .map_err(|e| MachineError::RoleConfigUnavailable(e.to_string())),
        }
    })
    .await
}

/// Approval-time check: a Talos role needs a usable base config, so a
/// broken file is an operator error now rather than a machine stuck at boot.
///
/// Only the Talos cluster roles (controlplane, worker-infra, worker-app)
/// need a base config to approve into. `generic` is a plain Talos machine
/// outside any cluster: its config is checked if the operator provides one,
/// and `windows` and `linux` machines get no Talos config at all.
pub(crate) async fn check_role_config(state: &AppState, role: Role) -> Result<(), MachineError> {
    if !is_talos_role(role) {
        return Ok(());
    }
    let configs = role_configs(state);
    blocking(move || {
        let optional = role == Role::Generic;
        if optional && configs.load(role).is_ok_and(|base| base.is_none()) {
            return Ok(());
        }
        configs
            .validate(role)
            .map(drop)
            .map_err(|e| MachineError::field("role", e.to_string()))
    })
    .await
}

async fn pending_for(state: &AppState, m: Option<&MachineRecord>) -> Result<String, MachineError> {
    let role = m.map(|m| m.role);
    let patch = m.map(patch_for);
    let configs = role_configs(state);
    blocking(move || {
        // A broken base must not stop the pending config: it carries
        // nothing from the base that the machine cannot do without.
        let base = role
            .filter(|r| is_talos_role(*r))
            .and_then(|r| configs.load(r).ok().flatten());
        Ok(pending_config(role, base.as_ref(), patch.as_ref()))
    })
    .await
}

fn envelope_error(e: EnvelopeError) -> MachineError {
    match e {
        EnvelopeError::NotRsa(_) => MachineError::FormatRefused(format!(
            "{e}; ask for {MEDIA_TYPE_CREDENTIAL} instead (see docs/config-delivery.md)"
        )),
        other => MachineError::Internal(format!("sealing the config failed: {other}")),
    }
}

/// Seals `yaml` for `m` in `format`.
fn seal(
    m: &MachineRecord,
    format: ConfigFormat,
    yaml: String,
    content_type: &'static str,
) -> Result<Delivered, MachineError> {
    let mut rng = rand::rngs::OsRng;
    let body = match format {
        ConfigFormat::Plain => {
            return Ok(Delivered {
                content_type,
                body: yaml,
            })
        }
        ConfigFormat::Encrypted => {
            let ek = ek::stored_public_key(m)?.ok_or_else(no_ek_material)?;
            let env = seal_ek_aes256gcm_v1(&ek.key, &m.machine_id, yaml.as_bytes(), &mut rng)
                .map_err(envelope_error)?;
            serde_json::to_string(&EncryptedConfigEnvelope {
                format: env.format,
                machine_id: env.machine_id,
                wrapped_key: env.wrapped_key,
                iv: env.iv,
                ciphertext: env.ciphertext,
            })
        }
        ConfigFormat::Credential => {
            let ek = ek::stored_public_key(m)?.ok_or_else(no_ek_material)?;
            let name = m
                .ak_name
                .as_deref()
                .and_then(|n| hex::decode(n).ok())
                .ok_or_else(|| {
                    MachineError::FormatRefused(format!(
                        "{MEDIA_TYPE_CREDENTIAL} needs an AK bound by credential activation \
                         (POST /api/v1/machines/{{id}}/ak-credential, then ak-activate)"
                    ))
                })?;
            let env = seal_ek_credential_v1(&ek, &name, &m.machine_id, yaml.as_bytes(), &mut rng)
                .map_err(envelope_error)?;
            serde_json::to_string(&CredentialConfigEnvelope {
                format: env.format,
                machine_id: env.machine_id,
                ak_name: env.ak_name,
                credential_blob: env.credential_blob,
                iv: env.iv,
                ciphertext: env.ciphertext,
            })
        }
    }
    .map_err(|e| MachineError::Internal(format!("encoding the envelope failed: {e}")))?;
    Ok(Delivered {
        content_type: match format {
            ConfigFormat::Credential => MEDIA_TYPE_CREDENTIAL,
            _ => MEDIA_TYPE_ENCRYPTED,
        },
        body,
    })
}

fn no_ek_material() -> MachineError {
    MachineError::FormatRefused(
        "no EK material is on record for this machine, so nothing can be sealed to its TPM".into(),
    )
}

fn check_plaintext_allowed(state: &AppState, format: ConfigFormat) -> Result<(), MachineError> {
    if format == ConfigFormat::Plain && state.settings.delivery.require_encrypted_delivery {
        return Err(MachineError::FormatRefused(format!(
            "plaintext config delivery is disabled (ITL_REQUIRE_ENCRYPTED_DELIVERY=true); send \
             Accept: {MEDIA_TYPE_ENCRYPTED} or {MEDIA_TYPE_CREDENTIAL}"
        )));
    }
    Ok(())
}

/// Marks the token consumed on the first full delivery and emits
/// `node.configured` then (a re-fetch after a reboot is served too).
async fn mark_configured(state: &AppState, m: &MachineRecord) -> Result<(), MachineError> {
    if m.config_token_consumed_at.is_some() || m.config_token_hash.is_none() {
        return Ok(());
    }
    let now = state.clock.now();
    let mut tx = state.store.begin_write().await?;
    let Some(mut locked) = MachineRepo::lock(&mut tx, &m.machine_id).await? else {
        return Ok(());
    };
    if locked.config_token_consumed_at.is_some() || locked.config_token_hash != m.config_token_hash
    {
        // Someone else consumed or rotated it first: theirs is the event.
        return Ok(());
    }
    locked.config_token_consumed_at = Some(format_timestamp(now));
    locked.updated_at = format_timestamp(now);
    MachineRepo::save(&mut tx, &locked).await?;
    tx.commit().await?;
    state.events.emit(NodeEvent::Configured, &locked, now, &[]);
    Ok(())
}

/// `GET /api/v1/config/{token}`.
pub async fn by_token(
    state: &AppState,
    token_value: &str,
    format: ConfigFormat,
) -> Result<Delivered, MachineError> {
    let not_found = || MachineError::UnknownToken;
    if token_value.is_empty() || token_value.len() > 256 {
        return Err(not_found());
    }
    let m = state
        .store
        .machines()
        .find_by_token_hash(&token::hash(token_value))
        .await?
        .ok_or_else(not_found)?;
    check_plaintext_allowed(state, format)?;
    match m.status {
        MachineStatus::PendingApproval => {
            let pending = pending_for(state, Some(&m)).await?;
            seal(&m, format, pending, MEDIA_TYPE_PENDING)
        }
        MachineStatus::Registered | MachineStatus::Attested => {
            let yaml = full_or_unavailable(state, &m).await?;
            let delivered = seal(&m, format, yaml, MEDIA_TYPE_YAML)?;
            mark_configured(state, &m).await?;
            Ok(delivered)
        }
        other => Err(MachineError::StatusForbids(format!(
            "config delivery refused: current status: {other}"
        ))),
    }
}

async fn full_or_unavailable(state: &AppState, m: &MachineRecord) -> Result<String, MachineError> {
    render_full(state, m).await?.ok_or_else(|| {
        MachineError::RoleConfigUnavailable(format!(
            "no base config for role {} in the config directory",
            m.role
        ))
    })
}

/// `GET /api/v1/config?mac=`: the full config for an attested machine with
/// this MAC, the pending config for anything else.
pub async fn by_mac(
    state: &AppState,
    mac: &str,
    format: ConfigFormat,
) -> Result<Delivered, MachineError> {
    let mac = normalize_mac(mac).map_err(|e| MachineError::InvalidQuery {
        field: "mac",
        message: e.to_string(),
    })?;
    check_plaintext_allowed(state, format)?;
    let m = state.store.machines().find_by_mac(&mac).await?;
    match m {
        Some(m) if m.status == MachineStatus::Attested => {
            let yaml = full_or_unavailable(state, &m).await?;
            let delivered = seal(&m, format, yaml, MEDIA_TYPE_YAML)?;
            mark_configured(state, &m).await?;
            Ok(delivered)
        }
        Some(m) => {
            let pending = pending_for(state, Some(&m)).await?;
            seal(&m, format, pending, MEDIA_TYPE_PENDING)
        }
        None if format == ConfigFormat::Plain => Ok(Delivered {
            content_type: MEDIA_TYPE_PENDING,
            body: pending_for(state, None).await?,
        }),
        None => Err(MachineError::FormatRefused(
            "no machine is registered with this MAC, so there is no EK to seal a config to".into(),
        )),
    }
}

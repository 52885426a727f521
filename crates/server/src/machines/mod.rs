//! Registration, attestation and the operator lifecycle of machines: the
//! rules of `attest_domain::machine` applied to stored machines. Handlers
//! in `crate::routes` parse and authorise, then call one function here.
//!
//! Every change follows one shape: verify the request (EK, nonce, quote)
//! outside any transaction, then in one write transaction lock the
//! machine, ask `transition` what may happen, save, append the audit entry
//! (admin actions), commit; emit the node event last.

pub mod admin;
pub mod ak_activate;
pub mod ak_credential;
pub mod attest;
pub mod bundle;
pub mod certs;
pub mod delivery;
pub mod detail;
pub mod ek;
mod error;
mod evidence;
mod failures;
pub mod nonce;
pub mod register;
pub mod token;

use attest_domain::audit::format_timestamp;
use attest_domain::machine::validate::normalize_mac;
use attest_domain::machine::MachineStatus;
use chrono::{DateTime, Utc};

use crate::state::AppState;

pub use error::MachineError;

/// Longest free-text field accepted (hardware strings, reasons).
pub const MAX_TEXT: usize = 512;

/// Hardware identity fields from a request, validated and normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hardware {
    pub hw_uuid: Option<String>,
    pub hw_mac: Option<String>,
    pub hw_serial: Option<String>,
    pub hw_product: Option<String>,
}

impl Hardware {
    /// Validates the four optional fields (MAC normalised, others trimmed
    /// and bounded; empty strings count as absent).
    pub fn parse(
        uuid: Option<&str>,
        mac: Option<&str>,
        serial: Option<&str>,
        product: Option<&str>,
    ) -> Result<Self, MachineError> {
        let mac = match non_empty(mac) {
            Some(m) => {
                Some(normalize_mac(m).map_err(|e| MachineError::field("hw_mac", e.to_string()))?)
            }
            None => None,
        };
        Ok(Self {
            hw_uuid: text("hw_uuid", uuid)?,
            hw_mac: mac,
            hw_serial: text("hw_serial", serial)?,
            hw_product: text("hw_product", product)?,
        })
    }

    /// [`apply`](Self::apply) for the public endpoints (register, attest):
    /// only on a machine that is new (`previous` is `None`) or still awaiting
    /// approval. Their only credential is the EK certificate, which is not
    /// secret, so once an operator approved a machine its hardware identity
    /// (the MAC its config is looked up and selected by) changes only
    /// through operator import.
    pub fn apply_unless_approved(
        &self,
        m: &mut attest_store::MachineRecord,
        previous: Option<attest_domain::machine::MachineStatus>,
    ) {
        if matches!(
            previous,
            None | Some(attest_domain::machine::MachineStatus::PendingApproval)
        ) {
            self.apply(m);
        }
    }

    /// Overwrites the record's fields with the ones given here.
    pub fn apply(&self, m: &mut attest_store::MachineRecord) {
        if let Some(v) = &self.hw_uuid {
            m.hw_uuid = Some(v.clone());
        }
        if let Some(v) = &self.hw_mac {
            m.hw_mac = Some(v.clone());
        }
        if let Some(v) = &self.hw_serial {
            m.hw_serial = Some(v.clone());
        }
        if let Some(v) = &self.hw_product {
            m.hw_product = Some(v.clone());
        }
    }
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// An optional free-text field: trimmed, at most [`MAX_TEXT`] characters,
/// no control characters (they would garble logs and the audit detail).
pub fn text(field: &'static str, v: Option<&str>) -> Result<Option<String>, MachineError> {
    match non_empty(v) {
        None => Ok(None),
        Some(s) if s.chars().count() > MAX_TEXT => Err(MachineError::field(
            field,
            format!("{field} must be at most {MAX_TEXT} characters"),
        )),
        Some(s) if s.chars().any(char::is_control) => Err(MachineError::field(
            field,
            format!("{field} must not contain control characters"),
        )),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

/// Attempts of a write that lost a race to a concurrent insert of the same
/// machine (a unique EK digest or id): the retry finds the other's row.
const WRITE_ATTEMPTS: usize = 3;

/// Runs `write` again (up to [`WRITE_ATTEMPTS`] times in all) while it
/// fails with a write conflict.
pub(crate) async fn retry_on_conflict<T, F, Fut>(mut write: F) -> Result<T, MachineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, MachineError>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(e) if e.is_write_conflict() && attempt < WRITE_ATTEMPTS => attempt += 1,
            other => return other,
        }
    }
}

/// Refuses to create another `pending_approval` machine when
/// `ITL_MAX_PENDING_MACHINES` already wait: unauthenticated clients with
/// throwaway EKs must not grow the approval queue without bound. Checked
/// inside the creating transaction.
pub(crate) async fn check_pending_cap(
    state: &AppState,
    tx: &mut attest_store::WriteTx,
) -> Result<(), MachineError> {
    let cap = state.settings.machines.max_pending_machines;
    let waiting =
        attest_store::MachineRepo::count_status_in(tx, MachineStatus::PendingApproval).await?;
    if waiting >= i64::from(cap) {
        return Err(MachineError::LimitReached {
            message: format!(
                "{waiting} machines are awaiting approval (ITL_MAX_PENDING_MACHINES={cap}): \
                 no new machine is accepted until operators approve or reject some"
            ),
            retry_after_secs: 60,
        });
    }
    Ok(())
}

/// A new record for a machine first seen now.
pub(crate) fn new_record(
    ek: &ek::VerifiedEk,
    role: attest_domain::machine::Role,
    status: attest_domain::machine::MachineStatus,
    now: DateTime<Utc>,
) -> attest_store::MachineRecord {
    let ts = format_timestamp(now);
    attest_store::MachineRecord {
        machine_id: uuid::Uuid::new_v4().to_string(),
        ek_fingerprint: ek.fingerprint.clone(),
        ek_sha256: Some(ek.sha256.clone()),
        ek_sha384: Some(ek.sha384.clone()),
        ek_material: Some(ek.material.clone()),
        ek_source: ek.source.as_str().to_owned(),
        hw_uuid: None,
        hw_mac: None,
        hw_serial: None,
        hw_product: None,
        role,
        status,
        hostname: None,
        assigned_ip: None,
        wipe_pending: false,
        config_token_hash: None,
        config_token_issued_at: None,
        config_token_consumed_at: None,
        schematic_id: None,
        iso_url: None,
        ak_public_pem: None,
        ak_activated_at: None,
        ak_name: None,
        quote_reset_count: None,
        quote_restart_count: None,
        last_quote: None,
        last_quote_signature: None,
        last_attest_at: None,
        registered_at: ts.clone(),
        attested_at: None,
        locked_at: None,
        revoked_at: None,
        updated_at: ts,
        version: 0,
        failed_attestations: 0,
    }
}

/// Gives `m` a fresh config token; returns the token (shown once).
pub(crate) fn rotate_token(m: &mut attest_store::MachineRecord, now: DateTime<Utc>) -> String {
    let issued = token::issue();
    m.config_token_hash = Some(issued.hash);
    m.config_token_issued_at = Some(format_timestamp(now));
    m.config_token_consumed_at = None;
    issued.token
}

/// Records both digests of verified EK material on `m` where they were
/// unknown (a machine imported by one fingerprint learns the other).
pub(crate) fn learn_digests(m: &mut attest_store::MachineRecord, ek: &ek::VerifiedEk) {
    if m.ek_sha256.is_none() {
        m.ek_sha256 = Some(ek.sha256.clone());
    }
    if m.ek_sha384.is_none() {
        m.ek_sha384 = Some(ek.sha384.clone());
    }
}

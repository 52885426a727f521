//! Operator actions: list, show, approve (dual control), revoke, lock,
//! unlock, approvals. Each change appends exactly one audit entry in the
//! transaction that makes it.

use attest_domain::audit::{format_timestamp, AuditAction};
use attest_domain::machine::validate::{normalize_assigned_ip, normalize_hostname};
use attest_domain::machine::{
    decide_approval, transition, ApprovalRequest, Decision, Event, MachineStatus, Outcome, Vote,
    Voter, PENDING_SECOND_APPROVAL,
};
use attest_proto::events::NodeEvent;
use attest_proto::machine::{
    ApprovalRecord, ApproveRequest, LockRequest, MachineDetail, PendingApprovalResponse,
    RevokeRequest,
};
use attest_store::{
    ApprovalRepo, AuditRepo, EnrollmentCertRepo, MachineFilter, MachineRecord, MachineRepo,
    NewAuditEntry, VoteRecord, WriteTx,
};
use chrono::{DateTime, Utc};

use super::detail::{approval_record, machine_detail};
use super::{rotate_token, text, MachineError};
use crate::events::machine_event;
use crate::state::AppState;
use attest_ext::activity::record;
use attest_ext::activity::{kinds, ActivityEvent};

/// A page of machines and the total matching the filter.
pub async fn list(
    state: &AppState,
    filter: MachineFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<MachineDetail>, i64), MachineError> {
    let repo = state.store.machines();
    let machines = repo.list(filter, limit, offset).await?;
    let total = repo.count(filter).await?;
    Ok((machines.iter().map(machine_detail).collect(), total))
}

/// Machines read per query while streaming the whole list.
const STREAM_BATCH: i64 = 500;

/// Every machine matching `filter`, in list order, as the chunks of one
/// JSON array: read in keyset batches and written as they come, so a fleet
/// of any size is listed without holding it in memory (the seed's
/// `GET /api/v1/machines` without paging lists them all). A database error
/// mid-way ends the stream with an error, which aborts the response.
pub fn stream_all(
    state: &AppState,
    filter: MachineFilter,
) -> impl futures::Stream<Item = Result<axum::body::Bytes, MachineError>> + Send + 'static {
    struct Cursor {
        store: attest_store::Store,
        filter: MachineFilter,
        after: Option<(String, String)>,
        first: bool,
        done: bool,
    }
    let cursor = Cursor {
        store: state.store.clone(),
        filter,
        after: None,
        first: true,
        done: false,
    };
    futures::stream::try_unfold(cursor, |mut c| async move {
        if c.done {
            return Ok(None);
        }
        let after = c.after.as_ref().map(|(t, id)| (t.as_str(), id.as_str()));
        let batch = c
            .store
            .machines()
            .list_after(c.filter, after, STREAM_BATCH)
            .await?;
        let mut chunk = Vec::with_capacity(batch.len() * 512 + 2);
        if c.first {
            chunk.push(b'[');
        }
        for (i, m) in batch.iter().enumerate() {
            if !(c.first && i == 0) {
                chunk.push(b',');
            }
            serde_json::to_writer(&mut chunk, &machine_detail(m))
                .map_err(|e| MachineError::Internal(format!("encode machine: {e}")))?;
        }
        c.done = (batch.len() as i64) < STREAM_BATCH;
        if c.done {
            chunk.push(b']');
        }
        c.first = c.first && batch.is_empty();
        c.after = batch
            .last()
            .map(|m| (m.registered_at.clone(), m.machine_id.clone()));
        Ok(Some((axum::body::Bytes::from(chunk), c)))
    })
}

/// One machine.
pub async fn get(state: &AppState, machine_id: &str) -> Result<MachineDetail, MachineError> {
    state
        .store
        .machines()
        .get(machine_id)
        .await?
        .map(|m| machine_detail(&m))
        .ok_or(MachineError::UnknownMachine)
}

/// Every dual-control vote cast for the machine.
pub async fn approvals(
    state: &AppState,
    machine_id: &str,
) -> Result<Vec<ApprovalRecord>, MachineError> {
    if state.store.machines().get(machine_id).await?.is_none() {
        return Err(MachineError::UnknownMachine);
    }
    let votes = state.store.approvals().list(machine_id).await?;
    votes.iter().map(approval_record).collect()
}

/// What approve answered.
#[derive(Debug)]
pub enum ApproveOutcome {
    /// 200: the approval took effect.
    Approved(Box<MachineDetail>),
    /// 202: a vote was recorded; a second operator must approve.
    Pending(PendingApprovalResponse),
}

fn vote_from_record(v: &VoteRecord) -> Option<Vote> {
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    Some(Vote {
        id: v.id,
        operator: v.operator_cn.clone(),
        principal: v.operator_principal.clone(),
        request: ApprovalRequest {
            role: v.role.parse().ok()?,
            hostname: v.hostname.clone(),
            assigned_ip: v.assigned_ip.clone(),
        },
        created_at: parse(&v.created_at)?,
        expires_at: parse(&v.expires_at)?,
        consumed: v.consumed,
    })
}

fn approve_detail(req: &ApprovalRequest) -> String {
    let mut d = format!("role={}", req.role);
    if let Some(h) = &req.hostname {
        d.push_str(&format!(" hostname={h}"));
    }
    if let Some(ip) = &req.assigned_ip {
        d.push_str(&format!(" assigned_ip={ip}"));
    }
    d
}

/// `POST /machines/{id}/approve`.
pub async fn approve(
    state: &AppState,
    voter: &Voter,
    machine_id: &str,
    req: ApproveRequest,
) -> Result<ApproveOutcome, MachineError> {
    let request = approval_request(&req)?;
    super::delivery::check_role_config(state, request.role).await?;
    let settings = &state.settings.machines;
    let dual = settings.dual_control_roles.contains(&request.role);
    let window = chrono::Duration::from_std(settings.dual_control_window)
        .unwrap_or(chrono::Duration::minutes(10));
    let now = state.clock.now();

    let mut tx = state.store.begin_write().await?;
    let m = MachineRepo::lock(&mut tx, machine_id)
        .await?
        .ok_or(MachineError::UnknownMachine)?;
    let votes: Vec<Vote> = ApprovalRepo::list_in(&mut tx, machine_id)
        .await?
        .iter()
        .filter_map(vote_from_record)
        .collect();
    let approval = Approval {
        state,
        voter,
        request,
        now,
    };
    match decide_approval(&votes, voter, &approval.request, dual, now, window) {
        Decision::IneligibleVoter => Err(MachineError::IneligibleVoter(format!(
            "role {} is under dual control; only a personal identity proven by its login \
             (OIDC, or an operator certificate obtained through OIDC) can vote — the \
             break-glass token and older certificates cannot",
            approval.request.role
        ))),
        Decision::Approve => approval.take_effect(tx, m, None).await,
        Decision::QuorumReached { voters, consume } => {
            ApprovalRepo::consume(&mut tx, machine_id, &consume).await?;
            let own = new_vote(machine_id, voter, &approval.request, now, now, true);
            ApprovalRepo::insert(&mut tx, &own).await?;
            approval.take_effect(tx, m, Some(voters)).await
        }
        Decision::VoteRecorded {
            approvals_received,
            approvals_required,
            expires_at,
        } => {
            let vote = new_vote(machine_id, voter, &approval.request, now, expires_at, false);
            ApprovalRepo::insert(&mut tx, &vote).await?;
            let detail = format!(
                "first approval vote — awaiting second operator (quorum={approvals_required}) {}",
                approve_detail(&approval.request)
            );
            let counts = (approvals_received, approvals_required);
            approval
                .vote_only(tx, &m, AuditAction::ApproveVote, detail, counts, expires_at)
                .await
        }
        Decision::DuplicateVote {
            approvals_received,
            approvals_required,
            expires_at,
        } => {
            let detail = format!(
                "repeated vote by the same operator — not counted {}",
                approve_detail(&approval.request)
            );
            let counts = (approvals_received, approvals_required);
            approval
                .vote_only(
                    tx,
                    &m,
                    AuditAction::ApproveVoteRepeat,
                    detail,
                    counts,
                    expires_at,
                )
                .await
        }
    }
}

/// The normalised request. Present but empty is an error, not "absent":
/// the operator typed something, and approving with a different value than
/// asked is worse.
fn approval_request(req: &ApproveRequest) -> Result<ApprovalRequest, MachineError> {
    Ok(ApprovalRequest {
        role: req.role,
        hostname: req
            .hostname
            .as_deref()
            .map(normalize_hostname)
            .transpose()
            .map_err(|e| MachineError::field("hostname", e.to_string()))?,
        assigned_ip: req
            .assigned_ip
            .as_deref()
            .map(normalize_assigned_ip)
            .transpose()
            .map_err(|e| MachineError::field("assigned_ip", e.to_string()))?,
    })
}

/// One approve call being decided.
struct Approval<'a> {
    state: &'a AppState,
    voter: &'a Voter,
    request: ApprovalRequest,
    now: DateTime<Utc>,
}

impl Approval<'_> {
    /// The approval takes effect (alone, or completing a quorum of
    /// `voters`): status, role, hostname, IP, audit; then the events.
    async fn take_effect(
        &self,
        mut tx: WriteTx,
        mut m: MachineRecord,
        voters: Option<Vec<String>>,
    ) -> Result<ApproveOutcome, MachineError> {
        let outcome = transition(Some(m.status), Event::Approve)?;
        let detail = match &voters {
            None => approve_detail(&self.request),
            Some(voters) => format!(
                "{} — dual control: approved by {}",
                approve_detail(&self.request),
                voters.join(" and ")
            ),
        };
        let operator = self.voter.identity.as_str();
        apply_approval(
            &mut tx,
            &mut m,
            &self.request,
            &outcome,
            self.now,
            operator,
            detail,
        )
        .await?;
        let approved_by = voters.map_or_else(|| operator.to_owned(), |v| v.join(","));
        let event = machine_event(
            kinds::MACHINE_APPROVED,
            &m,
            self.now,
            &[("approved_by", Some(&approved_by))],
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        emit_provisioned(self.state, &m, self.now, event);
        Ok(ApproveOutcome::Approved(Box::new(machine_detail(&m))))
    }

    /// A vote that does not (yet) take effect: audited, answered 202.
    async fn vote_only(
        &self,
        mut tx: WriteTx,
        m: &MachineRecord,
        action: AuditAction,
        detail: String,
        (received, required): (u32, u32),
        expires_at: DateTime<Utc>,
    ) -> Result<ApproveOutcome, MachineError> {
        transition(Some(m.status), Event::ApproveVote)?;
        let entry = NewAuditEntry {
            operator_cn: self.voter.identity.clone(),
            action: action.as_str().into(),
            machine_id: Some(m.machine_id.clone()),
            prev_state: Some(m.status.as_str().to_owned()),
            new_state: None,
            detail: Some(detail),
        };
        AuditRepo::append(&mut tx, &entry, self.now).await?;
        tx.commit().await?;
        Ok(ApproveOutcome::Pending(pending(
            &m.machine_id,
            &self.voter.identity,
            received,
            required,
            expires_at,
        )))
    }
}

fn new_vote(
    machine_id: &str,
    voter: &Voter,
    request: &ApprovalRequest,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    consumed: bool,
) -> VoteRecord {
    VoteRecord {
        id: 0,
        machine_id: machine_id.to_owned(),
        operator_cn: voter.identity.clone(),
        operator_principal: voter.principal.clone(),
        role: request.role.as_str().to_owned(),
        hostname: request.hostname.clone(),
        assigned_ip: request.assigned_ip.clone(),
        created_at: format_timestamp(now),
        expires_at: format_timestamp(expires_at),
        consumed,
    }
}

fn pending(
    machine_id: &str,
    operator: &str,
    received: u32,
    required: u32,
    expires_at: DateTime<Utc>,
) -> PendingApprovalResponse {
    PendingApprovalResponse {
        machine_id: machine_id.to_owned(),
        status: PENDING_SECOND_APPROVAL.to_owned(),
        message: format!(
            "Approval vote recorded for operator '{operator}'. A second operator must also \
             approve before the machine is registered."
        ),
        approvals_received: received,
        approvals_required: required,
        expires_at: format_timestamp(expires_at),
    }
}

#[allow(clippy::too_many_arguments)]
async fn apply_approval(
    tx: &mut WriteTx,
    m: &mut MachineRecord,
    request: &ApprovalRequest,
    outcome: &Outcome,
    now: DateTime<Utc>,
    operator: &str,
    detail: String,
) -> Result<(), MachineError> {
    let previous = m.status;
    let role_changed = m.role != request.role;
    m.status = outcome.status;
    m.role = request.role;
    m.hostname = request.hostname.clone();
    m.assigned_ip = request.assigned_ip.clone();
    if outcome.issue_config_token {
        // The token itself is not returned here: the machine receives a
        // fresh one with apply-config at its next attestation.
        let _ = rotate_token(m, now);
    }
    m.updated_at = format_timestamp(now);
    MachineRepo::save(tx, m).await?;
    let mut detail = detail;
    if role_changed {
        // Certificates name the role (OU): ones for the old role must not
        // keep authorising the machine as what it no longer is.
        let n = EnrollmentCertRepo::revoke_machine(
            tx,
            &m.machine_id,
            &m.updated_at,
            super::certs::REASON_ROLE_CHANGED,
        )
        .await?;
        if n > 0 {
            detail.push_str(&format!(" certificates_revoked={n}"));
        }
    }
    let entry = NewAuditEntry {
        operator_cn: operator.to_owned(),
        action: AuditAction::Approve.into(),
        machine_id: Some(m.machine_id.clone()),
        prev_state: Some(previous.as_str().to_owned()),
        new_state: Some(m.status.as_str().to_owned()),
        detail: Some(detail),
    };
    AuditRepo::append(tx, &entry, now).await?;
    Ok(())
}

/// `node.provisioned` and the recorded `machine.approved` (`approved_by`:
/// the approving operator, or both under dual control).
fn emit_provisioned(
    state: &AppState,
    m: &MachineRecord,
    now: DateTime<Utc>,
    approved: ActivityEvent,
) {
    state.activity.emit(approved);
    state.events.emit(
        NodeEvent::Provisioned,
        m,
        now,
        &[
            ("schematic_id", m.schematic_id.as_deref()),
            ("iso_url", m.iso_url.as_deref()),
        ],
    );
}

/// Runs a simple status change (`revoke`, `lock`, `unlock`): lock the row,
/// apply `event`, let `edit` adjust the record, save, audit, commit.
async fn change(
    state: &AppState,
    operator: &str,
    machine_id: &str,
    (action, detail): (AuditAction, Option<String>),
    event: impl FnOnce(&MachineRecord) -> Event,
    edit: impl FnOnce(&mut MachineRecord, &Outcome, &str),
    announce: impl FnOnce(&MachineRecord, DateTime<Utc>) -> Option<ActivityEvent>,
) -> Result<(MachineRecord, Option<ActivityEvent>), MachineError> {
    let now = state.clock.now();
    let ts = format_timestamp(now);
    let mut tx = state.store.begin_write().await?;
    let mut m = MachineRepo::lock(&mut tx, machine_id)
        .await?
        .ok_or(MachineError::UnknownMachine)?;
    let previous = m.status;
    let outcome = transition(Some(previous), event(&m))?;
    m.status = outcome.status;
    edit(&mut m, &outcome, &ts);
    m.updated_at = ts;
    MachineRepo::save(&mut tx, &m).await?;
    let mut detail = detail;
    if m.status == MachineStatus::Revoked {
        // Its certificates go with it, in the same transaction, so no
        // enrollment certificate of a revoked machine stays valid.
        let n = EnrollmentCertRepo::revoke_machine(
            &mut tx,
            machine_id,
            &m.updated_at,
            super::certs::REASON_MACHINE_REVOKED,
        )
        .await?;
        if n > 0 {
            let note = format!("certificates_revoked={n}");
            detail = Some(match detail {
                Some(d) => format!("{d} {note}"),
                None => note,
            });
        }
    }
    let entry = NewAuditEntry {
        operator_cn: operator.to_owned(),
        action: action.into(),
        machine_id: Some(machine_id.to_owned()),
        prev_state: Some(previous.as_str().to_owned()),
        new_state: Some(m.status.as_str().to_owned()),
        detail,
    };
    AuditRepo::append(&mut tx, &entry, now).await?;
    let activity = announce(&m, now);
    if let Some(event) = &activity {
        record(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok((m, activity))
}

/// `POST /machines/{id}/revoke`.
pub async fn revoke(
    state: &AppState,
    operator: &str,
    machine_id: &str,
    req: RevokeRequest,
) -> Result<MachineDetail, MachineError> {
    let reason = text("reason", req.reason.as_deref())?;
    let mut detail = format!("wipe={}", req.wipe);
    if let Some(r) = &reason {
        detail.push_str(&format!(" reason={r}"));
    }
    let wipe = if req.wipe { "true" } else { "false" };
    let (m, activity) = change(
        state,
        operator,
        machine_id,
        (AuditAction::Revoke, Some(detail)),
        |_| Event::Revoke { wipe: req.wipe },
        |m, outcome, ts| {
            if m.revoked_at.is_none() {
                m.revoked_at = Some(ts.to_owned());
            }
            m.wipe_pending |= outcome.set_wipe_pending;
            // A revoked machine must not fetch its config any more.
            m.config_token_hash = None;
            m.config_token_issued_at = None;
            m.config_token_consumed_at = None;
        },
        |m, now| {
            Some(machine_event(
                kinds::MACHINE_REVOKED,
                m,
                now,
                &[
                    ("revoked_by", Some(operator)),
                    ("reason", reason.as_deref()),
                    ("wipe", Some(wipe)),
                ],
            ))
        },
    )
    .await?;
    let now = state.clock.now();
    state.events.emit(
        NodeEvent::Decommissioned,
        &m,
        now,
        &[("reason", reason.as_deref())],
    );
    if let Some(event) = activity {
        state.activity.emit(event);
    }
    Ok(machine_detail(&m))
}

/// `POST /machines/{id}/lock`.
pub async fn lock(
    state: &AppState,
    operator: &str,
    machine_id: &str,
    req: LockRequest,
) -> Result<MachineDetail, MachineError> {
    let reason = text("reason", req.reason.as_deref())?;
    let (m, activity) = change(
        state,
        operator,
        machine_id,
        (
            AuditAction::Lock,
            reason.as_ref().map(|r| format!("reason={r}")),
        ),
        |_| Event::Lock,
        |m, _, ts| m.locked_at = Some(ts.to_owned()),
        |m, now| {
            Some(machine_event(
                kinds::MACHINE_LOCKED,
                m,
                now,
                &[("locked_by", Some(operator)), ("reason", reason.as_deref())],
            ))
        },
    )
    .await?;
    if let Some(event) = activity {
        state.activity.emit(event);
    }
    Ok(machine_detail(&m))
}

/// `POST /machines/{id}/unlock`: back to `attested`, or to `registered`
/// when the machine never attested (see docs/machine-lifecycle.md).
pub async fn unlock(
    state: &AppState,
    operator: &str,
    machine_id: &str,
) -> Result<MachineDetail, MachineError> {
    let (m, _) = change(
        state,
        operator,
        machine_id,
        (AuditAction::Unlock, None),
        |m| Event::Unlock {
            previously_attested: m.attested_at.is_some(),
        },
        |m, _, _| m.locked_at = None,
        |_, _| None,
    )
    .await?;
    debug_assert!(m.status != MachineStatus::Locked);
    Ok(machine_detail(&m))
}

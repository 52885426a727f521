//! The machine state machine: one table, one function.
//!
//! Every status change the server makes goes through [`transition`], so the
//! rules live in one place and `docs/machine-lifecycle.md` (whose table is
//! [`transition_table_markdown`], pinned by a test) cannot drift from them.
use std::fmt;

pub use attest_proto::machine::AttestAction;
use attest_proto::machine::MachineStatus;

/// Something that may change a machine's status. Flags are facts the caller
/// reads from the stored record; the rules themselves stay here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// `POST /register` from the USB agent (new machine or re-registration).
    /// `auto_approve`: `ITL_REGISTER_AUTO_APPROVE` is on and the requested
    /// role is not dual-controlled (the seed's behaviour); otherwise a new
    /// machine waits for an operator like a self-registered one.
    /// `evidence_required`: `/attest` demands a nonce or a quote, so an
    /// approved machine's config may not be handed out for the EK alone.
    Register {
        auto_approve: bool,
        evidence_required: bool,
    },
    /// `POST /self-register` from the Talos extension.
    SelfRegister,
    /// `POST /machines/import` (operator). `dual_controlled_role`: the
    /// imported role is in `ITL_DUAL_CONTROL_ROLES`.
    Import { dual_controlled_role: bool },
    /// `POST /attest` with verified EK (and nonce/quote, if required).
    /// An unknown machine (`current == None`) is created `pending_approval`.
    Attest {
        /// The stored record has `wipe_pending = true`.
        wipe_pending: bool,
        /// The stored record has an unconsumed config token.
        config_token_outstanding: bool,
    },
    /// The approval that takes effect: role not dual-controlled, or the
    /// dual-control quorum was just reached.
    Approve,
    /// A first dual-control vote: recorded, no status change (202).
    ApproveVote,
    /// `POST /machines/{id}/revoke`.
    Revoke { wipe: bool },
    /// `POST /machines/{id}/lock`.
    Lock,
    /// `POST /machines/{id}/unlock`. `previously_attested`: the record has
    /// `attested_at` set.
    Unlock { previously_attested: bool },
    /// `POST /machines/enroll`: offline self-enrollment with a verified
    /// enrollment certificate and nonce signature.
    Enroll,
}

/// An [`Event`] without its flags: names the event in errors and audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Register,
    SelfRegister,
    Import,
    Attest,
    Approve,
    ApproveVote,
    Revoke,
    Lock,
    Unlock,
    Enroll,
}

impl EventKind {
    /// Spelling used in error messages and as the audit `action`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Register => "register",
            EventKind::SelfRegister => "self_register",
            EventKind::Import => "import",
            EventKind::Attest => "attest",
            EventKind::Approve => "approve",
            EventKind::ApproveVote => "approve_vote",
            EventKind::Revoke => "revoke",
            EventKind::Lock => "lock",
            EventKind::Unlock => "unlock",
            EventKind::Enroll => "enroll",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// The event without its flags.
    pub const fn kind(self) -> EventKind {
        match self {
            Event::Register { .. } => EventKind::Register,
            Event::SelfRegister => EventKind::SelfRegister,
            Event::Import { .. } => EventKind::Import,
            Event::Attest { .. } => EventKind::Attest,
            Event::Approve => EventKind::Approve,
            Event::ApproveVote => EventKind::ApproveVote,
            Event::Revoke { .. } => EventKind::Revoke,
            Event::Lock => EventKind::Lock,
            Event::Unlock { .. } => EventKind::Unlock,
            Event::Enroll => EventKind::Enroll,
        }
    }
}

/// What the server must persist and answer after an allowed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Status before the event; `None` when the event created the machine.
    pub previous: Option<MachineStatus>,
    /// Status to store (equal to `previous` when unchanged).
    pub status: MachineStatus,
    /// Set for [`Event::Attest`] only: the `action` field of the answer.
    pub action: Option<AttestAction>,
    /// Attest only: include `config_url`/`config_token` in the answer.
    pub return_config: bool,
    /// Issue (and store) a fresh config token.
    pub issue_config_token: bool,
    /// Store `wipe_pending = true` (never cleared by any event; see docs).
    pub set_wipe_pending: bool,
}

impl Outcome {
    /// True when the event created the record.
    pub const fn created(&self) -> bool {
        self.previous.is_none()
    }

    /// True when the stored status changes (or is first set).
    pub fn status_changed(&self) -> bool {
        self.previous != Some(self.status)
    }

    fn stay(current: MachineStatus) -> Self {
        Self::to(Some(current), current)
    }

    fn to(previous: Option<MachineStatus>, status: MachineStatus) -> Self {
        Self {
            previous,
            status,
            action: None,
            return_config: false,
            issue_config_token: false,
            set_wipe_pending: false,
        }
    }

    fn with_token(mut self) -> Self {
        self.issue_config_token = true;
        self
    }

    fn attest(mut self, action: AttestAction, return_config: bool) -> Self {
        self.action = Some(action);
        self.return_config = return_config;
        self
    }
}

/// Why an event is refused. `Display` is fit for a response `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The event needs an existing machine (server: 404).
    #[error("machine not found")]
    NotFound { event: EventKind },
    /// The machine is rejected: attest and enroll answer 403 (seed).
    #[error("machine is rejected")]
    Rejected { event: EventKind },
    /// The event is refused on a machine in this status for security reasons
    /// the seed maps to 403 (enroll on locked/revoked/pending).
    #[error("{event} refused: current status: {current}")]
    Forbidden {
        current: MachineStatus,
        event: EventKind,
    },
    /// Not allowed from this status (server: 409).
    #[error("cannot {event} machine: current status: {current}")]
    Conflict {
        current: MachineStatus,
        event: EventKind,
    },
}

/// Applies `event` to a machine whose stored status is `current` (`None`:
/// no record for this EK / machine id).
///
/// This is the whole table of `docs/machine-lifecycle.md`; the reasoning for
/// each refusal is there.
pub fn transition(
    current: Option<MachineStatus>,
    event: Event,
) -> Result<Outcome, TransitionError> {
    use MachineStatus::{Attested, Locked, PendingApproval, Registered, Rejected, Revoked};

    let kind = event.kind();
    let conflict = |current| {
        Err(TransitionError::Conflict {
            current,
            event: kind,
        })
    };

    let Some(cur) = current else {
        return match event {
            // An approved machine's token fetches its full config: only when
            // /attest would not demand more than the EK either.
            Event::Register {
                auto_approve: true,
                evidence_required: false,
            } => Ok(Outcome::to(None, Registered).with_token()),
            Event::Register {
                auto_approve: true,
                evidence_required: true,
            } => Ok(Outcome::to(None, Registered)),
            // The token lets the booted ISO fetch the safe pending config.
            Event::Register {
                auto_approve: false,
                ..
            } => Ok(Outcome::to(None, PendingApproval).with_token()),
            Event::SelfRegister => Ok(Outcome::to(None, PendingApproval)),
            Event::Import {
                dual_controlled_role: false,
            } => Ok(Outcome::to(None, Registered).with_token()),
            // One operator must not create a dual-controlled machine alone.
            Event::Import {
                dual_controlled_role: true,
            } => Ok(Outcome::to(None, PendingApproval)),
            Event::Attest { .. } => {
                Ok(Outcome::to(None, PendingApproval).attest(AttestAction::None, false))
            }
            Event::Approve
            | Event::ApproveVote
            | Event::Revoke { .. }
            | Event::Lock
            | Event::Unlock { .. }
            | Event::Enroll => Err(TransitionError::NotFound { event: kind }),
        };
    };

    match event {
        // Re-registration changes neither the status nor the token: an
        // unauthenticated endpoint given a public EK must not skip the
        // approval queue, bring back a locked, revoked or rejected machine,
        // hand out an approved machine's config, or cut off its token.
        Event::Register { .. } => match cur {
            PendingApproval | Registered | Attested => Ok(Outcome::stay(cur)),
            Locked | Revoked | Rejected => conflict(cur),
        },
        // Seed: "the existing record is returned". Read-only, so nothing is
        // resurrected; the extension's next attest gets lock / wipe / 403.
        Event::SelfRegister => Ok(Outcome::stay(cur)),
        Event::Import {
            dual_controlled_role,
        } => match cur {
            PendingApproval if !dual_controlled_role => {
                Ok(Outcome::to(Some(cur), Registered).with_token())
            }
            PendingApproval => Ok(Outcome::stay(cur)),
            // Already approved: import refreshes hardware fields and the
            // token; role changes go through approve.
            Registered | Attested => Ok(Outcome::stay(cur).with_token()),
            Locked | Revoked | Rejected => conflict(cur),
        },
        Event::Attest {
            wipe_pending,
            config_token_outstanding,
        } => match cur {
            PendingApproval => Ok(Outcome::stay(cur).attest(AttestAction::None, false)),
            Registered => {
                Ok(Outcome::to(Some(cur), Attested).attest(AttestAction::ApplyConfig, true))
            }
            Attested => Ok(Outcome::stay(cur).attest(AttestAction::None, config_token_outstanding)),
            Locked => Ok(Outcome::stay(cur).attest(AttestAction::Lock, false)),
            Revoked if wipe_pending => Ok(Outcome::stay(cur).attest(AttestAction::Wipe, false)),
            Revoked => Ok(Outcome::stay(cur).attest(AttestAction::None, false)),
            Rejected => Err(TransitionError::Rejected { event: kind }),
        },
        Event::Approve => match cur {
            PendingApproval | Registered => Ok(Outcome::to(Some(cur), Registered).with_token()),
            Attested | Locked | Revoked | Rejected => conflict(cur),
        },
        Event::ApproveVote => match cur {
            PendingApproval | Registered => Ok(Outcome::stay(cur)),
            Attested | Locked | Revoked | Rejected => conflict(cur),
        },
        Event::Revoke { wipe } => match cur {
            PendingApproval | Registered | Attested | Locked => {
                let mut out = Outcome::to(Some(cur), Revoked);
                out.set_wipe_pending = wipe;
                Ok(out)
            }
            // Escalating a revoked machine to a wipe is allowed; a plain
            // second revoke would change nothing and is refused.
            Revoked if wipe => {
                let mut out = Outcome::stay(cur);
                out.set_wipe_pending = true;
                Ok(out)
            }
            Revoked | Rejected => conflict(cur),
        },
        // Only approved machines can be locked: unlock restores them, and
        // unlocking must never promote an unapproved or revoked machine.
        Event::Lock => match cur {
            Registered | Attested => Ok(Outcome::to(Some(cur), Locked)),
            PendingApproval | Locked | Revoked | Rejected => conflict(cur),
        },
        Event::Unlock {
            previously_attested,
        } => match cur {
            Locked if previously_attested => Ok(Outcome::to(Some(cur), Attested)),
            // Locked before its first attestation: back to registered, so the
            // first attestation (and apply-config) still has to happen.
            Locked => Ok(Outcome::to(Some(cur), Registered)),
            PendingApproval | Registered | Attested | Revoked | Rejected => conflict(cur),
        },
        Event::Enroll => match cur {
            Registered | Attested => Ok(Outcome::to(Some(cur), Attested)),
            // request-cert is public, so an enrollment cert alone must not
            // let an unapproved machine skip approval.
            PendingApproval | Locked | Revoked => Err(TransitionError::Forbidden {
                current: cur,
                event: kind,
            }),
            Rejected => Err(TransitionError::Rejected { event: kind }),
        },
    }
}

/// The documented columns: each event with representative flags.
pub const TABLE_COLUMNS: [(&str, Event); 17] = [
    (
        "register",
        Event::Register {
            auto_approve: false,
            evidence_required: false,
        },
    ),
    (
        "register (auto-approve)",
        Event::Register {
            auto_approve: true,
            evidence_required: false,
        },
    ),
    (
        "register (auto-approve, evidence required)",
        Event::Register {
            auto_approve: true,
            evidence_required: true,
        },
    ),
    ("self-register", Event::SelfRegister),
    (
        "import",
        Event::Import {
            dual_controlled_role: false,
        },
    ),
    (
        "import (dual role)",
        Event::Import {
            dual_controlled_role: true,
        },
    ),
    (
        "attest",
        Event::Attest {
            wipe_pending: false,
            config_token_outstanding: false,
        },
    ),
    (
        "attest (token out)",
        Event::Attest {
            wipe_pending: false,
            config_token_outstanding: true,
        },
    ),
    (
        "attest (wipe pending)",
        Event::Attest {
            wipe_pending: true,
            config_token_outstanding: false,
        },
    ),
    ("approve", Event::Approve),
    ("approve vote", Event::ApproveVote),
    ("revoke", Event::Revoke { wipe: false }),
    ("revoke (wipe)", Event::Revoke { wipe: true }),
    ("lock", Event::Lock),
    (
        "unlock",
        Event::Unlock {
            previously_attested: true,
        },
    ),
    (
        "unlock (never attested)",
        Event::Unlock {
            previously_attested: false,
        },
    ),
    ("enroll", Event::Enroll),
];

/// One cell of the documented table, e.g. `attested apply-config +cfg`.
pub fn render_cell(result: &Result<Outcome, TransitionError>) -> String {
    match result {
        Ok(out) => {
            let mut s = if out.status_changed() {
                format!("→ {}", out.status)
            } else {
                "=".to_owned()
            };
            if let Some(action) = out.action {
                s.push(' ');
                s.push_str(action.as_str());
            }
            if out.return_config {
                s.push_str(" +cfg");
            }
            if out.issue_config_token {
                s.push_str(" +token");
            }
            if out.set_wipe_pending {
                s.push_str(" +wipe");
            }
            s
        }
        Err(TransitionError::NotFound { .. }) => "404".to_owned(),
        Err(TransitionError::Rejected { .. }) => "403 rejected".to_owned(),
        Err(TransitionError::Forbidden { .. }) => "403".to_owned(),
        Err(TransitionError::Conflict { .. }) => "409".to_owned(),
    }
}

/// The transition table as Markdown: rows are current statuses (plus
/// `(none)` for an unknown machine), columns are [`TABLE_COLUMNS`].
pub fn transition_table_markdown() -> String {
    let mut out = String::from("| current \\ event |");
    for (label, _) in TABLE_COLUMNS {
        out.push(' ');
        out.push_str(label);
        out.push_str(" |");
    }
    out.push_str("\n|---|");
    for _ in TABLE_COLUMNS {
        out.push_str("---|");
    }
    out.push('\n');
    let rows = std::iter::once(None).chain(MachineStatus::ALL.into_iter().map(Some));
    for current in rows {
        out.push_str("| ");
        out.push_str(current.map_or("(none)", MachineStatus::as_str));
        out.push_str(" |");
        for (_, event) in TABLE_COLUMNS {
            out.push(' ');
            out.push_str(&render_cell(&transition(current, event)));
            out.push_str(" |");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use MachineStatus::*;

    const DOC: &str = include_str!("../../../../docs/machine-lifecycle.md");

    /// Parses the documented Markdown table back into (row, column) → cell.
    fn documented_cells() -> Vec<(String, String, String)> {
        let start = DOC.find("<!-- transition-table:begin -->").unwrap();
        let end = DOC.find("<!-- transition-table:end -->").unwrap();
        let mut lines = DOC[start..end].lines().filter(|l| l.starts_with('|'));
        let split = |l: &str| -> Vec<String> {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        };
        let header = split(lines.next().unwrap());
        lines.next().unwrap(); // |---|
        let mut cells = Vec::new();
        for line in lines {
            let row = split(line);
            assert_eq!(row.len(), header.len(), "ragged row {line}");
            for (col, cell) in header.iter().zip(&row).skip(1) {
                cells.push((row[0].clone(), col.clone(), cell.clone()));
            }
        }
        cells
    }

    /// Every status × event cell in the document equals what the code does.
    #[test]
    fn documented_table_matches_code_cell_by_cell() {
        let cells = documented_cells();
        assert_eq!(
            cells.len(),
            (MachineStatus::ALL.len() + 1) * TABLE_COLUMNS.len()
        );
        for (row, col, documented) in cells {
            let current = if row == "(none)" {
                None
            } else {
                Some(row.parse::<MachineStatus>().unwrap())
            };
            let (_, event) = TABLE_COLUMNS.iter().find(|(l, _)| *l == col).unwrap();
            let actual = render_cell(&transition(current, *event));
            assert_eq!(documented, actual, "cell ({row}, {col})");
        }
    }

    #[test]
    fn doc_contains_generated_table_verbatim() {
        let table = transition_table_markdown();
        assert!(
            DOC.contains(&table),
            "docs/machine-lifecycle.md is stale; regenerate with:\n{table}"
        );
    }

    /// Every event kind appears in the documented columns.
    #[test]
    fn columns_cover_every_event_kind() {
        use EventKind as K;
        for k in [
            K::Register,
            K::SelfRegister,
            K::Import,
            K::Attest,
            K::Approve,
            K::ApproveVote,
            K::Revoke,
            K::Lock,
            K::Unlock,
            K::Enroll,
        ] {
            assert!(TABLE_COLUMNS.iter().any(|(_, e)| e.kind() == k), "{k}");
        }
    }

    fn attest(wipe_pending: bool, config_token_outstanding: bool) -> Event {
        Event::Attest {
            wipe_pending,
            config_token_outstanding,
        }
    }

    #[test]
    fn attest_action_table_from_seed() {
        let out = transition(Some(PendingApproval), attest(false, true)).unwrap();
        assert_eq!(
            (out.status, out.action, out.return_config),
            (PendingApproval, Some(AttestAction::None), false)
        );
        let out = transition(Some(Registered), attest(false, false)).unwrap();
        assert_eq!(
            (out.status, out.action, out.return_config),
            (Attested, Some(AttestAction::ApplyConfig), true)
        );
        let out = transition(Some(Attested), attest(false, false)).unwrap();
        assert_eq!(
            (out.action, out.return_config),
            (Some(AttestAction::None), false)
        );
        let out = transition(Some(Attested), attest(false, true)).unwrap();
        assert_eq!(
            (out.action, out.return_config),
            (Some(AttestAction::None), true)
        );
        let out = transition(Some(Locked), attest(false, true)).unwrap();
        assert_eq!(
            (out.status, out.action, out.return_config),
            (Locked, Some(AttestAction::Lock), false)
        );
        let out = transition(Some(Revoked), attest(true, true)).unwrap();
        assert_eq!(
            (out.status, out.action, out.return_config),
            (Revoked, Some(AttestAction::Wipe), false)
        );
        let out = transition(Some(Revoked), attest(false, true)).unwrap();
        assert_eq!(
            (out.action, out.return_config),
            (Some(AttestAction::None), false)
        );
        assert_eq!(
            transition(Some(Rejected), attest(false, false)),
            Err(TransitionError::Rejected {
                event: EventKind::Attest
            })
        );
        let out = transition(None, attest(false, false)).unwrap();
        assert!(out.created());
        assert_eq!(
            (out.status, out.action),
            (PendingApproval, Some(AttestAction::None))
        );
    }

    #[test]
    fn only_attest_carries_an_action() {
        for current in std::iter::once(None).chain(MachineStatus::ALL.map(Some)) {
            for (_, event) in TABLE_COLUMNS {
                if let Ok(out) = transition(current, event) {
                    assert_eq!(out.action.is_some(), event.kind() == EventKind::Attest);
                    assert!(!out.return_config || event.kind() == EventKind::Attest);
                }
            }
        }
    }

    #[test]
    fn nothing_leaves_revoked_or_rejected() {
        for terminal in [Revoked, Rejected] {
            for (_, event) in TABLE_COLUMNS {
                if let Ok(out) = transition(Some(terminal), event) {
                    assert_eq!(out.status, terminal, "{event:?}");
                    assert!(!out.issue_config_token && !out.return_config, "{event:?}");
                }
            }
        }
    }

    #[test]
    fn conflict_message_names_current_status() {
        let err = transition(Some(Revoked), Event::Approve).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot approve machine: current status: revoked"
        );
        let err = transition(Some(Locked), Event::Enroll).unwrap_err();
        assert_eq!(err.to_string(), "enroll refused: current status: locked");
        assert_eq!(
            transition(None, Event::Lock).unwrap_err().to_string(),
            "machine not found"
        );
        assert_eq!(
            transition(Some(Rejected), attest(false, false))
                .unwrap_err()
                .to_string(),
            "machine is rejected"
        );
    }

    #[test]
    fn unlock_never_skips_first_attestation() {
        let locked = transition(Some(Registered), Event::Lock).unwrap();
        assert_eq!(locked.status, Locked);
        let back = transition(
            Some(Locked),
            Event::Unlock {
                previously_attested: false,
            },
        )
        .unwrap();
        assert_eq!(back.status, Registered);
        let back = transition(
            Some(Locked),
            Event::Unlock {
                previously_attested: true,
            },
        )
        .unwrap();
        assert_eq!(back.status, Attested);
    }

    #[test]
    fn revoke_wipe_escalates_but_never_clears() {
        let out = transition(Some(Attested), Event::Revoke { wipe: true }).unwrap();
        assert_eq!((out.status, out.set_wipe_pending), (Revoked, true));
        let out = transition(Some(Revoked), Event::Revoke { wipe: true }).unwrap();
        assert_eq!((out.status, out.set_wipe_pending), (Revoked, true));
        assert!(transition(Some(Revoked), Event::Revoke { wipe: false }).is_err());
    }

    #[test]
    fn attest_action_serde_spelling() {
        for a in [
            AttestAction::None,
            AttestAction::ApplyConfig,
            AttestAction::Wipe,
            AttestAction::Lock,
        ] {
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                format!("\"{}\"", a.as_str())
            );
        }
    }
}
